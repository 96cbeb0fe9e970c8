package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/client-go/rest"
)

// freePort returns a loopback port, free when picked.
func freePort(t testing.TB) int { return freePorts(t, 1)[0] }

// freePorts returns n distinct loopback ports, free when picked: all are held until
// all are picked, so that the kernel cannot hand out one twice.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// running is a Server started on loopback ports.
type running struct {
	srv     *Server
	url     string // https://127.0.0.1:<port>
	probe   string // http://127.0.0.1:<port>
	metrics string // http://127.0.0.1:<port>/metrics
	cancel  context.CancelFunc
	done    chan error
}

func startServer(t testing.TB, o ServerOptions) *running {
	t.Helper()
	// The ports are free when picked but may be taken by another test process before the
	// server binds them: a bind failure is retried on fresh ports, any other failure is fatal.
	for attempt := 1; ; attempt++ {
		r, err := tryStartServer(t, o)
		if err == nil {
			return r
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 5 {
			t.Fatalf("starting the server (attempt %d): %v", attempt, err)
		}
		t.Logf("attempt %d: %v; retrying on other ports", attempt, err)
	}
}

// tryStartServer starts a Server on freshly picked loopback ports and waits until it is
// ready. It returns Start's error when the server stops before it is ready.
func tryStartServer(t testing.TB, o ServerOptions) (*running, error) {
	t.Helper()
	ports := freePorts(t, 3)
	port, probe, metrics := ports[0], ports[1], ports[2]
	o.Host = "127.0.0.1"
	o.Port = port
	o.HealthProbeBindAddress = fmt.Sprintf("127.0.0.1:%d", probe)
	o.MetricsBindAddress = fmt.Sprintf("127.0.0.1:%d", metrics)
	if o.Logger.GetSink() == nil {
		o.Logger = quiet()
	}
	if o.Now == nil {
		o.Now = testClock
	}
	srv, err := NewServer(o) // with a RESTConfig the manager binds the probe port here
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{
		srv: srv, cancel: cancel, done: make(chan error, 1),
		url:     fmt.Sprintf("https://127.0.0.1:%d", port),
		probe:   fmt.Sprintf("http://127.0.0.1:%d", probe),
		metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics),
	}
	go func() { r.done <- srv.Start(ctx) }()
	stopped := func() (bool, error) {
		select {
		case err := <-r.done:
			cancel()
			if err == nil {
				err = errors.New("the server stopped before it was ready")
			}
			return true, err
		default:
			return false, nil
		}
	}
	probeClient := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ok, err := stopped(); ok {
			return nil, err
		}
		if resp, err := probeClient.Get(r.probe + "/readyz"); err == nil {
			resp.Body.Close()
			// Another process may hold the probe port and answer: ready only if this
			// server is still running.
			if ok, err := stopped(); ok {
				return nil, err
			}
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(func() { r.stop(t) })
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			r.stop(t)
			t.Fatal("timed out waiting for readiness")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop shuts the server down and returns what Start returned.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
			return err
		}
		return nil
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not stop")
		return nil
	}
}

// client trusts the CA and records the serial number of every certificate it is shown.
func client(ca *testCA, keepAlive bool, serial *atomic.Int64) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{
				RootCAs: ca.pool,
				VerifyConnection: func(cs tls.ConnectionState) error {
					if serial != nil {
						serial.Store(cs.PeerCertificates[0].SerialNumber.Int64())
					}
					return nil
				},
			},
			DisableKeepAlives:   !keepAlive,
			MaxIdleConnsPerHost: 16,
			ForceAttemptHTTP2:   true,
		},
	}
}

// send posts a review and returns the decoded response.
func send(c *http.Client, url string, body []byte) (*admissionv1.AdmissionResponse, *http.Response, error) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp, fmt.Errorf("HTTP %d: %s", resp.StatusCode, data)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &ar); err != nil {
		return nil, resp, err
	}
	if ar.Response == nil {
		return nil, resp, fmt.Errorf("no response in %s", data)
	}
	return ar.Response, resp, nil
}

func serverCerts(t testing.TB) (*testCA, string) {
	t.Helper()
	ca := newCA(t)
	dir := t.TempDir()
	ca.issue(t, 1).write(t, dir)
	return ca, dir
}

// TestServerTLS drives the real webhook server over HTTPS and swaps its certificate under
// load: new handshakes see the new certificate and no request fails.
func TestServerTLS(t *testing.T) {
	ca, certDir := serverCerts(t)
	r := startServer(t, ServerOptions{CertDir: certDir})

	base := fixture(t, "../policies/testdata/base/deployment.yaml")
	insecure := fixture(t, "testdata/insecure-deployment.yaml")
	fixable := fixture(t, "testdata/fixable-deployment.yaml")
	var serial atomic.Int64
	fresh := client(ca, false, &serial)

	// Both endpoints answer over TLS, on HTTP/1.1 unless HTTP/2 is enabled.
	resp, httpResp, err := send(fresh, r.url+ValidatePath, admissionReview(t, insecure, req{}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Allowed || resp.Result.Code != http.StatusForbidden {
		t.Errorf("insecure Deployment: allowed %v, %+v", resp.Allowed, resp.Result)
	}
	if httpResp.Proto != "HTTP/1.1" {
		t.Errorf("protocol %s, want HTTP/1.1 (HTTP/2 is off by default)", httpResp.Proto)
	}
	if resp, _, err = send(fresh, r.url+MutatePath, admissionReview(t, fixable, req{})); err != nil || resp.Patch == nil {
		t.Fatalf("mutate: %v, %+v", err, resp)
	}
	if serial.Load() != 1 {
		t.Fatalf("serial %d, want the first certificate", serial.Load())
	}

	// Load on keep-alive connections and on fresh ones while the certificate changes.
	var (
		stop            atomic.Bool
		wg              sync.WaitGroup
		total, failures atomic.Int64
		failMu          sync.Mutex
		firstFailure    error
		reviewBody      = admissionReview(t, base, req{})
		keepAliveClient = client(ca, true, nil)
		freshLoadClient = client(ca, false, nil)
		recordFailure   = func(err error) {
			failures.Add(1)
			failMu.Lock()
			if firstFailure == nil {
				firstFailure = err
			}
			failMu.Unlock()
		}
	)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := keepAliveClient
			if i%2 == 1 {
				c = freshLoadClient
			}
			for !stop.Load() {
				resp, _, err := send(c, r.url+ValidatePath, reviewBody)
				total.Add(1)
				switch {
				case err != nil:
					recordFailure(err)
				case !resp.Allowed:
					recordFailure(fmt.Errorf("denied: %+v", resp.Result))
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	second := ca.issue(t, 2)
	second.write(t, certDir)
	waitFor(t, "a handshake with the new certificate", func() bool {
		if _, _, err := send(fresh, r.url+ValidatePath, reviewBody); err != nil {
			recordFailure(err)
		}
		return serial.Load() == 2
	})
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if failures.Load() > 0 {
		t.Errorf("%d of %d requests failed across the certificate swap; first: %v", failures.Load(), total.Load(), firstFailure)
	}
	if total.Load() == 0 {
		t.Fatal("no load was sent")
	}
	waitFor(t, "the certificate expiry metric", func() bool {
		return testutil.ToFloat64(r.srv.Metrics().certExpiry) == float64(second.cert.NotAfter.Unix())
	})
	t.Logf("%d requests across the swap", total.Load())
	// Connections a client dialled but never used would hold the server's shutdown for
	// 5 s (net/http waits that long for a first request on a new connection).
	for _, c := range []*http.Client{fresh, keepAliveClient, freshLoadClient} {
		c.CloseIdleConnections()
	}

	// Metrics: loomguard's next to controller-runtime's webhook metrics and the Go and
	// process collectors, without authentication.
	mresp, err := http.Get(r.metrics)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		`loomguard_admission_requests_total{decision="denied",dry_run="false",kind="Deployment",operation="CREATE",reason="",webhook="validate"}`,
		"loomguard_admission_duration_seconds_bucket",
		"loomguard_config_reloads_total",
		"loomguard_certificate_expiry_timestamp_seconds",
		"loomguard_exceptions",
		"go_goroutines",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Health.
	for _, path := range []string{"/healthz", "/readyz", "/readyz/webhook", "/readyz/config", "/readyz/certificate"} {
		resp, err := http.Get(r.probe + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Start() = %v after a clean shutdown", err)
	}
}

func TestServerTLSVersions(t *testing.T) {
	ca, certDir := serverCerts(t)
	tests := []struct {
		min     uint16
		http2   bool
		h1only  bool // the client offers http/1.1 alone (ALPN)
		offer   uint16
		ok      bool
		proto   string
		comment string
	}{
		{0, false, false, tls.VersionTLS11, false, "", "TLS 1.1 is refused by default"},
		{0, false, false, tls.VersionTLS12, true, "HTTP/1.1", "TLS 1.2 is served by default"},
		{tls.VersionTLS13, false, false, tls.VersionTLS12, false, "", "TLS 1.2 is refused with a 1.3 minimum"},
		{tls.VersionTLS13, true, false, tls.VersionTLS13, true, "HTTP/2.0", "HTTP/2 when enabled"},
		{0, true, true, tls.VersionTLS12, true, "HTTP/1.1", "HTTP/1.1 clients are still served with HTTP/2 enabled"},
		{0, false, false, tls.VersionTLS13, true, "HTTP/1.1", "HTTP/1.1 only when HTTP/2 is disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.comment, func(t *testing.T) {
			r := startServer(t, ServerOptions{CertDir: certDir, TLSMinVersion: tt.min, EnableHTTP2: tt.http2})
			c := client(ca, false, nil)
			c.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tt.offer
			c.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS10
			if tt.h1only {
				tr := c.Transport.(*http.Transport)
				tr.ForceAttemptHTTP2 = false
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
			}
			_, resp, err := send(c, r.url+ValidatePath, admissionReview(t, fixture(t, "../policies/testdata/base/deployment.yaml"), req{}))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && resp.Proto != tt.proto {
				t.Errorf("protocol %s, want %s", resp.Proto, tt.proto)
			}
		})
	}
}

// TestServerShutdown cancels the server while a review is in flight: the server stops
// accepting connections, the review completes, and Start returns nil.
func TestServerShutdown(t *testing.T) {
	ca, certDir := serverCerts(t)
	r := startServer(t, ServerOptions{CertDir: certDir})
	body := admissionReview(t, fixture(t, "testdata/insecure-deployment.yaml"), req{})

	pr, pw := io.Pipe()
	type result struct {
		resp *admissionv1.AdmissionResponse
		err  error
	}
	results := make(chan result, 1)
	go func() {
		httpReq, _ := http.NewRequest(http.MethodPost, r.url+ValidatePath, pr)
		httpReq.Header.Set("Content-Type", "application/json")
		httpResp, err := client(ca, false, nil).Do(httpReq)
		if err != nil {
			results <- result{err: err}
			return
		}
		defer httpResp.Body.Close()
		var ar admissionv1.AdmissionReview
		err = json.NewDecoder(httpResp.Body).Decode(&ar)
		results <- result{resp: ar.Response, err: err}
	}()
	// Half the review is on the wire: the request is in flight.
	if _, err := pw.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)

	stopped := make(chan error, 1)
	go func() { stopped <- r.stop(t) }()
	// The listener closes at once: new connections are refused while the review finishes.
	waitFor(t, "the listener to close", func() bool {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(r.url, "https://"), time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
	select {
	case err := <-stopped:
		t.Fatalf("the server stopped (%v) with a review in flight", err)
	default:
	}
	if _, err := pw.Write(body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()

	res := <-results
	if res.err != nil {
		t.Fatalf("the in-flight review failed: %v", res.err)
	}
	if res.resp == nil || res.resp.Allowed || res.resp.Result.Code != http.StatusForbidden {
		t.Errorf("the in-flight review got %+v, want its denial", res.resp)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Start() = %v, want nil after a graceful shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop after the review completed")
	}
}

// TestServerWithManager runs the server under a controller-runtime manager, as in a
// cluster, against an API server that does not answer: admission needs none.
func TestServerWithManager(t *testing.T) {
	ca, certDir := serverCerts(t)
	r := startServer(t, ServerOptions{
		CertDir:    certDir,
		RESTConfig: &rest.Config{Host: "https://127.0.0.1:" + strconv.Itoa(freePort(t)), Timeout: time.Second},
	})
	resp, _, err := send(client(ca, true, nil), r.url+ValidatePath, admissionReview(t, fixture(t, "testdata/insecure-deployment.yaml"), req{}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Allowed {
		t.Error("insecure Deployment admitted")
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Start() = %v after a clean shutdown", err)
	}
}

func TestServerStartupErrors(t *testing.T) {
	_, certDir := serverCerts(t)
	tests := []struct {
		name string
		o    ServerOptions
		want string
	}{
		{"missing certificate", ServerOptions{CertDir: t.TempDir()}, "loading the serving certificate"},
		{"missing config", ServerOptions{CertDir: certDir, ConfigPath: "/nonexistent/config.yaml"}, "reading config /nonexistent/config.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Logger = quiet()
			_, err := NewServer(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewServer() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestServerPprof: the profiling endpoints are served when PprofBindAddress is set (serve's
// --pprof-bind-address defaults to "0", none: TestServeEnvOverrides).
func TestServerPprof(t *testing.T) {
	_, certDir := serverCerts(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startServer(t, ServerOptions{CertDir: certDir, PprofBindAddress: addr})
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatalf("pprof enabled: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("pprof enabled: GET /debug/pprof/cmdline = %s, want 200", resp.Status)
	}

}

// TestServerErrorLog: net/http's own errors on the webhook port, such as a client's failed
// TLS handshake, reach the logger instead of being dropped.
func TestServerErrorLog(t *testing.T) {
	_, certDir := serverCerts(t)
	logs := &logLines{}
	r := startServer(t, ServerOptions{CertDir: certDir, Logger: funcr.New(logs.add, funcr.Options{})})
	addr := strings.TrimPrefix(r.url, "https://")
	// A client that does not trust loomguard's CA aborts the handshake (bad certificate).
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err == nil {
		conn.Close()
		t.Fatal("the handshake succeeded without the CA")
	}
	waitFor(t, "the handshake error in the log", func() bool { return len(logs.matching("TLS handshake error")) > 0 })
	line := logs.matching("TLS handshake error")[0]
	for _, want := range []string{`"webhook port connection error"`, `"reason"="tls_handshake"`, "127.0.0.1:", "certificate"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %s", line, want)
		}
	}
}

// TestServerErrorsRateLimit: the webhook port's net/http errors are logged at most once a
// second per kind, the next line saying how many were left out, and each is cut to
// maxServerErrorBytes.
func TestServerErrorsRateLimit(t *testing.T) {
	var lines []string
	f := newFailures(nil, funcr.New(func(_, args string) { lines = append(lines, args) }, funcr.Options{}))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.now = func() time.Time { return now }
	l := log.New(&serverErrors{failures: f}, "", 0)
	for range 5 {
		l.Printf("http: TLS handshake error from 127.0.0.1:4242: EOF")
	}
	l.Printf("http2: server: error reading preface from client 127.0.0.1:4243: bogus greeting")
	l.Printf("http: Accept error: %s; retrying in 5ms", strings.Repeat("x", 4*maxServerErrorBytes))
	now = now.Add(failureLogInterval)
	l.Printf("http: TLS handshake error from 127.0.0.1:4244: EOF")
	want := []string{`"reason"="tls_handshake"`, `"reason"="http2"`, `"reason"="http"`, `"reason"="tls_handshake" "suppressed"=4`}
	if len(lines) != len(want) {
		t.Fatalf("lines %q, want %d", lines, len(want))
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %q, want it to end in %s", i, lines[i], w)
		}
	}
	if n := len(lines[2]); n > 2*maxServerErrorBytes {
		t.Errorf("a %d-byte error is logged in %d bytes", 4*maxServerErrorBytes, n)
	}
}
