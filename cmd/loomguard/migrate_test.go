package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
)

const (
	gkConstraints = "testdata/gatekeeper/constraints"
	gkCorpus      = "testdata/gatekeeper/corpus.yaml"
)

// expectedVerdict is one entry of testdata/gatekeeper/expected.yaml.
type expectedVerdict struct {
	Object     string `json:"object"`
	Gatekeeper string `json:"gatekeeper"`
	Why        string `json:"why"`
	Loomguard  string `json:"loomguard"`
	Differs    string `json:"differs"`
}

// TestMigrateGatekeeperVerdicts is the end-to-end migration: the sample Constraints (every
// supported kind, deny, warn and dryrun, namespaces, excludedNamespaces, a Gatekeeper
// Config and an Assign) are migrated, and `loomguard check` with the migrated config gives
// each object of the corpus the verdict the Constraints define (expected.yaml, written from
// the Constraints' documented meaning). Where loomguard knowingly decides otherwise, the
// expected file says so and the migration report must name that difference.
func TestMigrateGatekeeperVerdicts(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "loomguard.yaml")
	mig := runCLI(t, "", "migrate", "gatekeeper", "-f", gkConstraints, "--config-out", cfgPath)
	if mig.code != exitOK {
		t.Fatalf("migrate exit %d, stderr:\n%s", mig.code, mig.stderr)
	}
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, errs := policies.LoadConfig(data); len(errs) > 0 {
		t.Fatalf("the migrated config does not load: %v", errs)
	}

	chk := runCLI(t, "", "check", "--config", cfgPath, "-f", gkCorpus, "-o", "json")
	if chk.code != exitViolations || chk.stderr != "" {
		t.Fatalf("check exit %d (want 1), stderr:\n%s", chk.code, chk.stderr)
	}
	var out struct {
		Results []struct {
			Kind, Namespace, Name string
			Violations            []struct{ Policy, Action, Message string }
		}
	}
	if err := json.Unmarshal([]byte(chk.stdout), &out); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/gatekeeper/expected.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var expected []expectedVerdict
	if err := yaml.UnmarshalStrict(raw, &expected); err != nil {
		t.Fatal(err)
	}
	want := map[string]expectedVerdict{}
	for _, e := range expected {
		want[e.Object] = e
	}
	seen := map[string]bool{}
	for _, r := range out.Results {
		obj := r.Kind + " " + r.Namespace + "/" + r.Name
		seen[obj] = true
		e, ok := want[obj]
		if !ok {
			t.Errorf("%s: no expected verdict", obj)
			continue
		}
		got := "allowed"
		for _, v := range r.Violations {
			got = strongerVerdict(got, v.Action)
		}
		w := e.Gatekeeper
		if e.Loomguard != "" {
			w = e.Loomguard
			if !strings.Contains(mig.stdout, e.Differs) {
				t.Errorf("%s: loomguard decides %s where Gatekeeper decides %s, and the report does not say %q", obj, w, e.Gatekeeper, e.Differs)
			}
		}
		if got != w {
			t.Errorf("%s: %s, want %s (%s); violations: %+v", obj, got, w, e.Why, r.Violations)
		}
	}
	for _, e := range expected {
		if !seen[e.Object] {
			t.Errorf("%s: not in check's results", e.Object)
		}
	}
}

// strongerVerdict folds one violation's action into a verdict.
func strongerVerdict(verdict, action string) string {
	order := map[string]int{"allowed": 0, "audited": 1, "warned": 2, "denied": 3}
	v := map[string]string{"enforce": "denied", "warn": "warned", "audit": "audited"}[action]
	if order[v] > order[verdict] {
		return v
	}
	return verdict
}

// TestMigrateGatekeeperGolden pins the config and report of the sample Constraints.
func TestMigrateGatekeeperGolden(t *testing.T) {
	res := runCLI(t, "", "migrate", "gatekeeper", "-f", gkConstraints)
	if res.code != exitOK {
		t.Fatalf("exit %d:\n%s", res.code, res.stderr)
	}
	checkGolden(t, "migrate-gatekeeper.yaml", res.stdout)
	checkGolden(t, "migrate-gatekeeper.txt.stderr", res.stderr)

	res = runCLI(t, "", "migrate", "gatekeeper", "-f", gkConstraints, "--with-loom-profile")
	if res.code != exitOK {
		t.Fatalf("exit %d:\n%s", res.code, res.stderr)
	}
	checkGolden(t, "migrate-gatekeeper-loom.yaml", res.stdout)

	res = runCLI(t, "", "migrate", "gatekeeper", "-f", gkConstraints, "-o", "json")
	if res.code != exitOK || res.stderr != "" {
		t.Fatalf("exit %d:\n%s", res.code, res.stderr)
	}
	var doc struct {
		Config string
		Report struct {
			Summary struct{ Constraints, Mapped, Partial, Unmapped int }
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if s := doc.Report.Summary; s.Constraints != 20 || s.Mapped+s.Partial+s.Unmapped != 20 || s.Unmapped != 2 {
		t.Errorf("summary = %+v", s)
	}
	if _, errs := policies.LoadConfig([]byte(doc.Config)); len(errs) > 0 {
		t.Errorf("the JSON's config does not load: %v", errs)
	}
}

// TestMigrateGatekeeperStdin reads Constraints from stdin as kubectl prints them: a List.
func TestMigrateGatekeeperStdin(t *testing.T) {
	list := `apiVersion: v1
kind: List
items:
- apiVersion: constraints.gatekeeper.sh/v1beta1
  kind: K8sPSPPrivilegedContainer
  metadata: {name: no-privileged}
  spec:
    enforcementAction: warn
    match:
      kinds: [{apiGroups: [""], kinds: [Pod]}]
      namespaces: [apps]
`
	res := runCLI(t, list, "migrate", "gatekeeper", "-f", "-")
	if res.code != exitOK {
		t.Fatalf("exit %d:\n%s", res.code, res.stderr)
	}
	cfg, errs := policies.LoadConfig([]byte(res.stdout))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	e, err := policies.NewEngine(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := e.Action("no-privilege-escalation", "apps"); a != policies.ActionWarn {
		t.Errorf("no-privilege-escalation in apps = %s, want warn", a)
	}
	if a := e.Action("no-privilege-escalation", "other"); a != policies.ActionOff {
		t.Errorf("no-privilege-escalation elsewhere = %s, want off", a)
	}
	if !strings.Contains(res.stderr, "1 constraint: 0 mapped, 1 partial, 0 unmapped") {
		t.Errorf("report:\n%s", res.stderr)
	}
}

// TestMigrateGatekeeperErrors: bad input names the file, the object and the field, and
// nothing is written.
func TestMigrateGatekeeperErrors(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{{
		name: "no engine", args: []string{"migrate"}, code: exitError,
		want: "name the engine to migrate from",
	}, {
		name: "unknown engine", args: []string{"migrate", "kyverno", "-f", "x"}, code: exitError,
		want: `unknown engine "kyverno"`,
	}, {
		name: "no input", args: []string{"migrate", "gatekeeper"}, code: exitError,
		want: "no input: give -f PATH",
	}, {
		name: "both inputs", args: []string{"migrate", "gatekeeper", "-f", "x", "--from-cluster"}, code: exitError,
		want: "not both",
	}, {
		name: "no constraint", args: []string{"migrate", "gatekeeper", "-f", gkCorpus}, code: exitError,
		want: "no Gatekeeper Constraint found",
	}, {
		name: "bad parameter", args: []string{"migrate", "gatekeeper", "-f", "-"}, code: exitError,
		stdin: `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sDisallowedTags
metadata: {name: tags}
spec:
  enforcementAction: block
  parameters: {tags: latest}
`,
		want: `-#0: K8sDisallowedTags "tags": spec.parameters.tags: Invalid value: "latest": must be a list of strings`,
	}, {
		name: "bad action", args: []string{"migrate", "gatekeeper", "-f", "-"}, code: exitError,
		stdin: `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sDisallowedTags
metadata: {name: tags}
spec:
  enforcementAction: block
`,
		want: `spec.enforcementAction: Unsupported value: "block"`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, tt.stdin, tt.args...)
			if res.code != tt.code || !strings.Contains(res.stderr, tt.want) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", res.code, tt.code, res.stderr, tt.want)
			}
			if res.stdout != "" {
				t.Errorf("stdout is not empty:\n%s", res.stdout)
			}
		})
	}
}

// TestMigrateGatekeeperHelp keeps --help in step with the flags.
func TestMigrateGatekeeperHelp(t *testing.T) {
	res := runCLI(t, "", "migrate", "--help")
	if res.code != exitOK {
		t.Fatalf("exit %d", res.code)
	}
	checkGolden(t, "usage-migrate-help.txt", res.stdout)
}

// TestMigrateGatekeeperCompare compares Gatekeeper's audit results (status.yaml: what its
// audit wrote after a run over the corpus) with loomguard's verdicts under the migrated
// config, object by object.
func TestMigrateGatekeeperCompare(t *testing.T) {
	res := runCLI(t, "", "migrate", "gatekeeper", "--compare", "-o", "json", "--config-out", filepath.Join(t.TempDir(), "c.yaml"),
		"-f", "testdata/gatekeeper/status.yaml", "-f", gkConstraints+"/config.yaml", "-f", gkCorpus)
	if res.code != exitViolations {
		t.Fatalf("exit %d (want 1: they disagree), stderr:\n%s", res.code, res.stderr)
	}
	var doc struct {
		Comparison struct {
			Summary       struct{ Objects, Constraints, Disagreements int }
			Disagreements []struct {
				Kind, Namespace, Name, Policy, Side string
				Why                                 []string
			}
			Unknown []string
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	c := doc.Comparison
	if c.Summary.Objects != 36 || c.Summary.Constraints != 5 {
		t.Errorf("summary %+v", c.Summary)
	}
	type key struct{ obj, policy, side, why string }
	want := []key{
		{"Pod batch-audit-skip/everything-wrong", "no-privilege-escalation", "loomguard", "keeps its audit out"},
		{"Pod batch-audit-skip/everything-wrong", "run-as-non-root", "loomguard", "keeps its audit out"},
		{"Deployment team-a/ten-replicas", "", "gatekeeper", "no loomguard counterpart"},
		{"Pod team-a/non-root-flag-only", "run-as-non-root", "loomguard", "requires both"},
	}
	if len(c.Disagreements) != len(want) {
		t.Fatalf("%d disagreements, want %d: %+v", len(c.Disagreements), len(want), c.Disagreements)
	}
	for i, d := range c.Disagreements {
		w := want[i]
		if d.Kind+" "+d.Namespace+"/"+d.Name != w.obj || d.Policy != w.policy || d.Side != w.side || !strings.Contains(strings.Join(d.Why, "\n"), w.why) {
			t.Errorf("disagreement %d = %+v, want %+v", i, d, w)
		}
	}
	unknown := strings.Join(c.Unknown, "\n")
	for _, w := range []string{"no-latest: its status lists 1 of 5 violations", "Pod team-a/gone, which is not in the input"} {
		if !strings.Contains(unknown, w) {
			t.Errorf("unknown %q lacks %q", c.Unknown, w)
		}
	}

	// Where they agree, the list is empty and the exit code 0.
	in := `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sPSPAllowPrivilegeEscalationContainer
metadata: {name: no-escalation}
spec: {match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}}
status:
  totalViolations: 1
  violations: [{kind: Pod, namespace: x, name: escalates, message: "not allowed: app", enforcementAction: deny}]
---
apiVersion: v1
kind: Pod
metadata: {name: escalates, namespace: x}
spec: {containers: [{name: app, image: app:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: confined, namespace: x}
spec: {containers: [{name: app, image: app:1, securityContext: {allowPrivilegeEscalation: false}}]}
`
	agree := runCLI(t, in, "migrate", "gatekeeper", "--compare", "--config-out", filepath.Join(t.TempDir(), "c.yaml"), "-f", "-")
	if agree.code != exitOK || !strings.Contains(agree.stdout, "2 objects, 1 constraint compared: 0 disagreements") {
		t.Errorf("exit %d:\n%s%s", agree.code, agree.stdout, agree.stderr)
	}
}
