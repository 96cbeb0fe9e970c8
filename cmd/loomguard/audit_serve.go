//go:build !loomguard_cli

package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/loomguard/loomguard/audit"
	"github.com/loomguard/loomguard/webhook"
)

const (
	// auditLeaseName is the Lease the replicas of `loomguard serve` compete for; its holder audits.
	auditLeaseName = "loomguard-audit"
	// defaultLeaseNamespace is where the Lease lives without POD_NAMESPACE or a flag.
	defaultLeaseNamespace = "loomguard-system"
	// leaseNamespaceEnv is set from the downward API (metadata.namespace) in the Deployment.
	leaseNamespaceEnv = "POD_NAMESPACE"
	// auditEventsController is the reportingController of the audit's Events.
	auditEventsController = "loomguard.io/audit"
	// auditQPS and auditBurst replace client-go's default client-side rate limit (5/10)
	// when the kubeconfig sets none: an audit lists its pages back to back.
	auditQPS, auditBurst = 50, 100
)

// auditServeFlags are serve's flags for the background audit.
type auditServeFlags struct {
	enabled        bool
	interval       time.Duration
	pageSize       int64
	maxNamespaces  int
	events         bool
	leaderElect    bool
	leaseNamespace string
}

// addAuditFlags registers the audit's flags on serve's flag set.
func addAuditFlags(fs *pflag.FlagSet, f *auditServeFlags) {
	fs.BoolVar(&f.enabled, "audit", true, "audit running workloads in the background and publish loomguard_audit_* metrics (needs a cluster)")
	fs.DurationVar(&f.interval, "audit-interval", audit.DefaultInterval, "time between the starts of two audit runs")
	fs.Int64Var(&f.pageSize, "audit-page-size", audit.DefaultPageSize, "objects per List call of the audit (bounds its memory)")
	fs.IntVar(&f.maxNamespaces, "audit-max-namespaces", audit.DefaultMaxNamespaces,
		`namespace label values of loomguard_audit_violations: the namespaces with the most violations keep theirs, the others are summed under "_other"`)
	fs.BoolVar(&f.events, "audit-events", false, "record a Warning Event on each workload with a new audit finding (needs RBAC to create events)")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "with a cluster, only the replica holding the Lease "+auditLeaseName+" audits, rotates self-managed certificates and writes the webhooks' matchConditions (admission runs on every replica); without a cluster there is no election")
	fs.StringVar(&f.leaseNamespace, "leader-election-namespace", "", "namespace of the Lease (default: $"+leaseNamespaceEnv+", else "+defaultLeaseNamespace+")")
}

// validate checks the audit flags and defaults the Lease's namespace: lookupEnv reads
// POD_NAMESPACE.
func (f *auditServeFlags) validate(lookupEnv func(string) (string, bool)) error {
	var errs []error
	if f.interval <= 0 {
		errs = append(errs, fmt.Errorf("--audit-interval %s must be positive", f.interval))
	}
	if f.pageSize <= 0 {
		errs = append(errs, fmt.Errorf("--audit-page-size %d must be positive", f.pageSize))
	}
	if f.maxNamespaces < 0 {
		errs = append(errs, fmt.Errorf("--audit-max-namespaces %d must not be negative", f.maxNamespaces))
	}
	if f.leaseNamespace == "" {
		if ns, ok := lookupEnv(leaseNamespaceEnv); ok && ns != "" {
			f.leaseNamespace = ns
		} else {
			f.leaseNamespace = defaultLeaseNamespace
		}
	}
	return errors.Join(errs...)
}

// serverOptions adds to o what the audit needs from the server: leader election with
// the Lease --leader-election-namespace/loomguard-audit (with a cluster and --leader-elect;
// the manager's one Lease elects the replica that runs every leader-elected Runnable: the
// audit, the self-managed certificate rotation and the match-condition syncer), and, for the audit's back-to-back
// pages, a client-side rate limit above client-go's default when the kubeconfig sets none.
func (f *auditServeFlags) serverOptions(restConfig *rest.Config, o webhook.ServerOptions) webhook.ServerOptions {
	if restConfig == nil {
		return o
	}
	if f.enabled && restConfig.QPS == 0 && restConfig.RateLimiter == nil {
		restConfig.QPS, restConfig.Burst = auditQPS, auditBurst
	}
	if f.leaderElect {
		o.LeaderElection = true
		o.LeaderElectionNamespace = f.leaseNamespace
		o.LeaderElectionID = auditLeaseName
	}
	return o
}

// addAuditor adds the background auditor to the server. Without a cluster, or with
// --audit=false, there is nothing to add.
func addAuditor(srv *webhook.Server, f *auditServeFlags, log logr.Logger) error {
	log = log.WithName("audit")
	mgr := srv.Manager()
	switch {
	case !f.enabled:
		log.Info("background audit disabled (--audit=false)")
		return nil
	case mgr == nil:
		log.Info("background audit disabled: no cluster connection")
		return nil
	}
	m, err := audit.NewMetrics(ctrlmetrics.Registry, f.maxNamespaces)
	if err != nil {
		return err
	}
	o := audit.AuditorOptions{
		Reader:   mgr.GetAPIReader(),
		Engine:   srv.Engine,
		Interval: f.interval,
		PageSize: f.pageSize,
		Metrics:  m,
		Log:      log,
	}
	if f.events {
		o.Events = mgr.GetEventRecorder(auditEventsController)
	}
	a, err := audit.NewAuditor(o)
	if err != nil {
		return err
	}
	if err := srv.Add(a); err != nil {
		return fmt.Errorf("adding the auditor: %w", err)
	}
	lease := "none: every replica audits (--leader-elect=false)"
	if f.leaderElect {
		lease = f.leaseNamespace + "/" + auditLeaseName
	}
	log.Info("background audit enabled", "interval", f.interval.String(), "lease", lease, "events", f.events)
	return nil
}
