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

// streamPod is a compliant Loom Pod, the shape of the shared bench corpus
// (make-pod-corpus.py); NAME is replaced per document.
const streamPod = `apiVersion: v1
kind: Pod
metadata:
  name: NAME
  namespace: loom
  labels:
    app: loom
    version: v1.4.2
    environment: production
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    runAsGroup: 1000
    fsGroup: 1000
    seccompProfile:
      type: RuntimeDefault
  containers:
  - name: loom
    image: registry.example.com/loom:1.4.2
    ports:
    - containerPort: 8080
    env:
    - name: LOOM_PASSWORD
      valueFrom:
        secretKeyRef:
          name: loom-secrets
          key: admin-password
    - name: TEMPORAL_HOST
      value: temporal:7233
    resources:
      requests:
        cpu: 100m
        memory: 256Mi
      limits:
        cpu: 500m
        memory: 512Mi
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop:
        - ALL
    livenessProbe:
      httpGet:
        path: /health/live
        port: 8080
    readinessProbe:
      httpGet:
        path: /health/ready
        port: 8080
    volumeMounts:
    - name: tmp
      mountPath: /tmp
    - name: data
      mountPath: /app/data
  volumes:
  - name: tmp
    emptyDir: {}
  - name: data
    persistentVolumeClaim:
      claimName: loom-data
`

// streamViolations are edits of streamPod that each break one policy, as the shared
// corpus's are.
var streamViolations = [][2]string{
	{"image: registry.example.com/loom:1.4.2", "image: loom:latest"},
	{"      limits:\n        cpu: 500m\n        memory: 512Mi\n", ""},
	{"    version: v1.4.2\n", ""},
	{"allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"},
	{"readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"},
	{"        drop:\n        - ALL\n", "        add:\n        - SYS_ADMIN\n"},
	{"spec:\n  securityContext:", "spec:\n  hostNetwork: true\n  securityContext:"},
	{"runAsNonRoot: true\n    runAsUser: 1000", "runAsNonRoot: false\n    runAsUser: 0"},
	{"    seccompProfile:\n      type: RuntimeDefault\n", ""},
}

// writePodStream writes n Pods into one multi-document YAML file: every other one
// compliant, the rest with one to three of streamViolations.
func writePodStream(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	for i := range n {
		doc := strings.Replace(streamPod, "NAME", fmt.Sprintf("loom-%d", i), 1)
		if i%2 == 1 {
			for k := range 1 + i/2%3 {
				v := streamViolations[(i/2+k*4)%len(streamViolations)]
				doc = strings.Replace(doc, v[0], v[1], 1)
			}
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.WriteString(doc)
	}
	path := filepath.Join(tb.TempDir(), "pods.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkCheckPodStream1000 measures `loomguard check -f pods.yaml` on one file of 1,000
// Pod documents (the shape of `make bench-peers`' corpus): splitting, YAML to JSON,
// strict decoding, evaluation and the text report.
func BenchmarkCheckPodStream1000(b *testing.B) {
	path := writePodStream(b, 1000)
	args := []string{"check", "-f", path}
	var out strings.Builder
	if code := run(context.Background(), args, nil, &out, io.Discard); code != exitViolations {
		b.Fatalf("exit %d, want %d", code, exitViolations)
	}
	if !strings.Contains(out.String(), "1000 workloads: 500 denied") {
		b.Fatalf("summary: %s", out.String()[strings.LastIndex(strings.TrimSpace(out.String()), "\n")+1:])
	}
	b.ReportAllocs()
	for b.Loop() {
		run(context.Background(), args, nil, io.Discard, io.Discard)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/manifest")
}
