package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden, docs/policies.md and the README's `loomguard policies` listing from the current output")

// cliResult is what one command line produced.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the CLI in memory, as main would with these arguments.
func runCLI(t testing.TB, stdin string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// checkGolden compares got with testdata/golden/name, or rewrites it with -update. A
// missing golden file stands for empty output.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if got == "" {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the output (go test ./cmd/loomguard -update to accept it):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl || i >= len(w) || i >= len(g) {
			return fmt.Sprintf("line %d:\n  want: %q\n  got:  %q\n(%d lines wanted, %d got)", i+1, wl, gl, len(w), len(g))
		}
	}
	return "(equal)"
}

// TestGolden drives every command and output format through run and compares stdout
// and stderr with the golden files: <name>.<ext> for stdout, <name>.stderr for stderr.
// goldenCase is a command line whose stdout and stderr are golden files under
// testdata/golden: name.ext and name.ext.stderr.
type goldenCase struct {
	name  string
	ext   string // of the stdout golden file
	stdin string
	args  []string
	code  int
}

// goldenCases are TestGolden's command lines; TestCLIBuild runs them through the built
// binaries too.
func goldenCases() []goldenCase {
	return []goldenCase{
		// check: every output format on a mixed file (denied, warned, allowed, skipped).
		{name: "check-mixed", ext: "txt", args: []string{"check", "-f", "testdata/input/mixed.yaml"}, code: 1},
		{name: "check-mixed-verbose", ext: "txt", args: []string{"check", "-v", "-f", "testdata/input/mixed.yaml"}, code: 1},
		{name: "check-mixed", ext: "json", args: []string{"check", "-o", "json", "-f", "testdata/input/mixed.yaml"}, code: 1},
		{name: "check-mixed", ext: "sarif", args: []string{"check", "--output=sarif", "-f", "testdata/input/mixed.yaml"}, code: 1},
		{name: "check-mixed", ext: "xml", args: []string{"check", "-o", "junit", "-f", "testdata/input/mixed.yaml"}, code: 1},
		{name: "check-compliant", ext: "txt", args: []string{"check", "-f", "testdata/input/compliant.yaml"}, code: 0},
		{name: "check-compliant", ext: "json", args: []string{"check", "-o", "json", "-f", "testdata/input/compliant.yaml"}, code: 0},
		// inputs: a directory (recursive, sorted, .yaml/.yml/.json only, hidden skipped),
		// a List, an AdmissionReview, other kinds, an exempt namespace, stdin.
		{name: "check-dir", ext: "json", args: []string{"check", "-o", "json", "-f", "testdata/input/dir", "-n", "ci"}, code: 1},
		{name: "check-list", ext: "json", args: []string{"check", "-o", "json", "-f", "testdata/input/list.yaml"}, code: 1},
		{name: "check-review", ext: "txt", args: []string{"check", "-f", "testdata/input/review.json"}, code: 1},
		{name: "check-other-kinds", ext: "txt", args: []string{"check", "-v", "-f", "testdata/input/other-kinds.yaml"}, code: 0},
		{name: "check-exempt", ext: "txt", args: []string{"check", "--verbose", "-f", "testdata/input/exempt.yaml"}, code: 0},
		{name: "check-stdin", ext: "txt", args: []string{"check", "-f", "-", "--namespace", "loom"}, code: 1,
			stdin: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: nginx:latest\n"},
		{name: "check-generate-name", ext: "json", args: []string{"check", "-o", "json", "-f", "-"}, code: 1,
			stdin: "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: m\n          image: ghcr.io/loom/migrate:1\n"},
		// config: actions capped to warn, one policy enforced, one off, an exception.
		{name: "check-config-warn", ext: "txt", args: []string{"check", "-v", "-f", "testdata/input/mixed.yaml", "--config", "testdata/config/warn.yaml"}, code: 1},
		{name: "check-config-warn", ext: "xml", args: []string{"check", "-o", "junit", "-f", "testdata/input/mixed.yaml", "-c", "testdata/config/warn.yaml"}, code: 1},
		{name: "check-config-warn", ext: "sarif", args: []string{"check", "-o", "sarif", "-f", "testdata/input/mixed.yaml", "-c", "testdata/config/warn.yaml"}, code: 1},
		// input errors: each reported on stderr; the good documents are still reported.
		{name: "check-bad", ext: "txt", args: []string{"check", "-f", "testdata/bad"}, code: 2},
		{name: "check-bad", ext: "json", args: []string{"check", "-o", "json", "-f", "testdata/bad"}, code: 2},
		{name: "check-bad", ext: "sarif", args: []string{"check", "-o", "sarif", "-f", "testdata/bad"}, code: 2},
		{name: "check-bad", ext: "xml", args: []string{"check", "-o", "junit", "-f", "testdata/bad"}, code: 2},
		{name: "check-missing-path", ext: "txt", args: []string{"check", "-f", "testdata/input/nope.yaml", "-f", "testdata/input/compliant.yaml"}, code: 2},
		{name: "check-empty", ext: "txt", args: []string{"check", "-f", "testdata/input/only-comments.yaml"}, code: 2},
		{name: "check-empty-dir", ext: "txt", args: []string{"check", "-f", "testdata/input/nomanifests"}, code: 2},
		// config errors: every error listed, nothing evaluated.
		{name: "check-config-broken", ext: "txt", args: []string{"check", "-f", "testdata/input/mixed.yaml", "--config", "testdata/config/broken.yaml"}, code: 2},
		{name: "check-config-syntax", ext: "txt", args: []string{"check", "-f", "testdata/input/mixed.yaml", "--config", "testdata/config/syntax.yaml"}, code: 2},
		{name: "check-config-missing", ext: "txt", args: []string{"check", "-f", "testdata/input/mixed.yaml", "--config", "testdata/config/nope.yaml"}, code: 2},
		// usage
		{name: "usage-none", ext: "txt", args: nil, code: 2},
		{name: "usage-help", ext: "txt", args: []string{"--help"}, code: 0},
		{name: "usage-unknown-command", ext: "txt", args: []string{"lint"}, code: 2},
		{name: "usage-check-help", ext: "txt", args: []string{"check", "--help"}, code: 0},
		{name: "usage-check-help", ext: "txt", args: []string{"help", "check"}, code: 0},
		{name: "usage-fix-help", ext: "txt", args: []string{"fix", "-h"}, code: 0},
		{name: "usage-policies-help", ext: "txt", args: []string{"policies", "--help"}, code: 0},
		{name: "usage-check-no-input", ext: "txt", args: []string{"check"}, code: 2},
		{name: "usage-check-unknown-flag", ext: "txt", args: []string{"check", "-f", "x.yaml", "--strict"}, code: 2},
		{name: "usage-check-bad-output", ext: "txt", args: []string{"check", "-f", "x.yaml", "-o", "yaml"}, code: 2},
		{name: "usage-check-argument", ext: "txt", args: []string{"check", "x.yaml"}, code: 2},
		{name: "usage-check-missing-value", ext: "txt", args: []string{"check", "-f"}, code: 2},
		{name: "usage-fix-no-input", ext: "txt", args: []string{"fix", "--check-after"}, code: 2},
		{name: "usage-policies-bad-output", ext: "txt", args: []string{"policies", "-o", "html"}, code: 2},
		// fix
		{name: "fix-mixed", ext: "yaml", args: []string{"fix", "-f", "testdata/fix/mixed.yaml"}, code: 0},
		{name: "fix-mixed-check-after", ext: "yaml", args: []string{"fix", "--check-after", "-f", "testdata/fix/mixed.yaml"}, code: 0},
		{name: "fix-unfixable-check-after", ext: "yaml", args: []string{"fix", "--check-after", "-f", "testdata/fix/unfixable.yaml"}, code: 1},
		{name: "fix-unfixable", ext: "yaml", args: []string{"fix", "-f", "testdata/fix/unfixable.yaml"}, code: 0},
		{name: "fix-list", ext: "yaml", args: []string{"fix", "-f", "testdata/input/list.yaml"}, code: 0},
		{name: "fix-review", ext: "yaml", args: []string{"fix", "-f", "testdata/input/review.json"}, code: 0},
		{name: "fix-config-warn", ext: "yaml", args: []string{"fix", "-f", "testdata/fix/mixed.yaml", "-c", "testdata/config/warn.yaml"}, code: 0},
		{name: "fix-bad", ext: "yaml", args: []string{"fix", "-f", "testdata/bad/good-and-bad.yaml", "-f", "testdata/bad/invalid-yaml.yaml"}, code: 2},
		{name: "fix-empty", ext: "yaml", args: []string{"fix", "-f", "testdata/input/only-comments.yaml"}, code: 2},
		// policies
		{name: "policies", ext: "txt", args: []string{"policies"}, code: 0},
		{name: "policies-wide", ext: "txt", args: []string{"policies", "-o", "wide"}, code: 0},
		{name: "policies", ext: "json", args: []string{"policies", "-o", "json"}, code: 0},
		{name: "policies-config-warn", ext: "txt", args: []string{"policies", "--config", "testdata/config/warn.yaml"}, code: 0},
		{name: "policies-config-broken", ext: "txt", args: []string{"policies", "--config", "testdata/config/broken.yaml"}, code: 2},
	}
}

func TestGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, tt := range goldenCases() {
		file := tt.name + "." + tt.ext
		t.Run(file, func(t *testing.T) {
			res := runCLI(t, tt.stdin, tt.args...)
			if res.code != tt.code {
				t.Errorf("exit code %d, want %d\nstderr:\n%s", res.code, tt.code, res.stderr)
			}
			if seen[file] {
				// Another command line for the same golden must print the same.
				want, err := os.ReadFile(filepath.Join("testdata", "golden", file))
				if err != nil {
					t.Fatal(err)
				}
				if res.stdout != string(want) {
					t.Errorf("stdout differs from %s:\n%s", file, lineDiff(string(want), res.stdout))
				}
				return
			}
			seen[file] = true
			checkGolden(t, file, res.stdout)
			checkGolden(t, file+".stderr", res.stderr)
		})
	}
}
