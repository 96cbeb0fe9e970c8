//go:build !loomguard_cli

package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLIBuild builds the two binaries as `make build` does, the CLI build
// (-tags loomguard_cli) as loomguard and the full build as loomguard-full beside it, and
// holds the CLI build to the full one: every golden command line prints the same through
// the CLI binary (check and fix in it, policies handed to the full build), the two report
// the same version, and the CLI build links none of the server's modules. Without the full
// build beside it, a delegated command names the file it looked for and exits 2.
func TestCLIBuild(t *testing.T) {
	cli, full := buildBoth(t)

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

	// Both report the same version, each names its build, and the CLI build names the
	// full build it runs.
	t.Run("version", func(t *testing.T) {
		var got [2]buildInfo
		for i, bin := range []string{cli, full} {
			res := runBinary(t, bin, "", "version", "-o", "json")
			if err := json.Unmarshal([]byte(res.stdout), &got[i]); res.code != exitOK || err != nil {
				t.Fatalf("%s version -o json: exit %d, %v\n%s%s", bin, res.code, err, res.stdout, res.stderr)
			}
		}
		want := got[1]
		want.Build, want.FullBuild = cliBuild, full
		if got[0] != want || got[1].Build != fullBuild || got[1].FullBuild != "" {
			t.Errorf("version -o json:\nCLI build:  %+v\nfull build: %+v", got[0], got[1])
		}
		text := runBinary(t, cli, "", "version").stdout
		if !strings.Contains(text, ", CLI build)\n") || !strings.HasSuffix(text, "\naudit, migrate, policies and serve run "+full+"\n") {
			t.Errorf("version of the CLI build does not name it and %s:\n%s", full, text)
		}
		if text := runBinary(t, full, "", "version").stdout; !strings.HasSuffix(text, ", full build)\n") {
			t.Errorf("version of the full build does not name it:\n%s", text)
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

	// The command lines it hands to the full build get the full build's answer: the same
	// exit code (0, 1 and 2), stdout and stderr, with stdin passed through and arguments
	// passed as they are (empty, with spaces and newlines, after --).
	t.Run("delegated command lines", func(t *testing.T) {
		constraints, err := os.ReadFile(filepath.Join(gkConstraints, "general.yaml"))
		mustDo(t, err)
		for _, tt := range []struct {
			stdin string
			args  []string
			code  int
		}{
			{"", []string{"migrate", "gatekeeper", "-f", gkConstraints}, exitOK},
			{string(constraints), []string{"migrate", "gatekeeper", "-f", "-", "-o", "json"}, exitOK},
			{"", []string{"migrate", "gatekeeper", "--compare", "-f", "testdata/gatekeeper/status.yaml", "-f", gkConstraints, "-f", gkCorpus}, exitViolations},
			{"", []string{"migrate", "gatekeeper", "-f", "no such\ndir/x y.yaml"}, exitError},
			{"", []string{"migrate", "gatekeeper", "-f", ""}, exitError},
			{"", []string{"policies", ""}, exitError},
			{"", []string{"policies", "--", "-o"}, exitError},
			{"", []string{"policies", "-o", "json", "--"}, exitOK},
			{"", []string{"audit", "--kubeconfig", "testdata/nope/kubeconfig"}, exitError},
			{"", []string{"serve", "--port", "https"}, exitError},
			{"", []string{"help", "serve"}, exitOK},
		} {
			t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
				got, want := runBinaryFor(t, 30*time.Second, cli, tt.stdin, tt.args...), runBinaryFor(t, 30*time.Second, full, tt.stdin, tt.args...)
				if got != want || want.code != tt.code {
					t.Errorf("through the CLI build: exit %d, stdout %q, stderr %q\nthe full build: exit %d (want %d), stdout %q, stderr %q",
						got.code, got.stdout, got.stderr, want.code, tt.code, want.stdout, want.stderr)
				}
			})
		}
	})

	// Each broken install: the CLI build alone in a directory, beside what is there as
	// loomguard-full. A delegated command names the file and what is wrong with it, and
	// exits 2 (bounded: a CLI build running itself would never stop).
	t.Run("without a usable full build", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			setup func(t *testing.T, dir string) // dir holds the CLI build as loomguard
			want  string                         // after "<dir>/loomguard-full: "
		}{
			{"missing", func(*testing.T, string) {}, "no such file"},
			{"a directory", func(t *testing.T, dir string) {
				mustDo(t, os.Mkdir(filepath.Join(dir, fullBinaryName), 0o755))
			}, "not a regular file"},
			{"not executable", func(t *testing.T, dir string) {
				copyFile(t, full, filepath.Join(dir, fullBinaryName), 0o644)
			}, "not executable"},
			{"a symlink loop", func(t *testing.T, dir string) {
				mustDo(t, os.Symlink(fullBinaryName, filepath.Join(dir, fullBinaryName)))
			}, "too many levels of symbolic links"},
			{"a copy of the CLI build", func(t *testing.T, dir string) {
				copyFile(t, cli, filepath.Join(dir, fullBinaryName), 0o755)
			}, "a CLI build (-tags loomguard_cli), not the full build"},
			{"a symlink to the CLI build", func(t *testing.T, dir string) {
				mustDo(t, os.Symlink("loomguard", filepath.Join(dir, fullBinaryName)))
			}, "a CLI build (-tags loomguard_cli), not the full build"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				dir := t.TempDir()
				alone := filepath.Join(dir, "loomguard")
				copyFile(t, cli, alone, 0o755)
				tt.setup(t, dir)
				missing := filepath.Join(dir, fullBinaryName)
				for _, cmd := range []string{"audit", "migrate", "policies", "serve"} {
					res := runBinaryFor(t, 10*time.Second, alone, "", cmd, "--help")
					if res.code != exitError || res.stdout != "" || !strings.Contains(res.stderr, cmd+" is not in this build") ||
						!strings.Contains(res.stderr, missing) || !strings.Contains(res.stderr, tt.want) {
						t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2 naming %s: %s", cmd, res.code, res.stdout, res.stderr, missing, tt.want)
					}
				}
				if res := runBinary(t, alone, "", "version"); res.code != exitOK ||
					!strings.Contains(res.stdout, "audit, migrate, policies and serve are not available: "+missing) || !strings.Contains(res.stdout, tt.want) {
					t.Errorf("version: exit %d, stdout %q, stderr %q; want exit 0 naming %s: %s", res.code, res.stdout, res.stderr, missing, tt.want)
				}
			})
		}
	})
	// What shows only when the full build runs: one of another version warns (check and
	// fix would not apply what policies lists), and a wrapper script that runs the CLI
	// build as the full build is refused instead of running it for ever.
	t.Run("beside another loomguard-full", func(t *testing.T) {
		dir := t.TempDir()
		alone := filepath.Join(dir, "loomguard") // a CLI build of another version
		if out, err := exec.Command("go", "build", "-tags", "loomguard_cli", "-ldflags", "-X main.version=v0.0.0-other", "-o", alone, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		other := filepath.Join(dir, fullBinaryName)
		mustDo(t, os.Symlink(full, other))
		var own buildInfo
		mustDo(t, json.Unmarshal([]byte(runBinary(t, full, "", "version", "-o", "json").stdout), &own))
		res := runBinaryFor(t, 10*time.Second, alone, "", "policies")
		warning := fmt.Sprintf("loomguard: warning: the CLI build is v0.0.0-other (commit %s) and the full build it runs (loomguard-full) is %s: install the two from one build\n",
			own.Commit, buildVersion(own))
		if res.code != exitOK || res.stderr != warning || !strings.Contains(res.stdout, "pod-security") {
			t.Errorf("policies beside another version: exit %d, stderr %q, want %q", res.code, res.stderr, warning)
		}

		script := "#!/bin/sh\nexec \"$(dirname \"$0\")/loomguard\" \"$@\"\n"
		mustDo(t, os.Remove(other))
		mustDo(t, os.WriteFile(other, []byte(script), 0o755))
		res = runBinaryFor(t, 10*time.Second, alone, "", "policies")
		if res.code != exitError || !strings.Contains(res.stderr, other+": runs a CLI build ("+cliVersionEnv+" set to ") {
			t.Errorf("policies beside a script running the CLI build: exit %d, stderr %q; want exit 2 naming %s", res.code, res.stderr, other)
		}
	})
}

// buildBoth builds the two binaries into a temporary directory as `make build` does: the
// CLI build as loomguard, the full build beside it as loomguard-full.
func buildBoth(t *testing.T) (cli, full string) {
	t.Helper()
	dir := t.TempDir()
	cli, full = filepath.Join(dir, "loomguard"), filepath.Join(dir, fullBinaryName)
	for _, b := range []struct {
		out  string
		tags []string
	}{{cli, []string{"-tags", "loomguard_cli"}}, {full, nil}} {
		args := append([]string{"build"}, b.tags...)
		if out, err := exec.Command("go", append(args, "-o", b.out, ".")...).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.out, err, out)
		}
	}
	return cli, full
}

// fullBinaryName is the full build's file name that the CLI build looks for
// (commands_cli.go's fullBinary, which the full build does not compile).
const fullBinaryName = "loomguard-full"

// runBinary runs a built binary in this package's directory (the golden command lines'
// paths are relative to it) with stdin, and returns its exit code and output.
func runBinary(t *testing.T, bin, stdin string, args ...string) cliResult {
	t.Helper()
	return runBinaryFor(t, 0, bin, stdin, args...)
}

// runBinaryFor is runBinary killing the binary after timeout (0: none); a killed
// binary fails the test.
func runBinaryFor(t *testing.T, timeout time.Duration, bin, stdin string, args ...string) cliResult {
	t.Helper()
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s: still running after %s, killed", bin, strings.Join(args, " "), timeout)
	case errors.As(err, &exit):
		return cliResult{code: exit.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	case err != nil:
		t.Fatalf("running %s: %v", bin, err)
	}
	return cliResult{code: 0, stdout: stdout.String(), stderr: stderr.String()}
}

// copyFile copies the file from to the file to, with mode perm.
func copyFile(t *testing.T, from, to string, perm os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	mustDo(t, err)
	mustDo(t, os.WriteFile(to, data, perm))
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func hasModule(info *buildinfo.BuildInfo, path string) bool {
	for _, dep := range info.Deps {
		if dep.Path == path {
			return true
		}
	}
	return false
}
