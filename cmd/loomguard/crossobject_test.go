package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCrossObjectGolden: check evaluates the cross-object policies against the
// PodDisruptionBudgets and NetworkPolicies of its input, by namespace (--cross-object).
func TestCrossObjectGolden(t *testing.T) {
	const input = "testdata/input/cross-object.yaml"
	tests := []struct {
		name string
		args []string
		code int
	}{
		// auto: shop ships a NetworkPolicy, so its input is its whole truth; blog ships
		// neither and is not checked.
		{name: "check-cross-object-auto", args: []string{"check", "-f", input}, code: 0},
		// on: blog is checked too.
		{name: "check-cross-object-on", args: []string{"check", "-f", input, "--cross-object", "on"}, code: 0},
		// off: as in admission.
		{name: "check-cross-object-off", args: []string{"check", "-f", input, "--cross-object=off"}, code: 0},
		// Enforced, a cross-object policy fails check (it never can in admission).
		{name: "check-cross-object-enforced", args: []string{"check", "-f", input, "-c", "testdata/config/cross-object-enforce.yaml"}, code: 1},
		{name: "usage-check-cross-object", args: []string{"check", "-f", input, "--cross-object", "always"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, "", tt.args...)
			if res.code != tt.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", res.code, tt.code, res.stderr)
			}
			checkGolden(t, tt.name+".txt", res.stdout)
			checkGolden(t, tt.name+".txt.stderr", res.stderr)
		})
	}
}

// TestCrossObjectInputOrder: check evaluates workloads as it reads them and again, where
// their namespace turns out to have PodDisruptionBudgets or NetworkPolicies, once it has
// read everything. The verdicts must not depend on where those objects come in the input:
// before the workloads, after them, or in other files. Every mode, every workload.
func TestCrossObjectInputOrder(t *testing.T) {
	data, err := os.ReadFile("testdata/input/cross-object.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(strings.TrimPrefix(string(data), "---\n"), "\n---\n")
	if len(docs) < 4 {
		t.Fatalf("%d documents", len(docs))
	}
	dir := t.TempDir()
	write := func(name string, docs []string) string {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	reversed := slices.Clone(docs)
	slices.Reverse(reversed)
	inputs := map[string][]string{
		"as written":                   {"testdata/input/cross-object.yaml"},
		"reversed":                     {write("reversed.yaml", reversed)},
		"one file each, policies last": {filepath.Dir(write("last/0.yaml", docs[:1]))},
		"one file each, policies first": {
			write("first/b.yaml", docs[:len(docs)/2]), write("first/c.yaml", docs[len(docs)/2:]),
			write("first/a.yaml", reversed[:1]),
		},
	}
	for i, d := range docs[1:] {
		write(fmt.Sprintf("last/%d.yaml", i+1), []string{d})
	}
	byMode := map[string]map[string]string{}
	for _, mode := range []string{"auto", "on", "off"} {
		var want map[string]string
		for _, name := range slices.Sorted(maps.Keys(inputs)) {
			args := []string{"check", "-o", "json", "--cross-object", mode}
			for _, f := range inputs[name] {
				args = append(args, "-f", f)
			}
			res := runCLI(t, "", args...)
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("%s, %s: exit %d\n%s", mode, name, res.code, res.stderr)
			}
			got := verdictsByWorkload(t, res.stdout)
			if want == nil {
				want = got
				if len(want) < 3 {
					t.Fatalf("%s: only %d workloads: %v", mode, len(want), want)
				}
				continue
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s, %s:\n got %v\nwant %v", mode, name, got, want)
			}
		}
		byMode[mode] = want
	}
	// auto: shop, whose input holds a NetworkPolicy, is judged as with on (where nothing
	// is evaluated early); blog, which holds neither, as with off.
	differs := false
	for w, auto := range byMode["auto"] {
		ref := byMode["off"][w]
		if strings.Contains(w, " shop/") {
			ref = byMode["on"][w]
			differs = differs || auto != byMode["off"][w]
		}
		if auto != ref {
			t.Errorf("auto, %s: %s, want %s", w, auto, ref)
		}
	}
	if !differs {
		t.Errorf("no workload of shop has a cross-object violation: %v", byMode["auto"])
	}
}

// verdictsByWorkload reads check's JSON report: each workload's decision and violations,
// by kind, namespace and name.
func verdictsByWorkload(t *testing.T, out string) map[string]string {
	t.Helper()
	var rep struct {
		Results []struct {
			Kind, Namespace, Name, Decision string
			Violations                      []struct{ Policy, Action, Field, Message string }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	v := map[string]string{}
	for _, r := range rep.Results {
		v[r.Kind+" "+r.Namespace+"/"+r.Name] = fmt.Sprintf("%s %v", r.Decision, r.Violations)
	}
	return v
}
