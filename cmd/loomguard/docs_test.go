package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPoliciesMarkdownUpToDate fails when docs/policies.md is not what
// `loomguard policies -o markdown` prints for the current policy catalog.
func TestPoliciesMarkdownUpToDate(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "policies.md")
	res := runCLI(t, "", "policies", "-o", "markdown")
	if res.code != exitOK || res.stderr != "" {
		t.Fatalf("policies -o markdown: exit %d, stderr:\n%s", res.code, res.stderr)
	}
	if *update {
		if err := os.WriteFile(path, []byte(res.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v\nregenerate it: go generate ./cmd/loomguard", path, err)
	}
	if string(want) != res.stdout {
		t.Errorf("docs/policies.md is out of date with the policy catalog; regenerate it with\n"+
			"  go generate ./cmd/loomguard\n"+
			"or\n"+
			"  go run ./cmd/loomguard policies -o markdown > docs/policies.md\n"+
			"first difference, %s", lineDiff(string(want), res.stdout))
	}
}

// TestReadmePolicies fails when the README's `loomguard policies` listing is not what the
// command prints for the current policy catalog (every registered policy, in order, with
// its default action and description); -update rewrites it.
func TestReadmePolicies(t *testing.T) {
	const open, end = "```console\n$ loomguard policies\n", "```\n"
	path := filepath.Join("..", "..", "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(readme), open)
	if !ok {
		t.Fatalf("%s has no %q block", path, strings.TrimSpace(open))
	}
	listed, after, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("%s: the %q block is not closed", path, strings.TrimSpace(open))
	}
	res := runCLI(t, "", "policies")
	if res.code != exitOK || res.stderr != "" {
		t.Fatalf("policies: exit %d, stderr:\n%s", res.code, res.stderr)
	}
	if *update {
		if err := os.WriteFile(path, []byte(before+open+res.stdout+end+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if listed != res.stdout {
		t.Errorf("README.md's `loomguard policies` block is out of date with the policy catalog; "+
			"rewrite it with go test ./cmd/loomguard -run TestReadmePolicies -update\nfirst difference, %s",
			lineDiff(listed, res.stdout))
	}
}
