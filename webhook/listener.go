package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// Timeouts of the webhook port's connections, whoever the client is.
const (
	// readHeaderTimeout bounds the TLS handshake and the request line and headers: the
	// API server sends them at once. (controller-runtime's server allows 32 s.)
	readHeaderTimeout = 5 * time.Second
	// idleTimeout is how long a keep-alive connection may wait for its next request; it
	// matches the API server's HTTP transport's idle timeout.
	idleTimeout = 90 * time.Second
	// maxHeaderBytes bounds a request's headers; the API server's are a few hundred bytes.
	maxHeaderBytes = 64 << 10
	// maxConcurrentStreams bounds the HTTP/2 streams of one connection (Go's own default,
	// set here so that it is stated): more are refused by the protocol, and net/http starts
	// no more handlers than this for a connection however fast a client opens and resets
	// streams (its "rapid reset" protection since Go 1.21.3, CVE-2023-39325).
	maxConcurrentStreams = 250
)

// webhookServer serves the admission webhooks over TLS. It is controller-runtime's
// webhook.Server (the manager runs it like its own DefaultServer) with the limits that
// DefaultServer does not let one set: a short header timeout, a header size limit, and
// request contexts that the server's shutdown does not cancel, so that a review in
// flight when SIGTERM arrives is finished (within the shutdown timeout) rather than cut,
// while a review whose client goes away still stops at once. The body read deadline of
// each review is set by reviewHandler, from the review's timeout.
type webhookServer struct {
	addr            string
	tlsConfig       *tls.Config
	shutdownTimeout time.Duration
	log             logr.Logger
	mux             *http.ServeMux
	started         atomic.Bool
	cutOff          atomic.Bool // reviews were cut off at shutdown
}

func errCutOff(timeout time.Duration) error {
	return fmt.Errorf("admission reviews still in flight after the shutdown timeout of %s were cut off", timeout)
}

var _ crwebhook.Server = (*webhookServer)(nil)

func newWebhookServer(host string, port int, tlsConfig *tls.Config, shutdownTimeout time.Duration, log logr.Logger) *webhookServer {
	return &webhookServer{
		addr:            net.JoinHostPort(host, strconv.Itoa(port)),
		tlsConfig:       tlsConfig,
		shutdownTimeout: shutdownTimeout,
		log:             log,
		mux:             http.NewServeMux(),
	}
}

// NeedLeaderElection is false: every replica serves admission.
func (s *webhookServer) NeedLeaderElection() bool { return false }

// Register serves hook at path.
func (s *webhookServer) Register(path string, hook http.Handler) { s.mux.Handle(path, hook) }

// WebhookMux returns the server's mux.
func (s *webhookServer) WebhookMux() *http.ServeMux { return s.mux }

// StartedChecker is a readiness check that passes once the server listens.
func (s *webhookServer) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		if !s.started.Load() {
			return errors.New("webhook server has not started")
		}
		return nil
	}
}

// Start serves until ctx is done, then stops accepting, waits at most the shutdown timeout
// for the reviews in flight, and returns. Reviews still running then are cut off (their
// connections closed, their contexts cancelled) and Start returns an error saying so.
func (s *webhookServer) Start(ctx context.Context) error {
	ln, err := tls.Listen("tcp", s.addr, s.tlsConfig)
	if err != nil {
		return fmt.Errorf("listening for admission reviews on %s: %w", s.addr, err)
	}
	// The requests' base context outlives ctx: a shutdown lets reviews finish.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// HTTP/2 when the TLS config offers h2 (ServerOptions.EnableHTTP2).
		HTTP2:       &http.HTTP2Config{MaxConcurrentStreams: maxConcurrentStreams},
		BaseContext: func(net.Listener) context.Context { return base },
		// Handshake errors (a port scanner, a client that does not trust the CA or offers
		// no version we accept) and other connection errors go to the logger, rate-limited.
		ErrorLog: log.New(&serverErrors{failures: newFailures(nil, s.log)}, "", 0),
	}
	s.log.Info("serving admission webhooks", "address", s.addr)
	s.started.Store(true)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving admission reviews: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down the webhook server", "timeout", s.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.cutOff.Store(true)
		cancelBase()
		_ = srv.Close()
		return errCutOff(s.shutdownTimeout)
	}
	<-served
	return nil
}

// maxServerErrorBytes bounds what one logged net/http error keeps: its lines name the
// client's address and the error, a few hundred bytes.
const maxServerErrorBytes = 1 << 10

// serverErrors is the webhook port's http.Server ErrorLog: it turns each line net/http
// writes (one per Write, log.Logger's contract) into a log line of the webhook logger, so
// that a failed TLS handshake is seen rather than lost, and rate-limits them per kind like
// the reviews answered with an error (failures), since any client can cause them.
type serverErrors struct {
	failures *failures // logf only: these are connections, not reviews, so nothing is counted
}

// Write logs p, one line of net/http's server log; it never fails.
func (e *serverErrors) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p[:min(len(p), maxServerErrorBytes)]))
	e.failures.logf(serverErrorReason(msg), "webhook port connection error", "error", msg)
	return len(p), nil
}

// serverErrorReason classifies a net/http server log line by what it reports: "tls_handshake"
// (net/http's "http: TLS handshake error from <addr>: <err>"), "http2" (the HTTP/2 server's
// own lines) or "http" (the rest: a failed Accept, a handler's panic, superfluous WriteHeader
// calls).
func serverErrorReason(msg string) string {
	switch {
	case strings.Contains(msg, "TLS handshake error"):
		return "tls_handshake"
	case strings.HasPrefix(msg, "http2:"):
		return "http2"
	default:
		return "http"
	}
}
