package gatekeeper

import (
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// parseConfig reads Gatekeeper's Config (config.gatekeeper.sh): spec.match[] lists
// excludedNamespaces with the processes that skip them ("*", "audit", "webhook", "sync",
// "mutation-webhook"). A namespace that Gatekeeper's validating webhook skips becomes a
// loomguard exempt namespace; loomguard's exemption covers its audit too, so a namespace
// that only Gatekeeper's audit skips stays governed, and the report says so.
func parseConfig(o Object) ([]Exemption, field.ErrorList) {
	list, _, err := unstructured.NestedSlice(o.Obj.Object, "spec", "match")
	p := field.NewPath("spec", "match")
	if err != nil {
		return nil, field.ErrorList{field.Invalid(p, field.OmitValueType{}, "must be a list")}
	}
	var out []Exemption
	var errs field.ErrorList
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			errs = append(errs, field.Invalid(p.Index(i), item, "must be an object"))
			continue
		}
		nss, e1 := stringList(m["excludedNamespaces"], p.Index(i).Child("excludedNamespaces"))
		procs, e2 := stringList(m["processes"], p.Index(i).Child("processes"))
		errs = append(errs, e1...)
		errs = append(errs, e2...)
		webhook := slices.Contains(procs, "*") || slices.Contains(procs, "webhook")
		audit := slices.Contains(procs, "*") || slices.Contains(procs, "audit")
		for _, ns := range nss {
			ex := Exemption{Source: o.Source, Namespace: ns, Processes: procs}
			switch {
			case webhook && !audit:
				ex.Note = "exempt: loomguard's exemption also keeps its audit out, which Gatekeeper's audit still covered"
			case webhook:
				ex.Note = "exempt"
			case audit:
				ex.Note = "not exempt: only Gatekeeper's audit skipped it, and loomguard's exemptions cover admission too"
			default:
				ex.Note = "not exempt: no validating process of Gatekeeper skipped it"
			}
			out = append(out, ex)
		}
	}
	return out, errs
}

// exempts reports whether the exemption carries over to loomguard.
func (e *Exemption) exempts() bool {
	return slices.Contains(e.Processes, "*") || slices.Contains(e.Processes, "webhook")
}
