package gatekeeper

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loomguard/loomguard/policies"
)

// mutatorObj is a Gatekeeper mutator and the loomguard fix that does the same, if any.
type mutatorObj struct {
	source, kind, name, location string
	policy                       string // "" when no fix does the same
	note                         string
	// scoped lists the match clauses that limit where the mutator applies.
	scoped []string
	apply  func(*policies.PolicyConfigs)
}

// podSpecPrefix matches the pod spec in an Assign location: of a Pod, of a workload's
// template, or of a CronJob's job template.
var podSpecPrefix = regexp.MustCompile(`^spec\.(?:template\.spec\.|jobTemplate\.spec\.template\.spec\.)?`)

// containerField matches a field of every container: containers[name:*].<field>.
var containerField = regexp.MustCompile(`^(?:containers|initContainers)\[name: *\*\]\.(.+)$`)

// parseMutator reads an Assign (mutation.gatekeeper.sh): spec.location is the field it
// sets and spec.parameters.assign.value the value. It carries over where a loomguard fix
// sets the same field to the same value; AssignMetadata, ModifySet and AssignImage never do.
func parseMutator(o Object) (mutatorObj, field.ErrorList) {
	u := o.Obj
	mu := mutatorObj{source: o.Source, kind: u.GetKind(), name: u.GetName()}
	loc, _, err := unstructured.NestedString(u.Object, "spec", "location")
	if err != nil {
		return mu, field.ErrorList{field.Invalid(field.NewPath("spec", "location"), field.OmitValueType{}, "must be a string")}
	}
	mu.location = loc
	switch mu.kind {
	case "Assign":
	case "AssignMetadata":
		mu.note = "not carried over: loomguard's fixes never invent label or annotation values"
		return mu, nil
	default:
		mu.note = "not carried over: loomguard has no fix that does what a " + mu.kind + " does"
		return mu, nil
	}
	if loc == "" {
		return mu, field.ErrorList{field.Required(field.NewPath("spec", "location"), "the field the Assign sets")}
	}
	value, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "parameters", "assign", "value")
	mu.policy, mu.apply = fixFor(podSpecPrefix.ReplaceAllString(loc, ""), value)
	if mu.policy == "" {
		mu.note = fmt.Sprintf("not carried over: no loomguard fix sets %s to %v", loc, value)
	}
	if m, ok, _ := unstructured.NestedMap(u.Object, "spec", "match"); ok {
		for _, k := range []string{"namespaces", "excludedNamespaces", "labelSelector", "namespaceSelector", "name"} {
			if m[k] != nil {
				mu.scoped = append(mu.scoped, "match."+k)
			}
		}
	}
	return mu, nil
}

// fixFor names the policy whose fix sets a pod-spec field to value, with the fix's
// parameters that reproduce the value.
func fixFor(loc string, value any) (string, func(*policies.PolicyConfigs)) {
	if m := containerField.FindStringSubmatch(loc); m != nil {
		switch m[1] {
		case "securityContext.allowPrivilegeEscalation":
			if value == false {
				return "no-privilege-escalation", nil
			}
		case "securityContext.readOnlyRootFilesystem":
			if value == true {
				return "read-only-root-filesystem", nil
			}
		case "securityContext.capabilities.drop":
			if l, ok := value.([]any); ok && slices.ContainsFunc(l, func(v any) bool { s, _ := v.(string); return strings.EqualFold(s, "ALL") }) {
				return "drop-all-capabilities", nil
			}
		case "resources.requests.cpu", "resources.requests.memory", "resources.limits.cpu", "resources.limits.memory":
			s, ok := value.(string)
			if !ok {
				return "", nil
			}
			which, res, _ := strings.Cut(strings.TrimPrefix(m[1], "resources."), ".")
			return "resource-limits", func(pc *policies.PolicyConfigs) {
				d := &pc.ResourceLimits.Defaults.Requests
				if which == "limits" {
					d = &pc.ResourceLimits.Defaults.Limits
				}
				if res == "cpu" {
					d.CPU = s
				} else {
					d.Memory = s
				}
			}
		}
		return "", nil
	}
	var n int64
	isInt := false
	switch v := value.(type) {
	case int64:
		n, isInt = v, true
	case float64: // decoded from JSON
		n, isInt = int64(v), v == float64(int64(v))
	}
	switch loc {
	case "securityContext.seccompProfile.type":
		if value == "RuntimeDefault" {
			return "seccomp-profile", nil
		}
	case "securityContext.runAsNonRoot":
		if value == true {
			return "run-as-non-root", nil
		}
	case "securityContext.runAsUser":
		if isInt && n > 0 {
			return "run-as-non-root", func(pc *policies.PolicyConfigs) { pc.RunAsNonRoot.RunAsUser = n }
		}
	case "securityContext.runAsGroup":
		if isInt && n > 0 {
			return "run-as-non-root", func(pc *policies.PolicyConfigs) { pc.RunAsNonRoot.RunAsGroup = n }
		}
	case "securityContext.fsGroup":
		if isInt && n > 0 {
			return "run-as-non-root", func(pc *policies.PolicyConfigs) { pc.RunAsNonRoot.FSGroup = n }
		}
	}
	return "", nil
}
