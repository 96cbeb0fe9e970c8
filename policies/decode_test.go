package policies

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"
)

// TestDecodeKnownJSON checks that DecodeKnownJSON decodes every object exactly as
// Decode(strict) does, errors included: every fixture of testdata, and objects that
// strict decoding refuses (unknown, duplicate and miscased fields, wrong types).
func TestDecodeKnownJSON(t *testing.T) {
	docs := map[string]string{
		"unknown field":      `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i:1","bogus":1}],"extra":true}}`,
		"duplicate field":    `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","name":"q"},"spec":{}}`,
		"miscased field":     `{"apiVersion":"v1","kind":"Pod","metadata":{"Name":"p"},"spec":{"Containers":[]}}`,
		"wrong type":         `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":"three"}}`,
		"wrong nested type":  `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","ports":[{"containerPort":"80"}]}]}}`,
		"not an object spec": `{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},"spec":[]}`,
		"bad quantity":       `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"lots"}}}]}}`,
		"other kind":         `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}`,
		"unknown group":      `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"}}`,
		"old apiVersion":     `{"apiVersion":"apps/v1beta1","kind":"Deployment","metadata":{"name":"d"}}`,
		"related kind":       `{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"b"},"spec":{"minAvailable":1}}`,
	}
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(path, "fuzz") || filepath.Ext(path) != ".yaml" {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range strings.Split(string(data), "\n---\n") {
			js, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				return err
			}
			if string(js) != "null" {
				docs[path+"#"+strconv.Itoa(i)] = string(js)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder()
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			gvk, err := PeekKind([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			want, wantErr := dec.Decode([]byte(doc), gvk, true)
			got, gotErr := dec.DecodeKnownJSON([]byte(doc), gvk)
			if refused := !strings.Contains(name, "testdata") && name != "related kind" && name != "other kind"; refused != (wantErr != nil) {
				t.Fatalf("Decode's error %v; want one: %t", wantErr, refused)
			}
			if errString(gotErr) != errString(wantErr) {
				t.Fatalf("error %q, Decode's %q", errString(gotErr), errString(wantErr))
			}
			if (got == nil) != (want == nil) || (got != nil && !equality.Semantic.DeepEqual(got, want)) {
				t.Fatalf("object %#v, Decode's %#v", got, want)
			}
			if got != nil && got.GetObjectKind().GroupVersionKind() != gvk {
				t.Fatalf("kind %v, want %v", got.GetObjectKind().GroupVersionKind(), gvk)
			}
		})
	}
	if len(docs) < 30 {
		t.Fatalf("only %d documents compared", len(docs))
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
