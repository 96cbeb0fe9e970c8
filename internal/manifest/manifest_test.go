package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

func TestSplitDocuments(t *testing.T) {
	type doc struct {
		index, line, first int
		raw                string
	}
	tests := []struct {
		name string
		in   string
		want []doc
		errs []string
	}{{
		name: "one document",
		in:   "kind: A\n",
		want: []doc{{0, 1, 1, "kind: A\n"}},
	}, {
		name: "separators, comments and blank documents",
		in:   "# header\n---\nkind: A\n---\n\n---\n# only a comment\n---\n\n# lead\nkind: B\nx: 1",
		want: []doc{
			{-1, 0, 1, "# header\n"},
			{0, 3, 3, "kind: A\n"},
			{-1, 0, 7, "# only a comment\n"},
			{1, 11, 9, "\n# lead\nkind: B\nx: 1"},
		},
	}, {
		name: "leading and trailing separators, comment after separator",
		in:   "---\nkind: A\n--- # next\nkind: B\n---\n",
		want: []doc{{0, 2, 2, "kind: A\n"}, {1, 4, 4, "kind: B\n"}},
	}, {
		name: "CRLF kept byte for byte",
		in:   "kind: A\r\n---\r\nkind: B\r\n",
		want: []doc{{0, 1, 1, "kind: A\r\n"}, {1, 3, 3, "kind: B\r\n"}},
	}, {
		name: "byte order mark",
		in:   "\xef\xbb\xbfkind: A\n",
		want: []doc{{0, 1, 1, "kind: A\n"}},
	}, {
		name: "invalid separator",
		in:   "kind: A\n--- kind: B\nkind: C\n",
		want: []doc{{0, 1, 1, "kind: A\n"}, {1, 3, 3, "kind: C\n"}},
		errs: []string{`x.yaml: line 2: invalid YAML document separator "--- kind: B": only a comment may follow ---`},
	}, {
		name: "a separator needs column 0",
		in:   "data: |\n  ---\n  text\n",
		want: []doc{{0, 1, 1, "data: |\n  ---\n  text\n"}},
	}, {
		name: "JSON object",
		in:   "\n  {\"kind\": \"A\",\n \"x\": 1}\n",
		want: []doc{{0, 2, 2, "{\"kind\": \"A\",\n \"x\": 1}"}},
	}, {
		name: "JSON stream",
		in:   "{\"kind\": \"A\"}\n{\"kind\": \"B\"}\n\n{\"kind\": \"C\"}",
		want: []doc{{0, 1, 1, `{"kind": "A"}`}, {1, 2, 2, `{"kind": "B"}`}, {2, 4, 4, `{"kind": "C"}`}},
	}, {
		name: "JSON syntax error",
		in:   "{\"kind\": \"A\"}\n{\"kind\":\n\"B\",}\n",
		want: []doc{{0, 1, 1, `{"kind": "A"}`}},
		errs: []string{`x.yaml: document 1 (line 2): parsing JSON: line 3: invalid character '}' looking for beginning of object key string`},
	}, {
		name: "empty",
		in:   "\n\n---\n   \n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, errs := SplitDocuments("x.yaml", []byte(tt.in))
			var got []doc
			for _, d := range docs {
				got = append(got, doc{d.Index, d.Line, d.First, string(d.Raw)})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("documents\n got %+v\nwant %+v", got, tt.want)
			}
			var gotErrs []string
			for _, e := range errs {
				gotErrs = append(gotErrs, e.Error())
			}
			if !slices.Equal(gotErrs, tt.errs) {
				t.Errorf("errors\n got %q\nwant %q", gotErrs, tt.errs)
			}
		})
	}
}

// TestSplitMatchesYAMLReader checks that loomguard splits YAML where kubectl does:
// apimachinery's YAMLReader returns the same documents (it drops carriage returns and
// ends every document with a newline, which loomguard keeps as they were).
func TestSplitMatchesYAMLReader(t *testing.T) {
	files, err := filepath.Glob("../../cmd/loomguard/testdata/*/*.yaml") // the CLI's manifests
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../manifests/examples/loom/10-serviceaccounts.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("\n--- ")) && !bytes.Contains(data, []byte("\n--- #")) {
			continue // an invalid separator: YAMLReader stops there
		}
		var want []string
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			d, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(bytes.TrimSpace(d)) > 0 {
				want = append(want, string(d))
			}
		}
		docs, errs := SplitDocuments(f, data)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", f, errs)
		}
		var got []string
		for _, d := range docs {
			s := strings.ReplaceAll(string(d.Raw), "\r", "")
			if !strings.HasSuffix(s, "\n") {
				s += "\n"
			}
			got = append(got, s)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: split into\n%q\nYAMLReader:\n%q", f, got, want)
		}
	}
}

func TestExpandSources(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.yaml", "a.YML", "c.json", "d.txt", "sub/e.yaml", ".hidden/f.yaml", ".g.yaml", "sub/.git/h.yaml"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		want []string
		errs []string
	}{
		{"directory: recursive, sorted, manifests only, hidden skipped", []string{dir},
			[]string{dir + "/a.YML", dir + "/b.yaml", dir + "/c.json", dir + "/sub/e.yaml"}, nil},
		{"a named file is read whatever its extension", []string{filepath.Join(dir, "d.txt"), filepath.Join(dir, ".g.yaml")},
			[]string{dir + "/d.txt", dir + "/.g.yaml"}, nil},
		{"a hidden directory named on the command line is read", []string{filepath.Join(dir, ".hidden")},
			[]string{dir + "/.hidden/f.yaml"}, nil},
		{"stdin once", []string{"-", "-"}, []string{"-"}, []string{"-: stdin given more than once"}},
		{"missing path", []string{filepath.Join(dir, "nope")}, nil, []string{dir + "/nope: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcs, errs := ExpandSources(tt.args)
			var got, gotErrs []string
			for _, s := range srcs {
				got = append(got, s.Name)
			}
			for _, e := range errs {
				gotErrs = append(gotErrs, e.Error())
			}
			if !slices.Equal(got, tt.want) || !slices.Equal(gotErrs, tt.errs) {
				t.Errorf("got %q, errors %q\nwant %q, errors %q", got, gotErrs, tt.want, tt.errs)
			}
		})
	}
}
