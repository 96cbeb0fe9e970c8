package cluster

import (
	"slices"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWebhookConfigurationsManifest pins what manifests/base/webhook-configurations.yaml
// promises: the e2e harness registers this very file, with only clientConfig rewritten.
func TestWebhookConfigurationsManifest(t *testing.T) {
	root, err := findRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := readWebhookConfigurations(root + "/" + webhookConfigurationsFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfgs.mutating.Name != "loomguard" || cfgs.validating.Name != "loomguard" {
		t.Errorf("names: mutating %q, validating %q, want loomguard", cfgs.mutating.Name, cfgs.validating.Name)
	}
	if len(cfgs.mutating.Webhooks) != 1 || len(cfgs.validating.Webhooks) != 1 {
		t.Fatalf("want one webhook in each configuration, got %d and %d", len(cfgs.mutating.Webhooks), len(cfgs.validating.Webhooks))
	}
	m, v := cfgs.mutating.Webhooks[0], cfgs.validating.Webhooks[0]
	if m.ReinvocationPolicy == nil || *m.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
		t.Errorf("mutating webhook: reinvocationPolicy %v, want IfNeeded", m.ReinvocationPolicy)
	}
	for _, w := range []struct {
		webhook
		wantName, wantPath string
		wantFailure        admissionregistrationv1.FailurePolicyType
	}{
		{webhook{m.Name, m.FailurePolicy, m.ClientConfig, m.SideEffects, m.AdmissionReviewVersions, m.TimeoutSeconds, m.MatchPolicy, m.NamespaceSelector, m.Rules},
			mutatingWebhook, "/mutate", admissionregistrationv1.Ignore},
		{webhook{v.Name, v.FailurePolicy, v.ClientConfig, v.SideEffects, v.AdmissionReviewVersions, v.TimeoutSeconds, v.MatchPolicy, v.NamespaceSelector, v.Rules},
			validatingWebhook, "/validate", admissionregistrationv1.Fail},
	} {
		name := w.name
		if name != w.wantName {
			t.Errorf("webhook name %q, want %q", name, w.wantName)
		}
		if w.failurePolicy == nil || *w.failurePolicy != w.wantFailure {
			t.Errorf("%s: failurePolicy %v, want %s", name, w.failurePolicy, w.wantFailure)
		}
		cc := w.clientConfig
		if s := cc.Service; s == nil || s.Namespace != LoomguardNamespace || s.Name != "loomguard" || s.Port == nil || *s.Port != 443 ||
			s.Path == nil || *s.Path != w.wantPath || cc.URL != nil {
			t.Errorf("%s: clientConfig %+v, want service loomguard-system/loomguard:443%s", name, cc, w.wantPath)
		}
		if w.sideEffects == nil || *w.sideEffects != admissionregistrationv1.SideEffectClassNone {
			t.Errorf("%s: sideEffects %v, want None", name, w.sideEffects)
		}
		if !slices.Equal(w.versions, []string{"v1"}) {
			t.Errorf("%s: admissionReviewVersions %v, want [v1]", name, w.versions)
		}
		if w.timeout == nil || *w.timeout != 3 {
			t.Errorf("%s: timeoutSeconds %v, want 3", name, w.timeout)
		}
		if w.matchPolicy == nil || *w.matchPolicy != admissionregistrationv1.Equivalent {
			t.Errorf("%s: matchPolicy %v, want Equivalent", name, w.matchPolicy)
		}
		wantNS := metav1.LabelSelectorRequirement{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn,
			Values: []string{"kube-system", "kube-public", "kube-node-lease", LoomguardNamespace},
		}
		if ns := w.namespaceSelector; ns == nil || len(ns.MatchLabels) > 0 || len(ns.MatchExpressions) != 1 ||
			ns.MatchExpressions[0].Key != wantNS.Key || ns.MatchExpressions[0].Operator != wantNS.Operator ||
			!slices.Equal(ns.MatchExpressions[0].Values, wantNS.Values) {
			t.Errorf("%s: namespaceSelector %+v, want exactly %+v", name, ns, wantNS)
		}
		wantRules := map[string][]string{"": {"pods", "pods/ephemeralcontainers"}, "apps": {"deployments", "statefulsets", "daemonsets", "replicasets"}, "batch": {"jobs", "cronjobs"}}
		gotRules := map[string][]string{}
		for _, r := range w.rules {
			// pods/ephemeralcontainers (kubectl debug) is only ever updated.
			wantOps := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
			if slices.Equal(r.Resources, []string{"pods/ephemeralcontainers"}) {
				wantOps = []admissionregistrationv1.OperationType{admissionregistrationv1.Update}
			}
			if !slices.Equal(r.Operations, wantOps) {
				t.Errorf("%s: rule %+v: operations must be exactly %v", name, r, wantOps)
			}
			if r.Scope == nil || *r.Scope != admissionregistrationv1.NamespacedScope {
				t.Errorf("%s: rule %+v: scope must be Namespaced", name, r)
			}
			if !slices.Equal(r.APIVersions, []string{"v1"}) || len(r.APIGroups) != 1 {
				t.Errorf("%s: rule %+v: want one API group at v1", name, r)
				continue
			}
			gotRules[r.APIGroups[0]] = append(gotRules[r.APIGroups[0]], r.Resources...)
		}
		if len(gotRules) != len(wantRules) {
			t.Errorf("%s: rules cover groups %v, want exactly \"\", apps and batch", name, gotRules)
		}
		for g, res := range wantRules {
			if !slices.Equal(gotRules[g], res) {
				t.Errorf("%s: group %q resources %v, want %v", name, g, gotRules[g], res)
			}
		}
	}
}

// webhook is what a mutating and a validating webhook have in common.
type webhook struct {
	name              string
	failurePolicy     *admissionregistrationv1.FailurePolicyType
	clientConfig      admissionregistrationv1.WebhookClientConfig
	sideEffects       *admissionregistrationv1.SideEffectClass
	versions          []string
	timeout           *int32
	matchPolicy       *admissionregistrationv1.MatchPolicyType
	namespaceSelector *metav1.LabelSelector
	rules             []admissionregistrationv1.RuleWithOperations
}
