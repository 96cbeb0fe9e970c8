package audit

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/loomguard/loomguard/policies"
)

// testClock is a fixed instant, so exception expiry never depends on the day tests run.
func testClock() time.Time { return time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC) }

// testEngine compiles a config (empty: the Loom defaults) with clock now.
func testEngine(t testing.TB, config string, now func() time.Time) *policies.Engine {
	t.Helper()
	cfg, errs := policies.LoadConfig([]byte(config))
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs.ToAggregate())
	}
	e, err := policies.NewEngine(cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// baseDeployment is the policies' base Loom Deployment (passes every policy) in ns,
// renamed, with its pods labelled app=name, edited by the functions given.
func baseDeployment(t testing.TB, ns, name string, edits ...func(*appsv1.Deployment)) *appsv1.Deployment {
	t.Helper()
	data, err := os.ReadFile("../policies/testdata/base/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	gvk, err := policies.PeekKind(data)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := policies.NewDecoder().Decode(data, gvk, true)
	if err != nil {
		t.Fatal(err)
	}
	d := obj.(*appsv1.Deployment)
	d.TypeMeta = metav1.TypeMeta{}
	d.Namespace, d.Name, d.UID = ns, name, types.UID("uid-"+ns+"-"+name)
	d.Labels["app"], d.Spec.Template.Labels["app"] = name, name
	d.Spec.Selector.MatchLabels["app"] = name
	for _, e := range edits {
		e(d)
	}
	return d
}

// latest makes a workload violate image-tag (enforced by default).
func latest(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "loom:latest" }

// replicas sets the replica count.
func replicas(n int32) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Replicas = &n }
}

// staging labels the workload and its pods environment=staging (no HA, no budget needed).
func staging(d *appsv1.Deployment) {
	d.Labels["environment"], d.Spec.Template.Labels["environment"] = "staging", "staging"
}

// podOf returns the base Deployment's pod as a Pod named name in ns, controlled by owner
// (nil: a bare Pod).
func podOf(t testing.TB, ns, name string, owner *metav1.OwnerReference) *corev1.Pod {
	d := baseDeployment(t, ns, name)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Labels: d.Spec.Template.Labels}, Spec: d.Spec.Template.Spec}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return p
}

// controller is a controller owner reference.
func controller(apiVersion, kind, name string) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: new(true)}
}

// replicaSetOf returns a ReplicaSet with d's template, controlled by owner (nil: bare).
func replicaSetOf(d *appsv1.Deployment, name string, owner *metav1.OwnerReference) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: name, UID: types.UID("uid-" + d.Namespace + "-" + name), Labels: d.Labels},
		Spec:       appsv1.ReplicaSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template},
	}
	if owner != nil {
		rs.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return rs
}

// cronJobOf returns a CronJob running d's pod.
func cronJobOf(d *appsv1.Deployment, name string) *batchv1.CronJob {
	tmpl := *d.Spec.Template.DeepCopy()
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: name, UID: types.UID("uid-" + d.Namespace + "-" + name), Labels: d.Labels},
		Spec:       batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}},
	}
}

// jobOf returns a Job of the CronJob cj.
func jobOf(cj *batchv1.CronJob, name string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: cj.Namespace, Name: name, UID: types.UID("uid-" + cj.Namespace + "-" + name),
			OwnerReferences: []metav1.OwnerReference{*controller("batch/v1", "CronJob", cj.Name)}},
		Spec: cj.Spec.JobTemplate.Spec,
	}
}

// pdbFor is a PodDisruptionBudget in ns selecting app=app.
func pdbFor(ns, app string) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
	}
}

// netpolFor is a NetworkPolicy in ns selecting app=app ("" selects every pod).
func netpolFor(ns, app string) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "np-" + app}}
	if app != "" {
		np.Spec.PodSelector.MatchLabels = map[string]string{"app": app}
	} else {
		np.Name = "default-deny"
	}
	return np
}

// listCall is one List call the fake API server answered.
type listCall struct {
	kind      string // the list's kind, e.g. DeploymentList
	namespace string
	limit     int64
	cont      string
}

// fakeCluster is controller-runtime's fake client behind a List that pages like the API
// server (limit/continue, remainingItemCount), records its calls and fails on demand.
type fakeCluster struct {
	client.WithWatch
	mu    sync.Mutex
	calls []listCall
	// fail, when set, may fail a List call: the list kind and the 0-based page.
	fail func(kind string, page int) error
}

func newFakeCluster(t testing.TB, objs ...client.Object) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{}
	scheme := Scheme()
	fc.WithWatch = fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			lo := (&client.ListOptions{}).ApplyOptions(opts)
			gvk, err := apiutil.GVKForObject(list, scheme)
			if err != nil {
				return err
			}
			start := 0
			if lo.Continue != "" {
				if start, err = strconv.Atoi(lo.Continue); err != nil {
					return fmt.Errorf("bad continue token %q", lo.Continue)
				}
			}
			fc.mu.Lock()
			fc.calls = append(fc.calls, listCall{kind: gvk.Kind, namespace: lo.Namespace, limit: lo.Limit, cont: lo.Continue})
			fail := fc.fail
			fc.mu.Unlock()
			page := 0
			if lo.Limit > 0 {
				page = start / int(lo.Limit)
			}
			if fail != nil {
				if err := fail(gvk.Kind, page); err != nil {
					return err
				}
			}
			if err := c.List(ctx, list, client.InNamespace(lo.Namespace)); err != nil {
				return err
			}
			items, err := meta.ExtractList(list)
			if err != nil {
				return err
			}
			end := len(items)
			if lo.Limit > 0 && start+int(lo.Limit) < end {
				end = start + int(lo.Limit)
			}
			if err := meta.SetList(list, items[min(start, len(items)):end]); err != nil {
				return err
			}
			list.SetContinue("")
			list.SetRemainingItemCount(nil)
			if end < len(items) {
				rest := int64(len(items) - end)
				list.SetContinue(strconv.Itoa(end))
				list.SetRemainingItemCount(&rest)
			}
			return nil
		},
	}).Build()
	return fc
}

func (fc *fakeCluster) setFail(fail func(kind string, page int) error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.fail = fail
}

func (fc *fakeCluster) listCalls() []listCall {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]listCall(nil), fc.calls...)
}

// objects turns typed objects into client.Objects.
func objects(objs ...runtime.Object) []client.Object {
	out := make([]client.Object, len(objs))
	for i, o := range objs {
		out[i] = o.(client.Object)
	}
	return out
}
