package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/loomguard/loomguard/policies"
)

const (
	// loomguardTimeout bounds loomguard's start until /readyz answers 200.
	loomguardTimeout = 30 * time.Second
	// reloadTimeout bounds the wait for loomguard to pick up an edited config file.
	reloadTimeout = 15 * time.Second
)

// AuditInterval is the --audit-interval of the harness's loomguard processes.
const AuditInterval = 2 * time.Second

// loomguardSetup is what stays the same across loomguard restarts.
type loomguardSetup struct {
	port        int // webhook (HTTPS)
	metricsPort int
	healthPort  int
	certDir     string // tls.crt, tls.key (and ca.crt)
	caPEM       []byte // the CA of tls.crt: the webhooks' caBundle
	configPath  string
	extraArgs   []string // SetLoomguardArgs
	// clientCAFile signed clientCert, the certificate kube-apiserver presents to the
	// webhook port.
	clientCAFile string
	clientCert   tls.Certificate
}

// LoomguardURL is the base URL of loomguard's webhook server.
func (c *Cluster) LoomguardURL() string { return "https://" + hostPort(c.lg.port) }

// LoomguardMetricsURL is the URL of loomguard's Prometheus metrics.
func (c *Cluster) LoomguardMetricsURL() string {
	return "http://" + hostPort(c.lg.metricsPort) + "/metrics"
}

// LoomguardServingCertificate is loomguard's serving certificate and key (for 127.0.0.1,
// signed by LoomguardCAPEM), for a test's own webhook server on loopback.
func (c *Cluster) LoomguardServingCertificate() (tls.Certificate, error) {
	return tls.LoadX509KeyPair(filepath.Join(c.lg.certDir, "tls.crt"), filepath.Join(c.lg.certDir, "tls.key"))
}

// LoomguardCAPEM is the PEM certificate of the CA that signed loomguard's serving
// certificate: the webhooks' caBundle.
func (c *Cluster) LoomguardCAPEM() []byte { return bytes.Clone(c.lg.caPEM) }

// LoomguardClientCAFile is the CA of the client certificate kube-apiserver presents when it
// calls loomguard's webhooks (given through its AdmissionConfiguration's kubeConfigFile).
// loomguard ignores the certificate unless started with --client-ca-file set to this file
// (SetLoomguardArgs); then it refuses every TLS client without one of this CA.
func (c *Cluster) LoomguardClientCAFile() string { return c.lg.clientCAFile }

// LoomguardPolicies decodes loomguard's --config file as loomguard does: the config in force
// once loomguard has reloaded it.
func (c *Cluster) LoomguardPolicies() (*policies.Config, error) {
	data, err := os.ReadFile(c.lg.configPath)
	if err != nil {
		return nil, fmt.Errorf("reading loomguard's config: %w", err)
	}
	cfg, errs := policies.LoadConfig(data)
	if len(errs) > 0 {
		return nil, fmt.Errorf("loomguard's config %s: %w", c.lg.configPath, errs.ToAggregate())
	}
	return cfg, nil
}

// LoomguardConfigPath is loomguard's --config file. Write it with SetLoomguardConfig, which
// waits until loomguard has reloaded it.
func (c *Cluster) LoomguardConfigPath() string { return c.lg.configPath }

// LoomguardPID is the process id of the running loomguard, 0 when it is stopped.
func (c *Cluster) LoomguardPID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loomguard == nil || c.loomguard.exited() != nil {
		return 0
	}
	return c.loomguard.pid()
}

// loomguardArgs is the `loomguard serve` command line.
func (c *Cluster) loomguardArgs() []string {
	return append(c.serveArgs(c.lg.port, c.lg.metricsPort, c.lg.healthPort, c.kubeconfig), c.lg.extraArgs...)
}

// serveArgs is the command line of a `loomguard serve` on these ports with this kubeconfig,
// the cluster's certificates and config file.
func (c *Cluster) serveArgs(port, metricsPort, healthPort int, kubeconfig string) []string {
	return []string{
		"serve",
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(port),
		"--cert-dir=" + c.lg.certDir,
		"--config=" + c.lg.configPath,
		"--metrics-bind-address=" + hostPort(metricsPort),
		// The harness and the tests scrape plain HTTP; TestMetricsAuth turns it on.
		"--metrics-secure=false",
		"--health-probe-bind-address=" + hostPort(healthPort),
		"--kubeconfig=" + kubeconfig,
		// The background audit: a short interval so that tests see a change within
		// seconds, and Events on the offending objects.
		"--audit-interval=" + AuditInterval.String(),
		"--audit-events",
	}
}

// StartLoomguard starts `loomguard serve` (again) on the same ports, certificates and config
// file, and waits until its /readyz answers 200 and its webhook port serves TLS with the
// certificate of the webhooks' caBundle. It is an error if loomguard is already running.
func (c *Cluster) StartLoomguard(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loomguard != nil && c.loomguard.exited() == nil {
		return errors.New("starting loomguard: already running")
	}
	if c.lg.configPath == "" {
		dir := filepath.Join(c.dir, "loomguard", "config")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating loomguard config dir: %w", err)
		}
		c.lg.configPath = filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(c.lg.configPath, []byte(c.cfg.LoomguardConfig), 0o600); err != nil {
			return fmt.Errorf("writing loomguard config: %w", err)
		}
	}
	p, err := startProcess("loomguard", c.logDir, c.bin("loomguard"), c.loomguardArgs())
	if err != nil {
		return err
	}
	c.loomguard = p

	return c.waitLoomguardReady(ctx, p, c.lg.port, c.lg.healthPort)
}

// waitLoomguardReady waits until the loomguard process p answers 200 on /readyz of its
// health port and serves TLS with the webhooks' certificate on its webhook port. It
// presents the API server's client certificate, which --client-ca-file requires.
func (c *Cluster) waitLoomguardReady(ctx context.Context, p *process, port, healthPort int) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.lg.caPEM)
	tlsConfig := &tls.Config{
		RootCAs:      pool,
		ServerName:   "127.0.0.1",
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{c.lg.clientCert},
	}
	httpClient := &http.Client{Timeout: 2 * time.Second}
	readyz := "http://" + hostPort(healthPort) + "/readyz"
	return c.poll(ctx, loomguardTimeout, p.name+" /readyz and webhook TLS", []*process{p}, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyz, nil)
		if err != nil {
			return err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return err
		}
		drain(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz answered %s", resp.Status)
		}
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: tlsConfig}
		conn, err := d.DialContext(ctx, "tcp", hostPort(port))
		if err != nil {
			return fmt.Errorf("webhook port: %w", err)
		}
		return conn.Close()
	})
}

// StopLoomguard stops loomguard (SIGTERM, then SIGKILL after a grace period) and waits for
// it to exit. The webhook configurations stay registered: in governed namespaces the
// validating webhook then fails closed and the mutating one open. Stopping a stopped
// loomguard does nothing.
func (c *Cluster) StopLoomguard() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loomguard == nil {
		return nil
	}
	return c.loomguard.stop()
}

// SetLoomguardConfig replaces loomguard's config file (atomically, as a ConfigMap update
// would) and waits until loomguard has reloaded it, by watching its
// loomguard_config_reloads_total metric: it returns nil once the success count went up, an
// error if the error count went up (loomguard rejected the file and keeps its last good
// config) or nothing happened within a bounded time. Writing the content the file already
// has returns at once.
func (c *Cluster) SetLoomguardConfig(ctx context.Context, content string) error {
	current, err := os.ReadFile(c.lg.configPath)
	if err != nil {
		return fmt.Errorf("reading loomguard config: %w", err)
	}
	if string(current) == content {
		return nil
	}
	before, err := c.configReloads(ctx)
	if err != nil {
		return err
	}
	tmp := c.lg.configPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("writing loomguard config: %w", err)
	}
	if err := os.Rename(tmp, c.lg.configPath); err != nil {
		return fmt.Errorf("replacing loomguard config: %w", err)
	}
	var rejected bool
	err = c.poll(ctx, reloadTimeout, "loomguard to reload its config", []*process{c.loomguardProcess()}, func(ctx context.Context) error {
		now, err := c.configReloads(ctx)
		if err != nil {
			return err
		}
		switch {
		case now.success > before.success:
			return nil
		case now.failed > before.failed:
			rejected = true
			return nil
		}
		return errors.New("loomguard_config_reloads_total has not changed")
	})
	if err != nil {
		return err
	}
	if rejected {
		return errors.New("loomguard rejected the new config and keeps its last good one (see loomguard.log)")
	}
	return nil
}

func (c *Cluster) loomguardProcess() *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loomguard
}

type reloadCounts struct{ success, failed float64 }

// configReloads reads loomguard_config_reloads_total from loomguard's metrics.
func (c *Cluster) configReloads(ctx context.Context) (reloadCounts, error) {
	var r reloadCounts
	samples, err := c.LoomguardMetric(ctx, "loomguard_config_reloads_total")
	if err != nil {
		return r, err
	}
	for labels, v := range samples {
		switch {
		case strings.Contains(labels, `result="success"`):
			r.success += v
		case strings.Contains(labels, `result="error"`):
			r.failed += v
		}
	}
	return r, nil
}

// LoomguardMetric scrapes loomguard's metrics and returns the samples of one metric, keyed
// by their label set as written in the exposition format (`{a="x",b="y"}`, or "" for none).
// A metric without samples yields an empty map.
func (c *Cluster) LoomguardMetric(ctx context.Context, name string) (map[string]float64, error) {
	return scrapeMetric(ctx, c.LoomguardMetricsURL(), name)
}

// LoomguardMetrics is LoomguardMetric for several metrics from one scrape, so that their
// samples are consistent with each other; keyed by metric name.
func (c *Cluster) LoomguardMetrics(ctx context.Context, names ...string) (map[string]map[string]float64, error) {
	return scrapeMetrics(ctx, c.LoomguardMetricsURL(), names...)
}

// scrapeMetric scrapes a metrics endpoint and returns the samples of one metric, keyed by
// their label set as written in the exposition format.
func scrapeMetric(ctx context.Context, url, name string) (map[string]float64, error) {
	all, err := scrapeMetrics(ctx, url, name)
	if err != nil {
		return nil, err
	}
	return all[name], nil
}

// scrapeMetrics scrapes a metrics endpoint once and returns the samples of the metrics
// named, by name, each keyed by its label set as written in the exposition format. A
// metric without samples yields an empty map.
func scrapeMetrics(ctx context.Context, url string, names ...string) (map[string]map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scraping loomguard metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping loomguard metrics: %w", err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping loomguard metrics: %s", resp.Status)
	}
	out := map[string]map[string]float64{}
	for _, name := range names {
		out[name] = map[string]float64{}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		if i < 0 {
			continue
		}
		name, rest := line[:i], line[i:]
		samples, ok := out[name]
		if !ok {
			continue
		}
		labels := ""
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			if end < 0 {
				continue
			}
			labels, rest = rest[:end+1], rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("parsing metric line %q: %w", line, err)
		}
		samples[labels] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading loomguard metrics: %w", err)
	}
	return out, nil
}
