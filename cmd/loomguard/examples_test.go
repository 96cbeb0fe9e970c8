package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleLoomBundle holds the reference Loom deployment to its promise: `check` finds no
// enforce or warn violation (the audit findings are the ones its README explains), and
// `fix` writes every document back unchanged.
func TestExampleLoomBundle(t *testing.T) {
	const dir = "../../manifests/examples/loom"
	res := runCLI(t, "", "check", "-f", dir, "-o", "json")
	if res.code != 0 {
		t.Fatalf("check exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	var out struct {
		Summary struct{ Workloads, Denied int }
		Results []struct {
			Kind, Name string
			Violations []struct{ Policy, Action string }
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Summary.Workloads != 3 {
		t.Errorf("want 3 workloads (loom, temporal, loom-db), got %d", out.Summary.Workloads)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Results {
		for _, v := range r.Violations {
			if v.Action != "audit" {
				t.Errorf("%s %s: %s violation of %s", r.Kind, r.Name, v.Action, v.Policy)
			}
			if !strings.Contains(string(readme), v.Policy) {
				t.Errorf("%s %s: audit finding %s is not explained in the bundle's README", r.Kind, r.Name, v.Policy)
			}
		}
	}

	fix := runCLI(t, "", "fix", "-f", dir)
	if fix.code != 0 {
		t.Fatalf("fix exit %d\n%s", fix.code, fix.stderr)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fix.stdout, string(data)) {
			t.Errorf("fix changed %s", f)
		}
	}
}
