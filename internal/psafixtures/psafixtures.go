// Package psafixtures finds the fixtures of k8s.io/pod-security-admission's own
// integration test (test/testdata in the module, at the version go.mod pins), which
// loomguard's oracle tests run through the pod-security policy. They are read from the
// module cache at test time and never copied into this repository.
//
// The layout is <level>/<version>/{pass,fail}/*.yaml: PSA's test/run.go creates each
// fixture in a namespace labelled enforce=<level>, enforce-version=<version> and expects the
// pass ones admitted and the fail ones refused.
package psafixtures

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Set is the fixtures of one level and version.
type Set struct {
	Level   string // privileged, baseline or restricted
	Version string // v1.N
	Dir     string // holds pass/ and fail/
}

// Sets returns every level and version directory of the fixtures, with the root they are
// under, in the order the file system lists them (sorted by name).
func Sets() (root string, sets []Set, err error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/pod-security-admission").Output()
	if err != nil {
		return "", nil, fmt.Errorf("locating k8s.io/pod-security-admission: %w", err)
	}
	root = filepath.Join(strings.TrimSpace(string(out)), "test", "testdata")
	levels, err := os.ReadDir(root)
	if err != nil {
		return "", nil, fmt.Errorf("reading PSA's fixtures: %w", err)
	}
	for _, level := range levels {
		if !level.IsDir() {
			continue
		}
		versions, err := os.ReadDir(filepath.Join(root, level.Name()))
		if err != nil {
			return "", nil, fmt.Errorf("reading PSA's fixtures: %w", err)
		}
		for _, version := range versions {
			if version.IsDir() {
				sets = append(sets, Set{Level: level.Name(), Version: version.Name(), Dir: filepath.Join(root, level.Name(), version.Name())})
			}
		}
	}
	return root, sets, nil
}
