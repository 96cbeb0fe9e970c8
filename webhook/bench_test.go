package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchmarkHook measures one webhook end to end in process: the AdmissionReview JSON in,
// controller-runtime's decoding, the handler, the response JSON out. Only TLS and the
// network are left out; test/bench drives the real binary for those.
func benchmarkHook(b *testing.B, hook func(*harness) http.Handler, path string, r req) {
	h := newHarness(b, "")
	body := admissionReview(b, fixture(b, path), r)
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

// BenchmarkMutate: the base Loom Deployment (nothing to fix, no patch), and one that
// needs two fixes (a patch of three operations).
func BenchmarkMutate(b *testing.B) {
	b.Run("base", func(b *testing.B) {
		benchmarkHook(b, mutating, "../policies/testdata/base/deployment.yaml", req{})
	})
	b.Run("patched", func(b *testing.B) {
		benchmarkHook(b, mutating, "testdata/fixable-deployment.yaml", req{})
	})
}
