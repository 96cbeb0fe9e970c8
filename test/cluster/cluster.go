// Package cluster runs a real, local Kubernetes control plane with loomguard registered as
// its admission webhook, for end-to-end tests and for `make run`.
//
// Start launches, on loopback addresses and free ports, under one temporary directory:
//
//   - etcd (data dir in the temporary directory, no fsync);
//   - kube-apiserver (client-certificate admin auth, RBAC, service-account token signing,
//     a serving certificate from the harness's CA, no endpoint reconciler, an audit log,
//     and an AdmissionConfiguration that gives its webhook calls a client certificate of a
//     third CA, which loomguard checks when started with --client-ca-file);
//   - kube-controller-manager (its own kubeconfig and client certificate, every controller
//     that works without nodes or a cloud, per-controller service-account credentials);
//   - the real `loomguard serve` binary, with a serving certificate from a second CA, a
//     config file that tests edit while it runs, and the admin kubeconfig;
//
// then registers the MutatingWebhookConfiguration and ValidatingWebhookConfiguration of
// manifests/base/webhook-configurations.yaml, the file users apply, with only their
// clientConfig rewritten to the loopback URL and CA of the local loomguard.
//
// The binaries come from $LOOMGUARD_BIN (the repository's bin/, filled by `make tools` and
// `make build`). Nothing is downloaded and nothing is skipped: a missing binary is an error
// that says which make target builds it.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Module is the loomguard module path, used to recognise the repository root.
const module = "github.com/loomguard/loomguard"

// LoomguardNamespace is loomguard's own namespace: exempt from its webhooks by the
// namespaceSelector of the webhook configurations. Start creates it.
const LoomguardNamespace = "loomguard-system"

// Config configures a local control plane. The zero value is usable.
type Config struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kubectl and loomguard.
	// Empty: $LOOMGUARD_BIN, else the repository's bin/.
	BinDir string
	// RepoRoot is the loomguard repository; the webhook configurations are read from its
	// manifests/base. Empty: found by walking up from the working directory.
	RepoRoot string
	// LoomguardConfig is the initial content of loomguard's --config file. Empty: an empty
	// file, which is the built-in Loom profile.
	LoomguardConfig string
	// Logf reports progress (one line per step). Nil discards it.
	Logf func(format string, args ...any)
	// KeepDir keeps the temporary directory (certificates, etcd data, logs) after Stop.
	KeepDir bool
	// ControllerManagerArgs are appended to kube-controller-manager's command line (a later
	// flag wins), e.g. a higher --kube-api-qps for load tests.
	ControllerManagerArgs []string
	// DisabledControllers are kube-controller-manager's controllers (by their --controllers
	// names) turned off besides those the harness turns off.
	DisabledControllers []string
	// APIServerArgs are appended to kube-apiserver's command line (a later flag wins), e.g.
	// --profiling=true for a benchmark that profiles it.
	APIServerArgs []string
}

// Cluster is a running control plane with loomguard. Its methods are safe for concurrent
// use.
type Cluster struct {
	cfg      Config
	binDir   string
	repoRoot string
	dir      string // temporary directory holding everything below
	logDir   string
	pkiDir   string

	kubeconfig    string // admin kubeconfig
	kubectlCache  string
	auditLog      string
	apiServerPort int

	restConfig *rest.Config
	clientset  *kubernetes.Clientset

	etcd      *process
	apiserver *process
	kcm       *process

	lg loomguardSetup

	mu        sync.Mutex // guards loomguard and extras
	loomguard *process
	extras    []*process // StartExtraLoomguard's, stopped with the cluster

	stopOnce sync.Once
	stopErr  error
}

// requiredBinaries are the binaries the harness runs, each with the make target that
// builds it.
func requiredBinaries() [][2]string {
	return [][2]string{
		{"etcd", "make tools"},
		{"kube-apiserver", "make tools"},
		{"kube-controller-manager", "make tools"},
		{"kubectl", "make tools"},
		{"loomguard", "make build"},
	}
}

// Start brings up etcd, kube-apiserver, kube-controller-manager and loomguard, registers
// loomguard's webhooks and waits until admission goes through them. On error everything
// started so far is stopped again, and the error carries the tails of the component logs
// (unless ctx ended: an interrupt). ctx bounds the start-up only; the cluster runs until
// Stop.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	c := &Cluster{cfg: cfg}
	if err := c.resolvePaths(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "loomguard-cluster-")
	if err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	c.dir = dir
	c.logDir = filepath.Join(dir, "logs")
	c.pkiDir = filepath.Join(dir, "pki")
	c.kubectlCache = filepath.Join(dir, "kubectl-cache")
	for _, d := range []string{c.logDir, c.pkiDir, c.kubectlCache} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			c.Stop()
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := c.start(ctx); err != nil {
		if ctx.Err() != nil {
			// Interrupted: nothing to debug.
			c.Stop()
			return nil, err
		}
		tails := c.LogTails(40)
		c.Stop()
		return nil, fmt.Errorf("%w\n\ncomponent logs (last lines):\n%s", err, tails)
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	begin := time.Now()
	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer := ports[0], ports[1]
	c.apiServerPort = ports[2]
	c.lg.port, c.lg.metricsPort, c.lg.healthPort = ports[3], ports[4], ports[5]
	pki, err := c.writePKI()
	if err != nil {
		return err
	}

	if err := c.startEtcd(ctx, etcdClient, etcdPeer); err != nil {
		return err
	}
	c.logf("etcd ready on %s (%s)", hostPort(etcdClient), since(begin))

	// kube-controller-manager waits for the API server by itself: start both at once.
	if err := c.startAPIServer(etcdClient, pki); err != nil {
		return err
	}
	if err := c.startControllerManager(pki); err != nil {
		return err
	}
	if err := c.waitAPIServer(ctx); err != nil {
		return err
	}
	c.logf("kube-apiserver ready on https://%s (%s)", hostPort(c.apiServerPort), since(begin))

	// loomguard's namespace holds its Lease: created first, loomguard takes the Lease, and
	// with it the writing of the webhooks' matchConditions, at once.
	if err := c.CreateNamespace(ctx, LoomguardNamespace); err != nil {
		return err
	}
	if err := c.StartLoomguard(ctx); err != nil {
		return err
	}
	c.logf("loomguard serving on https://%s (%s)", hostPort(c.lg.port), since(begin))

	if err := c.waitControllerManager(ctx); err != nil {
		return err
	}
	c.logf("kube-controller-manager ready: default ServiceAccount and kube-root-ca.crt exist (%s)", since(begin))

	if err := c.RegisterWebhooks(ctx); err != nil {
		return err
	}
	if err := c.waitMatchConditions(ctx); err != nil {
		return err
	}
	c.logf("webhooks %s and %s registered and answering, with loomguard's matchConditions (%s)", mutatingWebhook, validatingWebhook, since(begin))
	return nil
}

func since(t time.Time) string {
	return time.Since(t).Round(10 * time.Millisecond).String()
}

func (c *Cluster) logf(format string, args ...any) {
	if c.cfg.Logf != nil {
		c.cfg.Logf(format, args...)
	}
}

// resolvePaths finds the repository and the binaries, and checks that every binary exists.
func (c *Cluster) resolvePaths() error {
	c.repoRoot = c.cfg.RepoRoot
	if c.repoRoot == "" {
		root, err := findRepoRoot()
		if err != nil {
			return err
		}
		c.repoRoot = root
	}
	c.binDir = c.cfg.BinDir
	if c.binDir == "" {
		c.binDir = os.Getenv("LOOMGUARD_BIN")
	}
	if c.binDir == "" {
		c.binDir = filepath.Join(c.repoRoot, "bin")
	}
	abs, err := filepath.Abs(c.binDir)
	if err != nil {
		return fmt.Errorf("resolving bin directory %s: %w", c.binDir, err)
	}
	c.binDir = abs
	var missing []string
	for _, b := range requiredBinaries() {
		name, target := b[0], b[1]
		path := filepath.Join(c.binDir, name)
		st, err := os.Stat(path)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, fmt.Sprintf("%s (run `%s`)", path, target))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing binaries: %s; the e2e harness never downloads anything: `make e2e` and `make run` build them", strings.Join(missing, ", "))
	}
	return nil
}

// findRepoRoot walks up from the working directory, then from this source file, to the
// directory whose go.mod declares the loomguard module.
func findRepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && isLoomguardModule(string(data)) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("cannot find the loomguard repository (a go.mod declaring " + module + ") above the working directory; set Config.RepoRoot")
}

func isLoomguardModule(gomod string) bool {
	for line := range strings.Lines(gomod) {
		if fields := strings.Fields(line); len(fields) == 2 && fields[0] == "module" {
			return fields[1] == module
		}
	}
	return false
}

// bin is the path of a binary in the bin directory.
func (c *Cluster) bin(name string) string { return filepath.Join(c.binDir, name) }

// Stop stops loomguard, kube-controller-manager, kube-apiserver and etcd, in that order,
// and removes the temporary directory unless Config.KeepDir is set. It is idempotent.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		if err := c.stopExtraLoomguards(); err != nil {
			errs = append(errs, err)
		}
		if err := c.StopLoomguard(); err != nil {
			errs = append(errs, err)
		}
		for _, p := range []*process{c.kcm, c.apiserver, c.etcd} {
			if p == nil {
				continue
			}
			if err := p.stop(); err != nil {
				errs = append(errs, err)
			}
		}
		if c.dir != "" {
			if c.cfg.KeepDir {
				c.logf("kept %s", c.dir)
			} else if err := os.RemoveAll(c.dir); err != nil {
				errs = append(errs, fmt.Errorf("removing %s: %w", c.dir, err))
			}
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// Kubeconfig is the path of the admin kubeconfig (client certificate in group
// system:masters).
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// RESTConfig returns a copy of the admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.restConfig) }

// Clientset is an admin client-go clientset.
func (c *Cluster) Clientset() *kubernetes.Clientset { return c.clientset }

// RepoRoot is the loomguard repository the cluster reads manifests from.
func (c *Cluster) RepoRoot() string { return c.repoRoot }

// RepoPath joins path elements to the repository root.
func (c *Cluster) RepoPath(elem ...string) string {
	return filepath.Join(append([]string{c.repoRoot}, elem...)...)
}

// Dir is the temporary directory holding the certificates, etcd's data and the logs.
func (c *Cluster) Dir() string { return c.dir }

// LogDir holds one log file per component (etcd.log, kube-apiserver.log,
// kube-controller-manager.log, loomguard.log) and the API server's audit.log.
func (c *Cluster) LogDir() string { return c.logDir }

// AuditLogPath is the API server's audit log: one JSON event per line, at Metadata level,
// for creates and updates of the workload kinds loomguard governs.
func (c *Cluster) AuditLogPath() string { return c.auditLog }

// LogTails returns the last n lines of every component log, each under a header.
func (c *Cluster) LogTails(n int) string {
	var b strings.Builder
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "loomguard"} {
		path := filepath.Join(c.logDir, name+".log")
		if _, err := os.Stat(path); err != nil {
			continue
		}
		fmt.Fprintf(&b, "----- %s (%s) -----\n%s\n", name, path, tail(path, n))
	}
	return b.String()
}

// PIDs are the process ids of the running components, by name: etcd, kube-apiserver,
// kube-controller-manager and loomguard (absent once it has exited).
func (c *Cluster) PIDs() map[string]int {
	out := map[string]int{}
	for _, p := range []*process{c.etcd, c.apiserver, c.kcm} {
		if p != nil && p.exited() == nil {
			out[p.name] = p.pid()
		}
	}
	if pid := c.LoomguardPID(); pid != 0 {
		out["loomguard"] = pid
	}
	return out
}

// BinPath is the path of a binary in the bin directory the cluster runs (kubectl,
// loomguard, ...), for tests that start processes of their own.
func (c *Cluster) BinPath(name string) string { return c.bin(name) }
