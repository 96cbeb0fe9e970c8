package gatekeeper

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loomguard/loomguard/policies"
)

// API groups of the objects Migrate reads.
const (
	// ConstraintGroup holds every Constraint kind (constraints.gatekeeper.sh/v1beta1).
	ConstraintGroup = "constraints.gatekeeper.sh"
	// ConfigGroup holds Gatekeeper's Config (config.gatekeeper.sh/v1alpha1).
	ConfigGroup = "config.gatekeeper.sh"
	// MutationGroup holds Assign and AssignMetadata (mutation.gatekeeper.sh).
	MutationGroup = "mutation.gatekeeper.sh"
)

// Object is one input object with where it came from, for reports and errors.
type Object struct {
	// Source names the file (and document) or "cluster".
	Source string
	Obj    *unstructured.Unstructured
}

// Constraint is the part of a Gatekeeper Constraint that a migration reads.
type Constraint struct {
	Source string
	Kind   string
	Name   string
	// Action is the Constraint's spec.enforcementAction carried over: deny → enforce,
	// warn → warn, dryrun → audit (Gatekeeper's default is deny).
	Action policies.Action
	// EnforcementAction is the value as written ("" when unset).
	EnforcementAction string
	Match             Match
	// Parameters is spec.parameters (nil when unset).
	Parameters map[string]any
	// Violations are status.violations, as Gatekeeper's audit writes them.
	Violations []StatusViolation
	// TotalViolations is status.totalViolations (-1 when unset).
	TotalViolations int64
	// lost collects what the Constraint's match and action say that loomguard cannot.
	lost []string
}

// Match is a Constraint's spec.match.
type Match struct {
	// Kinds are the matched kinds across every kinds[] entry; empty means every kind.
	Kinds []string
	// Namespaces and ExcludedNamespaces are names or globs with a leading or trailing "*".
	Namespaces         []string
	ExcludedNamespaces []string
	// LabelSelector and NamespaceSelector are set when the match has them.
	LabelSelector     bool
	NamespaceSelector bool
	// Scope is "*" (or empty), "Namespaced" or "Cluster".
	Scope string
	// Name is spec.match.name (a single object name or glob), when set.
	Name string
}

// StatusViolation is one entry of a Constraint's status.violations.
type StatusViolation struct {
	Kind              string `json:"kind"`
	Namespace         string `json:"namespace,omitempty"`
	Name              string `json:"name"`
	Message           string `json:"message,omitempty"`
	EnforcementAction string `json:"enforcementAction,omitempty"`
}

// podKinds are the kinds whose objects carry a pod spec that loomguard checks.
var podKinds = []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}

// IsConstraint reports whether an object is a Gatekeeper Constraint.
func IsConstraint(u *unstructured.Unstructured) bool {
	return u.GroupVersionKind().Group == ConstraintGroup
}

// parseConstraint reads a Constraint; errors name its fields.
func parseConstraint(o Object) (*Constraint, field.ErrorList) {
	u := o.Obj
	c := &Constraint{Source: o.Source, Kind: u.GetKind(), Name: u.GetName(), TotalViolations: -1}
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"), "a Constraint needs a name"))
	}
	spec := field.NewPath("spec")
	ea, err := nestedString(u.Object, spec.Child("enforcementAction"), "spec", "enforcementAction")
	errs = append(errs, err...)
	c.EnforcementAction = ea
	switch strings.ToLower(ea) {
	case "", "deny":
		c.Action = policies.ActionEnforce
	case "warn":
		c.Action = policies.ActionWarn
	case "dryrun":
		c.Action = policies.ActionAudit
	case "scoped":
		c.Action, c.lost = scopedAction(u.Object)
	default:
		errs = append(errs, field.NotSupported(spec.Child("enforcementAction"), ea, []string{"deny", "warn", "dryrun", "scoped"}))
	}
	m, merrs := parseMatch(u.Object)
	errs = append(errs, merrs...)
	c.Match = m
	if p, ok := u.Object["spec"].(map[string]any)["parameters"]; ok && p != nil {
		pm, ok := p.(map[string]any)
		if !ok {
			errs = append(errs, field.Invalid(spec.Child("parameters"), p, "must be an object"))
		}
		c.Parameters = pm
	}
	vs, verrs := parseStatus(u.Object)
	errs = append(errs, verrs...)
	c.Violations = vs
	if v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "status", "totalViolations"); ok {
		if n, ok := toInt(v, field.NewPath("status", "totalViolations"), &errs); ok {
			c.TotalViolations = n
		}
	}
	return c, errs
}

// scopedAction reads spec.scopedEnforcementActions (enforcementAction: scoped): the action
// at Gatekeeper's validation webhook decides admission; loomguard has one action for both
// admission and audit.
func scopedAction(obj map[string]any) (policies.Action, []string) {
	list, _, _ := unstructured.NestedSlice(obj, "spec", "scopedEnforcementActions")
	best := policies.ActionOff
	audit := false
	for _, item := range list {
		m, _ := item.(map[string]any)
		action, _ := m["action"].(string)
		points, _ := m["enforcementPoints"].([]any)
		for _, p := range points {
			pm, _ := p.(map[string]any)
			name, _ := pm["name"].(string)
			switch name {
			case "validation.gatekeeper.sh", "*":
				best = stricter(best, carryAction(action))
			case "audit.gatekeeper.sh":
				audit = true
			}
		}
	}
	if best == policies.ActionOff && audit {
		return policies.ActionAudit, []string{"enforcementAction scoped: only Gatekeeper's audit acts, which loomguard expresses as action audit (admission records the violation too)"}
	}
	return best, []string{"enforcementAction scoped: loomguard has one action for admission and audit; the action at validation.gatekeeper.sh is carried over"}
}

func carryAction(s string) policies.Action {
	switch strings.ToLower(s) {
	case "deny":
		return policies.ActionEnforce
	case "warn":
		return policies.ActionWarn
	case "dryrun":
		return policies.ActionAudit
	}
	return policies.ActionOff
}

func parseMatch(obj map[string]any) (Match, field.ErrorList) {
	var m Match
	var errs field.ErrorList
	p := field.NewPath("spec", "match")
	raw, ok := obj["spec"].(map[string]any)["match"]
	if !ok || raw == nil {
		return m, nil
	}
	mm, ok := raw.(map[string]any)
	if !ok {
		return m, field.ErrorList{field.Invalid(p, raw, "must be an object")}
	}
	if kinds, ok := mm["kinds"]; ok && kinds != nil {
		list, ok := kinds.([]any)
		if !ok {
			errs = append(errs, field.Invalid(p.Child("kinds"), kinds, "must be a list"))
		}
		all := false
		for i, k := range list {
			km, _ := k.(map[string]any)
			names, err := stringList(km["kinds"], p.Child("kinds").Index(i).Child("kinds"))
			errs = append(errs, err...)
			if len(names) == 0 || slices.Contains(names, "*") {
				all = true
			}
			m.Kinds = append(m.Kinds, names...)
		}
		if all {
			m.Kinds = nil
		}
	}
	var err field.ErrorList
	m.Namespaces, err = stringList(mm["namespaces"], p.Child("namespaces"))
	errs = append(errs, err...)
	m.ExcludedNamespaces, err = stringList(mm["excludedNamespaces"], p.Child("excludedNamespaces"))
	errs = append(errs, err...)
	for i, ns := range append(slices.Clone(m.Namespaces), m.ExcludedNamespaces...) {
		if _, err := path.Match(ns, ""); err != nil || ns == "" {
			errs = append(errs, field.Invalid(p.Child("namespaces").Index(i), ns, "must be a namespace name, optionally with a leading or trailing *"))
		}
	}
	m.LabelSelector = mm["labelSelector"] != nil
	m.NamespaceSelector = mm["namespaceSelector"] != nil
	m.Scope, _ = mm["scope"].(string)
	m.Name, _ = mm["name"].(string)
	return m, errs
}

func parseStatus(obj map[string]any) ([]StatusViolation, field.ErrorList) {
	list, ok, err := unstructured.NestedSlice(obj, "status", "violations")
	if err != nil {
		return nil, field.ErrorList{field.Invalid(field.NewPath("status", "violations"), field.OmitValueType{}, "must be a list")}
	}
	if !ok {
		return nil, nil
	}
	out := make([]StatusViolation, 0, len(list))
	for _, item := range list {
		m, _ := item.(map[string]any)
		v := StatusViolation{}
		v.Kind, _ = m["kind"].(string)
		v.Namespace, _ = m["namespace"].(string)
		v.Name, _ = m["name"].(string)
		v.Message, _ = m["message"].(string)
		v.EnforcementAction, _ = m["enforcementAction"].(string)
		out = append(out, v)
	}
	return out, nil
}

// governsPods reports whether the match selects Pods (or every kind).
func (m *Match) governsPods() bool {
	return len(m.Kinds) == 0 || slices.Contains(m.Kinds, "Pod")
}

// workloadKinds returns the matched kinds that loomguard checks, and the others.
func (m *Match) workloadKinds() (workloads, others []string) {
	for _, k := range m.Kinds {
		if slices.Contains(podKinds, k) {
			workloads = append(workloads, k)
		} else {
			others = append(others, k)
		}
	}
	return workloads, others
}

// matchesNamespace reports whether the match selects a namespace, given as a name or as a
// glob that stands for the namespaces it names. A Gatekeeper pattern's "*" is a prefix or
// suffix wildcard, which path.Match reads the same way.
func (m *Match) matchesNamespace(ns string) bool {
	if len(m.Namespaces) > 0 && !matchesAny(m.Namespaces, ns) {
		return false
	}
	return !matchesAny(m.ExcludedNamespaces, ns)
}

func matchesAny(patterns []string, ns string) bool {
	for _, p := range patterns {
		if p == ns {
			return true
		}
		if ok, _ := path.Match(p, ns); ok {
			return true
		}
	}
	return false
}

// coversScope reports whether m certainly selects every namespace that x selects: it
// excludes nothing x does not exclude, and selects every namespace or at least x's.
func (m *Match) coversScope(x *Match) bool {
	for _, e := range m.ExcludedNamespaces {
		if !slices.Contains(x.ExcludedNamespaces, e) {
			return false
		}
	}
	if len(m.Namespaces) == 0 {
		return true
	}
	if len(x.Namespaces) == 0 {
		return false
	}
	for _, ns := range x.Namespaces {
		if !matchesAny(m.Namespaces, ns) {
			return false
		}
	}
	return true
}

// describeScope says in words which namespaces the match selects.
func (m *Match) describeScope() string {
	switch {
	case len(m.Namespaces) > 0 && len(m.ExcludedNamespaces) > 0:
		return fmt.Sprintf("namespaces %s except %s", strings.Join(m.Namespaces, ", "), strings.Join(m.ExcludedNamespaces, ", "))
	case len(m.Namespaces) > 0:
		return "namespaces " + strings.Join(m.Namespaces, ", ")
	case len(m.ExcludedNamespaces) > 0:
		return "every namespace except " + strings.Join(m.ExcludedNamespaces, ", ")
	}
	return "every namespace"
}

func nestedString(obj map[string]any, p *field.Path, fields ...string) (string, field.ErrorList) {
	s, _, err := unstructured.NestedString(obj, fields...)
	if err != nil {
		return "", field.ErrorList{field.Invalid(p, field.OmitValueType{}, "must be a string")}
	}
	return s, nil
}

// stringList reads a list of strings; nil when absent.
func stringList(v any, p *field.Path) ([]string, field.ErrorList) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, field.ErrorList{field.Invalid(p, v, "must be a list of strings")}
	}
	out := make([]string, 0, len(list))
	var errs field.ErrorList
	for i, item := range list {
		s, ok := item.(string)
		if !ok {
			errs = append(errs, field.Invalid(p.Index(i), item, "must be a string"))
			continue
		}
		out = append(out, s)
	}
	return out, errs
}

// stricter returns the stronger of two actions.
func stricter(a, b policies.Action) policies.Action {
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// weaker returns the weaker of two actions.
func weaker(a, b policies.Action) policies.Action {
	if rank(b) < rank(a) {
		return b
	}
	return a
}

func rank(a policies.Action) int {
	switch a {
	case policies.ActionEnforce:
		return 3
	case policies.ActionWarn:
		return 2
	case policies.ActionAudit:
		return 1
	}
	return 0
}
