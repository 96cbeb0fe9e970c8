package main

import (
	"os"
	"path/filepath"
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
