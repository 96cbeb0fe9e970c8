package audit

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loomguard/loomguard/policies"
)

// verdicts renders a result as "Kind ns/name: policy=action,..." lines, in result order.
func verdicts(res *Result) []string {
	var out []string
	for _, w := range res.Workloads {
		line := w.Ref.Kind + " " + w.Ref.Namespace + "/" + w.Ref.Name + ":"
		var ps []string
		for _, v := range w.Report.Violations {
			p := v.Policy + "=" + string(v.Action)
			if !slices.Contains(ps, p) {
				ps = append(ps, p)
			}
		}
		out = append(out, line+" "+strings.Join(ps, ","))
	}
	return out
}

// TestRunCountsTopLevelControllers: a finding is counted once, at the top-level
// controller. Objects whose controller is an audited kind are left out; a bare ReplicaSet
// and a Pod of a custom controller are counted; exempt namespaces are skipped.
func TestRunCountsTopLevelControllers(t *testing.T) {
	web := baseDeployment(t, "apps", "web", latest, staging)
	cj := baseDeployment(t, "apps", "gc", staging)
	cron := cronJobOf(cj, "gc")
	tests := []struct {
		name string
		obj  runtime.Object
		// want is the object's verdict line, or "" when it must not be counted.
		want string
	}{
		{name: "deployment", obj: web,
			want: "Deployment apps/web: image-tag=enforce"},
		{name: "its replicaset", obj: replicaSetOf(web, "web-5d8f", controller("apps/v1", "Deployment", "web"))},
		{name: "the replicaset's pod", obj: podOf(t, "apps", "web-5d8f-x2x9z", controller("apps/v1", "ReplicaSet", "web-5d8f"))},
		{name: "a bare replicaset", obj: replicaSetOf(baseDeployment(t, "apps", "legacy", latest, staging), "legacy", nil),
			want: "ReplicaSet apps/legacy: image-tag=enforce"},
		{name: "the bare replicaset's pod", obj: podOf(t, "apps", "legacy-abcde", controller("apps/v1", "ReplicaSet", "legacy"))},
		{name: "cronjob", obj: cron, want: "CronJob apps/gc: "},
		{name: "its job", obj: jobOf(cron, "gc-29000000")},
		{name: "the job's pod", obj: podOf(t, "apps", "gc-29000000-q7r8s", controller("batch/v1", "Job", "gc-29000000"))},
		{name: "statefulset pod", obj: podOf(t, "apps", "db-0", controller("apps/v1", "StatefulSet", "db"))},
		{name: "daemonset pod", obj: podOf(t, "apps", "agent-x", controller("apps/v1", "DaemonSet", "agent"))},
		{name: "a pod of a custom controller", obj: podOf(t, "apps", "widget-1", controller("example.com/v1", "Widget", "w")),
			want: "Pod apps/widget-1: "},
		{name: "a non-controller owner does not count", obj: func() runtime.Object {
			p := podOf(t, "apps", "owned-not-controlled", nil)
			ref := controller("apps/v1", "ReplicaSet", "other")
			ref.Controller = nil
			p.OwnerReferences = append(p.OwnerReferences, *ref)
			return p
		}(), want: "Pod apps/owned-not-controlled: "},
		{name: "exempt namespace", obj: podOf(t, "kube-system", "etcd", nil)},
	}
	var objs []runtime.Object
	var want []string
	for _, tt := range tests {
		objs = append(objs, tt.obj)
		if tt.want != "" {
			want = append(want, tt.want)
		}
	}
	// The namespace has a budget and a default-deny policy: only image-tag speaks.
	objs = append(objs, pdbFor("apps", "web"), netpolFor("apps", ""))

	res, err := Run(t.Context(), Options{Reader: newFakeCluster(t, objects(objs...)...), Engine: testEngine(t, "", testClock)})
	if err != nil {
		t.Fatal(err)
	}
	got := verdicts(res)
	// Sorted by namespace, kind (Pod first, in WorkloadKinds order) and name.
	slices.SortFunc(want, func(a, b string) int { return cmp.Or(kindRank(a)-kindRank(b), strings.Compare(a, b)) })
	if !slices.Equal(got, want) {
		t.Errorf("verdicts:\n got %q\nwant %q", got, want)
	}
	if res.Owned != 7 || res.Exempt != 1 || res.Related != 2 {
		t.Errorf("owned %d, exempt %d, related %d; want 7, 1, 2", res.Owned, res.Exempt, res.Related)
	}
	wantKinds := map[string]int{"Pod": 2, "Deployment": 1, "StatefulSet": 0, "DaemonSet": 0, "ReplicaSet": 1, "Job": 0, "CronJob": 1}
	for k, n := range wantKinds {
		if res.Kinds[k] != n {
			t.Errorf("Kinds[%s] = %d, want %d (all: %v)", k, res.Kinds[k], n, res.Kinds)
		}
	}
	if len(res.Kinds) != len(wantKinds) {
		t.Errorf("Kinds = %v", res.Kinds)
	}
	for _, w := range res.Workloads {
		if w.Ref.UID == "" || w.Ref.APIVersion == "" {
			t.Errorf("incomplete reference %+v", w.Ref)
		}
	}
}

func kindRank(line string) int {
	for i, k := range Kinds() {
		if strings.HasPrefix(line, k.Kind+" ") {
			return i
		}
	}
	return -1
}

// TestRunEngine: the run uses the engine it is given, with its actions, namespace
// overrides, exceptions and their expiry.
func TestRunEngine(t *testing.T) {
	const exception = `
namespaces:
  - names: [legacy]
    action: audit
exceptions:
  - name: web-latest
    policies: [image-tag]
    namespace: apps
    workload: web
    owner: team-web
    reason: vendor image
    expires: "2026-12-01"
`
	objs := objects(
		baseDeployment(t, "apps", "web", latest, staging),
		baseDeployment(t, "legacy", "old", latest, staging),
		netpolFor("apps", ""), netpolFor("legacy", ""),
	)
	tests := []struct {
		name   string
		config string
		now    time.Time
		want   []string
	}{
		{name: "defaults", now: testClock(),
			want: []string{"Deployment apps/web: image-tag=enforce", "Deployment legacy/old: image-tag=enforce"}},
		{name: "namespace override and an active exception", config: exception, now: testClock(),
			want: []string{"Deployment apps/web: ", "Deployment legacy/old: image-tag=audit"}},
		{name: "the exception expired", config: exception, now: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC),
			want: []string{"Deployment apps/web: image-tag=enforce", "Deployment legacy/old: image-tag=audit"}},
		{name: "policy off", config: "policies:\n  image-tag: {action: \"off\"}\n", now: testClock(),
			want: []string{"Deployment apps/web: ", "Deployment legacy/old: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEngine(t, tt.config, func() time.Time { return tt.now })
			res, err := Run(t.Context(), Options{Reader: newFakeCluster(t, objs...), Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			if got := verdicts(res); !slices.Equal(got, tt.want) {
				t.Errorf("verdicts:\n got %q\nwant %q", got, tt.want)
			}
			if tt.name == "namespace override and an active exception" {
				if w := res.Workloads[0].Report.Waivers; len(w) != 1 || w[0].Exception != "web-latest" {
					t.Errorf("waivers of apps/web: %+v", w)
				}
			}
		})
	}
}

// TestRunCrossObject: every workload is evaluated with its namespace's
// PodDisruptionBudgets and NetworkPolicies; a namespace without any is known to have none.
func TestRunCrossObject(t *testing.T) {
	objs := objects(
		// covered: a budget and a policy select loom's pods
		baseDeployment(t, "covered", "loom"), pdbFor("covered", "loom"), netpolFor("covered", "loom"),
		// bare: neither
		baseDeployment(t, "bare", "loom"),
		// policies only, and a single-replica production workload that needs no budget
		baseDeployment(t, "netpol-only", "loom"), baseDeployment(t, "netpol-only", "temporal", replicas(1)), netpolFor("netpol-only", ""),
		// the budget selects other pods
		baseDeployment(t, "other", "loom"), pdbFor("other", "temporal"), netpolFor("other", "loom"),
		// exempt: never evaluated, its objects not read into a view
		baseDeployment(t, "kube-system", "loom"), pdbFor("kube-system", "x"),
	)
	res, err := Run(t.Context(), Options{Reader: newFakeCluster(t, objs...), Engine: testEngine(t, "", testClock)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Deployment bare/loom: pod-disruption-budget=audit,network-policy=audit",
		"Deployment covered/loom: ",
		"Deployment netpol-only/loom: pod-disruption-budget=audit",
		"Deployment netpol-only/temporal: high-availability=audit",
		"Deployment other/loom: pod-disruption-budget=audit",
	}
	if got := verdicts(res); !slices.Equal(got, want) {
		t.Errorf("verdicts:\n got %q\nwant %q", got, want)
	}
	if res.Related != 5 {
		t.Errorf("related = %d, want 5 (the exempt namespace's budget is not read)", res.Related)
	}
	msg := res.Workloads[0].Report.Violations[0]
	if msg.Field != "spec.template.metadata.labels" ||
		msg.Detail != `no PodDisruptionBudget in namespace "bare" selects the pods of Deployment "loom" (2 replicas, environment=production)` {
		t.Errorf("message: %s: %s", msg.Field, msg.Detail)
	}
}

// TestRunPagination: every kind is listed page by page with the limit and the continue
// token, and in the one namespace asked for; progress follows each page.
func TestRunPagination(t *testing.T) {
	var objs []runtime.Object
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		objs = append(objs, baseDeployment(t, "apps", name, staging))
	}
	objs = append(objs, baseDeployment(t, "elsewhere", "x", staging), netpolFor("apps", ""))
	fc := newFakeCluster(t, objects(objs...)...)
	var progress []Progress
	res, err := Run(t.Context(), Options{Reader: fc, Engine: testEngine(t, "", testClock), Namespace: "apps", PageSize: 2,
		Progress: func(p Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Workloads) != 5 {
		t.Fatalf("evaluated %d workloads, want the 5 of namespace apps: %q", len(res.Workloads), verdicts(res))
	}
	var deployments []listCall
	for _, c := range fc.listCalls() {
		if c.namespace != "apps" || c.limit != 2 {
			t.Errorf("list call %+v: want namespace apps, limit 2", c)
		}
		if c.kind == "DeploymentList" {
			deployments = append(deployments, c)
		}
	}
	if want := []listCall{
		{kind: "DeploymentList", namespace: "apps", limit: 2},
		{kind: "DeploymentList", namespace: "apps", limit: 2, cont: "2"},
		{kind: "DeploymentList", namespace: "apps", limit: 2, cont: "4"},
	}; !slices.Equal(deployments, want) {
		t.Errorf("Deployment list calls:\n got %+v\nwant %+v", deployments, want)
	}
	if n := len(fc.listCalls()); n != 2+7+2 { // PDB, NP, 7 kinds, 2 more Deployment pages
		t.Errorf("%d list calls, want 11", n)
	}
	var deploymentProgress []Progress
	for _, p := range progress {
		if p.Kind == "Deployment" {
			deploymentProgress = append(deploymentProgress, p)
		}
		if p.Steps != 9 {
			t.Errorf("progress %+v: want 9 steps", p)
		}
	}
	if want := []Progress{
		{Kind: "Deployment", Step: 4, Steps: 9, Listed: 2, Remaining: 3, Evaluated: 2},
		{Kind: "Deployment", Step: 4, Steps: 9, Listed: 4, Remaining: 1, Evaluated: 4},
		{Kind: "Deployment", Step: 4, Steps: 9, Listed: 5, Remaining: -1, Evaluated: 5},
	}; !slices.Equal(deploymentProgress, want) {
		t.Errorf("progress:\n got %+v\nwant %+v", deploymentProgress, want)
	}
}

// TestRunFailsAsAWhole: an error on any page fails the run, naming the kind and how far it
// got.
func TestRunFailsAsAWhole(t *testing.T) {
	var objs []runtime.Object
	for _, name := range []string{"a", "b", "c"} {
		objs = append(objs, baseDeployment(t, "apps", name))
	}
	tests := []struct {
		name string
		kind string
		page int
		err  error
		want string
	}{
		{name: "page 2 of Deployments", kind: "DeploymentList", page: 1, err: errors.New("connection reset"),
			want: "listing Deployments (after 2): connection reset"},
		{name: "forbidden NetworkPolicies", kind: "NetworkPolicyList", page: 0,
			err:  apierrors.NewForbidden(schema.GroupResource{Group: "networking.k8s.io", Resource: "networkpolicies"}, "", errors.New("RBAC")),
			want: "listing NetworkPolicies (after 0): networkpolicies.networking.k8s.io is forbidden"},
		{name: "expired continue token", kind: "DeploymentList", page: 1, err: apierrors.NewResourceExpired("too old"),
			want: "listing Deployments (after 2): too old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeCluster(t, objects(objs...)...)
			fc.setFail(func(kind string, page int) error {
				if kind == tt.kind && page == tt.page {
					return tt.err
				}
				return nil
			})
			res, err := Run(t.Context(), Options{Reader: fc, Engine: testEngine(t, "", testClock), PageSize: 2})
			if err == nil || !strings.Contains(err.Error(), tt.want) || res != nil {
				t.Fatalf("Run() = %v, %v; want no result and an error containing %q", res, err, tt.want)
			}
		})
	}
	if _, err := Run(context.Background(), Options{}); err == nil {
		t.Error("Run without reader and engine succeeded")
	}
}

// TestRunViolations: the counts behind loomguard_audit_violations.
func TestRunViolations(t *testing.T) {
	res := &Result{Workloads: []Workload{
		{Ref: corev1.ObjectReference{Namespace: "a"}, Report: report("image-tag=enforce", "image-tag=enforce", "health-probes=warn")},
		{Ref: corev1.ObjectReference{Namespace: "b"}, Report: report("image-tag=enforce", "pod-security/hostPathVolumes=enforce", "pod-security/hostPathVolumes=enforce", "pod-security/sysctls=warn")},
		{Ref: corev1.ObjectReference{Namespace: "b"}},
	}}
	want := map[ViolationKey]int{
		{Policy: "pod-security", Control: "hostPathVolumes", Action: "enforce", Namespace: "b"}: 2,
		{Policy: "pod-security", Control: "sysctls", Action: "warn", Namespace: "b"}:            1,
		{Policy: "image-tag", Action: "enforce", Namespace: "a"}:                                2,
		{Policy: "health-probes", Action: "warn", Namespace: "a"}:                               1,
		{Policy: "image-tag", Action: "enforce", Namespace: "b"}:                                1,
	}
	got := res.Violations()
	if len(got) != len(want) {
		t.Fatalf("Violations() = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("Violations()[%+v] = %d, want %d", k, got[k], n)
		}
	}
}

// report builds a report from "policy=action" strings; "pod-security/<control>=action"
// gives a pod-security violation of that control.
func report(violations ...string) policies.Report {
	var r policies.Report
	for _, v := range violations {
		if v == "" {
			continue
		}
		p, a, _ := strings.Cut(v, "=")
		p, control, _ := strings.Cut(p, "/")
		var err *field.Error
		if control != "" {
			err = field.Forbidden(field.NewPath("spec"), "").WithOrigin(control)
		}
		r.Violations = append(r.Violations, policies.Violation{Policy: p, Action: policies.Action(a), Error: err})
	}
	return r
}
