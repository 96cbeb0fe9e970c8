package audit

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
)

// auditGauges are the metrics of a run's snapshot.
var auditGauges = []string{
	"loomguard_audit_violations", "loomguard_audit_workloads",
	"loomguard_audit_last_run_timestamp_seconds", "loomguard_audit_duration_seconds",
}

// exposition renders the expected snapshot gauges in the text format.
func exposition(violations []string, workloads map[string]int, finished time.Time, duration float64) string {
	var b strings.Builder
	b.WriteString("# HELP loomguard_audit_duration_seconds How long the last complete audit took.\n# TYPE loomguard_audit_duration_seconds gauge\n")
	fmt.Fprintf(&b, "loomguard_audit_duration_seconds %g\n", duration)
	b.WriteString("# HELP loomguard_audit_last_run_timestamp_seconds When the last complete audit finished, in Unix seconds.\n# TYPE loomguard_audit_last_run_timestamp_seconds gauge\n")
	fmt.Fprintf(&b, "loomguard_audit_last_run_timestamp_seconds %g\n", float64(finished.Unix()))
	if len(violations) > 0 {
		b.WriteString(`# HELP loomguard_audit_violations Policy violations of running workloads found by the last complete audit, by policy, Pod Security Standards control (pod-security only, else empty), the action in force and namespace (namespaces beyond --audit-max-namespaces are summed under namespace="_other").` + "\n# TYPE loomguard_audit_violations gauge\n")
		for _, v := range violations {
			b.WriteString("loomguard_audit_violations" + v + "\n")
		}
	}
	b.WriteString("# HELP loomguard_audit_workloads Top-level workloads evaluated by the last complete audit, by kind (objects an audited controller owns are counted at that controller).\n# TYPE loomguard_audit_workloads gauge\n")
	for _, k := range Kinds() {
		fmt.Fprintf(&b, "loomguard_audit_workloads{kind=%q} %d\n", k.Kind, workloads[k.Kind])
	}
	return b.String()
}

// result builds a result from "ns:policy=action" violations, one workload per entry.
func result(finished time.Time, duration time.Duration, violations ...string) *Result {
	res := &Result{Kinds: map[string]int{}, Started: finished.Add(-duration), Duration: duration}
	for _, k := range Kinds() {
		res.Kinds[k.Kind] = 0
	}
	for _, v := range violations {
		ns, rest, _ := strings.Cut(v, ":")
		res.Workloads = append(res.Workloads, Workload{Ref: corev1.ObjectReference{Kind: "Deployment", Namespace: ns}, Report: report(rest)})
		res.Kinds["Deployment"]++
	}
	return res
}

// TestMetricsPublishReplacesSnapshot: before a run there are no series; each run's
// gauges replace the previous run's as a whole, so that a fixed violation's series is
// gone, not left at its old value or reset to zero.
func TestMetricsPublishReplacesSnapshot(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg, DefaultMaxNamespaces)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, auditGauges...); err != nil || n != 0 {
		t.Fatalf("before the first run: %d series (%v), want none", n, err)
	}
	t1 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	m.Publish(result(t1, 1500*time.Millisecond,
		"apps:image-tag=enforce", "apps:image-tag=enforce", "apps:health-probes=warn", "batch:image-tag=enforce",
		"apps:pod-security/hostPathVolumes=enforce", "apps:pod-security/hostPathVolumes=enforce", "apps:pod-security/sysctls=enforce"))
	want := exposition([]string{
		`{action="warn",control="",namespace="apps",policy="health-probes"} 1`,
		`{action="enforce",control="",namespace="apps",policy="image-tag"} 2`,
		`{action="enforce",control="hostPathVolumes",namespace="apps",policy="pod-security"} 2`,
		`{action="enforce",control="sysctls",namespace="apps",policy="pod-security"} 1`,
		`{action="enforce",control="",namespace="batch",policy="image-tag"} 1`,
	}, map[string]int{"Deployment": 7}, t1, 1.5)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), auditGauges...); err != nil {
		t.Fatal(err)
	}

	// batch fixed its image, apps its probes.
	t2 := t1.Add(time.Minute)
	m.Publish(result(t2, 2*time.Second, "apps:image-tag=enforce", "apps:image-tag=enforce", "batch:"))
	want = exposition([]string{
		`{action="enforce",control="",namespace="apps",policy="image-tag"} 2`,
	}, map[string]int{"Deployment": 3}, t2, 2)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), auditGauges...); err != nil {
		t.Fatal(err)
	}

	// Everything fixed: no violation series at all.
	t3 := t2.Add(time.Minute)
	m.Publish(result(t3, time.Second, "apps:", "batch:"))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exposition(nil, map[string]int{"Deployment": 2}, t3, 1)), auditGauges...); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsConcurrentScrapes: a scrape during a publish sees one whole snapshot.
func TestMetricsConcurrentScrapes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// Snapshot i has i workloads, each with one violation in its own namespace, so a
	// consistent scrape has as many violation series as Deployments.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 200; i++ {
			var vs []string
			for j := range i {
				vs = append(vs, fmt.Sprintf("ns-%d:image-tag=enforce", j))
			}
			m.Publish(result(time.Unix(int64(i), 0), time.Second, vs...))
		}
	}()
	for scrapes := 0; ; scrapes++ {
		select {
		case <-done:
			if scrapes == 0 {
				t.Log("publishing finished before the first scrape")
			}
			return
		default:
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var series, deployments float64
		for _, mf := range mfs {
			switch mf.GetName() {
			case "loomguard_audit_violations":
				series = float64(len(mf.GetMetric()))
			case "loomguard_audit_workloads":
				for _, s := range mf.GetMetric() {
					if s.GetLabel()[0].GetValue() == "Deployment" {
						deployments = s.GetGauge().GetValue()
					}
				}
			}
		}
		if series != deployments {
			t.Fatalf("scrape %d saw %v violation series and %v Deployments: a half-published run", scrapes, series, deployments)
		}
	}
}

// TestCapNamespaces: the namespaces with the most violations keep their label, the
// others are summed under "_other".
func TestCapNamespaces(t *testing.T) {
	counts := map[ViolationKey]int{
		{Policy: "image-tag", Action: "enforce", Namespace: "a"}:    5,
		{Policy: "health-probes", Action: "warn", Namespace: "a"}:   1,
		{Policy: "image-tag", Action: "enforce", Namespace: "b"}:    3,
		{Policy: "image-tag", Action: "enforce", Namespace: "c"}:    3,
		{Policy: "health-probes", Action: "warn", Namespace: "d"}:   2,
		{Policy: "network-policy", Action: "audit", Namespace: "e"}: 1,
	}
	tests := []struct {
		limit int
		want  []string
	}{
		{limit: 100, want: []string{
			"a/health-probes/warn=1", "a/image-tag/enforce=5", "b/image-tag/enforce=3", "c/image-tag/enforce=3",
			"d/health-probes/warn=2", "e/network-policy/audit=1",
		}},
		{limit: 5, want: []string{
			"a/health-probes/warn=1", "a/image-tag/enforce=5", "b/image-tag/enforce=3", "c/image-tag/enforce=3",
			"d/health-probes/warn=2", "e/network-policy/audit=1",
		}},
		// a (6), then b and c (3 each, by name); d and e summed.
		{limit: 3, want: []string{
			"_other/health-probes/warn=2", "_other/network-policy/audit=1",
			"a/health-probes/warn=1", "a/image-tag/enforce=5", "b/image-tag/enforce=3", "c/image-tag/enforce=3",
		}},
		{limit: 1, want: []string{
			"_other/health-probes/warn=2", "_other/image-tag/enforce=6", "_other/network-policy/audit=1",
			"a/health-probes/warn=1", "a/image-tag/enforce=5",
		}},
		{limit: 0, want: []string{
			"_other/health-probes/warn=3", "_other/image-tag/enforce=11", "_other/network-policy/audit=1",
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			var got []string
			for _, v := range capNamespaces(counts, tt.limit) {
				got = append(got, fmt.Sprintf("%s/%s/%s=%g", v.Namespace, v.Policy, v.Action, v.n))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("capNamespaces(%d):\n got %q\nwant %q", tt.limit, got, tt.want)
			}
		})
	}
}

// TestNewMetricsReusesRegistered: a second set of metrics on the same registry (a second
// server in one process) reuses the registered collectors.
func TestNewMetricsReusesRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewMetrics(reg, 10)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMetrics(reg, 10)
	if err != nil {
		t.Fatal(err)
	}
	b.Failed()
	if got := testutil.ToFloat64(a.errors); got != 1 {
		t.Errorf("errors via the first metrics = %v, want 1", got)
	}
}
