package audit

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// OtherNamespace is the namespace label of the violations of the namespaces beyond the
// cardinality cap. It cannot clash with a namespace: names are DNS labels, without "_".
const OtherNamespace = "_other"

// DefaultMaxNamespaces is the default cap on the namespace label values of
// loomguard_audit_violations.
const DefaultMaxNamespaces = 100

// Metrics are the audit's Prometheus metrics. The gauges of a run are served from one
// immutable snapshot that Publish swaps in atomically when a run completes: a scrape sees
// the whole last complete run or the whole previous one, never a mix, and a series that
// the new run does not have is gone at once (no stale series, no reset window). Before
// this process completes a run (a replica that is not the leader), the run's gauges have
// no series at all; loomguard_audit_leader says which replica audits.
//
//   - loomguard_audit_violations{policy,control,action,namespace}: violations found by the
//     last complete run (namespaces beyond the cap are summed under namespace="_other");
//     control is the Pod Security Standards control of a pod-security violation (one of
//     PSA's check IDs, a bounded set) and "" for every other policy;
//   - loomguard_audit_workloads{kind}: top-level workloads evaluated by it;
//   - loomguard_audit_last_run_timestamp_seconds: when it finished;
//   - loomguard_audit_duration_seconds: how long it took. A gauge, not a histogram: runs
//     come once per interval, too rarely for buckets to say more than the last value and
//     max_over_time do, and the gauge belongs to the same snapshot as the timestamp;
//   - loomguard_audit_errors_total: runs that failed (the last complete result stays);
//   - loomguard_audit_leader: 1 while this replica holds the lease and audits, else 0.
//
// Build them with NewMetrics; the zero value is not usable.
type Metrics struct {
	maxNamespaces int
	snapshot      *snapshotCollector
	errors        prometheus.Counter
	leader        prometheus.Gauge
}

// NewMetrics creates the audit metrics and registers them with reg (controller-runtime's
// metrics.Registry in the server). maxNamespaces caps the namespace label values of
// loomguard_audit_violations (DefaultMaxNamespaces when negative). Metrics that reg
// already holds are reused.
func NewMetrics(reg prometheus.Registerer, maxNamespaces int) (*Metrics, error) {
	if maxNamespaces < 0 {
		maxNamespaces = DefaultMaxNamespaces
	}
	m := &Metrics{
		maxNamespaces: maxNamespaces,
		snapshot:      newSnapshotCollector(),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loomguard_audit_errors_total",
			Help: "Audit runs that failed; the last complete result stays published.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loomguard_audit_leader",
			Help: "1 while this replica holds the audit lease and runs the audit, else 0.",
		}),
	}
	var err error
	if m.snapshot, err = register(reg, m.snapshot); err != nil {
		return nil, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.leader, err = register(reg, m.leader); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector reg already holds under the same name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(C); ok {
				return prev, nil
			}
		}
		return c, fmt.Errorf("registering audit metrics: %w", err)
	}
	return c, nil
}

// Publish replaces the published gauges with those of a complete run.
func (m *Metrics) Publish(res *Result) {
	s := &snapshot{
		violations: capNamespaces(res.Violations(), m.maxNamespaces),
		timestamp:  float64(res.Finished().UnixNano()) / 1e9,
		duration:   res.Duration.Seconds(),
	}
	for _, k := range Kinds() {
		s.workloads = append(s.workloads, kindCount{kind: k.Kind, n: float64(res.Kinds[k.Kind])})
	}
	m.snapshot.current.Store(s)
}

// Failed counts a failed run; the published result does not change.
func (m *Metrics) Failed() { m.errors.Inc() }

// SetLeader records whether this replica audits.
func (m *Metrics) SetLeader(leader bool) {
	if leader {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

// violationCount is one sample of loomguard_audit_violations.
type violationCount struct {
	ViolationKey
	n float64
}

type kindCount struct {
	kind string
	n    float64
}

// snapshot is the published result of a complete run. It is never modified once stored.
type snapshot struct {
	violations []violationCount
	workloads  []kindCount
	timestamp  float64
	duration   float64
}

// capNamespaces turns violation counts into samples, keeping the namespace label of the
// limit namespaces with the most violations (ties by name) and summing the others under
// OtherNamespace. The samples are sorted by namespace, policy, control and action.
func capNamespaces(counts map[ViolationKey]int, limit int) []violationCount {
	totals := map[string]int{}
	for k, n := range counts {
		totals[k.Namespace] += n
	}
	keep := map[string]bool{}
	if len(totals) <= limit {
		for ns := range totals {
			keep[ns] = true
		}
	} else {
		names := make([]string, 0, len(totals))
		for ns := range totals {
			names = append(names, ns)
		}
		slices.SortFunc(names, func(a, b string) int {
			return cmp.Or(cmp.Compare(totals[b], totals[a]), cmp.Compare(a, b))
		})
		for _, ns := range names[:limit] {
			keep[ns] = true
		}
	}
	merged := map[ViolationKey]int{}
	for k, n := range counts {
		if !keep[k.Namespace] {
			k.Namespace = OtherNamespace
		}
		merged[k] += n
	}
	out := make([]violationCount, 0, len(merged))
	for k, n := range merged {
		out = append(out, violationCount{ViolationKey: k, n: float64(n)})
	}
	slices.SortFunc(out, func(a, b violationCount) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Policy, b.Policy), cmp.Compare(a.Control, b.Control), cmp.Compare(a.Action, b.Action))
	})
	return out
}

// snapshotCollector serves the gauges of the current snapshot.
type snapshotCollector struct {
	current    atomic.Pointer[snapshot]
	violations *prometheus.Desc
	workloads  *prometheus.Desc
	lastRun    *prometheus.Desc
	duration   *prometheus.Desc
}

func newSnapshotCollector() *snapshotCollector {
	return &snapshotCollector{
		violations: prometheus.NewDesc("loomguard_audit_violations",
			"Policy violations of running workloads found by the last complete audit, by policy, Pod Security Standards control "+
				"(pod-security only, else empty), the action in force and namespace "+
				"(namespaces beyond --audit-max-namespaces are summed under namespace=\"_other\").",
			[]string{"policy", "control", "action", "namespace"}, nil),
		workloads: prometheus.NewDesc("loomguard_audit_workloads",
			"Top-level workloads evaluated by the last complete audit, by kind (objects an audited controller owns are counted at that controller).",
			[]string{"kind"}, nil),
		lastRun: prometheus.NewDesc("loomguard_audit_last_run_timestamp_seconds",
			"When the last complete audit finished, in Unix seconds.", nil, nil),
		duration: prometheus.NewDesc("loomguard_audit_duration_seconds",
			"How long the last complete audit took.", nil, nil),
	}
}

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.violations
	ch <- c.workloads
	ch <- c.lastRun
	ch <- c.duration
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.current.Load()
	if s == nil {
		return
	}
	for _, v := range s.violations {
		ch <- prometheus.MustNewConstMetric(c.violations, prometheus.GaugeValue, v.n, v.Policy, v.Control, v.Action, v.Namespace)
	}
	for _, w := range s.workloads {
		ch <- prometheus.MustNewConstMetric(c.workloads, prometheus.GaugeValue, w.n, w.kind)
	}
	ch <- prometheus.MustNewConstMetric(c.lastRun, prometheus.GaugeValue, s.timestamp)
	ch <- prometheus.MustNewConstMetric(c.duration, prometheus.GaugeValue, s.duration)
}
