package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loomguard/loomguard/test/cluster"
)

// The background audit's metrics.
const (
	mViolations = "loomguard_audit_violations"
	mWorkloads  = "loomguard_audit_workloads"
	mLastRun    = "loomguard_audit_last_run_timestamp_seconds"
	mDuration   = "loomguard_audit_duration_seconds"
	mErrors     = "loomguard_audit_errors_total"
	mLeader     = "loomguard_audit_leader"
)

// auditView is what one scrape of a loomguard says about its background audit.
type auditView struct {
	// violations are keyed "namespace/policy/action".
	violations map[string]float64
	workloads  map[string]float64 // by kind
	// ran is false before the process completed a run (or when it is not the leader).
	ran              bool
	started, lastRun time.Time
	errors, leader   float64
}

// scrapeFunc scrapes several metrics of one loomguard process at once.
type scrapeFunc func(ctx context.Context, names ...string) (map[string]map[string]float64, error)

// readAudit scrapes the audit metrics of one loomguard process.
func readAudit(ctx context.Context, scrape scrapeFunc) (auditView, error) {
	m, err := scrape(ctx, mViolations, mWorkloads, mLastRun, mDuration, mErrors, mLeader)
	if err != nil {
		return auditView{}, err
	}
	v := auditView{violations: map[string]float64{}, workloads: map[string]float64{}, errors: m[mErrors][""], leader: m[mLeader][""]}
	for labels, n := range m[mViolations] {
		l := parseLabels(labels)
		v.violations[l["namespace"]+"/"+l["policy"]+"/"+l["action"]] = n
	}
	for labels, n := range m[mWorkloads] {
		v.workloads[parseLabels(labels)["kind"]] = n
	}
	if ts, ok := m[mLastRun][""]; ok {
		v.ran = true
		v.lastRun = time.Unix(0, int64(ts*1e9))
		v.started = v.lastRun.Add(-time.Duration(m[mDuration][""] * 1e9))
	}
	return v, nil
}

// parseLabels parses an exposition label set: {a="x",b="y"}.
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	for s != "" {
		name, rest, _ := strings.Cut(s, `="`)
		value, rest, _ := strings.Cut(rest, `"`)
		out[name] = value
		s = strings.TrimPrefix(rest, ",")
	}
	return out
}

// inNamespace returns the violations of one namespace, keyed "policy/action".
func (v auditView) inNamespace(ns string) map[string]float64 {
	out := map[string]float64{}
	for k, n := range v.violations {
		if rest, ok := strings.CutPrefix(k, ns+"/"); ok {
			out[rest] = n
		}
	}
	return out
}

// waitForAuditRun waits until the process has published a run that started after since,
// so that it saw every change made before since, and returns its view.
func waitForAuditRun(t *testing.T, what string, scrape scrapeFunc, since time.Time) auditView {
	t.Helper()
	var v auditView
	eventually(t, what, func(ctx context.Context) error {
		var err error
		if v, err = readAudit(ctx, scrape); err != nil {
			return err
		}
		if !v.ran || v.started.Before(since) {
			return fmt.Errorf("the last published run started at %s, before %s", v.started.Format(time.StampMicro), since.Format(time.StampMicro))
		}
		return nil
	})
	return v
}

// waitForNamespaceViolations waits until the audit's gauges for ns are exactly want
// ("policy/action" -> count) and returns how long that took.
func waitForNamespaceViolations(t *testing.T, scrape scrapeFunc, ns string, want map[string]float64) time.Duration {
	t.Helper()
	begin := time.Now()
	eventually(t, fmt.Sprintf("the audit gauges of namespace %s to be %v", ns, want), func(ctx context.Context) error {
		v, err := readAudit(ctx, scrape)
		if err != nil {
			return err
		}
		if got := v.inNamespace(ns); !maps.Equal(got, want) {
			return fmt.Errorf("got %v", got)
		}
		return nil
	})
	return time.Since(begin)
}

// cliReport is the JSON report of `loomguard audit` (check's schema).
type cliReport struct {
	Summary struct {
		Objects, Workloads, Violations, Denied int
	}
	Results []struct {
		Source     string
		Document   int
		Kind       string
		Namespace  string
		Name       string
		Decision   string
		Violations []struct{ Policy, Action, Field, Message string }
	}
}

// runAuditCLI runs the real `loomguard audit` binary with the harness's admin kubeconfig.
func runAuditCLI(t *testing.T, c *cluster.Cluster, args ...string) (cliReport, int, string) {
	t.Helper()
	return runCLIJSON[cliReport](t, c, append([]string{"audit", "--kubeconfig", c.Kubeconfig(), "-o", "json"}, args...)...)
}

// runCLIJSON runs the real loomguard binary with args and decodes its JSON output into T
// when it exits 0 or 1 (a verdict); it returns the exit code and standard error as well.
func runCLIJSON[T any](t *testing.T, c *cluster.Cluster, args ...string) (T, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.BinPath("loomguard"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running loomguard %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var out T
	if code < 2 {
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("loomguard %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
	}
	return out, code, stderr.String()
}

// gaugeView is the CLI report as the gauges show it: violations by
// "namespace/policy/action" and workloads by kind.
func (r cliReport) gaugeView() (map[string]float64, map[string]float64) {
	violations, workloads := map[string]float64{}, map[string]float64{}
	for _, k := range []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"} {
		workloads[k] = 0
	}
	for _, res := range r.Results {
		workloads[res.Kind]++
		for _, v := range res.Violations {
			violations[res.Namespace+"/"+v.Policy+"/"+v.Action]++
		}
	}
	return violations, workloads
}

// TestAuditBackground: what runs already is audited within an interval of its creation,
// counted once at its top-level controller, reported with an Event, and a fix clears its
// series. The scenario's namespace is in audit mode, so that admission lets through what
// the audit then reports, as it would for workloads that predate loomguard.
func TestAuditBackground(t *testing.T) {
	s := newScenario(t, "e2e-audit")
	s.setConfig("namespaces:\n  - names: [" + s.ns + "]\n    action: audit\n")

	latest := compliantDeployment("latest", 2)
	latest.Spec.Template.Spec.Containers[0].Image = "ghcr.io/loomguard/e2e-app:latest"
	prod := compliantDeployment("prod", 2)
	prod.Labels["environment"], prod.Spec.Template.Labels["environment"] = "production", "production"
	mustSucceed(t, s.apply(latest))
	mustSucceed(t, s.apply(prod))
	created := time.Now()
	// The controllers create a ReplicaSet and 2 Pods for each: none of them counts.
	s.waitForReplicaSetPods("latest")
	s.waitForReplicaSetPods("prod")

	scrape := s.c.LoomguardMetrics
	took := waitForNamespaceViolations(t, scrape, s.ns, map[string]float64{
		"image-tag/audit":             1, // the Deployment only, not its ReplicaSet and Pods
		"network-policy/audit":        2,
		"pod-disruption-budget/audit": 1,
	})
	t.Logf("the audit reported the new workloads %s after their ReplicaSets and Pods existed (%s after creation; --audit-interval=%s)",
		took.Round(time.Millisecond), time.Since(created).Round(time.Millisecond), cluster.AuditInterval)

	// An Event on the offending Deployment (--audit-events), once.
	eventually(t, "an audit Event on Deployment latest", func(ctx context.Context) error {
		events, err := s.cs.EventsV1().Events(s.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var found []string
		for _, e := range events.Items {
			if e.Regarding.Kind == "Deployment" && e.Regarding.Name == "latest" && e.Reason == "PolicyViolation" {
				found = append(found, e.Note)
				if e.ReportingController != "loomguard.io/audit" || e.Action != "Audit" || e.Type != "Warning" {
					return fmt.Errorf("event %s: controller %q, action %q, type %q", e.Name, e.ReportingController, e.Action, e.Type)
				}
			}
		}
		imageTag := 0
		for _, n := range found {
			if strings.HasPrefix(n, "[image-tag] spec.template.spec.containers[0].image: ") {
				imageTag++
			}
		}
		if imageTag != 1 {
			return fmt.Errorf("want one image-tag event among the events of Deployment latest: %q", found)
		}
		return nil
	})

	// Fixing the image clears its series, and only its.
	latest.Spec.Template.Spec.Containers[0].Image = "ghcr.io/loomguard/e2e-app:1.0.0"
	mustSucceed(t, s.apply(latest))
	waitForNamespaceViolations(t, scrape, s.ns, map[string]float64{"network-policy/audit": 2, "pod-disruption-budget/audit": 1})

	// A budget for prod and a default-deny NetworkPolicy: nothing left.
	mustSucceed(t, s.c.KubectlInput(`apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: prod}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: prod}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
`, "-n", s.ns, "apply", "-f", "-"))
	waitForNamespaceViolations(t, scrape, s.ns, map[string]float64{})

	v, err := readAudit(t.Context(), scrape)
	if err != nil {
		t.Fatal(err)
	}
	if v.leader != 1 || v.errors != 0 {
		t.Errorf("leader %v, errors %v; want 1 and 0", v.leader, v.errors)
	}
	eventually(t, "a finding line for Deployment latest in loomguard.log", func(context.Context) error {
		logData, err := os.ReadFile(filepath.Join(s.c.LogDir(), "loomguard.log"))
		if err != nil {
			return err
		}
		for line := range strings.Lines(string(logData)) {
			if strings.Contains(line, `"msg":"audit finding"`) && strings.Contains(line, `"namespace":"`+s.ns+`","name":"latest"`) &&
				strings.Contains(line, `"policy":"image-tag"`) {
				return nil
			}
		}
		return errors.New("no such line yet")
	})
}

// TestAuditCLIMatchesGauges: `loomguard audit` (the real binary, with the harness's
// kubeconfig) and the background audit's gauges show the same cluster: the same
// violations by policy, action and namespace, and the same workloads by kind.
func TestAuditCLIMatchesGauges(t *testing.T) {
	s := newScenario(t, "e2e-audit-cli")
	// Audit mode lets the legacy Deployment in; the CLI reads the server's own config file.
	s.setConfig("namespaces:\n  - names: [" + s.ns + "]\n    action: audit\n")
	mustSucceed(t, s.apply(legacyDeployment("legacy", 1)))
	s.waitForReplicaSetPods("legacy")

	// Another test's controllers may still be settling: compare a few times.
	var last string
	for attempt := 1; attempt <= 3; attempt++ {
		report, code, stderr := runAuditCLI(t, s.c, "--config", s.c.LoomguardConfigPath())
		finished := time.Now()
		if code > 1 {
			t.Fatalf("loomguard audit exited %d\n%s", code, stderr)
		}
		for _, r := range report.Results {
			if r.Source != "cluster" || r.Document != 0 {
				t.Fatalf("result %+v: want source cluster, document 0", r)
			}
		}
		cliViolations, cliWorkloads := report.gaugeView()
		v := waitForAuditRun(t, "a background audit run after the CLI's", s.c.LoomguardMetrics, finished)
		if maps.Equal(v.violations, cliViolations) && maps.Equal(v.workloads, cliWorkloads) {
			t.Logf("attempt %d: the CLI and the gauges agree on %d workloads and %d violation series", attempt,
				report.Summary.Workloads, len(cliViolations))
			legacy := v.inNamespace(s.ns)
			if legacy["image-tag/audit"] != 1 {
				t.Errorf("namespace %s: %v, want image-tag/audit=1 for the Deployment alone", s.ns, legacy)
			}
			return
		}
		last = fmt.Sprintf("CLI: %v %v\ngauges: %v %v", cliViolations, cliWorkloads, v.violations, v.workloads)
		t.Logf("attempt %d: the CLI and the gauges differ:\n%s", attempt, last)
	}
	t.Fatalf("the CLI and the gauges never agreed:\n%s", last)
}

// TestAuditWhatIf: `loomguard audit --config NEW` names exactly the workloads that the new
// config would deny, and admission under that config agrees.
func TestAuditWhatIf(t *testing.T) {
	s := newScenario(t, "e2e-audit-whatif")
	probed := compliantDeployment("probed", 1)
	unprobed := compliantDeployment("unprobed", 1)
	unprobed.Spec.Template.Spec.Containers[0].LivenessProbe = nil
	unprobed.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
	single := compliantDeployment("single", 1)
	single.Labels["environment"], single.Spec.Template.Labels["environment"] = "production", "production"
	for _, d := range []*appsv1.Deployment{probed, unprobed, single} {
		mustSucceed(t, s.apply(d)) // unprobed with warnings, single audited
	}

	denied := func(r cliReport) []string {
		var out []string
		for _, res := range r.Results {
			if res.Decision == "denied" {
				out = append(out, res.Kind+" "+res.Name)
			}
		}
		return out
	}
	now, code, stderr := runAuditCLI(t, s.c, "-n", s.ns)
	if code != 0 || len(denied(now)) > 0 || now.Summary.Workloads != 3 {
		t.Fatalf("under the running config: exit %d, denied %q, %d workloads; want 0, none, 3\n%s", code, denied(now), now.Summary.Workloads, stderr)
	}

	const newConfig = "policies:\n  health-probes:\n    action: enforce\n"
	path := filepath.Join(t.TempDir(), "new.yaml")
	if err := os.WriteFile(path, []byte(newConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	next, code, stderr := runAuditCLI(t, s.c, "-n", s.ns, "--config", path)
	if want := []string{"Deployment unprobed"}; code != 1 || !slices.Equal(denied(next), want) {
		t.Fatalf("under the new config: exit %d, denied %q; want 1 and %q\n%s", code, denied(next), want, stderr)
	}

	// Roll the new config out: admission denies exactly that workload, created anew (an
	// update that leaves the pod spec unchanged is never denied).
	s.setConfig(newConfig)
	for _, d := range []*appsv1.Deployment{probed, unprobed, single} {
		again := d.DeepCopy()
		again.Name += "-again"
		r := s.apply(again, "--dry-run=server")
		if d == unprobed {
			mustFail(t, r)
			mustContain(t, "kubectl apply stderr", r.Stderr, `denied the request`, "[health-probes]")
		} else {
			mustSucceed(t, r)
		}
	}
}

// auditRBAC is the RBAC the background audit needs, bound to a ServiceAccount that
// TestAuditLeaderElection impersonates: its second loomguard runs with exactly these
// permissions.
const auditRBAC = "testdata/audit-rbac.yaml"

// TestAuditLeaderElection: of two loomguard replicas, only the holder of the Lease
// loomguard-audit audits; when it stops, the other takes over. The second replica runs as
// a ServiceAccount with only the RBAC of testdata/audit-rbac.yaml, which proves those
// rules sufficient (lists, the Lease, Events).
func TestAuditLeaderElection(t *testing.T) {
	s := newScenario(t, "e2e-audit-leader")
	c := s.c
	// A Deployment of the test's own for the audits to find, whatever ran before.
	mustSucceed(t, s.apply(compliantDeployment("audited", 1)))
	rbac, err := os.ReadFile(auditRBAC)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c.KubectlInput(string(rbac), "apply", "-f", "-"))
	kubeconfig := filepath.Join(t.TempDir(), "auditor.kubeconfig")
	if err := c.WriteKubeconfigAs(kubeconfig, "system:serviceaccount:loomguard-system:loomguard-e2e-auditor",
		"system:serviceaccounts", "system:serviceaccounts:loomguard-system", "system:authenticated"); err != nil {
		t.Fatal(err)
	}

	primary := waitForAuditRun(t, "a run of the first loomguard", c.LoomguardMetrics, time.Now())
	if primary.leader != 1 {
		t.Fatalf("the first loomguard is not the leader: %+v", primary)
	}
	second, err := c.StartExtraLoomguard(t.Context(), cluster.ExtraLoomguardOptions{Name: "loomguard-2", Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("loomguard-2 log (last lines):\n%s", second.LogTail(40))
		}
		_ = second.Stop()
		// The first loomguard takes the Lease back for the tests that follow.
		if c.LoomguardPID() != 0 {
			waitForLeader(t, "the first loomguard to lead again", c.LoomguardMetrics)
		}
	})

	// Several intervals: the first keeps auditing, the second only serves.
	since := time.Now()
	time.Sleep(3 * cluster.AuditInterval)
	waitForAuditRun(t, "the first loomguard to keep auditing", c.LoomguardMetrics, since)
	v, err := readAudit(t.Context(), second.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	if v.leader != 0 || v.ran || len(v.violations) > 0 {
		t.Fatalf("the second loomguard audits while the first holds the Lease: leader %v, ran %v, %d series", v.leader, v.ran, len(v.violations))
	}
	holder := leaseHolder(t, s)
	t.Logf("Lease loomguard-system/loomguard-audit held by %s", holder)

	// The first stops (and releases the Lease): the second takes over, with its RBAC.
	if err := c.StopLoomguard(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Cleanup(func() {
		if c.LoomguardPID() == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.StartLoomguard(ctx); err != nil {
				t.Errorf("restarting loomguard: %v", err)
			}
		}
	})
	v = waitForAuditRun(t, "the second loomguard to audit", second.Metrics, stopped)
	t.Logf("the second loomguard led and completed a run %s after the first stopped", v.lastRun.Sub(stopped).Round(time.Millisecond))
	if v.leader != 1 || v.errors != 0 || v.workloads["Deployment"] == 0 {
		t.Errorf("second loomguard: leader %v, errors %v, workloads %v", v.leader, v.errors, v.workloads)
	}
	if now := leaseHolder(t, s); now == holder {
		t.Errorf("the Lease is still held by %s", holder)
	}
	// The new leader keeps the webhooks' matchConditions too: it repairs a reset.
	resetConditions(t, s)
	s.waitForConditions("the second loomguard to repair the matchConditions", generatedConditions(t, baseConfig))
	if log := second.LogTail(200); strings.Contains(log, " is forbidden") {
		t.Errorf("the second loomguard, with only the audit's RBAC, was refused something:\n%s", log)
	}

	// The first comes back as a follower.
	if err := c.StartLoomguard(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * cluster.AuditInterval)
	if v, err := readAudit(t.Context(), c.LoomguardMetrics); err != nil || v.leader != 0 || v.ran {
		t.Errorf("the restarted first loomguard: %+v, %v; want a follower that does not audit", v, err)
	}
}

// waitForLeader waits until a loomguard reports itself the audit leader.
func waitForLeader(t *testing.T, what string, scrape scrapeFunc) {
	t.Helper()
	eventually(t, what, func(ctx context.Context) error {
		v, err := readAudit(ctx, scrape)
		if err != nil {
			return err
		}
		if v.leader != 1 {
			return errors.New("loomguard_audit_leader is 0")
		}
		return nil
	})
}

// leaseHolder returns the holder of the Lease loomguard-system/loomguard-audit.
func leaseHolder(t *testing.T, s *scenario) string {
	t.Helper()
	lease, err := s.cs.CoordinationV1().Leases(cluster.LoomguardNamespace).Get(t.Context(), "loomguard-audit", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}
