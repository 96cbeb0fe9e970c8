package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	kjson "sigs.k8s.io/json"
)

// maxReviewBytes is controller-runtime's own limit on an admission request body: two
// objects of at most 3 MiB each, plus the rest of the review.
const maxReviewBytes = 7 << 20

// Bounds of the time one review may take. The API server sends its webhook timeout as the
// request's ?timeout= parameter (ValidatingWebhookConfiguration timeoutSeconds, 1 to 30
// seconds, 10 by default); a request without one gets the API server's default, and no
// request gets more than the API server's maximum.
const (
	DefaultReviewTimeout = 10 * time.Second
	MaxReviewTimeout     = 30 * time.Second
)

// DefaultMaxInFlight is how many reviews a replica works on at once by default. A review
// of an ordinary workload takes well under 1 MiB of heap; large ones are bounded together
// by maxBodyBytesInFlight (a 3 MiB Pod's review takes about 400 MiB: BENCHMARKS.md).
const DefaultMaxInFlight = 8

// maxBodyBytesInFlight bounds the review bodies worked on at once, in bytes: one review of
// the largest object the API server stores (3 MiB) and a few small ones. A body larger
// than the budget takes all of it.
const maxBodyBytesInFlight = 4 << 20

// retryAfter is the Retry-After of a review refused because the replica is at its
// in-flight limit. The API server's webhook client retries a 429 after it, within the
// webhook's timeout.
const retryAfter = "1"

// reviewHandler is the HTTP side of a webhook: it reads an AdmissionReview v1, hands its
// request to a controller-runtime admission.Webhook, whose Handle recovers panics, sets the
// response's uid and encodes the patch, and writes the AdmissionReview v1 response.
//
// It replaces admission.Webhook's own ServeHTTP, which decodes whatever apiVersion and kind
// a body names into its review type and answers in kind (an admission.k8s.io/v2 review, or
// a Pod, is handled as if it were a review), which reads every review twice (once to find
// its kind, once to decode it) and which sizes its buffer by the Content-Length the client
// declares. loomguard serves admission.k8s.io/v1 only, and says so with a 400.
//
// What one review may cost is bounded by the server, never by the client: the body is read
// into a buffer that grows only with the bytes received, up to 7 MiB (controller-runtime's
// limit); the whole body must arrive, and the review be answered, within the ?timeout= the
// API server sends (at most MaxReviewTimeout); the review's context ends then, or when the
// client goes away, and the handlers stop working on it; and at most limits.maxInFlight
// reviews are worked on at once, the others wait for a slot up to half their timeout and are
// then refused with a 429 and Retry-After.
// Every review answered with an error is counted (decision "error", with its reason) and
// logged, at most once a second per reason.
type reviewHandler struct {
	webhook   string
	hook      *admission.Webhook
	bufs      *sync.Pool // *bytes.Buffer
	inFlight  chan struct{}
	reviewers chan func()
	bodyBytes *semaphore.Weighted
	failures  *failures
}

func (h *Handlers) newReviewHandler(webhook string, hook *admission.Webhook) reviewHandler {
	return reviewHandler{
		webhook:   webhook,
		hook:      hook,
		bufs:      h.bufs,
		inFlight:  h.inFlight,
		reviewers: h.reviewers,
		bodyBytes: h.bodyBytes,
		failures:  h.failures,
	}
}

// failed is a review answered with an error before it reached the handlers.
type failed struct {
	code   int32
	reason string // metric label: reasonEmptyBody etc.
	msg    string
	uid    types.UID
}

func (h reviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	timeout := reviewTimeout(r)
	if !h.acquire(r.Context(), timeout/2) {
		if r.Context().Err() != nil {
			return // the client went away while waiting
		}
		w.Header().Set("Retry-After", retryAfter)
		h.fail(w, start, &failed{code: http.StatusTooManyRequests, reason: reasonOverloaded,
			msg: fmt.Sprintf("loomguard is reviewing %d requests already; retry after %ss", cap(h.inFlight), retryAfter)})
		return
	}
	defer func() { <-h.inFlight }()
	h.failures.metrics.inFlight.Inc()
	defer h.failures.metrics.inFlight.Dec()

	// The work is done by a reviewer (Handlers.reviewers), while this goroutine waits; a
	// panic is handed back, so that net/http treats it as the handler's own.
	panicked := make(chan any, 1)
	h.reviewers <- func() {
		defer func() { panicked <- recover() }()
		h.serve(w, r, start, timeout)
	}
	if p := <-panicked; p != nil {
		panic(p)
	}
}

// serve reads, decodes and answers one review that holds an in-flight token.
func (h reviewHandler) serve(w http.ResponseWriter, r *http.Request, start time.Time, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	// The whole body must arrive in time: a client that sends it slowly is cut off, its
	// read failing, at the review's deadline. The answer has a little longer.
	rc := http.NewResponseController(w)
	deadline := start.Add(timeout)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline.Add(time.Second))

	buf := h.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 { // keep no huge buffer alive
			h.bufs.Put(buf)
		}
	}()
	ar, bad := readReview(w, r, buf)
	if bad != nil {
		h.fail(w, start, bad)
		return
	}
	// What a review costs grows with its size (a 3 MiB Pod's takes about 400 MiB of heap:
	// BENCHMARKS.md), so the bodies being worked on at once are bounded as well as their
	// number: a large review waits, like one over the in-flight limit, for the others.
	weight := min(int64(buf.Len()), maxBodyBytesInFlight)
	wctx, wcancel := context.WithDeadline(ctx, start.Add(timeout/2))
	err := h.bodyBytes.Acquire(wctx, weight)
	wcancel()
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away while waiting
		}
		w.Header().Set("Retry-After", retryAfter)
		h.fail(w, start, &failed{code: http.StatusTooManyRequests, reason: reasonOverloaded, uid: ar.Request.UID,
			msg: fmt.Sprintf("loomguard is reviewing %d MiB of objects already; retry after %ss", maxBodyBytesInFlight>>20, retryAfter)})
		return
	}
	defer h.bodyBytes.Release(weight)
	resp := h.hook.Handle(ctx, admission.Request{AdmissionRequest: *ar.Request})
	writeReview(w, &resp.AdmissionResponse)
}

// acquire takes an in-flight slot, waiting for one at most wait (half the review's timeout)
// or until ctx ends, and reports whether it got one. A review that waits has not read its
// body: what waiting reviews hold is bounded by the connections' flow control (HTTP/2) or
// socket buffers (HTTP/1.1), not by the reviews' size. Refusing at once instead made the API
// server back off for Retry-After (1 s) whenever more than the limit of concurrent Pod
// creates arrived together (`make bench-e2e`: 50 concurrent creates then failed closed
// past the webhooks' 3 s timeout), while a slot frees within a fraction of a millisecond.
func (h reviewHandler) acquire(ctx context.Context, wait time.Duration) bool {
	select {
	case h.inFlight <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case h.inFlight <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// readReview reads and decodes an AdmissionReview v1 into buf, or says what is wrong with it.
func readReview(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) (*admissionv1.AdmissionReview, *failed) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, &failed{code: http.StatusBadRequest, reason: reasonEmptyBody, msg: "request body is empty"}
	}
	tooLarge := &failed{code: http.StatusRequestEntityTooLarge, reason: reasonTooLarge,
		msg: fmt.Sprintf("request entity is too large; limit is %d bytes", maxReviewBytes)}
	if r.ContentLength > maxReviewBytes {
		return nil, tooLarge // refused unread: nothing is allocated for it
	}
	// The buffer grows with what arrives, never with what the client declares.
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	body := buf.Bytes()
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return nil, tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &failed{code: http.StatusRequestTimeout, reason: reasonTimeout,
			msg: fmt.Sprintf("the request body did not arrive within the review's timeout (%d of %d bytes read)", len(body), r.ContentLength)}
	case err != nil:
		return nil, &failed{code: http.StatusBadRequest, reason: reasonReadFailed, msg: fmt.Sprintf("reading the request body: %v", err)}
	case len(body) == 0:
		return nil, &failed{code: http.StatusBadRequest, reason: reasonEmptyBody, msg: "request body is empty"}
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return nil, &failed{code: http.StatusBadRequest, reason: reasonContentType, uid: peekUID(body),
			msg: fmt.Sprintf("contentType=%s, expected application/json", r.Header.Get("Content-Type"))}
	}
	var ar admissionv1.AdmissionReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &ar); err != nil {
		return nil, &failed{code: http.StatusBadRequest, reason: reasonMalformed, uid: peekUID(body),
			msg: fmt.Sprintf("decoding the admission review: %v", err)}
	}
	var uid types.UID
	if ar.Request != nil {
		uid = ar.Request.UID
	}
	if ar.APIVersion != admissionv1.SchemeGroupVersion.String() || ar.Kind != "AdmissionReview" {
		return nil, &failed{code: http.StatusBadRequest, reason: reasonAPIVersion, uid: uid,
			msg: fmt.Sprintf("expected an admission.k8s.io/v1 AdmissionReview, got apiVersion %q kind %q", ar.APIVersion, ar.Kind)}
	}
	if ar.Request == nil {
		return nil, &failed{code: http.StatusBadRequest, reason: reasonBadRequest, msg: "the admission review has no request"}
	}
	return &ar, nil
}

// peekUID reads request.uid from a body that does not decode as a review, so that even an
// error answer names the request it answers where it can.
func peekUID(body []byte) types.UID {
	var peek struct {
		Request struct {
			UID types.UID `json:"uid"`
		} `json:"request"`
	}
	_ = kjson.UnmarshalCaseSensitivePreserveInts(body, &peek) // as the review itself is read
	return peek.Request.UID
}

// reviewTimeout is the time a review may take: the API server's ?timeout= (a Go duration,
// "10s"), within [1s, MaxReviewTimeout]; DefaultReviewTimeout without a valid one.
func reviewTimeout(r *http.Request) time.Duration {
	d, err := time.ParseDuration(r.URL.Query().Get("timeout"))
	if err != nil || d <= 0 {
		return DefaultReviewTimeout
	}
	return min(max(d, time.Second), MaxReviewTimeout)
}

// fail answers a review that never reached the handlers, counting and logging it.
func (h reviewHandler) fail(w http.ResponseWriter, start time.Time, f *failed) {
	h.failures.record(h.webhook, f.reason, time.Since(start), "code", f.code, "message", f.msg, "uid", f.uid)
	writeError(w, f.code, f.uid, f.msg)
}

// writeError answers with an AdmissionReview v1 whose response carries the error.
func writeError(w http.ResponseWriter, code int32, uid types.UID, msg string) {
	reason := metav1.StatusReasonBadRequest
	switch code {
	case http.StatusRequestEntityTooLarge:
		reason = metav1.StatusReasonRequestEntityTooLarge
	case http.StatusTooManyRequests:
		reason = metav1.StatusReasonTooManyRequests
	case http.StatusRequestTimeout:
		reason = metav1.StatusReasonTimeout
	}
	if code == http.StatusTooManyRequests {
		// The API server's client retries a 429 after Retry-After; it needs the status.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
	}
	writeReview(w, &admissionv1.AdmissionResponse{
		UID:     uid,
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
