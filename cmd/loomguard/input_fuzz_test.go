package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loomguard/loomguard/internal/manifest"
	"github.com/loomguard/loomguard/policies"
)

// FuzzInputReader holds the CLI's input reader (internal/manifest's splitting and the
// reader's decoding: what check and fix read) to its contract on any bytes: no panic, and every error names the file and, when it is about one document,
// that document ("input.yaml: document 2 (line 14): ..."). Its seeds are the CLI's test
// inputs and testdata/fuzz/FuzzInputReader.
//
//	go test ./cmd/loomguard -run '^$' -fuzz FuzzInputReader -fuzztime 10m -parallel 1
func FuzzInputReader(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/input/*")
	bad, _ := filepath.Glob("testdata/bad/*")
	for _, path := range append(inputs, bad...) {
		if data, err := os.ReadFile(path); err == nil && len(data) < 64<<10 {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"", "---\n", "# only a comment\n", "--- x\n", "{", `{"kind":"List","apiVersion":"v1","items":[{}]}`,
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\nspec: [\n",
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"object":null}}`,
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  name: b\n",
	} {
		f.Add([]byte(s))
	}
	engine, err := policies.NewEngine(policies.DefaultConfig(), nil)
	if err != nil {
		f.Fatal(err)
	}
	const name = "input.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader(engine, "default")
		docs, errs := manifest.SplitDocuments(name, data)
		for i := range docs {
			_, perrs := r.parse(&docs[i])
			for _, e := range perrs {
				if e.Document != docs[i].Index {
					t.Errorf("an error about document %d says document %d: %v", docs[i].Index, e.Document, e)
				}
			}
			errs = append(errs, perrs...)
		}
		for _, e := range errs {
			msg := e.Error()
			if !strings.HasPrefix(msg, name+": ") {
				t.Errorf("error does not name the file: %q", msg)
			}
			if e.Document >= 0 && !strings.Contains(msg, fmt.Sprintf("document %d", e.Document)) {
				t.Errorf("error about document %d does not name it: %q", e.Document, msg)
			}
		}
	})
}
