package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loomguard/loomguard/internal/psafixtures"
	"github.com/loomguard/loomguard/internal/report"
	"github.com/loomguard/loomguard/internal/testsummary"
)

// TestCheckPodSecurityOracle runs `loomguard check` on every fixture of
// k8s.io/pod-security-admission's test/testdata (read from the module cache, the version
// go.mod pins), one run per level and version directory with a config that enables
// pod-security alone at that level and version. PSA's integration test expects each
// pass/*.yaml admitted and each fail/*.yaml refused in a namespace enforcing that level and
// version; check must say "allowed" and "denied" for exactly those. (policies'
// TestPodSecurityOracle checks the controls and fields of each verdict, and Deployments.)
func TestCheckPodSecurityOracle(t *testing.T) {
	root, sets, err := psafixtures.Sets()
	if err != nil {
		t.Fatal(err)
	}
	cfgDir := t.TempDir()
	total, agree := 0, 0
	for _, set := range sets {
		cfg := filepath.Join(cfgDir, set.Level+"-"+set.Version+".yaml")
		content := fmt.Sprintf("defaultAction: \"off\"\npolicies:\n  pod-security: {action: enforce, level: %s, version: %s}\n", set.Level, set.Version)
		if err := os.WriteFile(cfg, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		dir := set.Dir
		var stdout, stderr bytes.Buffer
		code := checkCommand(context.Background(), []string{"--config", cfg, "-o", "json", "-f", filepath.Join(dir, "pass"), "-f", filepath.Join(dir, "fail")},
			strings.NewReader(""), &stdout, &stderr)
		if code != exitViolations {
			t.Errorf("%s/%s: exit %d, want %d (the fail fixtures are denied)\n%s", set.Level, set.Version, code, exitViolations, stderr.String())
		}
		var report report.JSONReport
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			t.Fatalf("%s/%s: %v", set.Level, set.Version, err)
		}
		for _, r := range report.Results {
			total++
			want := "allowed"
			if filepath.Base(filepath.Dir(r.Source)) == "fail" {
				want = "denied"
			}
			if r.Decision != want {
				t.Errorf("%s: check says %s, PSA %s", r.Source, r.Decision, want)
				continue
			}
			agree++
		}
	}
	if total < 4000 {
		t.Errorf("only %d fixtures checked under %s; PSA v0.37.2 has over 4,500", total, root)
	}
	testsummary.Record(t, "loomguard check vs PSA: %d of %d fixtures agree (%.1f %%)", agree, total, 100*float64(agree)/float64(total))
}
