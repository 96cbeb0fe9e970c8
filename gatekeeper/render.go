package gatekeeper

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
)

// ConfigYAML renders a config as the smallest YAML file that policies.LoadConfig reads back
// to the same config: policy parameters equal to the Loom profile's are left out (a file is
// laid over the profile), every policy's action is written. It loads the result back and
// fails when it does not round-trip, so what it returns is always a valid config.
func ConfigYAML(cfg *policies.Config, header string) ([]byte, error) {
	got, err := toMap(cfg)
	if err != nil {
		return nil, err
	}
	def, err := toMap(policies.DefaultConfig())
	if err != nil {
		return nil, err
	}
	// Keys that omitempty drops although they differ from the profile (a zero ratio, an
	// empty list) are written explicitly.
	gotPolicies, _ := got["policies"].(map[string]any)
	defPolicies, _ := def["policies"].(map[string]any)
	full, err := fullPolicies(cfg)
	if err != nil {
		return nil, err
	}
	for id, v := range full {
		section, _ := v.(map[string]any)
		defSection, _ := defPolicies[id].(map[string]any)
		out := map[string]any{}
		for k, val := range section {
			if k == "action" || k == "fix" || !reflect.DeepEqual(val, defSection[k]) {
				out[k] = val
			}
		}
		gotPolicies[id] = out
	}
	if reflect.DeepEqual(got["exemptNamespaces"], def["exemptNamespaces"]) {
		delete(got, "exemptNamespaces")
	}
	body, err := yaml.Marshal(got)
	if err != nil {
		return nil, fmt.Errorf("rendering the config: %w", err)
	}
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		if header != "" {
			b.WriteString("# " + l + "\n")
		}
	}
	b.Write(body)
	back, errs := policies.LoadConfig(b.Bytes())
	if len(errs) > 0 {
		return nil, fmt.Errorf("the migrated config does not load: %w", errs.ToAggregate())
	}
	if !reflect.DeepEqual(normalize(back), normalize(cfg)) {
		a, _ := json.Marshal(normalize(back))
		c, _ := json.Marshal(normalize(cfg))
		return nil, fmt.Errorf("the migrated config does not read back as built (a loomguard bug):\n%s\n%s", a, c)
	}
	return b.Bytes(), nil
}

// fullPolicies renders every policy section with its zero values too, which the struct
// tags' omitempty would drop.
func fullPolicies(cfg *policies.Config) (map[string]any, error) {
	m, err := toMap(cfg.Policies)
	if err != nil {
		return nil, err
	}
	pc := &cfg.Policies
	set := func(id, key string, v any) {
		if s, ok := m[id].(map[string]any); ok {
			if _, present := s[key]; !present {
				s[key] = v
			}
		}
	}
	set("resource-limits", "maxLimitRequestRatio", pc.ResourceLimits.MaxLimitRequestRatio)
	set("required-labels", "labels", emptyIfNil(pc.RequiredLabels.Labels))
	set("image-tag", "forbiddenTags", emptyIfNil(pc.ImageTag.ForbiddenTags))
	set("image-tag", "allowedRegistries", emptyIfNil(pc.ImageTag.AllowedRegistries))
	set("drop-all-capabilities", "allowedAdd", emptyIfNil(pc.DropAllCapabilities.AllowedAdd))
	if pc.RequiredLabels.AllowedValues == nil {
		set("required-labels", "allowedValues", map[string]any{})
	}
	return m, nil
}

func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// normalize makes nil and empty lists and maps compare equal.
func normalize(cfg *policies.Config) map[string]any {
	m, _ := toMap(cfg)
	return prune(m).(map[string]any)
}

func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			val = prune(val)
			if val == nil {
				continue
			}
			out[k] = val
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		if len(x) == 0 {
			return nil
		}
		return x
	}
	return v
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("rendering the config: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("rendering the config: %w", err)
	}
	return m, nil
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d mapped, %d partial, %d unmapped\n", plural(r.Summary.Constraints, "constraint", "constraints"), r.Summary.Mapped, r.Summary.Partial, r.Summary.Unmapped)
	for _, e := range r.Constraints {
		fmt.Fprintf(&b, "\n%s %s/%s (%s)\n", strings.ToUpper(string(e.Status)), e.Kind, e.Name, e.Source)
		if e.Policy != "" {
			fmt.Fprintf(&b, "  -> %s, %s (enforcementAction %s), %s\n", e.Policy, e.Action, e.EnforcementAction, e.Scope)
		}
		for _, s := range e.Settings {
			fmt.Fprintf(&b, "     %s\n", s)
		}
		for _, l := range e.Lost {
			fmt.Fprintf(&b, "  differs: %s\n", l)
		}
		for _, n := range e.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
		if e.Instead != "" {
			fmt.Fprintf(&b, "  instead: %s\n", e.Instead)
		}
	}
	if len(r.Conflicts) > 0 {
		b.WriteString("\nConflicts (resolved to the stricter action):\n")
		for _, c := range r.Conflicts {
			fmt.Fprintf(&b, "  %s in %s: %s -> %s\n", c.Policy, c.Where, strings.Join(c.Constraints, ", "), c.Resolved)
		}
	}
	if len(r.Exemptions) > 0 {
		b.WriteString("\nGatekeeper Config exemptions:\n")
		for _, e := range r.Exemptions {
			fmt.Fprintf(&b, "  %s (processes %s): %s\n", e.Namespace, strings.Join(e.Processes, ", "), e.Note)
		}
	}
	if len(r.Mutators) > 0 {
		b.WriteString("\nMutators:\n")
		for _, m := range r.Mutators {
			fmt.Fprintf(&b, "  %s/%s %s: %s\n", m.Kind, m.Name, m.Location, m.Note)
		}
	}
	if len(r.Consider) > 0 {
		b.WriteString("\nloomguard policies without a Gatekeeper counterpart, left off (worth considering):\n")
		for _, c := range r.Consider {
			fmt.Fprintf(&b, "  %-26s %s\n", c.Policy, c.Description)
		}
	}
	if len(r.Ignored) > 0 {
		fmt.Fprintf(&b, "\nIgnored %s that are not Constraints, Configs or mutators.\n", plural(len(r.Ignored), "object", "objects"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
