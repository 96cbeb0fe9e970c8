package cluster

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
)

// ExtraLoomguard is one more `loomguard serve` process on the cluster: another replica, on
// ports of its own, with the same serving certificate and config file as the first. The
// webhook configurations keep pointing at the first one; the extra one serves admission
// only to whoever calls it, and competes for the audit Lease.
type ExtraLoomguard struct {
	c                             *Cluster
	p                             *process
	port, metricsPort, healthPort int
}

// ExtraLoomguardOptions configure StartExtraLoomguard.
type ExtraLoomguardOptions struct {
	// Name names the process and its log, <LogDir>/<Name>.log. Required, and unique.
	Name string
	// Kubeconfig is its --kubeconfig; empty means the admin kubeconfig.
	Kubeconfig string
	// Args are appended to the command line (a later flag wins).
	Args []string
}

// SetLoomguardArgs sets flags that the next StartLoomguard appends to loomguard's command
// line (a later flag wins); without arguments, the harness's own flags only. A running
// loomguard is not restarted.
func (c *Cluster) SetLoomguardArgs(args ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lg.extraArgs = args
}

// StartExtraLoomguard starts another `loomguard serve` and waits until it is ready. The
// cluster stops it in Stop, if Stop on the ExtraLoomguard did not.
func (c *Cluster) StartExtraLoomguard(ctx context.Context, o ExtraLoomguardOptions) (*ExtraLoomguard, error) {
	if o.Name == "" || o.Name == "loomguard" {
		return nil, errors.New("starting an extra loomguard: it needs a name of its own")
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	l := &ExtraLoomguard{c: c, port: ports[0], metricsPort: ports[1], healthPort: ports[2]}
	kubeconfig := o.Kubeconfig
	if kubeconfig == "" {
		kubeconfig = c.kubeconfig
	}
	args := append(c.serveArgs(l.port, l.metricsPort, l.healthPort, kubeconfig), o.Args...)
	if l.p, err = startProcess(o.Name, c.logDir, c.bin("loomguard"), args); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.extras = append(c.extras, l.p)
	c.mu.Unlock()
	if err := c.waitLoomguardReady(ctx, l.p, l.port, l.healthPort); err != nil {
		_ = l.p.stop()
		return nil, fmt.Errorf("%w\n%s", err, tail(l.p.logPath, 40))
	}
	return l, nil
}

// MetricsURL is the URL of its Prometheus metrics.
func (l *ExtraLoomguard) MetricsURL() string { return "http://" + hostPort(l.metricsPort) + "/metrics" }

// MetricsAddress is the host:port of its metrics server (for a client of its own, e.g. over
// HTTPS with --metrics-secure).
func (l *ExtraLoomguard) MetricsAddress() string { return hostPort(l.metricsPort) }

// Metric scrapes its metrics and returns the samples of one metric, as LoomguardMetric does.
func (l *ExtraLoomguard) Metric(ctx context.Context, name string) (map[string]float64, error) {
	return scrapeMetric(ctx, l.MetricsURL(), name)
}

// Metrics is Metric for several metrics from one scrape, keyed by metric name.
func (l *ExtraLoomguard) Metrics(ctx context.Context, names ...string) (map[string]map[string]float64, error) {
	return scrapeMetrics(ctx, l.MetricsURL(), names...)
}

// PID is its process id, 0 once it has exited.
func (l *ExtraLoomguard) PID() int {
	if l.p.exited() != nil {
		return 0
	}
	return l.p.pid()
}

// LogPath is its log file.
func (l *ExtraLoomguard) LogPath() string { return l.p.logPath }

// LogTail returns the last n lines of its log.
func (l *ExtraLoomguard) LogTail(n int) string { return tail(l.p.logPath, n) }

// Stop stops it (SIGTERM, then SIGKILL after a grace period) and waits for it to exit.
func (l *ExtraLoomguard) Stop() error { return l.p.stop() }

func (c *Cluster) stopExtraLoomguards() error {
	c.mu.Lock()
	extras := c.extras
	c.extras = nil
	c.mu.Unlock()
	var errs []error
	for _, p := range extras {
		if err := p.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WriteKubeconfigAs writes a copy of the admin kubeconfig to path that impersonates user
// (and groups): a client that has exactly the RBAC permissions of that user. The admin
// certificate's system:masters group may impersonate anyone.
func (c *Cluster) WriteKubeconfigAs(path, user string, groups ...string) error {
	cfg, err := clientcmd.LoadFromFile(c.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading the admin kubeconfig: %w", err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = user
		a.ImpersonateGroups = groups
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}
