//go:build !loomguard_cli

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/loomguard/loomguard/audit"
	"github.com/loomguard/loomguard/internal/manifest"
	"github.com/loomguard/loomguard/internal/report"
	"github.com/loomguard/loomguard/policies"
)

// clusterSource is the source of every result of `loomguard audit`.
const clusterSource = "cluster"

// connectFunc connects to a cluster: it returns a reader that lists straight from the API
// server, and the server's address for messages.
type connectFunc func(kubeconfig, kubeContext string, timeout time.Duration) (client.Reader, string, error)

// auditCommand runs `loomguard audit`: the background audit's code, once, printed like check.
func auditCommand(ctx context.Context, args []string, stdout, stderr io.Writer, connect connectFunc) int {
	f := newFlags(commandHelp{
		name:  "audit",
		usage: "audit [--kubeconfig FILE] [--context NAME] [-n NAMESPACE] [--config FILE] [-o text|json|sarif|junit] [-v]",
		description: `Audit what already runs in a cluster, once, with the code of serve's background audit:
list every Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob (page by
page, straight from the API server), with the PodDisruptionBudgets and NetworkPolicies
of their namespaces, and evaluate each against the policies. The report and the exit
codes are check's: "denied" means that admission would deny the workload today.

A finding is reported once, at the top-level controller: an object that a controller of
an audited kind owns (the ReplicaSets and Pods of a Deployment, the Jobs and Pods of a
CronJob, the Pods of a StatefulSet or DaemonSet) is left out, while a bare ReplicaSet or
the Pod of a custom controller is reported itself. Exempt namespaces are skipped. The
cross-object policies (pod-disruption-budget, network-policy) see the cluster's
PodDisruptionBudgets and NetworkPolicies.

With --config, the audit answers "what would this config deny?" before it is rolled out:
it evaluates with that file instead of the built-in Loom defaults. For instance, which
running workloads would pod-security deny at restricted, or at a newer version
(policies: {pod-security: {level: restricted, version: latest}})?

Results name the source "cluster" and document 0; every other field of the JSON, SARIF
and JUnit reports is check's. Nothing is printed on stdout when the cluster cannot be
read (connection, authorization or listing errors): the error goes to stderr, exit 2.
On a terminal, a progress line is shown on stderr while the audit runs.

The audit only lists: it needs list permission on pods, deployments, statefulsets,
daemonsets, replicasets, jobs, cronjobs, poddisruptionbudgets and networkpolicies.`,
		exitCodes: `  0  no workload violates an enforced policy
  1  at least one workload violates an enforced policy (admission would deny it)
  2  usage or config error, or the cluster could not be read`,
		examples: `  loomguard audit
  loomguard audit --context prod -n loom -o json
  loomguard audit --config new-loomguard.yaml     # what would the new config deny?
  loomguard audit --config restricted.yaml        # e.g. pod-security: {level: restricted}
  loomguard audit -o junit > audit-junit.xml`,
	}, stderr)
	kubeconfig := f.String("kubeconfig", "", "kubeconfig `FILE` (default: KUBECONFIG, ~/.kube/config, else the in-cluster config)")
	kubeContext := f.String("context", "", "kubeconfig context `NAME` (default: the current context)")
	namespace := f.StringP("namespace", "n", "", "audit only `NAMESPACE` (default: every namespace)")
	configPath := f.StringP("config", "c", "", "loomguard config `FILE` (default: the built-in Loom defaults)")
	output := newChoice("text", "text", "json", "sarif", "junit")
	f.VarP(output, "output", "o", "output format: text, json, sarif or junit")
	verbose := f.BoolP("verbose", "v", false, "text output: also list allowed workloads and waivers")
	pageSize := f.Int64("page-size", audit.DefaultPageSize, "objects per List call (bounds memory)")
	timeout := f.Duration("request-timeout", 60*time.Second, "timeout of each API request (0: none)")
	if code, done := f.parse(args, stdout, stderr); done {
		return code
	}
	if *pageSize <= 0 {
		return f.usageError(stderr, fmt.Sprintf("--page-size %d must be positive", *pageSize))
	}
	if *timeout < 0 {
		return f.usageError(stderr, fmt.Sprintf("--request-timeout %s must not be negative", *timeout))
	}
	engine, ok := loadEngine(*configPath, stderr)
	if !ok {
		return exitError
	}
	reader, host, err := connect(*kubeconfig, *kubeContext, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "loomguard audit: %v\n", err)
		return exitError
	}
	o := audit.Options{Reader: reader, Engine: engine, Namespace: *namespace, PageSize: *pageSize}
	progress := isTerminal(stderr)
	if progress {
		o.Progress = func(p audit.Progress) { writeProgress(stderr, host, p) }
	}
	res, err := audit.Run(ctx, o)
	if progress {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		fmt.Fprintf(stderr, "loomguard audit: auditing %s: %v\n", host, err)
		return exitError
	}
	c := auditResult(engine, res)
	if err := c.Write(stdout, output.value, *verbose); err != nil {
		fmt.Fprintf(stderr, "loomguard: writing %s report: %v\n", output.value, err)
		return exitError
	}
	return exitCode(c)
}

// auditResult turns an audit into check's result: one entry per evaluated workload, from
// the source "cluster". The objects themselves are not kept by the audit; each entry's
// workload holds only the kind and metadata that name it (the reports never read more).
func auditResult(engine *policies.Engine, res *audit.Result) *report.Result {
	doc := &manifest.Document{Source: clusterSource, Index: 0, Live: true}
	c := &report.Result{Engine: engine, ToolVersion: currentBuild().Version, Sources: []string{clusterSource}, Objects: make([]*report.Object, 0, len(res.Workloads))}
	for i := range res.Workloads {
		w := &res.Workloads[i]
		gvk := schema.FromAPIVersionAndKind(w.Ref.APIVersion, w.Ref.Kind)
		c.Objects = append(c.Objects, &report.Object{
			Doc:       doc,
			Item:      -1,
			GVK:       gvk,
			Name:      w.Ref.Name,
			Namespace: w.Ref.Namespace,
			Workload:  &policies.Workload{Kind: gvk.GroupKind(), Meta: &metav1.ObjectMeta{Namespace: w.Ref.Namespace, Name: w.Ref.Name}},
			Report:    w.Report,
			// The cluster is the whole truth: every workload had its namespace's view.
			CrossObject: true,
		})
	}
	return c
}

// connectCluster loads the kubeconfig as kubectl does (an explicit file, else KUBECONFIG
// or ~/.kube/config, else the in-cluster config) and returns a client without a cache.
func connectCluster(kubeconfig, kubeContext string, timeout time.Duration) (client.Reader, string, error) {
	cfg, err := restConfig(kubeconfig, kubeContext, timeout)
	if err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: audit.Scheme()})
	if err != nil {
		return nil, "", fmt.Errorf("creating a client for %s: %w", cfg.Host, err)
	}
	return c, cfg.Host, nil
}

// restConfig loads the kubeconfig as kubectl does, for the CLI's read-only clients.
func restConfig(kubeconfig, kubeContext string, timeout time.Duration) (*rest.Config, error) {
	// controller-runtime's components log through its root logger; the CLI has nothing
	// for them to say, and an unset logger would complain after 30 seconds.
	ctrllog.SetLogger(logr.Discard())
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("no cluster configured: give --kubeconfig, set KUBECONFIG or create ~/.kube/config")
		}
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg.QPS, cfg.Burst = auditQPS, auditBurst
	}
	cfg.Timeout = timeout
	cfg.UserAgent = "loomguard-audit/" + currentBuild().Version
	cfg.WarningHandler = rest.NoWarnings{}
	return cfg, nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// writeProgress rewrites the progress line.
func writeProgress(w io.Writer, host string, p audit.Progress) {
	var b strings.Builder
	fmt.Fprintf(&b, "\rloomguard: auditing %s: %s (%d/%d): %d listed", host, p.Kind, p.Step, p.Steps, p.Listed)
	if p.Remaining > 0 {
		fmt.Fprintf(&b, ", ~%d to go", p.Remaining)
	}
	fmt.Fprintf(&b, "; %d workloads evaluated\033[K", p.Evaluated)
	fmt.Fprint(w, b.String())
}
