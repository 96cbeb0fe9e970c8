package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// selfCheckConfig is loomguard's default config without the exemption of its own
// namespace: loomguard-system is exempt in the cluster (so that a broken loomguard can be
// repaired), which would make checking loomguard's own objects vacuous.
const selfCheckConfig = "exemptNamespaces: [kube-system, kube-public, kube-node-lease]\n"

// checkReport is the part of `loomguard check -o json` these tests read.
type checkReport struct {
	Summary struct {
		Objects    int `json:"objects"`
		Workloads  int `json:"workloads"`
		Violations int `json:"violations"`
		Denied     int `json:"denied"`
	} `json:"summary"`
	Results []struct {
		Kind       string            `json:"kind"`
		Namespace  string            `json:"namespace"`
		Name       string            `json:"name"`
		Decision   string            `json:"decision"`
		Violations []json.RawMessage `json:"violations"`
	} `json:"results"`
}

// check runs the real `loomguard check` on manifests with selfCheckConfig and returns
// its report and exit code.
func check(t *testing.T, manifests []byte) (checkReport, int) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(selfCheckConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runCode(t, manifests, tool(t, "loomguard"), "check", "--config", cfg, "-o", "json", "-f", "-")
	code := 0
	if err != nil {
		code = exitCode(t, err)
	}
	if code == 2 {
		t.Fatalf("loomguard check: input or config error:\n%s", stderr)
	}
	var r checkReport
	if err := json.Unmarshal(stdout, &r); err != nil {
		t.Fatalf("decoding loomguard check -o json: %v\n%s\n%s", err, stdout, stderr)
	}
	return r, code
}

// TestOwnManifestsPassOwnPolicies renders every installation and runs loomguard's own
// check on it: loomguard's objects pass its own policies with no finding at all (enforce,
// warn or audit), and `loomguard fix` (the mutating webhook's fixes) changes nothing.
func TestOwnManifestsPassOwnPolicies(t *testing.T) {
	for _, r := range renders() {
		t.Run(r.name, func(t *testing.T) {
			manifests := r.render(t)
			report, code := check(t, manifests)
			if code != 0 || report.Summary.Violations != 0 || report.Summary.Denied != 0 {
				t.Errorf("loomguard check: exit %d, %d violations, %d denied; want none:\n%+v", code, report.Summary.Violations, report.Summary.Denied, report.Results)
			}
			if report.Summary.Workloads != r.workloads {
				t.Errorf("%d workloads evaluated, want %d", report.Summary.Workloads, r.workloads)
			}
			for _, res := range report.Results {
				if res.Decision != "allowed" || len(res.Violations) != 0 {
					t.Errorf("%s %s/%s: %s with %d violations", res.Kind, res.Namespace, res.Name, res.Decision, len(res.Violations))
				}
			}
			cfg := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(cfg, []byte(selfCheckConfig), 0o600); err != nil {
				t.Fatal(err)
			}
			fixed := decode(t, run(t, manifests, tool(t, "loomguard"), "fix", "--config", cfg, "-f", "-"))
			if !reflect.DeepEqual(fixed, decode(t, manifests)) {
				t.Error("loomguard fix changed loomguard's own manifests: the mutating webhook would patch them")
			}
		})
	}
}

// TestSelfCheckIsNotVacuous proves that the check above evaluates loomguard-system, the
// cross-object policies included: a "latest" image is denied, and the Deployment without
// its PodDisruptionBudget is reported.
func TestSelfCheckIsNotVacuous(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(t *testing.T, manifests []byte) []byte
		code       int
		violations int
		denied     int
	}{
		{
			name: "latest image",
			edit: func(_ *testing.T, m []byte) []byte {
				return bytes.ReplaceAll(m, []byte("ghcr.io/loomguard/loomguard:v0.1.0"), []byte("ghcr.io/loomguard/loomguard:latest"))
			},
			code: 1, violations: 1, denied: 1,
		},
		{
			name: "no PodDisruptionBudget",
			edit: func(t *testing.T, m []byte) []byte {
				var out bytes.Buffer
				for _, o := range decode(t, m) {
					if o.GetKind() == "PodDisruptionBudget" {
						continue
					}
					out.WriteString("---\n" + toYAML(t, o.Object))
				}
				return out.Bytes()
			},
			code: 0, violations: 1, denied: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			report, code := check(t, tt.edit(t, kustomize(t, "manifests/base")))
			if code != tt.code || report.Summary.Violations != tt.violations || report.Summary.Denied != tt.denied {
				t.Fatalf("exit %d, %d violations, %d denied; want exit %d, %d, %d:\n%+v",
					code, report.Summary.Violations, report.Summary.Denied, tt.code, tt.violations, tt.denied, report.Results)
			}
		})
	}
}
