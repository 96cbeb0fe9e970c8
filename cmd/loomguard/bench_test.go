package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeManifests writes n Deployment manifests, one per file, into a new directory: every
// other one compliant, the rest missing their security contexts and resources.
func writeManifests(tb testing.TB, n int) string {
	tb.Helper()
	compliant, err := os.ReadFile("testdata/input/compliant.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	for i := range n {
		doc := strings.ReplaceAll(string(compliant), "name: api\n", fmt.Sprintf("name: api-%d\n", i))
		if i%2 == 1 {
			doc = doc[:strings.Index(doc, "      securityContext:")] +
				"      containers:\n        - name: api\n          image: ghcr.io/loom/api:1.0.0\n"
		}
		path := filepath.Join(dir, fmt.Sprintf("deploy-%04d.yaml", i))
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// BenchmarkCheck1000 measures `loomguard check -f DIR` on 1,000 Deployment manifests:
// walking, reading, splitting, YAML to JSON, strict decoding, evaluation and the report.
func BenchmarkCheck1000(b *testing.B) {
	for _, format := range []string{"text", "json"} {
		b.Run(format, func(b *testing.B) {
			dir := writeManifests(b, 1000)
			args := []string{"check", "-o", format, "-f", dir}
			if code := run(context.Background(), args, nil, io.Discard, io.Discard); code != exitViolations {
				b.Fatalf("exit %d, want %d", code, exitViolations)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				run(context.Background(), args, nil, io.Discard, io.Discard)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/manifest")
		})
	}
}

// BenchmarkFix1000 measures `loomguard fix -f DIR` on the same 1,000 manifests, half of
// which get fixed.
func BenchmarkFix1000(b *testing.B) {
	dir := writeManifests(b, 1000)
	args := []string{"fix", "-f", dir}
	if code := run(context.Background(), args, nil, io.Discard, io.Discard); code != exitOK {
		b.Fatalf("exit %d, want %d", code, exitOK)
	}
	b.ReportAllocs()
	for b.Loop() {
		run(context.Background(), args, nil, io.Discard, io.Discard)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/manifest")
}
