package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// FuzzReview holds both webhooks' HTTP handlers to their contract on any body: no panic,
// always HTTP 200 with a well-formed AdmissionReview v1 response (allowed, or a failure
// status with a code and message), and the request's uid echoed whenever the body carries
// one that can be read. Its seeds are reviews of the policy fixtures and of the Pod as the
// API server sends it (apiserver-fix-pod.yaml, with managedFields), the malformed bodies of
// the error tests, the odd reviews of TestDecodeReviewOnce and testdata/fuzz/FuzzReview.
//
//	go test ./webhook -run '^$' -fuzz FuzzReview -fuzztime 10m -parallel 1
func FuzzReview(f *testing.F) {
	for _, path := range []string{
		"../policies/testdata/base/deployment.yaml",
		"testdata/insecure-deployment.yaml",
		"testdata/fixable-deployment.yaml",
	} {
		obj := fixture(f, path)
		f.Add(admissionReview(f, obj, req{}))
		f.Add(admissionReview(f, obj, req{op: admissionv1.Update, old: obj}))
	}
	f.Add(admissionReview(f, bigPod(3), req{}))
	sent := apiServerJSON(f, "testdata/apiserver-fix-pod.yaml") // with managedFields
	f.Add(admissionReview(f, sent, req{}))
	f.Add(admissionReview(f, sent, req{op: admissionv1.Update, old: sent}))
	for _, c := range oddReviews(f) { // both decoders' paths (decode_test.go)
		if len(c.body) < 64<<10 {
			f.Add(c.body)
		}
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"object":{"kind":"Pod"}}}`,
		`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`,
		`{"request":{"uid":"u","object":[`,
	} {
		f.Add([]byte(s))
	}
	h := newHarness(f, `
policies:
  read-only-root-filesystem: {action: warn}
  seccomp-profile: {action: audit}
`)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, hook := range []http.Handler{h.validate, h.mutate} {
			r := httptest.NewRequest(http.MethodPost, "/?timeout=30s", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			hook.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("HTTP %d", w.Code)
			}
			var ar admissionv1.AdmissionReview
			if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil {
				t.Fatalf("the answer is not JSON: %v", err)
			}
			if ar.APIVersion != "admission.k8s.io/v1" || ar.Kind != "AdmissionReview" || ar.Response == nil {
				t.Fatalf("the answer is no AdmissionReview v1 response: %.300s", w.Body)
			}
			resp := ar.Response
			if !resp.Allowed && (resp.Result == nil || resp.Result.Code < 400 || resp.Result.Message == "") {
				t.Fatalf("a refusal without a status code and message: %+v", resp.Result)
			}
			if uid := peekUID(body); uid != "" && resp.UID != uid {
				t.Fatalf("uid %q not echoed (got %q)", uid, resp.UID)
			}
		}
	})
}
