package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/loomguard/loomguard/policies"
)

// Defaults of ServerOptions, shared with the serve command's flags.
const (
	DefaultPort                   = 9443
	DefaultMetricsBindAddress     = ":8080"
	DefaultHealthProbeBindAddress = ":8081"
	DefaultShutdownTimeout        = 10 * time.Second
	DefaultCertName               = "tls.crt"
	DefaultKeyName                = "tls.key"
)

// DefaultCertDir is where controller-runtime's webhook server looks for its certificate.
func DefaultCertDir() string {
	return filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
}

// ServerOptions configure the admission server.
type ServerOptions struct {
	// ConfigPath is the config file; empty means the built-in Loom defaults.
	ConfigPath string
	// CertDir holds CertName and KeyName, the serving certificate and key. They are
	// reloaded when they change.
	CertDir, CertName, KeyName string
	// Host and Port are where the webhook server listens.
	Host string
	Port int
	// MetricsBindAddress and HealthProbeBindAddress are the metrics and probe servers'
	// addresses; "0" disables a server.
	MetricsBindAddress     string
	HealthProbeBindAddress string
	// SecureMetrics serves /metrics over HTTPS, with the webhook's serving certificate,
	// to clients the cluster authenticates (a bearer token, checked with a TokenReview) and
	// authorizes (a SubjectAccessReview for verb get on the nonResourceURL /metrics):
	// controller-runtime's filters.WithAuthenticationAndAuthorization. It needs a
	// RESTConfig; false serves plain HTTP to anyone, for local use.
	SecureMetrics bool
	// PprofBindAddress is the address of Go's net/http/pprof endpoints (/debug/pprof/);
	// empty or "0", the default, serves none. Profiles reveal the process's memory and
	// code: bind it to loopback and use it while diagnosing only.
	PprofBindAddress string
	// TLSMinVersion is the lowest TLS version served (tls.VersionTLS12 when zero).
	TLSMinVersion uint16
	// EnableHTTP2 serves HTTP/2 as well as HTTP/1.1 (ALPN h2, then http/1.1); false serves
	// HTTP/1.1 only. `loomguard serve` enables it by default: the API server then multiplexes
	// its concurrent reviews over one connection instead of opening a TLS connection for
	// each review beyond its few idle HTTP/1.1 ones. HTTP/2 is Go's net/http server, with
	// the protections it has had since Go 1.21.3 (CVE-2023-39325, "rapid reset"): at most
	// 250 concurrent streams per connection, handlers started for at most that many at once,
	// and a connection that keeps opening and resetting streams beyond that is closed.
	EnableHTTP2 bool
	// RESTConfig reaches the cluster. When nil, loomguard runs without a manager: admission
	// needs no cluster access.
	RESTConfig *rest.Config
	// ClientCAFile, when set, is a PEM bundle of the CAs whose client certificates the
	// webhook port accepts: every client must present one (the API server's, given to it
	// through its AdmissionConfiguration's kubeConfigFile; docs/install.md). Read at start.
	ClientCAFile string
	// MaxInFlight bounds the reviews worked on at once (DefaultMaxInFlight when zero);
	// more are refused with a 429 and Retry-After, which the API server retries.
	MaxInFlight int
	// ShutdownTimeout bounds how long in-flight reviews may take to finish on shutdown.
	ShutdownTimeout time.Duration
	// Registry receives loomguard's metrics; controller-runtime's metrics.Registry, which
	// the metrics server serves, when nil.
	Registry prometheus.Registerer
	// Logger is the root logger.
	Logger logr.Logger
	// Now is the engine's clock (exception expiry); time.Now when nil.
	Now func() time.Time
	// ConfigPoll is how often the config file is reread in case a change went unseen.
	ConfigPoll time.Duration
	// LeaderElection makes the manager (with a RESTConfig only) campaign for the Lease
	// LeaderElectionNamespace/LeaderElectionID before it starts the Runnables that need
	// leader election, such as the audit. Admission never needs it: every replica serves.
	// The lease is released on shutdown, so that another replica takes over at once; a
	// replica that loses it stops, as every controller-runtime leader does.
	LeaderElection          bool
	LeaderElectionNamespace string
	LeaderElectionID        string
}

func (o *ServerOptions) setDefaults() {
	if o.CertDir == "" {
		o.CertDir = DefaultCertDir()
	}
	if o.CertName == "" {
		o.CertName = DefaultCertName
	}
	if o.KeyName == "" {
		o.KeyName = DefaultKeyName
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.MetricsBindAddress == "" {
		o.MetricsBindAddress = DefaultMetricsBindAddress
	}
	if o.HealthProbeBindAddress == "" {
		o.HealthProbeBindAddress = DefaultHealthProbeBindAddress
	}
	if o.TLSMinVersion == 0 {
		o.TLSMinVersion = tls.VersionTLS12
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.Registry == nil {
		o.Registry = ctrlmetrics.Registry
	}
	if o.Logger.GetSink() == nil {
		o.Logger = crlog.Log
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Server is loomguard's admission server: the validating and mutating webhooks on the
// webhook server, the config reloader, the certificate watcher, metrics and health probes,
// run by a controller-runtime manager when a cluster is configured and by a plain group of
// Runnables otherwise. More Runnables (the audit) can be added before Start.
type Server struct {
	opts     ServerOptions
	engine   atomic.Pointer[policies.Engine]
	metrics  *Metrics
	handlers *Handlers
	reloader *ConfigReloader
	certs    *certwatcher.CertWatcher
	webhooks *webhookServer
	host     host
	mgr      manager.Manager // nil without a cluster
}

// host is what both a manager.Manager and the standalone group provide.
type host interface {
	Add(manager.Runnable) error
	AddHealthzCheck(name string, check healthz.Checker) error
	AddReadyzCheck(name string, check healthz.Checker) error
	Start(ctx context.Context) error
}

// NewServer loads the config and the serving certificate and wires the servers. An invalid
// config or a missing certificate is an error: loomguard does not start without them.
func NewServer(o ServerOptions) (*Server, error) {
	o.setDefaults()
	s := &Server{opts: o}
	log := o.Logger

	m, err := NewMetrics(o.Registry, s.engine.Load)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	registerRuntimeCollectors(o.Registry)

	s.reloader = NewConfigReloader(o.ConfigPath, &s.engine, m, log.WithName("config"), o.Now)
	if o.ConfigPoll > 0 {
		s.reloader.poll = o.ConfigPoll
	}
	if err := s.reloader.Load(); err != nil {
		return nil, err
	}

	certPath, keyPath := filepath.Join(o.CertDir, o.CertName), filepath.Join(o.CertDir, o.KeyName)
	s.certs, err = certwatcher.New(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("loading the serving certificate %s: %w", certPath, err)
	}
	// The file watch sees a swap at once; the poll catches what the watch can miss (a
	// file replaced again while its watch is being re-added).
	s.certs = s.certs.WithWatchInterval(5 * time.Second)
	s.certs.RegisterCallback(m.SetCertificate)

	s.handlers = NewHandlers(&s.engine, m, log.WithName("admission"), HandlerOptions{MaxInFlight: o.MaxInFlight})
	tlsConfig := &tls.Config{MinVersion: o.TLSMinVersion, GetCertificate: s.certs.GetCertificate, NextProtos: []string{"http/1.1"}}
	if o.EnableHTTP2 {
		tlsConfig.NextProtos = []string{"h2", "http/1.1"}
	}
	if o.ClientCAFile != "" {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the client CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the client CA bundle %s holds no PEM certificate", o.ClientCAFile)
		}
		tlsConfig.ClientCAs = pool
		tlsConfig.ClientAuth = tls.RequireAndVerifyClientCert
	}
	s.webhooks = newWebhookServer(o.Host, o.Port, tlsConfig, o.ShutdownTimeout, log.WithName("webhook"))
	s.webhooks.Register(ValidatePath, s.handlers.ValidatingWebhook())
	s.webhooks.Register(MutatePath, s.handlers.MutatingWebhook())

	if o.RESTConfig != nil {
		mgr, err := manager.New(o.RESTConfig, manager.Options{
			Logger:                  log,
			Metrics:                 s.metricsOptions(o),
			HealthProbeBindAddress:  o.HealthProbeBindAddress,
			PprofBindAddress:        o.PprofBindAddress,
			WebhookServer:           s.webhooks,
			GracefulShutdownTimeout: &o.ShutdownTimeout,
			LeaderElection:          o.LeaderElection,
			LeaderElectionNamespace: o.LeaderElectionNamespace,
			LeaderElectionID:        o.LeaderElectionID,
			// The process exits when the manager stops: hand the lease over at once.
			LeaderElectionReleaseOnCancel: true,
		})
		if err != nil {
			return nil, fmt.Errorf("creating the manager: %w", err)
		}
		mgr.GetWebhookServer() // adds it
		s.host, s.mgr = mgr, mgr
	} else {
		if o.SecureMetrics && o.MetricsBindAddress != "0" {
			return nil, errors.New("secure metrics authenticate and authorize their clients through the cluster: they need cluster access (a kubeconfig or the in-cluster config); serve plain metrics without one")
		}
		g, err := newGroup(o, log)
		if err != nil {
			return nil, err
		}
		if err := g.Add(s.webhooks); err != nil {
			return nil, err
		}
		s.host = g
	}

	for _, r := range []manager.Runnable{s.reloader, s.certs} {
		if err := s.host.Add(r); err != nil {
			return nil, fmt.Errorf("adding runnable: %w", err)
		}
	}
	checks := []struct {
		name  string
		check healthz.Checker
		ready bool
	}{
		{"ping", healthz.Ping, false},
		{"config", s.configLoaded, true},
		{"certificate", s.certificateLoaded, true},
		{"webhook", s.webhooks.StartedChecker(), true},
	}
	for _, c := range checks {
		add := s.host.AddHealthzCheck
		if c.ready {
			add = s.host.AddReadyzCheck
		}
		if err := add(c.name, c.check); err != nil {
			return nil, fmt.Errorf("adding %s check: %w", c.name, err)
		}
	}
	return s, nil
}

// Add adds a Runnable, started with the server and stopped before it returns.
func (s *Server) Add(r manager.Runnable) error { return s.host.Add(r) }

// Manager returns the controller-runtime manager that runs the server when it has a
// cluster (its APIReader, event recorders and leader election serve Runnables such as the
// audit), and nil when it runs without one.
func (s *Server) Manager() manager.Manager { return s.mgr }

// Handlers returns the admission handlers.
func (s *Server) Handlers() *Handlers { return s.handlers }

// metricsOptions configures the metrics server of the manager: plain HTTP, or HTTPS with
// the webhook's certificate (reloaded with it) and Kubernetes authentication and
// authorization of every request (SecureMetrics).
func (s *Server) metricsOptions(o ServerOptions) metricsserver.Options {
	mo := metricsserver.Options{BindAddress: o.MetricsBindAddress}
	if !o.SecureMetrics {
		return mo
	}
	mo.SecureServing = true
	mo.FilterProvider = filters.WithAuthenticationAndAuthorization
	mo.TLSOpts = []func(*tls.Config){func(c *tls.Config) {
		c.MinVersion = o.TLSMinVersion
		c.GetCertificate = s.certs.GetCertificate
		// HTTP/1.1 only, as controller-runtime's own metrics default (no HTTP/2 stream
		// handling exposed to scrapers).
		c.NextProtos = []string{"http/1.1"}
	}}
	return mo
}

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Engine returns the engine in force.
func (s *Server) Engine() *policies.Engine { return s.engine.Load() }

// Reloader returns the config reloader.
func (s *Server) Reloader() *ConfigReloader { return s.reloader }

// Start serves until ctx is done, then stops accepting, lets in-flight reviews finish
// within the shutdown timeout and returns.
func (s *Server) Start(ctx context.Context) error {
	s.opts.Logger.Info("starting loomguard", "port", s.opts.Port, "certDir", s.opts.CertDir,
		"config", s.reloader.name(), "cluster", s.opts.RESTConfig != nil)
	err := s.host.Start(ctx)
	if err == nil && s.webhooks.cutOff.Load() {
		// The host may have seen the webhook server stop in time, having cut them off.
		err = errCutOff(s.opts.ShutdownTimeout)
	}
	return err
}

func (s *Server) configLoaded(*http.Request) error {
	if s.engine.Load() == nil {
		return errors.New("no config loaded")
	}
	return nil
}

func (s *Server) certificateLoaded(*http.Request) error {
	if c, _ := s.certs.GetCertificate(nil); c == nil {
		return errors.New("no serving certificate loaded")
	}
	return nil
}

// registerRuntimeCollectors adds the Go and process collectors unless they are there:
// controller-runtime registers them only when its controller package is linked in.
func registerRuntimeCollectors(reg prometheus.Registerer) {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		_ = reg.Register(c) // AlreadyRegisteredError: they are there
	}
}

// group runs Runnables, the metrics server and the health probe server without a
// manager, for when loomguard has no cluster to talk to. Its shutdown mirrors the
// manager's: cancel everything, wait at most the shutdown timeout.
type group struct {
	log             logr.Logger
	shutdownTimeout time.Duration
	probeAddr       string
	pprofAddr       string

	mu        sync.Mutex
	started   bool
	runnables []manager.Runnable
	healthz   map[string]healthz.Checker
	readyz    map[string]healthz.Checker
}

func newGroup(o ServerOptions, log logr.Logger) (*group, error) {
	g := &group{
		log:             log,
		shutdownTimeout: o.ShutdownTimeout,
		probeAddr:       o.HealthProbeBindAddress,
		pprofAddr:       o.PprofBindAddress,
		healthz:         map[string]healthz.Checker{},
		readyz:          map[string]healthz.Checker{},
	}
	ms, err := metricsserver.NewServer(metricsserver.Options{BindAddress: o.MetricsBindAddress}, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("creating the metrics server: %w", err)
	}
	if ms != nil { // nil when disabled with "0"
		g.runnables = append(g.runnables, ms)
	}
	return g, nil
}

func (g *group) Add(r manager.Runnable) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		return errors.New("cannot add a runnable after the server started")
	}
	g.runnables = append(g.runnables, r)
	return nil
}

func (g *group) AddHealthzCheck(name string, check healthz.Checker) error {
	return g.addCheck(g.healthz, name, check)
}

func (g *group) AddReadyzCheck(name string, check healthz.Checker) error {
	return g.addCheck(g.readyz, name, check)
}

func (g *group) addCheck(checks map[string]healthz.Checker, name string, check healthz.Checker) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := checks[name]; ok {
		return fmt.Errorf("check %q already added", name)
	}
	checks[name] = check
	return nil
}

// Start runs every Runnable until ctx is done or one fails.
func (g *group) Start(ctx context.Context) error {
	g.mu.Lock()
	if g.started {
		g.mu.Unlock()
		return errors.New("already started")
	}
	g.started = true
	runnables := append([]manager.Runnable(nil), g.runnables...)
	g.mu.Unlock()

	if g.probeAddr != "" && g.probeAddr != "0" {
		ln, err := net.Listen("tcp", g.probeAddr)
		if err != nil {
			return fmt.Errorf("listening for health probes on %s: %w", g.probeAddr, err)
		}
		mux := http.NewServeMux()
		for path, checks := range map[string]map[string]healthz.Checker{"/healthz": g.healthz, "/readyz": g.readyz} {
			h := http.StripPrefix(path, &healthz.Handler{Checks: checks})
			mux.Handle(path, h)
			mux.Handle(path+"/", h)
		}
		runnables = append(runnables, &manager.Server{
			Name:     "health probe",
			Server:   &http.Server{Handler: mux, ReadHeaderTimeout: 32 * time.Second, IdleTimeout: 90 * time.Second},
			Listener: ln,
		})
	}

	if g.pprofAddr != "" && g.pprofAddr != "0" {
		ln, err := net.Listen("tcp", g.pprofAddr)
		if err != nil {
			return fmt.Errorf("listening for pprof on %s: %w", g.pprofAddr, err)
		}
		// The endpoints of controller-runtime's manager, for the same flag with a cluster.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		runnables = append(runnables, &manager.Server{
			Name:     "pprof",
			Server:   &http.Server{Handler: mux, ReadHeaderTimeout: 32 * time.Second, IdleTimeout: 90 * time.Second},
			Listener: ln,
		})
	}

	runCtx, cancel := context.WithCancel(crlog.IntoContext(ctx, g.log))
	defer cancel()
	errs := make(chan error, len(runnables))
	var wg sync.WaitGroup
	for _, r := range runnables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Start(runCtx); err != nil {
				errs <- err
				cancel()
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		g.log.Error(runErr, "a component failed; stopping")
	}
	cancel()

	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(g.shutdownTimeout):
		return errors.Join(runErr, fmt.Errorf("components did not stop within the grace period of %s; admission reviews still in flight were cut off", g.shutdownTimeout))
	}
	return runErr
}
