//go:build !loomguard_cli

package main

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIBuild builds the two binaries as `make build` does, the CLI build
// (-tags loomguard_cli) as loomguard and the full build as loomguard-full beside it, and
// holds the CLI build to the full one: every golden command line prints the same through
// the CLI binary (check and fix in it, policies handed to the full build), the two report
// the same version, and the CLI build links none of the server's modules. Without the full
// build beside it, a delegated command names the file it looked for and exits 2.
func TestCLIBuild(t *testing.T) {
	dir := t.TempDir()
	cli := filepath.Join(dir, "loomguard")
	full := filepath.Join(dir, fullBinaryName)
	for _, b := range []struct {
		out  string
		tags []string
	}{{cli, []string{"-tags", "loomguard_cli"}}, {full, nil}} {
		args := append([]string{"build"}, b.tags...)
		if out, err := exec.Command("go", append(args, "-o", b.out, ".")...).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.out, err, out)
		}
	}

	t.Run("modules", func(t *testing.T) {
		info, err := buildinfo.ReadFile(cli)
		if err != nil {
			t.Fatal(err)
		}
		serverOnly := []string{"sigs.k8s.io/controller-runtime", "k8s.io/apiserver", "k8s.io/client-go", "github.com/prometheus/client_golang", "go.uber.org/zap"}
		for _, dep := range info.Deps {
			for _, m := range serverOnly {
				if dep.Path == m {
					t.Errorf("the CLI build links %s; only the full build should", m)
				}
			}
		}
		fullInfo, err := buildinfo.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		if !hasModule(fullInfo, "sigs.k8s.io/controller-runtime") {
			t.Error("the full build does not link controller-runtime: is it the full build?")
		}
	})

	t.Run("version", func(t *testing.T) {
		a, b := runBinary(t, cli, "", "version", "-o", "json"), runBinary(t, full, "", "version", "-o", "json")
		if a.code != exitOK || b.code != exitOK || a.stdout != b.stdout || !strings.Contains(a.stdout, `"version"`) {
			t.Errorf("versions differ:\nCLI build: %s%sfull build: %s%s", a.stdout, a.stderr, b.stdout, b.stderr)
		}
	})

	t.Run("golden", func(t *testing.T) {
		for _, tt := range goldenCases() {
			t.Run(strings.Join(append([]string{tt.name}, tt.args...), " "), func(t *testing.T) {
				res := runBinary(t, cli, tt.stdin, tt.args...)
				if res.code != tt.code {
					t.Errorf("exit code %d, want %d\nstderr:\n%s", res.code, tt.code, res.stderr)
				}
				for file, got := range map[string]string{tt.name + "." + tt.ext: res.stdout, tt.name + "." + tt.ext + ".stderr": res.stderr} {
					want, err := os.ReadFile(filepath.Join("testdata", "golden", file))
					if err != nil && !errors.Is(err, os.ErrNotExist) {
						t.Fatal(err)
					}
					if got != string(want) {
						t.Errorf("%s differs through the CLI build:\n%s", file, lineDiff(string(want), got))
					}
				}
			})
		}
	})

	t.Run("without the full build", func(t *testing.T) {
		alone := filepath.Join(t.TempDir(), "loomguard")
		data, err := os.ReadFile(cli)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(alone, data, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"audit", "migrate", "policies", "serve"} {
			res := runBinary(t, alone, "", cmd, "--help")
			missing := filepath.Join(filepath.Dir(alone), fullBinaryName)
			if res.code != exitError || res.stdout != "" || !strings.Contains(res.stderr, cmd+" is not in this build") || !strings.Contains(res.stderr, missing+": no such file") {
				t.Errorf("%s without the full build: exit %d, stdout %q, stderr %q; want exit 2 naming %s", cmd, res.code, res.stdout, res.stderr, missing)
			}
		}
		if res := runBinary(t, alone, "", "version"); res.code != exitOK {
			t.Errorf("version without the full build: exit %d, stderr %q", res.code, res.stderr)
		}
	})
}

// fullBinaryName is the full build's file name that the CLI build looks for
// (commands_cli.go's fullBinary, which the full build does not compile).
const fullBinaryName = "loomguard-full"

// runBinary runs a built binary in this package's directory (the golden command lines'
// paths are relative to it) with stdin, and returns its exit code and output.
func runBinary(t *testing.T, bin, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return cliResult{code: exit.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	case err != nil:
		t.Fatalf("running %s: %v", bin, err)
	}
	return cliResult{code: 0, stdout: stdout.String(), stderr: stderr.String()}
}

func hasModule(info *buildinfo.BuildInfo, path string) bool {
	for _, dep := range info.Deps {
		if dep.Path == path {
			return true
		}
	}
	return false
}
