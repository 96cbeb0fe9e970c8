package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckUnreadable covers the read errors that cannot live in testdata: each is
// reported with its path, the other inputs are still checked, and the exit code is 2.
func TestCheckUnreadable(t *testing.T) {
	compliant, err := os.ReadFile("testdata/input/compliant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the -f argument
		wantErr string
	}{{
		name: "dangling symlink in a directory",
		setup: func(t *testing.T, dir string) string {
			if err := os.Symlink(filepath.Join(dir, "gone.yaml"), filepath.Join(dir, "m", "link.yaml")); err != nil {
				t.Skip("symlinks:", err)
			}
			return filepath.Join(dir, "m")
		},
		wantErr: "m/link.yaml: no such file or directory",
	}, {
		name: "file without read permission",
		setup: func(t *testing.T, dir string) string {
			if os.Geteuid() == 0 {
				t.Skip("root reads files whatever their permissions")
			}
			p := filepath.Join(dir, "m", "secret.yaml")
			if err := os.WriteFile(p, compliant, 0o000); err != nil {
				t.Fatal(err)
			}
			return p
		},
		wantErr: "secret.yaml: permission denied",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "m"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "m", "ok.yaml"), compliant, 0o644); err != nil {
				t.Fatal(err)
			}
			arg := tt.setup(t, dir)
			res := runCLI(t, "", "check", "-f", arg, "-f", "testdata/input/compliant.yaml")
			if res.code != exitError {
				t.Errorf("exit %d, want %d", res.code, exitError)
			}
			if !strings.Contains(res.stderr, tt.wantErr) || !strings.HasPrefix(res.stderr, "loomguard: ") {
				t.Errorf("stderr %q, want it to contain %q", res.stderr, tt.wantErr)
			}
			if !strings.Contains(res.stdout, "allowed") && !strings.Contains(res.stdout, "workload") {
				t.Errorf("no report of the readable input:\n%s", res.stdout)
			}
		})
	}
}
