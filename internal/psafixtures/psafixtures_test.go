package psafixtures

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSets(t *testing.T) {
	root, sets, err := Sets()
	if err != nil {
		t.Fatal(err)
	}
	levels := map[string]int{}
	for _, s := range sets {
		levels[s.Level]++
		if filepath.Dir(filepath.Dir(s.Dir)) != root {
			t.Errorf("%s is not <root>/<level>/<version>", s.Dir)
		}
		if _, err := os.Stat(filepath.Join(s.Dir, "pass")); err != nil {
			t.Errorf("%s/%s: %v", s.Level, s.Version, err)
		}
	}
	for _, l := range []string{"baseline", "restricted"} {
		if levels[l] < 30 {
			t.Errorf("%d version directories at %s; PSA v0.37.2 has one per version from v1.0", levels[l], l)
		}
	}
}
