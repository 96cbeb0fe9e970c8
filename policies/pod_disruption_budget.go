package policies

import (
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// pod-disruption-budget requires a PodDisruptionBudget selecting the pods of every
// Deployment and StatefulSet whose own label cfg.Label has one of cfg.Values (Loom's
// default: environment=production) and that runs at least cfg.MinReplicas replicas
// (default 2), so that node drains and cluster upgrades never take all of them down at
// once (Loom's guide, P2). With fewer replicas a budget either blocks every drain or
// protects nothing, which is high-availability's business, not this policy's.
//
// It is a cross-object policy: it needs the PodDisruptionBudgets of the workload's
// namespace (Workload.Related) and reports nothing without them, so it never denies at
// admission. The audit and the CLI fill the view; see Related. The default action is
// audit, like high-availability's. There is no fix: a budget is an object of its own,
// whose minAvailable only the owner can choose.
func podDisruptionBudget(cfg PodDisruptionBudgetConfig) Policy {
	values := slices.Clone(cfg.Values)
	return Policy{
		Fields:      []string{"metadata.labels", "spec.replicas", "spec.template.metadata.labels", "PodDisruptionBudget spec.selector"},
		CrossObject: true,
		Check: func(w *Workload) field.ErrorList {
			if w.Related == nil || (w.Kind != kindDeployment && w.Kind != kindStatefulSet) {
				return nil
			}
			v, ok := w.Meta.Labels[cfg.Label]
			if !ok || !slices.Contains(values, v) {
				return nil
			}
			replicas := int32(1)
			if w.Replicas != nil {
				replicas = *w.Replicas
			}
			if replicas < cfg.MinReplicas || anySelects(w.Related.pdbs, w.Template.Labels) {
				return nil
			}
			return field.ErrorList{field.Required(w.TemplatePath.Child("labels"),
				"no PodDisruptionBudget in namespace "+strconv.Quote(w.Meta.Namespace)+" selects the pods of "+
					w.Kind.Kind+" "+strconv.Quote(workloadName(w))+" ("+strconv.Itoa(int(replicas))+" replicas, "+cfg.Label+"="+v+")")}
		},
	}
}

// workloadName is the object's name, else its generateName.
func workloadName(w *Workload) string {
	if w.Meta.Name != "" {
		return w.Meta.Name
	}
	return w.Meta.GenerateName
}

// PodDisruptionBudgetConfig configures pod-disruption-budget.
type PodDisruptionBudgetConfig struct {
	Settings `json:",inline"`
	// Label and Values select the workloads that need a budget.
	Label  string   `json:"label,omitempty"`
	Values []string `json:"values,omitempty"`
	// MinReplicas is the replica count from which such a workload needs a budget: with a
	// single replica, a budget either blocks every drain or protects nothing.
	MinReplicas int32 `json:"minReplicas,omitempty"`
}

// Default selects environment=production workloads with 2 or more replicas.
func (c *PodDisruptionBudgetConfig) Default() {
	c.Label = "environment"
	c.Values = []string{"production"}
	c.MinReplicas = 2
}

// Validate requires a label and minReplicas of at least 1.
func (c *PodDisruptionBudgetConfig) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.MinReplicas < 1 {
		errs = append(errs, field.Invalid(fldPath.Child("minReplicas"), c.MinReplicas, "must be at least 1"))
	}
	return append(errs, validateWorkloadLabel(fldPath, c.Label, c.Values)...)
}
