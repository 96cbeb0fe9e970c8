package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loomguard/loomguard/internal/manifest"
)

// TestFixKeepsUntouchedDocuments checks that fix prints the documents it does not change
// byte for byte, comments included, and changes the one it fixes.
func TestFixKeepsUntouchedDocuments(t *testing.T) {
	const in = "testdata/fix/mixed.yaml"
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := manifest.SplitDocuments(in, data)
	res := runCLI(t, "", "fix", "-f", in)
	if res.code != exitOK {
		t.Fatalf("exit %d:\n%s", res.code, res.stderr)
	}
	out, errs := manifest.SplitDocuments("-", []byte(res.stdout))
	if len(errs) > 0 || len(out) != len(orig) {
		t.Fatalf("fix printed %d documents (errors %v), want %d", len(out), errs, len(orig))
	}
	tests := []struct {
		name    string
		index   int
		changed bool
	}{
		{"Service (not a workload)", 0, false},
		{"fixable Deployment", 1, true},
		{"compliant Deployment", 2, false},
	}
	for _, tt := range tests {
		got, want := string(out[tt.index].Raw), string(orig[tt.index].Raw)
		if tt.changed == (got == want) {
			t.Errorf("%s: changed = %v, want %v\n%s", tt.name, got != want, tt.changed, got)
		}
	}
	if !strings.Contains(res.stdout, "loomguard.io/fixed: ") {
		t.Errorf("the fixed Deployment lacks the loomguard.io/fixed annotation")
	}
	if want := "testdata/fix/mixed.yaml#1 Deployment loom/web: fixed "; !strings.HasPrefix(res.stderr, want) || strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line starting %q", res.stderr, want)
	}
}

// TestFixIdempotent checks that fixing fix's output changes nothing: the same text, and
// no object reported as fixed.
func TestFixIdempotent(t *testing.T) {
	tests := []struct {
		name  string
		input string
		flags []string
	}{
		{"mixed", "testdata/fix/mixed.yaml", nil},
		{"unfixable", "testdata/fix/unfixable.yaml", nil},
		{"List", "testdata/input/list.yaml", nil},
		{"AdmissionReview", "testdata/input/review.json", nil},
		{"directory, no namespace", "testdata/input/dir", []string{"-n", "apps"}},
		{"config", "testdata/fix/mixed.yaml", []string{"--config", "testdata/config/warn.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := runCLI(t, "", append([]string{"fix", "-f", tt.input}, tt.flags...)...)
			if first.code != exitOK {
				t.Fatalf("first fix: exit %d\n%s", first.code, first.stderr)
			}
			second := runCLI(t, first.stdout, append([]string{"fix", "-f", "-"}, tt.flags...)...)
			if second.code != exitOK {
				t.Fatalf("second fix: exit %d\n%s", second.code, second.stderr)
			}
			if second.stdout != first.stdout {
				t.Errorf("fix is not idempotent:\n%s", lineDiff(first.stdout, second.stdout))
			}
			if second.stderr != "" {
				t.Errorf("the second fix fixed something: %s", second.stderr)
			}
		})
	}
}

// TestFixCheckAfter checks --check-after's exit codes against check's on the fixed output.
func TestFixCheckAfter(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code int
	}{
		{"everything fixable", "testdata/fix/mixed.yaml", exitOK},
		{"latest cannot be fixed", "testdata/fix/unfixable.yaml", exitViolations},
		{"input error", "testdata/bad/good-and-bad.yaml", exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, "", "fix", "--check-after", "-f", tt.in)
			if res.code != tt.code {
				t.Errorf("fix --check-after: exit %d, want %d\n%s", res.code, tt.code, res.stderr)
			}
			without := runCLI(t, "", "fix", "-f", tt.in)
			if tt.code != exitError && without.code != exitOK {
				t.Errorf("fix without --check-after: exit %d, want 0", without.code)
			}
			if without.stdout != res.stdout {
				t.Errorf("--check-after changed what fix prints")
			}
			// check on the fixed text agrees, unless the input itself is broken.
			if tt.code == exitError {
				return
			}
			fixed := filepath.Join(t.TempDir(), "fixed.yaml")
			if err := os.WriteFile(fixed, []byte(res.stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			if c := runCLI(t, "", "check", "-f", fixed); c.code != tt.code {
				t.Errorf("check of the fixed output: exit %d, want %d\n%s", c.code, tt.code, c.stdout)
			}
		})
	}
}
