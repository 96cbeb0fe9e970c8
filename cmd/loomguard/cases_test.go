package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/internal/report"
)

// sharedCasesDir finds the shared cases (../shared/cases from the repository root in CI, or
// in a parent of it on a developer's machine; LOOMGUARD_SHARED_CASES overrides both). Under
// CI=true a missing directory fails the test; elsewhere it skips it.
func sharedCasesDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("LOOMGUARD_SHARED_CASES"); d != "" {
		return d
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for dir := root; ; dir = filepath.Dir(dir) {
		d := filepath.Join(filepath.Dir(dir), "shared", "cases")
		if fi, err := os.Stat(filepath.Join(d, "README.md")); err == nil && !fi.IsDir() {
			return d
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the shared cases are missing: no shared/cases/README.md beside %s or a parent (set LOOMGUARD_SHARED_CASES)", root)
	}
	t.Skip("no shared/cases beside the repository (CI has it at ../shared)")
	return ""
}

// caseVerdicts runs check -o json and returns each object's decision and violations as
// "policy field", keyed by "Kind name".
func caseVerdicts(t *testing.T, args ...string) (map[string]string, map[string][]string) {
	t.Helper()
	r := runCLI(t, "", append([]string{"check", "-o", "json"}, args...)...)
	if r.code != 0 && r.code != 1 {
		t.Fatalf("check %v: exit %d\n%s", args, r.code, r.stderr)
	}
	var rep report.JSONReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check %v: %v\n%s", args, err, r.stdout)
	}
	decisions, violations := map[string]string{}, map[string][]string{}
	for _, res := range rep.Results {
		k := res.Kind + " " + res.Name
		decisions[k] = res.Decision
		for _, v := range res.Violations {
			violations[k] = append(violations[k], v.Policy+" "+v.Field)
		}
	}
	return decisions, violations
}

// fixedDocs runs fix and returns its output documents.
func fixedDocs(t *testing.T, args ...string) []string {
	t.Helper()
	r := runCLI(t, "", append([]string{"fix"}, args...)...)
	if r.code != 0 {
		t.Fatalf("fix %v: exit %d\n%s", args, r.code, r.stderr)
	}
	var docs []string
	for d := range strings.SplitSeq(r.stdout, "\n---\n") {
		docs = append(docs, d)
	}
	return docs
}

// TestSharedCases turns every case of ../shared/cases (README.md there) into its right
// value: check's decisions and violations, and what fix changes.
func TestSharedCases(t *testing.T) {
	dir := sharedCasesDir(t)
	file := func(name string) string { return filepath.Join(dir, name) }

	t.Run("limits-without-requests", func(t *testing.T) {
		f := file("limits-without-requests.yaml")
		decisions, violations := caseVerdicts(t, "-f", f)
		want := map[string]string{"Pod shop": "allowed", "Deployment shop-deploy": "allowed"}
		if !equality.Semantic.DeepEqual(decisions, want) || len(violations) > 0 {
			t.Errorf("decisions %v, violations %v; want %v and none", decisions, violations, want)
		}
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if out := strings.Join(fixedDocs(t, "-f", f), "\n---\n"); out != string(in) {
			t.Errorf("fix changed the input; want it unchanged:\n%s", out)
		}
	})

	t.Run("ephemeral-debug-container", func(t *testing.T) {
		decisions, violations := caseVerdicts(t, "-f", file("ephemeral-debug-container.yaml"))
		if decisions["Pod shop"] != "denied" {
			t.Errorf("decision %q, want denied", decisions["Pod shop"])
		}
		want := []string{
			"run-as-non-root spec.ephemeralContainers[0].securityContext.runAsNonRoot",
			"run-as-non-root spec.ephemeralContainers[0].securityContext.runAsUser",
			"no-privilege-escalation spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation",
			"no-privilege-escalation spec.ephemeralContainers[0].securityContext.privileged",
			"drop-all-capabilities spec.ephemeralContainers[0].securityContext.capabilities.drop",
		}
		if got := violations["Pod shop"]; !slices.Equal(got, want) {
			t.Errorf("violations\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		if d, v := caseVerdicts(t, "-f", file("ephemeral-debug-container.old.yaml")); d["Pod shop"] != "allowed" || len(v) > 0 {
			t.Errorf("the running pod: %v %v, want allowed", d, v)
		}
	})

	t.Run("secret-env-names", func(t *testing.T) {
		_, violations := caseVerdicts(t, "-f", file("secret-env-names.yaml"))
		want := map[string][]string{"Deployment shop": {"secret-env spec.template.spec.containers[0].env[2].value"}}
		if !equality.Semantic.DeepEqual(violations, want) {
			t.Errorf("violations %v, want exactly %v", violations, want)
		}
	})

	t.Run("windows-run-as-non-root", func(t *testing.T) {
		f := file("windows-run-as-non-root.yaml")
		decisions, violations := caseVerdicts(t, "-f", f)
		for _, name := range []string{"Deployment shop-win", "Deployment shop-win-unset"} {
			if decisions[name] != "denied" {
				t.Errorf("%s: %q, want denied", name, decisions[name])
			}
			for _, v := range violations[name] {
				if !strings.HasPrefix(v, "run-as-non-root ") {
					t.Errorf("%s: %s, want run-as-non-root violations only", name, v)
				}
			}
		}
		docs := fixedDocs(t, "-f", f)
		if len(docs) != 2 {
			t.Fatalf("fix printed %d documents, want 2", len(docs))
		}
		var orig, fixed appsv1.Deployment
		in, _ := os.ReadFile(f)
		_, second, _ := strings.Cut(string(in), "\n---\n")
		if err := yaml.Unmarshal([]byte(second), &orig); err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal([]byte(docs[1]), &fixed); err != nil {
			t.Fatal(err)
		}
		// The only change: the pod's runAsNonRoot (and the fixed annotation).
		want := orig.Spec.Template.Spec.DeepCopy()
		want.SecurityContext.RunAsNonRoot = new(true)
		if !equality.Semantic.DeepEqual(&fixed.Spec.Template.Spec, want) {
			t.Errorf("fixed pod spec %+v\nwant only runAsNonRoot added: %+v", fixed.Spec.Template.Spec.SecurityContext, want.SecurityContext)
		}
		if strings.Contains(docs[0], "loomguard.io/fixed") {
			t.Errorf("shop-win (explicit runAsNonRoot: false) was changed:\n%s", docs[0])
		}
		psc := fixed.Spec.Template.Spec.SecurityContext
		if psc.RunAsUser != nil || psc.RunAsGroup != nil || psc.FSGroup != nil || psc.SeccompProfile != nil ||
			fixed.Spec.Template.Spec.Containers[0].SecurityContext != nil {
			t.Errorf("fix set a Linux-only field on a Windows pod: %+v", psc)
		}
	})

	t.Run("registry-case-and-readonly-csi", func(t *testing.T) {
		decisions, violations := caseVerdicts(t, "-f", file("registry-case-and-readonly-csi.yaml"),
			"--config", file("registry-case-and-readonly-csi.config.yaml"))
		if decisions["Deployment upper"] != "allowed" || len(violations["Deployment upper"]) > 0 {
			t.Errorf("upper: %q %v, want allowed", decisions["Deployment upper"], violations["Deployment upper"])
		}
		want := []string{"writable-paths spec.template.spec.containers[0].volumeMounts[0]"}
		if decisions["Deployment csi-ro"] != "denied" || !slices.Equal(violations["Deployment csi-ro"], want) {
			t.Errorf("csi-ro: %q %v, want denied with %v", decisions["Deployment csi-ro"], violations["Deployment csi-ro"], want)
		}
	})
}
