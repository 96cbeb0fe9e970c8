package webhook

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// The tests of this file are the probes of issue 11 ("the webhook survives whatever reaches
// its port"), each a row of its table. Resource bounds are asserted on what can be measured
// deterministically: bytes allocated, bytes read, response sizes; never wall-clock time.

// allocated returns the bytes the process allocated while fn ran.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// oneByte is a request body that delivers one byte, then fails as a connection cut short does.
type oneByte struct{ sent bool }

func (b *oneByte) Read(p []byte) (int, error) {
	if b.sent {
		return 0, io.ErrUnexpectedEOF
	}
	b.sent = true
	p[0] = '{'
	return 1, nil
}

// TestDeclaredLengthAllocatesNothing: a client that declares a 7 MiB body and sends one
// byte makes the handler allocate for the byte, not for the declaration (the probe that
// took 100 such connections from 33 MB to 757 MB).
func TestDeclaredLengthAllocatesNothing(t *testing.T) {
	h := newHarness(t, "")
	serve := func(declared int64) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, ValidatePath, &oneByte{})
		r.ContentLength = declared
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.validate.ServeHTTP(w, r)
		return w
	}
	serve(maxReviewBytes) // warm the pools
	var w *httptest.ResponseRecorder
	if n := allocated(func() { w = serve(maxReviewBytes) }); n > 256<<10 {
		t.Errorf("a 1-byte body declared as %d bytes allocated %d bytes, want at most 256 KiB", maxReviewBytes, n)
	}
	resp := decodeResponse(t, w)
	if resp.Allowed || resp.Result.Code != http.StatusBadRequest || !strings.Contains(resp.Result.Message, "reading the request body") {
		t.Errorf("got %+v, want a 400 for the body cut short", resp.Result)
	}
	// A declaration over the limit is refused unread.
	if n := allocated(func() { w = serve(maxReviewBytes + 1) }); n > 64<<10 {
		t.Errorf("a body declared over the limit allocated %d bytes, want at most 64 KiB", n)
	}
	if resp := decodeResponse(t, w); resp.Result.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("got %+v, want a 413", resp.Result)
	}
}

// rawConn is a TLS connection to the webhook server driven by hand: a client that sends
// what it likes, as slowly as it likes.
func rawConn(t *testing.T, r *running, ca *testCA) *tls.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(r.url, "https://"), &tls.Config{RootCAs: ca.pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// A bound for the test itself, never an assertion: the server must answer long before.
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	return conn
}

// readAnswer reads an HTTP response and its AdmissionReview from a raw connection.
func readAnswer(t *testing.T, conn io.Reader) (*http.Response, *admissionv1.AdmissionResponse) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	var ar admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil || ar.Response == nil {
		t.Fatalf("the answer is no AdmissionReview (%v)", err)
	}
	return resp, ar.Response
}

// TestSlowBodyIsCut: a body sent a byte at a time is cut at the review's timeout, the
// ?timeout= the API server sends (here 1s), not after the client's leisure: the server
// answers on its own while the client is still sending, with a timeout error, counted.
func TestSlowBodyIsCut(t *testing.T) {
	ca, certDir := serverCerts(t)
	r := startServer(t, ServerOptions{CertDir: certDir})
	timeouts := errorCount(r.srv.Metrics(), webhookValidate, reasonTimeout) // the registry is the process's
	conn := rawConn(t, r, ca)
	body := admissionReview(t, fixture(t, "testdata/insecure-deployment.yaml"), req{})
	fmt.Fprintf(conn, "POST %s?timeout=1s HTTP/1.1\r\nHost: loomguard\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", ValidatePath, len(body))

	stop := make(chan struct{})
	var sent sync.WaitGroup
	sent.Go(func() {
		for i := range body {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := conn.Write(body[i : i+1]); err != nil {
				return
			}
		}
	})
	httpResp, resp := readAnswer(t, conn)
	close(stop)
	sent.Wait()
	if httpResp.StatusCode != http.StatusOK || resp.Allowed || resp.Result.Code != http.StatusRequestTimeout {
		t.Fatalf("got HTTP %d %+v, want a 408 review", httpResp.StatusCode, resp.Result)
	}
	if !strings.Contains(resp.Result.Message, "did not arrive in time") {
		t.Errorf("message %q", resp.Result.Message)
	}
	if got := errorCount(r.srv.Metrics(), webhookValidate, reasonTimeout) - timeouts; got != 1 {
		t.Errorf("timeouts counted: %v, want 1", got)
	}
}

// postAny posts a review and decodes the AdmissionReview answer whatever the HTTP status.
func postAny(t *testing.T, c *http.Client, url string, body []byte) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	httpResp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer httpResp.Body.Close()
	var ar admissionv1.AdmissionReview
	if err := json.NewDecoder(httpResp.Body).Decode(&ar); err != nil {
		t.Fatalf("HTTP %d: decoding the answer: %v", httpResp.StatusCode, err)
	}
	return httpResp.StatusCode, ar.Response
}

func errorCount(m *Metrics, webhook, reason string) float64 {
	return testutil.ToFloat64(m.requests.WithLabelValues(webhook, "unknown", kindOther, decisionError, "false", reason))
}

// TestReviewTimeout: the ?timeout= parameter, bounded.
func TestReviewTimeout(t *testing.T) {
	for query, want := range map[string]time.Duration{
		"":                DefaultReviewTimeout,
		"?timeout=3s":     3 * time.Second,
		"?timeout=10m":    MaxReviewTimeout,
		"?timeout=1ms":    time.Second,
		"?timeout=-5s":    DefaultReviewTimeout,
		"?timeout=banana": DefaultReviewTimeout,
	} {
		if got := reviewTimeout(httptest.NewRequest(http.MethodPost, "/validate"+query, nil)); got != want {
			t.Errorf("%q: %v, want %v", query, got, want)
		}
	}
}

// TestInFlightLimit: with every slot taken (here the one slot, held by the test), the next
// review waits for a slot half its timeout and is then refused with a 429 and Retry-After,
// which the API server's client retries, and counted; a review whose slot frees while it
// waits is answered; once the slot frees, reviews pass again.
func TestInFlightLimit(t *testing.T) {
	ca, certDir := serverCerts(t)
	r := startServer(t, ServerOptions{CertDir: certDir, MaxInFlight: 1})
	body := admissionReview(t, fixture(t, "testdata/insecure-deployment.yaml"), req{})
	slots := r.srv.Handlers().inFlight
	slots <- struct{}{} // a review being worked on

	c := client(ca, false, nil)
	refused := errorCount(r.srv.Metrics(), webhookValidate, reasonOverloaded) // the registry is the process's
	begin := time.Now()
	httpResp, err := c.Post(r.url+ValidatePath+"?timeout=2s", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var ar admissionv1.AdmissionReview
	_ = json.NewDecoder(httpResp.Body).Decode(&ar)
	httpResp.Body.Close()
	if httpResp.StatusCode != http.StatusTooManyRequests || httpResp.Header.Get("Retry-After") == "" {
		t.Errorf("got HTTP %d Retry-After %q, want 429 with Retry-After", httpResp.StatusCode, httpResp.Header.Get("Retry-After"))
	}
	if ar.Response == nil || ar.Response.Result.Code != http.StatusTooManyRequests || ar.Response.UID == "" {
		t.Errorf("the 429 carries %+v, want an AdmissionReview saying 429 with the request's uid", ar.Response)
	}
	if waited := time.Since(begin); waited < time.Second {
		t.Errorf("refused after %s, want after waiting for a slot for half the review's 2 s timeout", waited)
	}
	if got := errorCount(r.srv.Metrics(), webhookValidate, reasonOverloaded) - refused; got != 1 {
		t.Errorf("validate refusals counted: %v, want 1", got)
	}

	// A review that arrives while the slot is taken gets it when the slot frees.
	type answer struct {
		resp *admissionv1.AdmissionResponse
		err  error
	}
	waiting := make(chan answer, 1)
	go func() {
		resp, _, err := send(c, r.url+ValidatePath+"?timeout=30s", body)
		waiting <- answer{resp, err}
	}()
	time.Sleep(200 * time.Millisecond) // it waits for the slot
	<-slots
	if a := <-waiting; a.err != nil || a.resp.Result.Code != http.StatusForbidden {
		t.Errorf("the waiting review: %v %+v, want the denial once the slot freed", a.err, a.resp)
	}
	if got := errorCount(r.srv.Metrics(), webhookValidate, reasonOverloaded) - refused; got != 1 {
		t.Errorf("validate refusals counted: %v, want still 1 (the waiting review was served)", got)
	}
	if resp, _, err := send(c, r.url+ValidatePath, body); err != nil || resp.Result.Code != http.StatusForbidden {
		t.Errorf("after the slot freed: %v %+v, want the denial", err, resp)
	}
}

// TestSlowBodiesHoldNoSlot: clients that send their bodies slowly, more of them than there
// are slots and each with the longest ?timeout=, hold no slot: a review from the API server
// arriving meanwhile is answered at once, not refused; and a slow body is cut at
// maxBodyReadTime whatever timeout its client asked for.
func TestSlowBodiesHoldNoSlot(t *testing.T) {
	ca, certDir := serverCerts(t)
	r := startServer(t, ServerOptions{CertDir: certDir, MaxInFlight: 1})
	body := admissionReview(t, fixture(t, "testdata/insecure-deployment.yaml"), req{})
	timeouts := errorCount(r.srv.Metrics(), webhookValidate, reasonTimeout) // the registry is the process's
	var slow []net.Conn
	for range 3 {
		conn := rawConn(t, r, ca)
		fmt.Fprintf(conn, "POST %s?timeout=30s HTTP/1.1\r\nHost: loomguard\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", ValidatePath, len(body))
		if _, err := conn.Write(body[:10]); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, conn)
	}
	c := client(ca, false, nil)
	resp, _, err := send(c, r.url+ValidatePath+"?timeout=3s", body)
	if err != nil || resp.Result == nil || resp.Result.Code != http.StatusForbidden {
		t.Fatalf("a review next to slow bodies: %v %+v, want its denial", err, resp)
	}
	for _, conn := range slow {
		httpResp, resp := readAnswer(t, conn) // within maxBodyReadTime, not the 30 s asked for
		if httpResp.StatusCode != http.StatusOK || resp.Result == nil || resp.Result.Code != http.StatusRequestTimeout {
			t.Errorf("a slow body: HTTP %d %+v, want a 408 review", httpResp.StatusCode, resp.Result)
		}
	}
	if got := errorCount(r.srv.Metrics(), webhookValidate, reasonTimeout) - timeouts; got != 3 {
		t.Errorf("timeouts counted: %v, want 3", got)
	}
}

// TestLargeBodiesDoNotHoldUpSmallOnes: with the large-body budget all taken, a review of
// an ordinary object (at most smallBodyBytes) is answered at once, while a large one waits
// half its timeout for the budget and is then refused with a 429.
func TestLargeBodiesDoNotHoldUpSmallOnes(t *testing.T) {
	ca, certDir := serverCerts(t)
	r := startServer(t, ServerOptions{CertDir: certDir})
	h := r.srv.Handlers()
	if !h.bodyBytes.TryAcquire(maxBodyBytesInFlight) {
		t.Fatal("the large-body budget is taken before the test")
	}
	defer h.bodyBytes.Release(maxBodyBytesInFlight)
	c := client(ca, false, nil)
	small := admissionReview(t, fixture(t, "testdata/insecure-deployment.yaml"), req{})
	if resp, _, err := send(c, r.url+ValidatePath+"?timeout=3s", small); err != nil || resp.Result.Code != http.StatusForbidden {
		t.Fatalf("a small review with the large-body budget taken: %v %+v, want its denial", err, resp)
	}
	large := admissionReview(t, bigPod(5000), req{})
	if len(large) <= smallBodyBytes {
		t.Fatalf("the large review has %d bytes, not more than %d", len(large), smallBodyBytes)
	}
	if code, resp := postAny(t, c, r.url+ValidatePath+"?timeout=2s", large); code != http.StatusTooManyRequests || resp == nil || resp.Result.Code != http.StatusTooManyRequests {
		t.Errorf("a large review with the budget taken: HTTP %d %+v, want a 429", code, resp)
	}
}

// TestBufferedBodiesAreBounded: once the bodies held weigh maxBodyBytesBuffered, a review
// whose body would take more is refused with a 429, before its body is read.
func TestBufferedBodiesAreBounded(t *testing.T) {
	ca, certDir := serverCerts(t)
	r := startServer(t, ServerOptions{CertDir: certDir})
	h := r.srv.Handlers()
	if !h.buffered.TryAcquire(maxBodyBytesBuffered) {
		t.Fatal("the buffered-bytes budget is taken before the test")
	}
	c := client(ca, false, nil)
	body := admissionReview(t, fixture(t, "testdata/insecure-deployment.yaml"), req{})
	if code, resp := postAny(t, c, r.url+ValidatePath+"?timeout=3s", body); code != http.StatusTooManyRequests || resp == nil || resp.Result.Code != http.StatusTooManyRequests {
		t.Errorf("with the budget taken: HTTP %d %+v, want a 429", code, resp)
	}
	h.buffered.Release(maxBodyBytesBuffered)
	if resp, _, err := send(c, r.url+ValidatePath+"?timeout=3s", body); err != nil || resp.Result.Code != http.StatusForbidden {
		t.Errorf("with the budget free again: %v %+v, want the denial", err, resp)
	}
}

// TestContextEndsWork: a review whose context has ended (its timeout passed, its client
// gone) is not worked on: the validating webhook answers with a timeout error, the
// mutating webhook admits unchanged (it fails open), both counted with reason timeout, and
// neither computes anything for the 5,000 containers (bytes allocated stay a fraction of
// what the review costs).
func TestContextEndsWork(t *testing.T) {
	h := newHarness(t, "")
	body := admissionReview(t, bigPod(5000), req{})
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &ar); err != nil {
		t.Fatal(err)
	}
	request := admission.Request{AdmissionRequest: *ar.Request}
	full := allocated(func() { h.handlers.Mutate(context.Background(), request) })

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var v, m admission.Response
	cut := allocated(func() {
		v = h.handlers.Validate(ctx, request)
		m = h.handlers.Mutate(ctx, request)
	})
	if v.Allowed || v.Result.Code != http.StatusGatewayTimeout {
		t.Errorf("validate: %+v, want a 504 denial", v.Result)
	}
	if !m.Allowed || len(m.Patches) > 0 || len(m.Patch) > 0 || len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], "ran out of time") {
		t.Errorf("mutate: allowed %v, patch %q, warnings %q; want admitted unchanged with a warning", m.Allowed, m.Patch, m.Warnings)
	}
	if cut > full/10 {
		t.Errorf("ended reviews allocated %d bytes, a full review %d: the work did not stop", cut, full)
	}
	for _, wh := range []string{webhookValidate, webhookMutate} {
		got := testutil.ToFloat64(h.metrics.requests.WithLabelValues(wh, "CREATE", "Pod", decisionError, "false", reasonTimeout))
		if got != 1 {
			t.Errorf("%s timeouts counted: %v, want 1", wh, got)
		}
	}
}

// TestErrorsCountedAndLogged: every review answered with an error is counted with decision
// error and its reason, echoes the request's uid where one can be read, and is logged, at
// most once a second per reason with the number left out.
func TestErrorsCountedAndLogged(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	h := newHarnessLog(t, "", funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{}))
	valid := admissionReview(t, fixture(t, "testdata/insecure-deployment.yaml"), req{})
	deep := strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000)
	const uid = "705ab4f5-6393-11e8-b7cc-42010a800002"
	tests := []struct {
		name, contentType, reason string
		body                      []byte
		code                      int32
		uid                       bool
	}{
		{"empty body", "application/json", reasonEmptyBody, nil, http.StatusBadRequest, false},
		{"wrong content type", "text/plain", reasonContentType, valid, http.StatusBadRequest, true},
		{"too large", "application/json", reasonTooLarge, bytes.Repeat([]byte(" "), maxReviewBytes+1), http.StatusRequestEntityTooLarge, false},
		{"too deep", "application/json", reasonMalformed, []byte(deep), http.StatusBadRequest, false},
		{"not JSON", "application/json", reasonMalformed, []byte("apiVersion: v1"), http.StatusBadRequest, false},
		{"wrong apiVersion", "application/json", reasonAPIVersion, bytes.Replace(valid, []byte("admission.k8s.io/v1"), []byte("admission.k8s.io/v1beta1"), 1), http.StatusBadRequest, true},
		{"no request", "application/json", reasonBadRequest, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), http.StatusBadRequest, false},
	}
	clock := testClock()
	h.handlers.failures.now = func() time.Time { return clock }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock = clock.Add(failureLogInterval)
			before := errorCount(h.metrics, webhookValidate, tt.reason)
			mu.Lock()
			lines = nil
			mu.Unlock()
			for range 3 {
				r := httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(tt.body))
				r.Header.Set("Content-Type", tt.contentType)
				w := httptest.NewRecorder()
				h.validate.ServeHTTP(w, r)
				resp := decodeResponse(t, w)
				if resp.Allowed || resp.Result.Code != tt.code {
					t.Fatalf("got %+v, want a %d", resp.Result, tt.code)
				}
				if got := string(resp.UID); (got == uid) != tt.uid {
					t.Errorf("uid %q, echoed: want %v", got, tt.uid)
				}
			}
			if got := errorCount(h.metrics, webhookValidate, tt.reason) - before; got != 3 {
				t.Errorf("counted %v with reason %s, want 3", got, tt.reason)
			}
			mu.Lock()
			defer mu.Unlock()
			var logged int
			for _, l := range lines {
				if strings.Contains(l, `"reason"="`+tt.reason+`"`) {
					logged++
				}
			}
			if logged != 1 {
				t.Errorf("logged %d times, want once (rate-limited): %q", logged, lines)
			}
		})
	}
}

// TestFailureLogRateLimit: after the interval, the next line says how many were left out.
func TestFailureLogRateLimit(t *testing.T) {
	var lines []string
	f := newFailures(nil, funcr.New(func(_, args string) { lines = append(lines, args) }, funcr.Options{}))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.now = func() time.Time { return now }
	for range 5 {
		f.logf("malformed", "bad")
	}
	f.logf("too_large", "bad")
	now = now.Add(failureLogInterval)
	f.logf("malformed", "bad")
	want := []string{`"reason"="malformed"`, `"reason"="too_large"`, `"reason"="malformed" "suppressed"=4`}
	if len(lines) != len(want) {
		t.Fatalf("lines %q, want %d", lines, len(want))
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %q, want it to end in %s", i, lines[i], w)
		}
	}
}

func decodeResponse(t *testing.T, w *httptest.ResponseRecorder) *admissionv1.AdmissionResponse {
	t.Helper()
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil || ar.Response == nil {
		t.Fatalf("not an AdmissionReview (%v): %.200s", err, w.Body)
	}
	if ar.APIVersion != "admission.k8s.io/v1" || ar.Kind != "AdmissionReview" {
		t.Errorf("answered with %q %q", ar.APIVersion, ar.Kind)
	}
	return ar.Response
}

// TestResponseCaps: a denied Pod of 5,000 containers (it once got a 7.5 MB answer with
// 35,003 causes and 10,000 warnings) gets an answer of bounded size: at most maxCauses
// causes and a count of the rest, warnings within the API server's own limits ending with
// a count of the rest, audit annotations within 10 KiB each ending with a count.
func TestResponseCaps(t *testing.T) {
	h := newHarness(t, `
policies:
  read-only-root-filesystem: {action: audit}
  drop-all-capabilities: {action: warn}
  seccomp-profile: {action: audit}
`)
	pod := bigPod(5000)
	x := expect(t, h.engine.Load(), pod, "")
	if len(x.causes) <= maxCauses || len(x.warnings) < 1000 || len(x.audit["read-only-root-filesystem"]) <= maxAuditValueBytes ||
		len(x.audit["seccomp-profile"]) <= maxAuditValueBytes {
		t.Fatalf("the probe is too small: %d causes, %d warnings, audit %d and %d bytes", len(x.causes), len(x.warnings),
			len(x.audit["read-only-root-filesystem"]), len(x.audit["seccomp-profile"]))
	}
	body := admissionReview(t, pod, req{})
	r := httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.validate.ServeHTTP(w, r)
	if n := w.Body.Len(); n > 64<<10 {
		t.Errorf("the answer is %d bytes, want at most 64 KiB", n)
	}
	resp := decodeResponse(t, w)
	if resp.Allowed || resp.Result.Details == nil {
		t.Fatalf("got %+v, want a denial with causes", resp.Result)
	}

	causes := resp.Result.Details.Causes
	if len(causes) != maxCauses+1 {
		t.Fatalf("%d causes, want %d and a count", len(causes), maxCauses)
	}
	for i := range maxCauses {
		if causes[i] != x.causes[i] {
			t.Errorf("cause %d = %+v, want %+v", i, causes[i], x.causes[i])
		}
	}
	if want := fmt.Sprintf("and %d more violations", len(x.causes)-maxCauses); !strings.HasPrefix(causes[maxCauses].Message, want) {
		t.Errorf("last cause %q, want it to start %q", causes[maxCauses].Message, want)
	}
	if want := fmt.Sprintf("; and %d more (see the status causes)", len(x.causes)-maxListed); !strings.HasSuffix(resp.Result.Message, want) {
		t.Errorf("message ends %q, want %q", resp.Result.Message[max(0, len(resp.Result.Message)-80):], want)
	}

	runes := 0
	for _, w := range resp.Warnings {
		runes += len([]rune(w))
		if len([]rune(w)) > maxWarningItemRunes {
			t.Errorf("warning of %d runes: %q", len([]rune(w)), w)
		}
	}
	if runes > maxWarningRunes {
		t.Errorf("warnings total %d runes, over the API server's %d", runes, maxWarningRunes)
	}
	kept := len(resp.Warnings) - 1
	if want := fmt.Sprintf("and %d more warnings", len(x.warnings)-kept); !strings.HasPrefix(resp.Warnings[kept], want) {
		t.Errorf("last warning %q, want it to start %q", resp.Warnings[kept], want)
	}
	for i := range kept {
		if resp.Warnings[i] != x.warnings[i] {
			t.Errorf("warning %d = %q, want %q", i, resp.Warnings[i], x.warnings[i])
		}
	}

	for key, v := range resp.AuditAnnotations {
		if len(v) > maxAuditValueBytes {
			t.Errorf("audit annotation %s is %d bytes, over %d", key, len(v), maxAuditValueBytes)
		}
	}
	// One message per container: those that fit, and a count of the rest.
	audit := resp.AuditAnnotations["read-only-root-filesystem"]
	full := strings.Split(x.audit["read-only-root-filesystem"], "; ")
	kept = strings.Count(audit, "; ") // the messages kept, and the count
	if want := fmt.Sprintf("; and %d more", len(full)-kept); !strings.HasSuffix(audit, want) {
		t.Errorf("audit annotation ends %q, want %q", audit[max(0, len(audit)-40):], want)
	}
	// One message naming every container: cut, and the cut marked.
	if audit := resp.AuditAnnotations["seccomp-profile"]; !strings.HasSuffix(audit, "…") {
		t.Errorf("the oversized audit message ends %q, want the cut marked", audit[max(0, len(audit)-40):])
	}
}

// TestCapHelpers: the caps on their own, at their edges.
func TestCapHelpers(t *testing.T) {
	if got := capWarnings([]string{"a", "b"}); len(got) != 2 {
		t.Errorf("small warnings changed: %q", got)
	}
	long := strings.Repeat("é", 300)
	got := capWarnings([]string{long})
	if len(got) != 1 || len([]rune(got[0])) != maxWarningItemRunes || !strings.HasSuffix(got[0], "…") {
		t.Errorf("a 300-rune warning became %d runes", len([]rune(got[0])))
	}
	var a auditValue
	a.add(strings.Repeat("x", 2*maxAuditValueBytes))
	for range 1000 {
		a.add("0123456789")
	}
	if s := a.String(); len(s) > maxAuditValueBytes || !strings.HasSuffix(s, "; and 365 more") {
		t.Errorf("an oversized first message and 1000 more gave %d bytes ending %q", len(s), s[len(s)-20:])
	}
}

// issueClient signs a client certificate (ExtKeyUsageClientAuth), as the API server's.
func (ca *testCA) issueClient(t testing.TB) tls.Certificate {
	t.Helper()
	der, key := ca.sign(t, &x509.Certificate{
		SerialNumber: big.NewInt(99),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestClientCA: with --client-ca-file, a client presenting a certificate of that CA is
// reviewed; one presenting none, or one of another CA, is refused at the handshake.
func TestClientCA(t *testing.T) {
	ca, certDir := serverCerts(t)
	clients := newCA(t)
	caFile := filepath.Join(t.TempDir(), "client-ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clients.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startServer(t, ServerOptions{CertDir: certDir, ClientCAFile: caFile})
	body := admissionReview(t, fixture(t, "testdata/insecure-deployment.yaml"), req{})
	post := func(cert *tls.Certificate) (*admissionv1.AdmissionResponse, error) {
		c := client(ca, false, nil)
		if cert != nil {
			c.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		resp, _, err := send(c, r.url+ValidatePath, body)
		return resp, err
	}
	good := clients.issueClient(t)
	if resp, err := post(&good); err != nil || resp.Allowed {
		t.Errorf("with the API server's certificate: %+v, %v; want the review's denial", resp, err)
	}
	if _, err := post(nil); err == nil {
		t.Error("a client without a certificate was served")
	}
	other := newCA(t).issueClient(t)
	if _, err := post(&other); err == nil {
		t.Error("a client with another CA's certificate was served")
	}

	bad := filepath.Join(t.TempDir(), "empty.crt")
	if err := os.WriteFile(bad, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(ServerOptions{CertDir: certDir, ClientCAFile: bad, Registry: prometheus.NewRegistry(), Logger: quiet()}); err == nil ||
		!strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a bundle without certificates: %v", err)
	}
}
