package policies

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// testPDB is a PodDisruptionBudget in namespace loom with the given selector.
func testPDB(name string, selector *metav1.LabelSelector) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "loom"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: selector},
	}
}

// testNetpol is a NetworkPolicy in namespace loom with the given pod selector.
func testNetpol(name string, selector metav1.LabelSelector) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "loom"},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: selector},
	}
}

// testRelated builds a view from PodDisruptionBudgets and NetworkPolicies.
func testRelated(objs ...runtime.Object) *Related {
	r := NewRelated()
	for _, o := range objs {
		if !r.Add(o) {
			panic("not a related kind")
		}
	}
	return r
}

func matchLabels(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func TestRelatedSelectors(t *testing.T) {
	loom := map[string]string{"app": "loom", "environment": "production"}
	tests := []struct {
		name     string
		objs     []runtime.Object
		pdbs     []string
		netpols  []string
		notAdded runtime.Object
	}{
		{name: "empty view selects nothing"},
		{
			name: "matchLabels",
			objs: []runtime.Object{testPDB("loom", matchLabels("app", "loom")), testPDB("temporal", matchLabels("app", "temporal")),
				testNetpol("loom", *matchLabels("app", "loom")), testNetpol("db", *matchLabels("app", "loom-db"))},
			pdbs: []string{"loom"}, netpols: []string{"loom"},
		},
		{
			name: "empty selectors select every pod, a null PDB selector none",
			objs: []runtime.Object{testPDB("all", &metav1.LabelSelector{}), testPDB("none", nil), testNetpol("deny-all", metav1.LabelSelector{})},
			pdbs: []string{"all"}, netpols: []string{"deny-all"},
		},
		{
			name: "matchExpressions",
			objs: []runtime.Object{
				testPDB("prod", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "environment", Operator: metav1.LabelSelectorOpIn, Values: []string{"production"}}}}),
				testNetpol("not-loom", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"loom"}}}}),
			},
			pdbs: []string{"prod"},
		},
		{
			name: "an invalid selector selects nothing",
			objs: []runtime.Object{testPDB("bad", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Like"}}})},
		},
		{name: "other kinds are not added", notAdded: &corev1.ConfigMap{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRelated(tt.objs...)
			if got := r.PodDisruptionBudgetsSelecting(loom); !slices.Equal(got, tt.pdbs) {
				t.Errorf("PodDisruptionBudgetsSelecting = %v, want %v", got, tt.pdbs)
			}
			if got := r.NetworkPoliciesSelecting(loom); !slices.Equal(got, tt.netpols) {
				t.Errorf("NetworkPoliciesSelecting = %v, want %v", got, tt.netpols)
			}
			if tt.notAdded != nil && r.Add(tt.notAdded) {
				t.Errorf("Add(%T) = true", tt.notAdded)
			}
		})
	}
}

func TestRelatedKinds(t *testing.T) {
	for _, gk := range []schema.GroupKind{{Group: "policy", Kind: "PodDisruptionBudget"}, {Group: "networking.k8s.io", Kind: "NetworkPolicy"}} {
		if !IsRelatedGroupKind(gk) {
			t.Errorf("IsRelatedGroupKind(%s) = false", gk)
		}
	}
	for _, gk := range []schema.GroupKind{{Kind: "Pod"}, {Group: "apps", Kind: "Deployment"}, {Kind: "NetworkPolicy"}} {
		if IsRelatedGroupKind(gk) {
			t.Errorf("IsRelatedGroupKind(%s) = true", gk)
		}
	}
}

// TestCrossObjectPassingPathAllocationFree holds the cross-object policies to the engine's
// budget: checking a covered workload, or one without a view, allocates nothing.
func TestCrossObjectPassingPathAllocationFree(t *testing.T) {
	pc := &DefaultConfig().Policies
	covering := testRelated(testPDB("loom", matchLabels("app", "loom")), testNetpol("loom", *matchLabels("app", "loom")))
	for _, p := range []Policy{podDisruptionBudget(pc.PodDisruptionBudget), networkPolicy(pc.NetworkPolicy)} {
		for _, obj := range []runtime.Object{catalogDeployment(t), catalogPod(t), catalogCronJob(t)} {
			w := catalogWorkload(t, obj)
			for _, related := range []*Related{nil, covering} {
				w.Related = related
				if errs := p.Check(w); len(errs) > 0 {
					t.Fatalf("%s on the base %s: %v", p.ID, w.Kind.Kind, errs)
				}
				if n := testing.AllocsPerRun(100, func() { p.Check(w) }); n != 0 {
					t.Errorf("%s: Check of a covered %s (view %v) allocates %v times", p.ID, w.Kind.Kind, related != nil, n)
				}
			}
		}
	}
}
