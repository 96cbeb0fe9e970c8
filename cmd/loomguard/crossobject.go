package main

import "github.com/loomguard/loomguard/policies"

// modeChoice is a choice flag whose values are modes.
type modeChoice struct{ *choice }

func (modeChoice) Type() string { return "mode" }

// Modes of check's --cross-object flag.
const (
	crossObjectAuto = "auto"
	crossObjectOn   = "on"
	crossObjectOff  = "off"
)

const crossObjectHelp = `Cross-object policies (pod-disruption-budget, network-policy) check a workload
against the PodDisruptionBudgets and NetworkPolicies of its namespace, which admission
never sees. check takes them from the input, under --cross-object:
  auto  (default) in each namespace where the input holds at least one
        PodDisruptionBudget or NetworkPolicy, the input is that namespace's whole
        truth: a workload no PodDisruptionBudget (or NetworkPolicy) of the input
        selects is reported. Namespaces without either are not checked, since their
        budgets and policies may live elsewhere.
  on    every namespace's whole truth is the input (a complete bundle in CI): a
        namespace without any PodDisruptionBudget or NetworkPolicy is reported too.
  off   the cross-object policies report nothing, as in admission.`

// crossObjectView builds, by namespace, the Related views that workloads are evaluated with,
// from the PodDisruptionBudgets and NetworkPolicies of the input (in their own namespace,
// else the one workloads default to). See crossObjectHelp for the modes.
func crossObjectView(docs []parsedDoc, mode string) map[string]*policies.Related {
	if mode == crossObjectOff {
		return nil
	}
	view := map[string]*policies.Related{}
	for _, pd := range docs {
		for _, e := range pd.entries {
			switch {
			case e.related != nil:
				r := view[e.Namespace]
				if r == nil {
					r = policies.NewRelated()
					view[e.Namespace] = r
				}
				r.Add(e.related)
			case e.Workload != nil && mode == crossObjectOn && view[e.Namespace] == nil:
				view[e.Namespace] = policies.NewRelated()
			}
		}
	}
	return view
}
