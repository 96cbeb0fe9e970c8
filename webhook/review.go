package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	kjson "sigs.k8s.io/json"
)

// maxReviewBytes is controller-runtime's own limit on an admission request body: two
// objects of at most 3 MiB each, plus the rest of the review.
const maxReviewBytes = 7 << 20

// reviewHandler is the HTTP side of a webhook: it reads an AdmissionReview v1, hands its
// request to a controller-runtime admission.Webhook, whose Handle recovers panics, sets the
// response's uid and encodes the patch, and writes the AdmissionReview v1 response.
//
// It replaces admission.Webhook's own ServeHTTP, which decodes whatever apiVersion and kind
// a body names into its review type and answers in kind (an admission.k8s.io/v2 review, or
// a Pod, is handled as if it were a review), and which reads every review twice: once to
// find its kind, once to decode it. loomguard serves admission.k8s.io/v1 only, and says so
// with a 400. The limits are controller-runtime's: 7 MiB, application/json.
type reviewHandler struct {
	hook *admission.Webhook
	bufs *sync.Pool // *bytes.Buffer
}

func newReviewHandler(hook *admission.Webhook) reviewHandler {
	return reviewHandler{hook: hook, bufs: &sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

func (h reviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		writeError(w, http.StatusBadRequest, "request body is empty")
		return
	}
	buf := h.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 { // keep no huge buffer alive
			h.bufs.Put(buf)
		}
	}()
	if r.ContentLength > 0 && r.ContentLength <= maxReviewBytes {
		buf.Grow(int(r.ContentLength) + 1)
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, maxReviewBytes+1))
	_ = r.Body.Close()
	body := buf.Bytes()
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reading the request body: %v", err))
		return
	case len(body) == 0:
		writeError(w, http.StatusBadRequest, "request body is empty")
		return
	case len(body) > maxReviewBytes:
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request entity is too large; limit is %d bytes", maxReviewBytes))
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("contentType=%s, expected application/json", r.Header.Get("Content-Type")))
		return
	}
	var ar admissionv1.AdmissionReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &ar); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("decoding the admission review: %v", err))
		return
	}
	if ar.APIVersion != admissionv1.SchemeGroupVersion.String() || ar.Kind != "AdmissionReview" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("expected an admission.k8s.io/v1 AdmissionReview, got apiVersion %q kind %q", ar.APIVersion, ar.Kind))
		return
	}
	if ar.Request == nil {
		writeError(w, http.StatusBadRequest, "the admission review has no request")
		return
	}
	resp := h.hook.Handle(r.Context(), admission.Request{AdmissionRequest: *ar.Request})
	writeReview(w, &resp.AdmissionResponse)
}

// writeError answers with an AdmissionReview v1 whose response carries the error.
func writeError(w http.ResponseWriter, code int32, msg string) {
	reason := metav1.StatusReasonBadRequest
	if code == http.StatusRequestEntityTooLarge {
		reason = metav1.StatusReasonRequestEntityTooLarge
	}
	writeReview(w, &admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg},
	})
}

func writeReview(w http.ResponseWriter, resp *admissionv1.AdmissionResponse) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	})
}
