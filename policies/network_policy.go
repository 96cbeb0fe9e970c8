package policies

import (
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// network-policy requires some NetworkPolicy of the workload's namespace to select its
// pods (its pod template's labels; a Pod's own labels), so that no Loom pod runs with the
// open, allow-everything network a namespace without policies has (Loom's guide, P2). Which
// flows the policy allows is left to its author: the example bundle's default-deny policies
// show Loom's.
//
// It is a cross-object policy: it needs the NetworkPolicies of the workload's namespace
// (Workload.Related) and reports nothing without them, so it never denies at admission.
// The audit and the CLI fill the view; see Related. The default action is audit. There is
// no fix.
func networkPolicy(_ Settings) Policy {
	return Policy{
		Fields:      []string{"spec.template.metadata.labels", "NetworkPolicy spec.podSelector"},
		CrossObject: true,
		Check: func(w *Workload) field.ErrorList {
			if w.Related == nil || anySelects(w.Related.netpols, w.Template.Labels) {
				return nil
			}
			what := "the pods of " + w.Kind.Kind + " " + strconv.Quote(workloadName(w))
			if w.Kind == kindPod {
				what = "Pod " + strconv.Quote(workloadName(w))
			}
			return field.ErrorList{field.Required(w.TemplatePath.Child("labels"),
				"no NetworkPolicy in namespace "+strconv.Quote(w.Meta.Namespace)+" selects "+what)}
		},
	}
}
