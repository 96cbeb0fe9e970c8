//go:build !loomguard_cli

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/loomguard/loomguard/webhook"
)

// envPrefix prefixes the environment variables that set serve's flags: --cert-dir is
// LOOMGUARD_CERT_DIR. A flag on the command line wins over its variable.
const envPrefix = "LOOMGUARD_"

// exitServeFailed: serve could not start or failed while serving.
const exitServeFailed = 1

// serveFlags are the flags of `loomguard serve`.
type serveFlags struct {
	config                 string
	certDir                string
	bindAddress            string
	port                   int
	metricsBindAddress     string
	metricsSecure          bool
	healthProbeBindAddress string
	pprofBindAddress       string
	logLevel               string
	logFormat              string
	tlsMinVersion          string
	kubeconfig             string
	enableHTTP2            bool
	shutdownTimeout        time.Duration
	maxInFlight            int
	clientCAFile           string
	certs                  certFlags                 // serve_certs.go
	audit                  auditServeFlags           // audit_serve.go
	match                  matchConditionFlags       // serve_match.go
	webhooks               webhookConfigurationFlags // serve_webhooks.go
}

func newServeFlagSet(f *serveFlags, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // serveCommand reports errors itself; --help is a flag
	fs.SortFlags = true
	fs.StringVar(&f.config, "config", "", "path to the YAML config; reloaded when it changes (empty: the built-in Loom defaults)")
	fs.StringVar(&f.certDir, "cert-dir", webhook.DefaultCertDir(), "directory holding the serving certificate tls.crt and key tls.key; reloaded when they change")
	fs.StringVar(&f.bindAddress, "bind-address", "", "IP address the webhook server listens on (empty: every interface)")
	fs.IntVar(&f.port, "port", webhook.DefaultPort, "port the webhook server listens on (HTTPS)")
	fs.StringVar(&f.metricsBindAddress, "metrics-bind-address", webhook.DefaultMetricsBindAddress, `address of the Prometheus /metrics endpoint ("0" disables it)`)
	fs.BoolVar(&f.metricsSecure, "metrics-secure", true, "serve /metrics over HTTPS (the webhook's certificate) to bearer tokens the cluster authenticates (TokenReview) and authorizes for get on the nonResourceURL /metrics (SubjectAccessReview); needs cluster access. --metrics-secure=false: plain HTTP to anyone, for local use")
	fs.StringVar(&f.healthProbeBindAddress, "health-probe-bind-address", webhook.DefaultHealthProbeBindAddress, `address of the /healthz and /readyz probes ("0" disables them)`)
	fs.StringVar(&f.pprofBindAddress, "pprof-bind-address", "0", `address of Go's /debug/pprof/ profiling endpoints, for diagnosis only ("0": off)`)
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info or error")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or console")
	fs.StringVar(&f.tlsMinVersion, "tls-min-version", "1.2", "lowest TLS version served: 1.2 or 1.3")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then KUBECONFIG or ~/.kube/config; admission runs without a cluster)")
	fs.BoolVar(&f.enableHTTP2, "enable-http2", true, "serve HTTP/2 as well as HTTP/1.1 on the webhook port, with Go's stream limits (--enable-http2=false: HTTP/1.1 only)")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", webhook.DefaultShutdownTimeout, "how long in-flight reviews may take to finish on SIGTERM")
	fs.StringVar(&f.clientCAFile, "client-ca-file", "", "PEM bundle of CAs: the webhook port then requires a client certificate signed by one (the API server's, from its AdmissionConfiguration kubeConfigFile); read at start")
	fs.IntVar(&f.maxInFlight, "max-in-flight", webhook.DefaultMaxInFlight, "reviews worked on at once; more wait for a slot up to half their timeout, then are refused with 429 and Retry-After, which the API server retries (sized for the Deployment's 512Mi memory limit)")
	addCertFlags(fs, &f.certs)
	addAuditFlags(fs, &f.audit)
	addMatchConditionFlags(fs, &f.match)
	addWebhookConfigurationFlags(fs, &f.webhooks)
	return fs
}

// writeServeHelp prints serve's usage, in the layout of the other commands' help.
func writeServeHelp(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, `Usage:
  loomguard serve [flags]

Serve loomguard's admission webhooks over TLS:
  %-10s %-22s denies, warns and audits
  %-10s %-22s applies the policies' safe defaults
The config file and the serving certificate are reloaded when they change. Admission
needs no cluster access: without a kubeconfig or in-cluster config, the webhook,
metrics and health servers run on their own (with --metrics-secure=false: secure
metrics ask the cluster who may read them).

Every flag can also be set with an environment variable, %sFLAG_NAME
(--cert-dir is %sCERT_DIR); a flag given on the command line wins.

Flags:
%s
Signals: SIGTERM and SIGINT stop accepting reviews and let those in flight finish within
--shutdown-timeout; SIGHUP rereads the config file (reviews in flight go on).

Exit codes:
  0  stopped on SIGTERM or SIGINT after in-flight reviews finished
  1  could not start (invalid config, missing certificate, unloadable --kubeconfig), failed,
     or stopped on SIGTERM or SIGINT with reviews that outlasted --shutdown-timeout (they
     were cut off)
  2  usage error
`, webhook.ValidatePath, webhook.ValidatingWebhookName, webhook.MutatePath, webhook.MutatingWebhookName,
		envPrefix, envPrefix, fs.FlagUsages())
}

// serveUsageError reports a wrong command line and returns exitError.
func serveUsageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "loomguard serve: %s\nRun 'loomguard serve --help' for usage.\n", msg)
	return exitError
}

// applyEnv sets each flag not given on the command line from its LOOMGUARD_ variable.
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := envName(f.Name)
		v, ok := lookup(name)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("invalid %s=%q: %w", name, v, err))
		}
	})
	return errors.Join(errs...)
}

func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func parseTLSVersion(s string) (uint16, error) {
	switch strings.TrimPrefix(strings.ToLower(s), "tls") {
	case "1.2", "12":
		return tls.VersionTLS12, nil
	case "1.3", "13":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unsupported --tls-min-version %q (want 1.2 or 1.3)", s)
}

// newLogger builds the zap logger behind every log line: controller-runtime's
// KubeAwareEncoder (a Kubernetes object is logged by kind, namespace and name, never whole)
// over a JSON or console encoder. Unlike controller-runtime's zap.New it does not sample:
// every denial and every mutation gets its line, even in a burst.
func newLogger(level, format string, out io.Writer) (logr.Logger, error) {
	var lvl zapcore.Level
	switch level {
	case "debug":
		lvl = zapcore.DebugLevel
	case "info":
		lvl = zapcore.InfoLevel
	case "error":
		lvl = zapcore.ErrorLevel
	default:
		return logr.Logger{}, fmt.Errorf("unsupported --log-level %q (want debug, info or error)", level)
	}
	cfg := zap.NewProductionEncoderConfig()
	cfg.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(cfg)
	case "console":
		enc = zapcore.NewConsoleEncoder(cfg)
	default:
		return logr.Logger{}, fmt.Errorf("unsupported --log-format %q (want json or console)", format)
	}
	sink := zapcore.Lock(zapcore.AddSync(out))
	core := zapcore.NewCore(&crzap.KubeAwareEncoder{Encoder: enc}, sink, lvl)
	return zapr.NewLogger(zap.New(core, zap.ErrorOutput(sink))), nil
}

// clusterConfig finds the cluster: --kubeconfig, else the in-cluster config, else KUBECONFIG
// or ~/.kube/config. It returns nil when there is none: admission needs no cluster. Only an
// explicit --kubeconfig that does not load is an error.
func clusterConfig(kubeconfig string, log logr.Logger) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	switch {
	case err == nil:
		return cfg, nil
	case clientcmd.IsEmptyConfig(err):
		log.Info("no cluster configured; serving admission without a cluster connection")
	default:
		log.Error(err, "ignoring the kubeconfig, which does not load; serving admission without a cluster connection")
	}
	return nil, nil
}

// reloadOnHangup makes SIGHUP reread the config file (which is reloaded on change anyway)
// instead of killing the process, as SIGHUP's default action would, cutting the reviews in
// flight. Reviews are never interrupted: a new config takes over for the next ones.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, r *webhook.ConfigReloader, log logr.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: rereading the config file; reviews in flight go on")
			if !r.Reload() {
				log.Info("SIGHUP: the config in force stays (unchanged, invalid, or the built-in defaults)")
			}
		}
	}
}

// serveCommand runs `loomguard serve` until SIGTERM or SIGINT (or ctx is done), then lets
// in-flight reviews finish and returns 0. It returns 2 for a usage error and 1 when the
// server cannot start (an invalid config, with all its errors, a missing certificate, an
// unloadable --kubeconfig), fails, or had to cut off reviews that outlasted
// --shutdown-timeout. SIGHUP rereads the config.
func serveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f serveFlags
	fs := newServeFlagSet(&f, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			writeServeHelp(stdout, fs)
			return exitOK
		}
		return serveUsageError(stderr, err.Error())
	}
	if fs.NArg() > 0 {
		return serveUsageError(stderr, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if err := applyEnv(fs, os.LookupEnv); err != nil {
		return serveUsageError(stderr, err.Error())
	}
	if err := f.webhooks.resolve(fs); err != nil {
		return serveUsageError(stderr, err.Error())
	}
	tlsMin, err := parseTLSVersion(f.tlsMinVersion)
	if err != nil {
		return serveUsageError(stderr, err.Error())
	}
	if f.port <= 0 || f.port > 65535 {
		return serveUsageError(stderr, fmt.Sprintf("--port %d out of range", f.port))
	}
	if f.maxInFlight <= 0 {
		return serveUsageError(stderr, fmt.Sprintf("--max-in-flight %d must be positive", f.maxInFlight))
	}
	if f.shutdownTimeout <= 0 {
		return serveUsageError(stderr, fmt.Sprintf("--shutdown-timeout %s must be positive", f.shutdownTimeout))
	}
	if err := f.certs.validate(); err != nil {
		return serveUsageError(stderr, err.Error())
	}
	if err := f.audit.validate(os.LookupEnv); err != nil {
		return serveUsageError(stderr, err.Error())
	}
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		return serveUsageError(stderr, err.Error())
	}
	// controller-runtime's own components (webhook server, certificate watcher, manager)
	// log through its root logger.
	ctrllog.SetLogger(log)
	log = log.WithName("loomguard")

	restConfig, err := clusterConfig(f.kubeconfig, log)
	if err != nil {
		fmt.Fprintf(stderr, "loomguard serve: %v\n", err)
		return exitServeFailed
	}
	certRunnables, err := setupCertificates(ctx, &f.certs, f.webhooks, restConfig, f.certDir, log)
	if err != nil {
		fmt.Fprintf(stderr, "loomguard serve: %v\n", err)
		return exitServeFailed
	}
	srv, err := webhook.NewServer(f.audit.serverOptions(restConfig, webhook.ServerOptions{
		ConfigPath:             f.config,
		CertDir:                f.certDir,
		Host:                   f.bindAddress,
		Port:                   f.port,
		MetricsBindAddress:     f.metricsBindAddress,
		SecureMetrics:          f.metricsSecure,
		HealthProbeBindAddress: f.healthProbeBindAddress,
		PprofBindAddress:       f.pprofBindAddress,
		TLSMinVersion:          tlsMin,
		EnableHTTP2:            f.enableHTTP2,
		RESTConfig:             restConfig,
		ShutdownTimeout:        f.shutdownTimeout,
		MaxInFlight:            f.maxInFlight,
		ClientCAFile:           f.clientCAFile,
		Logger:                 log,
	}))
	if err != nil {
		fmt.Fprintf(stderr, "loomguard serve: %v\n", err)
		return exitServeFailed
	}
	for _, r := range certRunnables {
		if err := srv.Add(r); err != nil {
			fmt.Fprintf(stderr, "loomguard serve: %v\n", err)
			return exitServeFailed
		}
	}
	if err := addAuditor(srv, &f.audit, log); err != nil {
		fmt.Fprintf(stderr, "loomguard serve: %v\n", err)
		return exitServeFailed
	}
	if err := addMatchConditionsSyncer(srv, &f.match, f.webhooks, restConfig, f.audit.leaderElect, log); err != nil {
		fmt.Fprintf(stderr, "loomguard serve: %v\n", err)
		return exitServeFailed
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOnHangup(ctx, hup, srv.Reloader(), log)
	if err := srv.Start(ctx); err != nil {
		log.Error(err, "server failed")
		fmt.Fprintf(stderr, "loomguard serve: %v\n", err)
		return exitServeFailed
	}
	log.Info("stopped")
	return exitOK
}
