package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/loomguard/loomguard/internal/testsummary"
	"github.com/loomguard/loomguard/policies"
)

const (
	// probeWebhook is the webhook TestMatchConditionsSoundOnAPIServer registers with
	// loomguard's generated matchConditions and an address nothing listens on: the API
	// server either skips it (the conditions clear the object) or fails calling it.
	probeWebhook = "probe.match-conditions.loomguard.io"
	// probeNamespace is where the test's dry-run requests go: a namespace loomguard's own
	// webhooks never see (namespaceSelector), so that the probe is the only webhook there
	// and the object it judges is the one the API server stores.
	probeNamespace = "kube-public"
	// neutralNamespace is the namespace the engine judges the cleared objects in: one that
	// no test config names.
	neutralNamespace = "e2e-neutral"
)

// TestMatchConditionsSoundOnAPIServer proves on the real API server what
// policies.TestMatchConditionsSound proves with its code: whenever the generated
// matchConditions make kube-apiserver skip loomguard's webhooks, loomguard would have
// allowed the object with no violation of any action and no fix (and, for the mutating
// webhook's conditions, made no fix). For each test config and each webhook it registers a
// probe webhook carrying those conditions, at a dead address with failurePolicy Fail, and
// dry-run creates every fixture object of the project, a Pod with a quantity of 450,000
// digits (longQuantityPod) and Pods beyond the conditions' limits: a request that fails
// calling the probe was sent; one that succeeds was cleared, and the engine then judges the object the API server returned (defaulted,
// as the conditions saw it). A condition that failed to evaluate would fail the request
// with another error, which fails the test.
func TestMatchConditionsSoundOnAPIServer(t *testing.T) {
	s := newScenario(t, "e2e-match-conditions")
	dyn, err := dynamic.NewForConfig(s.c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, f := range parityFiles(t, s.c.RepoRoot()) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range splitDocs(data) {
			if u, ok := workloadObject(doc); ok {
				objs = append(objs, u)
			}
		}
	}
	objs = append(objs, costlyObjects(t)...)
	objs = append(objs, longQuantityPod(t))
	if len(objs) < 150 {
		t.Fatalf("read only %d workload objects", len(objs))
	}
	configs := map[string]string{
		"loom-profile": "",
		"restricted":   "policies:\n  pod-security: {level: restricted}\n  image-tag: {allowedRegistries: [ghcr.io]}\n",
	}
	var summary []string
	for _, name := range []string{"loom-profile", "restricted"} {
		cfg, errs := policies.LoadConfig([]byte(configs[name]))
		if len(errs) > 0 {
			t.Fatal(errs.ToAggregate())
		}
		engine, err := policies.NewEngine(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The validating webhook's conditions, then the mutating one's (Policy.NoFix): cleared
		// by the latter means no fix, whatever the verdict.
		for _, hook := range []struct {
			name      string
			conds     []policies.MatchCondition
			fixesOnly bool
		}{{"validating", policies.MatchConditions(cfg), false}, {"mutating", policies.MutatingMatchConditions(cfg), true}} {
			if hook.conds == nil {
				t.Fatalf("%s: no matchConditions for the %s webhook", name, hook.name)
			}
			registerProbe(t, s, hook.conds)
			var sent, cleared, refused int
			for _, o := range objs {
				switch out := probeCreate(t, dyn, o); {
				case out.refused:
					refused++
				case out.sent:
					sent++
				case strings.HasPrefix(o.GetName(), "costly-"):
					t.Errorf("%s, %s: Pod %s is beyond the conditions' limits, yet cleared", name, hook.name, o.GetName())
				default:
					cleared++
					if why := engineWouldAct(engine, out.stored, hook.fixesOnly); why != "" {
						t.Errorf("%s: %s %s is cleared by the %s webhook's matchConditions, yet loomguard would act on it: %s", name, o.GetKind(), o.GetName(), hook.name, why)
					}
				}
			}
			t.Logf("%s, %s webhook: %d objects: %d cleared (the API server skips loomguard), %d sent, %d refused by the API server itself", name, hook.name, len(objs), cleared, sent, refused)
			if cleared == 0 || sent == 0 {
				t.Errorf("%s, %s: %d cleared, %d sent: the comparison proves nothing", name, hook.name, cleared, sent)
			}
			summary = append(summary, fmt.Sprintf("%s %s %d cleared, %d sent, %d refused", name, hook.name, cleared, sent, refused))
			deleteProbe(t, s)
		}
	}
	testsummary.Record(t, "matchConditions on the API server: %s; every cleared object passes and needs no fix", strings.Join(summary, "; "))
}

// costlyObjects are Pods at the conditions' limits and far beyond them: the API server
// must send them (the conditions stay within their CEL cost budget, never failing).
func costlyObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	pod := func(name string, containers, env int) *unstructured.Unstructured {
		var cs []any
		for i := range containers {
			var es []any
			for j := range env {
				es = append(es, map[string]any{"name": fmt.Sprintf("V%d", j), "value": strings.Repeat("x", 1000)})
			}
			cs = append(cs, map[string]any{"name": fmt.Sprintf("c%d", i), "image": "ghcr.io/loom/loom:1.0", "env": es})
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": name, "labels": map[string]any{"app": "x", "version": "1", "environment": "staging"}},
			"spec":     map[string]any{"containers": cs},
		}}
	}
	return []*unstructured.Unstructured{pod("costly-16x64", 16, 64), pod("costly-100x20", 100, 20)}
}

// longQuantityPod is a Pod that passes every policy of the test configs but for a memory
// limit of 450,000 digits, which its canonical form keeps: a regular expression over it
// would cost the API server's CEL more than its per-call budget. The validating webhook's
// conditions must send it without failing to evaluate.
func longQuantityPod(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	pod := map[string]any{}
	doc := `{"apiVersion": "v1", "kind": "Pod",
		"metadata": {"name": "long-quantity", "labels": {"app": "loom", "version": "0.9.3", "environment": "production"}},
		"spec": {"automountServiceAccountToken": false, "restartPolicy": "Always",
			"securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
			"containers": [{"name": "loom", "image": "ghcr.io/jordanhubbard/loom:0.9.3", "ports": [{"name": "http", "containerPort": 8081}],
				"resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "` + strings.Repeat("123456789", 50_000) + `"}},
				"securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
				"livenessProbe": {"httpGet": {"path": "/health/live", "port": "http"}}, "readinessProbe": {"httpGet": {"path": "/health/ready", "port": "http"}},
				"volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}],
			"volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]}}`
	if err := json.Unmarshal([]byte(doc), &pod); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: pod}
}

// registerProbe registers the probe webhook with conds, for probeNamespace only, and waits
// until the API server calls it.
func registerProbe(t *testing.T, s *scenario, conds []policies.MatchCondition) {
	t.Helper()
	fail, none, equivalent := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Equivalent
	url, timeout := "https://127.0.0.1:1/probe", int32(2)
	hook := admissionregistrationv1.MutatingWebhook{
		Name:                    probeWebhook,
		AdmissionReviewVersions: []string{"v1"},
		SideEffects:             &none,
		FailurePolicy:           &fail,
		MatchPolicy:             &equivalent,
		TimeoutSeconds:          &timeout,
		ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
			"kubernetes.io/metadata.name": probeNamespace,
		}},
		Rules: []admissionregistrationv1.RuleWithOperations{
			{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}},
			{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}}},
			{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"batch"}, APIVersions: []string{"v1"}, Resources: []string{"jobs", "cronjobs"}}},
		},
	}
	for _, c := range conds {
		hook.MatchConditions = append(hook.MatchConditions, admissionregistrationv1.MatchCondition{Name: c.Name, Expression: c.Expression})
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		// Mutating webhook configurations are called in name order: the probe comes first.
		ObjectMeta: metav1.ObjectMeta{Name: "0-loomguard-match-conditions-probe"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{hook},
	}
	api := s.cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := api.Create(t.Context(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatalf("registering the probe webhook: %v", err)
	}
	t.Cleanup(func() { deleteProbe(t, s) })
	// The API server picks the configuration up within a second or so: wait until a Pod
	// that no condition clears (no labels) is sent to the probe.
	eventually(t, "the API server calls the probe webhook", func(ctx context.Context) error {
		_, err := s.cs.CoreV1().ConfigMaps(probeNamespace).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "probe-ready"}, "spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "x:1"}}}}}
		dyn, _ := dynamic.NewForConfig(s.c.RESTConfig())
		_, err = dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace(probeNamespace).Create(ctx, u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil || !strings.Contains(err.Error(), probeWebhook) {
			return fmt.Errorf("not called yet (%v)", err)
		}
		return nil
	})
}

func deleteProbe(t *testing.T, s *scenario) {
	err := s.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), "0-loomguard-match-conditions-probe", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting the probe webhook: %v", err)
	}
}

// probeOutcome is what the API server did with one dry-run create.
type probeOutcome struct {
	sent    bool // the probe was called (and failed, closed)
	refused bool // the API server itself refused the object (422)
	stored  *unstructured.Unstructured
}

// probeCreate dry-run creates obj in probeNamespace. A request that fails for another
// reason is tried again; one that keeps failing fails the test, and so does any error about
// the probe other than the failed call (a matchCondition that did not evaluate).
func probeCreate(t *testing.T, dyn dynamic.Interface, obj *unstructured.Unstructured) probeOutcome {
	t.Helper()
	o := obj.DeepCopy()
	o.SetNamespace(probeNamespace)
	o.SetResourceVersion("")
	if o.GetKind() == "Pod" {
		// The ServiceAccount admission plugin refuses a Pod whose service account does not
		// exist in the namespace; no policy reads the name.
		unstructured.RemoveNestedField(o.Object, "spec", "serviceAccountName")
		unstructured.RemoveNestedField(o.Object, "spec", "serviceAccount")
	}
	gvk := o.GroupVersionKind()
	gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: workloadResources[gvk.Kind]}
	var last error
	for try := range 5 {
		if try > 0 {
			time.Sleep(time.Second)
		}
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		stored, err := dyn.Resource(gvr).Namespace(probeNamespace).Create(ctx, o.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		cancel()
		switch {
		case err == nil:
			return probeOutcome{stored: stored}
		case strings.Contains(err.Error(), `failed calling webhook "`+probeWebhook+`"`):
			return probeOutcome{sent: true}
		case strings.Contains(err.Error(), probeWebhook):
			t.Fatalf("%s %s: the probe's matchConditions failed: %v", gvk.Kind, o.GetName(), err)
		case apierrors.IsInvalid(err):
			return probeOutcome{refused: true}
		}
		last = err
	}
	t.Fatalf("%s %s: dry-run create keeps failing: %v", gvk.Kind, o.GetName(), last)
	return probeOutcome{}
}

// engineWouldAct returns what loomguard would do to the stored object in an ordinary
// namespace — its violations of any action, its waivers, its fixes — or "".
func engineWouldAct(e *policies.Engine, stored *unstructured.Unstructured, fixesOnly bool) string {
	js, err := json.Marshal(stored.Object)
	if err != nil {
		return err.Error()
	}
	obj, err := policies.NewDecoder().Decode(js, stored.GroupVersionKind(), false)
	if err != nil {
		return "undecodable: " + err.Error()
	}
	w, ok := policies.NewWorkload(obj)
	if !ok {
		return "not a workload"
	}
	var acts []string
	if !fixesOnly {
		r := e.Evaluate(w, neutralNamespace)
		for _, v := range r.Violations {
			acts = append(acts, v.Message())
		}
		for _, wv := range r.Waivers {
			acts = append(acts, "waiver "+wv.Exception)
		}
	}
	if fixed := e.Mutate(w, neutralNamespace); len(fixed) > 0 {
		acts = append(acts, "fixes "+strings.Join(fixed, ", "))
	}
	return strings.Join(acts, "; ")
}
