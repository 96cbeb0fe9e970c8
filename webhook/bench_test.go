package webhook

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
)

// benchmarkHook measures one webhook end to end in process: the AdmissionReview JSON in,
// controller-runtime's decoding, the handler, the response JSON out. Only TLS and the
// network are left out; test/bench drives the real binary for those.
func benchmarkHook(b *testing.B, hook func(*harness) http.Handler, path string, r req) {
	benchmarkBody(b, hook, admissionReview(b, fixture(b, path), r))
}

// benchmarkBody is benchmarkHook on the AdmissionReview body given.
func benchmarkBody(b *testing.B, hook func(*harness) http.Handler, body []byte) {
	h := newHarness(b, "")
	handler := hook(h)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

func validating(h *harness) http.Handler { return h.validate }
func mutating(h *harness) http.Handler   { return h.mutate }

// BenchmarkValidate: the base Loom Deployment (admitted), and a violating one (denied with
// 17 causes and 2 warnings).
func BenchmarkValidate(b *testing.B) {
	b.Run("base", func(b *testing.B) {
		benchmarkHook(b, validating, "../policies/testdata/base/deployment.yaml", req{})
	})
	b.Run("base-update", func(b *testing.B) {
		benchmarkHook(b, validating, "../policies/testdata/base/deployment.yaml", req{op: "UPDATE", old: fixture(b, "../policies/testdata/base/deployment.yaml")})
	})
	b.Run("denied", func(b *testing.B) {
		benchmarkHook(b, validating, "testdata/insecure-deployment.yaml", req{})
	})
}

// BenchmarkMutate: the base Loom Deployment (nothing to fix, no patch), one that needs two
// fixes (a patch of three operations), and the Pod of make bench-e2e's fix workload as the
// API server sends it (defaulted, with managedFields, encoded as kube-apiserver encodes it:
// apiServerJSON), which needs every fix.
func BenchmarkMutate(b *testing.B) {
	b.Run("base", func(b *testing.B) {
		benchmarkHook(b, mutating, "../policies/testdata/base/deployment.yaml", req{})
	})
	b.Run("patched", func(b *testing.B) {
		benchmarkHook(b, mutating, "testdata/fixable-deployment.yaml", req{})
	})
	b.Run("apiserver-pod", func(b *testing.B) {
		benchmarkBody(b, mutating, admissionReview(b, apiServerJSON(b, "testdata/apiserver-fix-pod.yaml"), req{}))
	})
}

// bigPod is a Pod with n containers lacking every security setting (no securityContext,
// no resources, no probes), the shape of the quadratic-patching probe.
func bigPod(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"big","namespace":"loom","labels":{"app.kubernetes.io/name":"big"}},"spec":{"containers":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"c%d","image":"registry.example.com/app:1.0.%d"}`, i, i)
	}
	b.WriteString(`]}}`)
	return b.Bytes()
}

// BenchmarkMutateBigPod: /mutate on Pods of 1k, 5k and 20k containers that all need every
// fix, and one of 49,932 containers, which is 3 MiB, the API server's own limit on an
// object. Time and memory must grow linearly with the containers (BENCHMARKS.md).
func BenchmarkMutateBigPod(b *testing.B) {
	for _, n := range []int{1000, 5000, 20000, 49932} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			h := newHarness(b, "")
			body := admissionReview(b, bigPod(n), req{})
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/mutate?timeout=30s", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.mutate.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

// BenchmarkServeHTTP2 drives the real webhook server over TLS and HTTP/2 (one connection,
// many streams, as the API server does) with 50 reviews in flight: the validating webhook
// on the base Loom Deployment. Client and server share the process and its CPUs.
func BenchmarkServeHTTP2(b *testing.B) {
	ca, certDir := serverCerts(b)
	r := startServer(b, ServerOptions{CertDir: certDir, EnableHTTP2: true})
	body := admissionReview(b, fixture(b, "../policies/testdata/base/deployment.yaml"), req{})
	c := client(ca, true, nil)
	if _, resp, err := send(c, r.url+ValidatePath, body); err != nil || resp.ProtoMajor != 2 {
		b.Fatalf("warm-up: %v, protocol %v", err, resp)
	}
	b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, _, err := send(c, r.url+ValidatePath+"?timeout=10s", body)
			if err != nil || !resp.Allowed {
				b.Errorf("review: %v %+v", err, resp)
				return
			}
		}
	})
}
