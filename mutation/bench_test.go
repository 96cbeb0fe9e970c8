package mutation

import (
	"bytes"
	"os"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"sigs.k8s.io/yaml"
)

// BenchmarkDecodeJSON: decodeJSON's tokenizer against encoding/json on a varied Pod of 20
// containers, with and without the check for duplicate names.
func BenchmarkDecodeJSON(b *testing.B) {
	doc := variedPod(20)
	b.Run("v1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeJSONv1(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jsontext", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := readJSON(jsontext.NewDecoder(bytes.NewReader(doc)), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jsontext-duplicates", func(b *testing.B) { // as decodeJSON reads
		b.ReportAllocs()
		for b.Loop() {
			if _, err := readJSON(jsontext.NewDecoder(bytes.NewReader(doc), jsontext.AllowDuplicateNames(true)), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeObject: the Pod of make bench-e2e's fix workload as the API server sends it
// (webhook/testdata/apiserver-fix-pod.yaml, with the managedFields of a create), decoded
// whole and without its managedFields, as Apply reads it.
func BenchmarkDecodeObject(b *testing.B) {
	data, err := os.ReadFile("../webhook/testdata/apiserver-fix-pod.yaml")
	if err != nil {
		b.Fatal(err)
	}
	doc, err := yaml.YAMLToJSON(data)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range []struct {
		name   string
		decode func([]byte) (any, error)
	}{{"whole", decodeJSON}, {"object", decodeObject}} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.decode(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
