package gatekeeper

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/loomguard/loomguard/policies"
)

// Verdict is loomguard's verdict on one object under the migrated config.
type Verdict struct {
	Kind, Namespace, Name string
	// Exempt is true when the namespace is exempt: nothing was evaluated.
	Exempt bool
	// Violations are loomguard's findings (policies that are off report none).
	Violations []policies.Violation
	// Actions are the policies' actions in the object's namespace.
	Actions map[string]policies.Action
}

// ObjectKey names an object.
type ObjectKey struct{ Kind, Namespace, Name string }

func (k ObjectKey) String() string {
	if k.Namespace == "" {
		return k.Kind + " " + k.Name
	}
	return k.Kind + " " + k.Namespace + "/" + k.Name
}

// OwnerResolver maps an object that Gatekeeper reports (a Pod that a Deployment's
// ReplicaSet created) to the top-level workload loomguard reports it at; ok is false
// when it cannot.
type OwnerResolver func(ObjectKey) (ObjectKey, bool)

// Comparison is where Gatekeeper's audit and loomguard disagree.
type Comparison struct {
	Summary       CompareSummary `json:"summary"`
	Disagreements []Disagreement `json:"disagreements"`
	// Unknown lists what cannot be compared: objects Gatekeeper reports that are not in
	// the input, and Constraints whose status lists only part of their violations.
	Unknown []string `json:"unknown,omitempty"`
}

// CompareSummary counts the comparison.
type CompareSummary struct {
	Objects       int `json:"objects"`
	Constraints   int `json:"constraints"`
	Disagreements int `json:"disagreements"`
}

// Disagreement is one object and policy on which the two engines decide differently.
type Disagreement struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Policy is the loomguard policy ("" for an unmapped Constraint).
	Policy string `json:"policy,omitempty"`
	// Side is "gatekeeper" when only Gatekeeper reports a violation, "loomguard" when
	// only loomguard does.
	Side string `json:"side"`
	// Gatekeeper lists the Constraints that report the object, with their messages.
	Gatekeeper []string `json:"gatekeeper,omitempty"`
	// Loomguard lists loomguard's findings, as users see them.
	Loomguard []string `json:"loomguard,omitempty"`
	// Why lists the known reasons: the Constraints' differences from the report.
	Why []string `json:"why"`
}

// Compare lists the objects where Gatekeeper (the Constraints' status.violations, as its
// audit writes them) and loomguard (verdicts under res.Config) disagree, policy by policy.
// An object Gatekeeper reports that is not among the verdicts is resolved to its top-level
// owner with resolve (nil: not resolved), and listed as unknown when it cannot be.
func Compare(res *Result, verdicts []Verdict, resolve OwnerResolver) *Comparison {
	out := &Comparison{}
	byKey := map[ObjectKey]*Verdict{}
	for i := range verdicts {
		v := &verdicts[i]
		byKey[ObjectKey{v.Kind, v.Namespace, v.Name}] = v
	}
	entries := map[string]*Entry{}
	for i := range res.Report.Constraints {
		e := &res.Report.Constraints[i]
		entries[e.Kind+"/"+e.Name] = e
	}
	type finding struct{ gk, lg []string }
	type cell struct {
		key    ObjectKey
		policy string
	}
	cells := map[cell]*finding{}
	get := func(k ObjectKey, p string) *finding {
		c := cell{k, p}
		if cells[c] == nil {
			cells[c] = &finding{}
		}
		return cells[c]
	}
	partialPolicies := map[string]bool{}
	policyConstraints := map[string][]*Entry{}
	for _, c := range res.Constraints {
		e := entries[c.Kind+"/"+c.Name]
		out.Summary.Constraints++
		if e.Policy != "" {
			policyConstraints[e.Policy] = append(policyConstraints[e.Policy], e)
		}
		if c.TotalViolations > int64(len(c.Violations)) {
			out.Unknown = append(out.Unknown, fmt.Sprintf("%s/%s: its status lists %d of %d violations (Gatekeeper's --constraint-violations-limit); the others cannot be compared",
				c.Kind, c.Name, len(c.Violations), c.TotalViolations))
			if e.Policy != "" {
				partialPolicies[e.Policy] = true
			}
		}
		for _, sv := range c.Violations {
			k := ObjectKey{sv.Kind, sv.Namespace, sv.Name}
			if byKey[k] == nil {
				top, ok := ObjectKey{}, false
				if resolve != nil {
					top, ok = resolve(k)
				}
				if !ok || byKey[top] == nil {
					out.Unknown = append(out.Unknown, fmt.Sprintf("%s/%s reports %s, which is not in the input", c.Kind, c.Name, k))
					continue
				}
				k = top
			}
			msg := fmt.Sprintf("%s/%s (%s): %s", c.Kind, c.Name, cmp.Or(sv.EnforcementAction, c.EnforcementAction, "deny"), sv.Message)
			f := get(k, e.Policy)
			if !slices.Contains(f.gk, msg) {
				f.gk = append(f.gk, msg)
			}
		}
	}
	for _, v := range verdicts {
		k := ObjectKey{v.Kind, v.Namespace, v.Name}
		for _, viol := range v.Violations {
			f := get(k, viol.Policy)
			f.lg = append(f.lg, viol.Message()+" ("+string(viol.Action)+")")
		}
	}
	out.Summary.Objects = len(verdicts)
	for c, f := range cells {
		if (len(f.gk) > 0) == (len(f.lg) > 0) {
			continue
		}
		d := Disagreement{Kind: c.key.Kind, Namespace: c.key.Namespace, Name: c.key.Name, Policy: c.policy, Gatekeeper: f.gk, Loomguard: f.lg}
		v := byKey[c.key]
		switch {
		case len(f.gk) > 0:
			d.Side = "gatekeeper"
			switch {
			case c.policy == "":
				d.Why = append(d.Why, "the Constraint has no loomguard counterpart (unmapped)")
			case v.Exempt:
				d.Why = append(d.Why, fmt.Sprintf("namespace %q is exempt in loomguard", v.Namespace))
			case v.Actions[c.policy] == policies.ActionOff:
				d.Why = append(d.Why, fmt.Sprintf("%s is off in namespace %q", c.policy, v.Namespace))
			}
		default:
			if partialPolicies[c.policy] {
				continue // Gatekeeper's list is truncated: listed under unknown
			}
			d.Side = "loomguard"
			for _, ex := range res.Report.Exemptions {
				if !ex.exempts() && matchesAny([]string{ex.Namespace}, c.key.Namespace) && slices.Contains(ex.Processes, "audit") {
					d.Why = append(d.Why, fmt.Sprintf("Gatekeeper's Config keeps its audit out of namespace %q (processes: audit), so its status never lists objects there; its admission webhook still checks them", c.key.Namespace))
				}
			}
			if len(policyConstraints[c.policy]) == 0 {
				d.Why = append(d.Why, fmt.Sprintf("no Constraint maps to %s: it is on from the Loom profile", c.policy))
			}
			if c.key.Kind != "Pod" {
				for _, e := range policyConstraints[c.policy] {
					if slices.ContainsFunc(e.Notes, func(n string) bool { return strings.Contains(n, "matches Pods") }) {
						d.Why = append(d.Why, fmt.Sprintf("%s/%s matches Pods: Gatekeeper would report the Pods the %s creates, loomguard reports the %s itself", e.Kind, e.Name, c.key.Kind, c.key.Kind))
					}
				}
			}
		}
		for _, e := range policyConstraints[c.policy] {
			for _, l := range e.Lost {
				d.Why = append(d.Why, fmt.Sprintf("a known difference of %s/%s: %s", e.Kind, e.Name, l))
			}
		}
		if len(d.Why) == 0 {
			d.Why = []string{"no known difference explains it: please report it"}
		}
		out.Disagreements = append(out.Disagreements, d)
	}
	slices.SortFunc(out.Disagreements, func(a, b Disagreement) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Policy, b.Policy))
	})
	slices.Sort(out.Unknown)
	out.Summary.Disagreements = len(out.Disagreements)
	return out
}

// WriteText writes the comparison for people.
func (c *Comparison) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s compared: %s\n", plural(c.Summary.Objects, "object", "objects"),
		plural(c.Summary.Constraints, "constraint", "constraints"), plural(c.Summary.Disagreements, "disagreement", "disagreements"))
	for _, d := range c.Disagreements {
		k := ObjectKey{d.Kind, d.Namespace, d.Name}
		policy := cmp.Or(d.Policy, "(no loomguard policy)")
		if d.Side == "gatekeeper" {
			fmt.Fprintf(&b, "\n%s: only Gatekeeper reports a violation; loomguard's %s does not\n", k, policy)
		} else {
			fmt.Fprintf(&b, "\n%s: only loomguard's %s reports a violation; Gatekeeper does not\n", k, policy)
		}
		for _, g := range d.Gatekeeper {
			fmt.Fprintf(&b, "  gatekeeper: %s\n", g)
		}
		for _, l := range d.Loomguard {
			fmt.Fprintf(&b, "  loomguard: %s\n", l)
		}
		for _, y := range d.Why {
			fmt.Fprintf(&b, "  why: %s\n", y)
		}
	}
	if len(c.Unknown) > 0 {
		b.WriteString("\nNot compared:\n")
		for _, u := range c.Unknown {
			fmt.Fprintf(&b, "  %s\n", u)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
