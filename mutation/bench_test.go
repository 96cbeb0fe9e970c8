package mutation

import (
	"bytes"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
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
