package policies

import (
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Related is a read-only view of the objects around a workload that the cross-object
// policies (pod-disruption-budget, network-policy) check: the PodDisruptionBudgets and
// NetworkPolicies of the workload's namespace. Only their names and compiled selectors are
// kept, so a view of a large namespace stays small.
//
// The engine never fetches it. Whoever builds a Workload decides what it knows:
//
//   - Workload.Related == nil means "unknown": the cross-object policies report nothing.
//     Admission never has the view (the API server sends one object), so these policies
//     never deny or warn there, whatever their action.
//   - a non-nil view is taken as the whole truth for the namespace: an empty one says the
//     namespace has no PodDisruptionBudget and no NetworkPolicy. The background audit and
//     `loomguard audit` fill it from the cluster; `loomguard check` from the input.
//
// Build a view with NewRelated and Add; once it is handed to the engine it must not change.
// A view is safe for concurrent reads and may be shared by every workload of a namespace.
type Related struct {
	pdbs    []namedSelector
	netpols []namedSelector
}

// namedSelector is an object's name and the pods it selects.
type namedSelector struct {
	name     string
	selector labels.Selector
}

// RelatedKinds lists the kinds a Related view is built from.
func RelatedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{
		policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"),
		networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"),
	}
}

// IsRelatedGroupKind reports whether objects of this group and kind belong in a Related view.
func IsRelatedGroupKind(gk schema.GroupKind) bool {
	for _, k := range RelatedKinds() {
		if k.GroupKind() == gk {
			return true
		}
	}
	return false
}

// NewRelated returns an empty view: a namespace known to hold no PodDisruptionBudget and
// no NetworkPolicy.
func NewRelated() *Related { return &Related{} }

// Add adds a PodDisruptionBudget or a NetworkPolicy (pointers to the typed objects) and
// reports whether obj was one of them. The caller keeps the view to one namespace.
func (r *Related) Add(obj runtime.Object) bool {
	switch o := obj.(type) {
	case *policyv1.PodDisruptionBudget:
		// policy/v1: a null selector selects no pods, an empty one every pod.
		r.pdbs = append(r.pdbs, namedSelector{name: o.Name, selector: compileSelector(o.Spec.Selector)})
	case *networkingv1.NetworkPolicy:
		// An empty podSelector selects every pod of the namespace.
		r.netpols = append(r.netpols, namedSelector{name: o.Name, selector: compileSelector(&o.Spec.PodSelector)})
	default:
		return false
	}
	return true
}

// compileSelector turns a label selector into a matcher. A nil selector, and one the API
// server would have refused, select nothing.
func compileSelector(s *metav1.LabelSelector) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return labels.Nothing()
	}
	return sel
}

// PodDisruptionBudgetsSelecting returns the names of the PodDisruptionBudgets whose
// selector matches pods with these labels.
func (r *Related) PodDisruptionBudgetsSelecting(podLabels map[string]string) []string {
	return selecting(r.pdbs, podLabels)
}

// NetworkPoliciesSelecting returns the names of the NetworkPolicies whose podSelector
// matches pods with these labels.
func (r *Related) NetworkPoliciesSelecting(podLabels map[string]string) []string {
	return selecting(r.netpols, podLabels)
}

func selecting(list []namedSelector, podLabels map[string]string) []string {
	var names []string
	for _, s := range list {
		if s.selector.Matches(labels.Set(podLabels)) {
			names = append(names, s.name)
		}
	}
	return names
}

// anySelects reports whether some entry of list selects pods with these labels, without
// allocating.
func anySelects(list []namedSelector, podLabels map[string]string) bool {
	for _, s := range list {
		if s.selector.Matches(labels.Set(podLabels)) {
			return true
		}
	}
	return false
}
