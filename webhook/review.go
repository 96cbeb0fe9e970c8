package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// maxBodyBytesInFlight bounds the large review bodies worked on at once, in bytes: one
// review of the largest object the API server stores (3 MiB) and a few smaller ones. A
// body larger than the budget takes all of it. Bodies of at most smallBodyBytes (every
// ordinary workload: a Loom Deployment's review is about 6 KiB) do not take from it, so
// that large reviews, however many arrive, never keep the small ones waiting.
const (
	maxBodyBytesInFlight = 4 << 20
	smallBodyBytes       = 256 << 10
)

// maxBodyBytesBuffered bounds the bytes of the request bodies held at once, all reviews
// together, from their first byte read until their answer is written; a body that would
// take the total over it is refused with a 429. With bodies read before a review takes an
// in-flight slot, this is what bounds the memory of many clients that send bodies at
// once, slowly or not.
const maxBodyBytesBuffered = 32 << 20

// maxBodyReadTime is the longest a request body may take to arrive, whatever ?timeout= the
// client gives: the API server sends a review's body at once, so only a client that sends
// it slowly on purpose needs more.
const maxBodyReadTime = 3 * time.Second

// bodyChunkBytes is the step in which a body's bytes are charged to maxBodyBytesBuffered
// as they arrive.
const bodyChunkBytes = 32 << 10

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
// first, into a buffer that grows only with the bytes received, up to 7 MiB (controller-
// runtime's limit), and must arrive within maxBodyReadTime; the bodies held at once weigh at
// most maxBodyBytesBuffered together; the review must be answered within the ?timeout= the
// API server sends (at most MaxReviewTimeout), when its context ends, as it does when the
// client goes away, and the handlers stop working on it; large bodies being worked on at
// once weigh at most maxBodyBytesInFlight; and at most MaxInFlight reviews are worked on at
// once. A review that finds no room waits up to half its timeout, then is refused with a 429
// and Retry-After. Since a slot is taken only once the body is in, a client that sends
// slowly holds no slot, and since small bodies do not wait for the large-body budget, large
// reviews cannot keep the API server's ordinary ones waiting.
// Every review answered with an error is counted (decision "error", with its reason) and
// logged, at most once a second per reason.
type reviewHandler struct {
	webhook   string
	hook      *admission.Webhook
	bufs      *sync.Pool // *bytes.Buffer
	inFlight  chan struct{}
	reviewers chan func()
	bodyBytes *semaphore.Weighted
	buffered  *semaphore.Weighted
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
		buffered:  h.buffered,
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
	h.failures.metrics.inFlight.Inc()
	defer h.failures.metrics.inFlight.Dec()
	timeout := reviewTimeout(r)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	// The body is read before the review waits for anything: a client that sends its body
	// slowly holds its connection and the bytes it sent, never a slot that others need. The
	// whole body must arrive within maxBodyReadTime (or the review's timeout, if shorter);
	// the answer has until the review's deadline and a little longer.
	rc := http.NewResponseController(w)
	deadline := start.Add(timeout)
	_ = rc.SetReadDeadline(start.Add(min(timeout, maxBodyReadTime)))
	_ = rc.SetWriteDeadline(deadline.Add(time.Second))

	buf := h.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	var charged int64
	defer func() {
		h.buffered.Release(charged)
		if buf.Cap() <= 1<<20 { // keep no huge buffer alive
			h.bufs.Put(buf)
		}
	}()
	if bad := h.readBody(w, r, buf, &charged); bad != nil {
		h.fail(w, start, bad)
		return
	}

	// What a review costs grows with its size (a 3 MiB Pod's takes about 400 MiB of heap:
	// BENCHMARKS.md), so the large bodies being worked on at once are bounded as well as the
	// number of reviews. A large review waits for its share of the budget before it waits
	// for a slot, so that large reviews hold at most the slots the budget lets through.
	wait := start.Add(timeout / 2)
	if weight := int64(buf.Len()); weight > smallBodyBytes {
		weight = min(weight, maxBodyBytesInFlight)
		wctx, wcancel := context.WithDeadline(ctx, wait)
		err := h.bodyBytes.Acquire(wctx, weight)
		wcancel()
		if err != nil {
			h.overloaded(w, r, start, buf.Bytes(), fmt.Sprintf("loomguard is reviewing %d MiB of objects already", maxBodyBytesInFlight>>20))
			return
		}
		defer h.bodyBytes.Release(weight)
	}
	if !h.acquire(ctx, time.Until(wait)) {
		h.overloaded(w, r, start, buf.Bytes(), fmt.Sprintf("loomguard is reviewing %d requests already", cap(h.inFlight)))
		return
	}
	defer func() { <-h.inFlight }()

	// The work is done by a reviewer (Handlers.reviewers), while this goroutine waits; a
	// panic is handed back, so that net/http treats it as the handler's own.
	panicked := make(chan any, 1)
	h.reviewers <- func() {
		defer func() { panicked <- recover() }()
		h.serve(ctx, w, buf.Bytes(), start)
	}
	if p := <-panicked; p != nil {
		panic(p)
	}
}

// overloaded refuses a review that found no room in time with a 429 and Retry-After,
// unless its client went away meanwhile.
func (h reviewHandler) overloaded(w http.ResponseWriter, r *http.Request, start time.Time, body []byte, why string) {
	if r.Context().Err() != nil {
		return // the client went away while waiting
	}
	w.Header().Set("Retry-After", retryAfter)
	h.fail(w, start, &failed{code: http.StatusTooManyRequests, reason: reasonOverloaded, uid: peekUID(body),
		msg: fmt.Sprintf("%s; retry after %ss", why, retryAfter)})
}

// serve decodes and answers one review whose body has been read and which holds an
// in-flight slot.
func (h reviewHandler) serve(ctx context.Context, w http.ResponseWriter, body []byte, start time.Time) {
	ar, bad := decodeReview(body)
	if bad != nil {
		h.fail(w, start, bad)
		return
	}
	resp := h.hook.Handle(ctx, admission.Request{AdmissionRequest: *ar.Request})
	writeReview(w, &resp.AdmissionResponse)
}

// acquire takes an in-flight slot, waiting for one at most wait (half the review's timeout)
// or until ctx ends, and reports whether it got one. What waiting reviews hold is their
// bodies, bounded together by maxBodyBytesBuffered. Refusing at once instead made the API
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

// readBody reads a request's body into buf, charging its bytes to the buffered-bytes
// budget as they arrive (charged says how many to release), or says what is wrong with it.
func (h reviewHandler) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer, charged *int64) *failed {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return &failed{code: http.StatusBadRequest, reason: reasonEmptyBody, msg: "request body is empty"}
	}
	tooLarge := &failed{code: http.StatusRequestEntityTooLarge, reason: reasonTooLarge,
		msg: fmt.Sprintf("request entity is too large; limit is %d bytes", maxReviewBytes)}
	if r.ContentLength > maxReviewBytes {
		return tooLarge // refused unread: nothing is allocated for it
	}
	// The buffer grows with what arrives, never with what the client declares, and every
	// step of it is charged to the budget of all bodies held at once before it is read.
	body := http.MaxBytesReader(w, r.Body, maxReviewBytes)
	var err error
	for {
		if !h.buffered.TryAcquire(bodyChunkBytes) {
			return &failed{code: http.StatusTooManyRequests, reason: reasonOverloaded,
				msg: fmt.Sprintf("loomguard holds %d MiB of request bodies already; retry after %ss", maxBodyBytesBuffered>>20, retryAfter)}
		}
		*charged += bodyChunkBytes
		var n int64
		n, err = buf.ReadFrom(io.LimitReader(body, bodyChunkBytes))
		if err != nil || n < bodyChunkBytes {
			break
		}
	}
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &failed{code: http.StatusRequestTimeout, reason: reasonTimeout,
			msg: fmt.Sprintf("the request body did not arrive in time (%d of %d bytes read)", buf.Len(), r.ContentLength)}
	case err != nil:
		return &failed{code: http.StatusBadRequest, reason: reasonReadFailed, msg: fmt.Sprintf("reading the request body: %v", err)}
	case buf.Len() == 0:
		return &failed{code: http.StatusBadRequest, reason: reasonEmptyBody, msg: "request body is empty"}
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return &failed{code: http.StatusBadRequest, reason: reasonContentType, uid: peekUID(buf.Bytes()),
			msg: fmt.Sprintf("contentType=%s, expected application/json", r.Header.Get("Content-Type"))}
	}
	return nil
}

// decodeReview decodes an AdmissionReview v1, or says what is wrong with it: in one pass
// where it can (decodeReviewOnce), with the Kubernetes decoder otherwise. The request's
// RawExtensions are slices of body.
func decodeReview(body []byte) (*admissionv1.AdmissionReview, *failed) {
	ar, ok := decodeReviewOnce(body)
	if !ok {
		ar = &admissionv1.AdmissionReview{}
		if err := kjson.UnmarshalCaseSensitivePreserveInts(body, ar); err != nil {
			return nil, &failed{code: http.StatusBadRequest, reason: reasonMalformed, uid: peekUID(body),
				msg: fmt.Sprintf("decoding the admission review: %v", err)}
		}
	}
	return checkReview(ar)
}

// checkReview answers a decoded review that is no AdmissionReview v1 request.
func checkReview(ar *admissionv1.AdmissionReview) (*admissionv1.AdmissionReview, *failed) {
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
	return ar, nil
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
