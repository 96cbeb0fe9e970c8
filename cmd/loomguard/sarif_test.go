package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"

	"github.com/loomguard/loomguard/internal/report"
	"github.com/loomguard/loomguard/policies"
)

// TestSARIFStructure checks the properties that SARIF 2.1.0 requires, and that code
// scanning relies on, without fetching the schema: the required properties are read from
// the raw JSON (a struct would hide a missing one), the rest from loomguard's own types.
func TestSARIFStructure(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		successful bool
	}{
		{"violations", []string{"-f", "testdata/input/mixed.yaml", "-f", "testdata/input/list.yaml"}, true},
		{"config", []string{"-f", "testdata/input/mixed.yaml", "--config", "testdata/config/warn.yaml"}, true},
		{"compliant", []string{"-f", "testdata/input/compliant.yaml"}, true},
		{"input errors", []string{"-f", "testdata/bad"}, false},
	}
	levels := []string{"none", "note", "warning", "error"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, "", append([]string{"check", "-o", "sarif"}, tt.args...)...)
			var raw map[string]any
			if err := json.Unmarshal([]byte(res.stdout), &raw); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, res.stdout)
			}
			for _, key := range []string{"$schema", "version", "runs"} {
				if _, ok := raw[key]; !ok {
					t.Errorf("report.SARIFLog lacks %q", key)
				}
			}
			runs, _ := raw["runs"].([]any)
			if len(runs) != 1 {
				t.Fatalf("%d runs, want 1", len(runs))
			}
			run0, _ := runs[0].(map[string]any)
			driver, _ := dig(run0, "tool", "driver").(map[string]any)
			if driver == nil || driver["name"] != "loomguard" {
				t.Errorf("run.tool.driver.name = %v, want loomguard", driver["name"])
			}
			if _, ok := run0["results"].([]any); !ok {
				t.Errorf("run.results is missing or not an array (must be [] without violations)")
			}

			var log report.SARIFLog
			if err := json.Unmarshal([]byte(res.stdout), &log); err != nil {
				t.Fatal(err)
			}
			if log.Schema != "https://json.schemastore.org/sarif-2.1.0.json" || log.Version != "2.1.0" {
				t.Errorf("$schema %q, version %q", log.Schema, log.Version)
			}
			run := log.Runs[0]
			d := run.Tool.Driver
			if d.Version == "" || d.InformationURI == "" {
				t.Errorf("driver version %q, informationUri %q", d.Version, d.InformationURI)
			}
			e, err := policies.NewEngine(policies.DefaultConfig(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Rules) != len(e.Policies()) {
				t.Errorf("%d rules, want one per policy (%d)", len(d.Rules), len(e.Policies()))
			}
			ids := map[string]bool{}
			for i, r := range d.Rules {
				if r.ID != e.Policies()[i].ID {
					t.Errorf("rule %d is %q, want %q (catalog order)", i, r.ID, e.Policies()[i].ID)
				}
				if ids[r.ID] {
					t.Errorf("duplicate rule %q", r.ID)
				}
				ids[r.ID] = true
				if r.ShortDescription.Text == "" {
					t.Errorf("rule %q has no shortDescription.text", r.ID)
				}
				if !slices.Contains(levels, r.DefaultConfiguration.Level) {
					t.Errorf("rule %q level %q", r.ID, r.DefaultConfiguration.Level)
				}
			}
			fqn := regexp.MustCompile(`^[a-z0-9-]+/[A-Za-z]+/[a-z0-9.-]+$`)
			for i, r := range run.Results {
				if !ids[r.RuleID] || r.RuleIndex < 0 || r.RuleIndex >= len(d.Rules) || d.Rules[r.RuleIndex].ID != r.RuleID {
					t.Errorf("result %d: ruleId %q, ruleIndex %d do not name a rule", i, r.RuleID, r.RuleIndex)
				}
				if !slices.Contains(levels[1:], r.Level) {
					t.Errorf("result %d: level %q", i, r.Level)
				}
				if r.Message.Text == "" {
					t.Errorf("result %d: empty message.text", i)
				}
				if len(r.Locations) != 1 {
					t.Fatalf("result %d: %d locations, want 1", i, len(r.Locations))
				}
				loc := r.Locations[0]
				if loc.PhysicalLocation.ArtifactLocation.URI == "" || loc.PhysicalLocation.Region == nil || loc.PhysicalLocation.Region.StartLine < 1 {
					t.Errorf("result %d: physicalLocation %+v", i, loc.PhysicalLocation)
				}
				if len(loc.LogicalLocations) != 2 || !fqn.MatchString(loc.LogicalLocations[0].FullyQualifiedName) {
					t.Errorf("result %d: logicalLocations %+v, want namespace/Kind/name and the field", i, loc.LogicalLocations)
				}
			}
			if len(run.Invocations) != 1 || run.Invocations[0].ExecutionSuccessful != tt.successful {
				t.Errorf("invocations %+v, want one with executionSuccessful %v", run.Invocations, tt.successful)
			}
			for _, n := range run.Invocations[0].ToolExecutionNotifications {
				if n.Message.Text == "" || n.Level != "error" {
					t.Errorf("notification %+v", n)
				}
			}

			// One result per violation of the JSON report.
			js := runCLI(t, "", append([]string{"check", "-o", "json"}, tt.args...)...)
			var rep report.JSONReport
			if err := json.Unmarshal([]byte(js.stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if len(run.Results) != rep.Summary.Violations {
				t.Errorf("%d results, want %d (one per violation)", len(run.Results), rep.Summary.Violations)
			}
		})
	}
}

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}
