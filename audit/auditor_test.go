package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loomguard/loomguard/policies"
)

// logLines collects a logger's lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{})
}

// take returns the lines logged since the last take that contain substr.
func (l *logLines) take(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	l.lines = nil
	return out
}

// eventLog records Events as "Type Reason Action Kind ns/name: note".
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (e *eventLog) Eventf(regarding, _ runtime.Object, eventtype, reason, action, note string, args ...any) {
	ref := regarding.(*corev1.ObjectReference)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, fmt.Sprintf("%s %s %s %s %s/%s{%s}: %s", eventtype, reason, action, ref.Kind, ref.Namespace, ref.Name, ref.FieldPath, fmt.Sprintf(note, args...)))
}

func (e *eventLog) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.events
	e.events = nil
	return out
}

// newTestAuditor returns an auditor over fc with a fresh registry, the Loom defaults and
// the test clock.
func newTestAuditor(t *testing.T, fc client.Reader, o AuditorOptions) (*Auditor, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg, DefaultMaxNamespaces)
	if err != nil {
		t.Fatal(err)
	}
	o.Reader, o.Metrics, o.Now = fc, m, testClock
	if o.Engine == nil {
		e := testEngine(t, "", testClock)
		o.Engine = func() *policies.Engine { return e }
	}
	a, err := NewAuditor(o)
	if err != nil {
		t.Fatal(err)
	}
	return a, reg
}

// violationSeries returns the loomguard_audit_violations samples as "ns/policy/action=n".
func violationSeries(t *testing.T, reg prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "loomguard_audit_violations" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			out = append(out, fmt.Sprintf("%s/%s/%s=%g", l["namespace"], l["policy"], l["action"], m.GetGauge().GetValue()))
		}
	}
	slices.Sort(out)
	return out
}

// TestAuditorFailedRunKeepsLastResult: a list error on page 2 fails the run: the gauges
// keep the last complete result (no half-updated view), errors_total counts it, and the
// next good run replaces the view.
func TestAuditorFailedRunKeepsLastResult(t *testing.T) {
	objs := objects(
		baseDeployment(t, "apps", "a", latest, staging), baseDeployment(t, "apps", "b", latest, staging),
		baseDeployment(t, "apps", "c", staging), netpolFor("apps", ""),
	)
	fc := newFakeCluster(t, objs...)
	var logs logLines
	a, reg := newTestAuditor(t, fc, AuditorOptions{PageSize: 2, Log: logs.logger()})
	ctx := t.Context()
	if err := a.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	first := []string{"apps/image-tag/enforce=2"}
	if got := violationSeries(t, reg); !slices.Equal(got, first) {
		t.Fatalf("after run 1: %q, want %q", got, first)
	}
	before, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}

	// a is fixed, and the second page of Deployments fails.
	var d appsv1.Deployment
	if err := fc.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "a"}, &d); err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/loom/a:1.0"
	if err := fc.Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
	fc.setFail(func(kind string, page int) error {
		if kind == "DeploymentList" && page == 1 {
			return errors.New("etcdserver: request timed out")
		}
		return nil
	})
	err = a.RunOnce(ctx)
	if err == nil || !strings.Contains(err.Error(), "listing Deployments (after 2): etcdserver: request timed out") {
		t.Fatalf("RunOnce() = %v, want the page-2 error", err)
	}
	after, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range before {
		if mf.GetName() == "loomguard_audit_errors_total" {
			continue
		}
		same := false
		for _, x := range after {
			if x.GetName() == mf.GetName() {
				same = x.String() == mf.String()
			}
		}
		if !same {
			t.Errorf("%s changed after a failed run", mf.GetName())
		}
	}
	if got := testutil.ToFloat64(a.o.Metrics.errors); got != 1 {
		t.Errorf("errors_total = %v, want 1", got)
	}
	if l := logs.take("audit run failed"); len(l) != 1 || !strings.Contains(l[0], "request timed out") {
		t.Errorf("failure log lines: %q", l)
	}

	fc.setFail(nil)
	if err := a.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := violationSeries(t, reg), []string{"apps/image-tag/enforce=1"}; !slices.Equal(got, want) {
		t.Errorf("after run 3: %q, want %q", got, want)
	}
	if l := logs.take("audit run finished"); len(l) != 1 || !strings.Contains(l[0], `"new"=0 "resolved"=1`) {
		t.Errorf("summary of run 3: %q", l)
	}
}

// TestAuditorReportsFindingsOnce: a finding is logged, and recorded as an Event, by the
// first run that sees it; the per-run caps hold the rest back for later runs; a summary
// line closes every run.
func TestAuditorReportsFindingsOnce(t *testing.T) {
	fc := newFakeCluster(t, objects(
		baseDeployment(t, "apps", "a", latest, staging), baseDeployment(t, "apps", "b", latest, staging),
		baseDeployment(t, "apps", "c", latest, staging), netpolFor("apps", ""),
	)...)
	var logs logLines
	var events eventLog
	a, _ := newTestAuditor(t, fc, AuditorOptions{Log: logs.logger(), Events: &events, MaxFindingLogs: 2, MaxEvents: 1})
	ctx := t.Context()
	finding := func(name string) string {
		return `"msg"="audit finding" "kind"="Deployment" "namespace"="apps" "name"="` + name + `" "policy"="image-tag" "action"="enforce" "field"="spec.template.spec.containers[0].image"`
	}
	event := func(name string) string {
		return `Warning PolicyViolation Audit Deployment apps/` + name + `{spec.template.spec.containers[0].image}: [image-tag] spec.template.spec.containers[0].image: container "loom" image "loom:latest" uses the forbidden tag "latest"; pin a version tag or a digest (enforce)`
	}
	type want struct {
		findings []string
		summary  string
		events   []string
	}
	steps := []struct {
		name   string
		before func()
		want   want
	}{
		{name: "first run: capped", want: want{
			findings: []string{finding("a"), finding("b")},
			summary:  `"violations"=3 "enforce"=3 "warn"=0 "audit"=0 "new"=3 "resolved"=0 "owned"=0 "exempt"=0 "duration"="0s" "findingsNotLogged"=1 "events"=1 "eventsHeldBack"=2`,
			events:   []string{event("a")},
		}},
		{name: "second run: the held-back ones", want: want{
			findings: []string{finding("c")},
			summary:  `"new"=0 "resolved"=0 "owned"=0 "exempt"=0 "duration"="0s" "events"=1 "eventsHeldBack"=1`,
			events:   []string{event("b")},
		}},
		{name: "third run", want: want{
			summary: `"new"=0 "resolved"=0 "owned"=0 "exempt"=0 "duration"="0s" "events"=1`,
			events:  []string{event("c")},
		}},
		{name: "nothing new", want: want{summary: `"new"=0 "resolved"=0 "owned"=0 "exempt"=0 "duration"="0s" "events"=0`}},
		{
			name: "a fixed, d new",
			before: func() {
				if err := fc.Delete(ctx, baseDeployment(t, "apps", "a")); err != nil {
					t.Fatal(err)
				}
				if err := fc.Create(ctx, baseDeployment(t, "apps", "d", latest, staging)); err != nil {
					t.Fatal(err)
				}
			},
			want: want{findings: []string{finding("d")}, summary: `"new"=1 "resolved"=1`, events: []string{event("d")}},
		},
	}
	for _, step := range steps {
		if step.before != nil {
			step.before()
		}
		if err := a.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		all := logs.take("")
		var findings, summaries []string
		for _, l := range all {
			switch {
			case strings.Contains(l, `"msg"="audit finding"`):
				findings = append(findings, l)
			case strings.Contains(l, `"msg"="audit run finished"`):
				summaries = append(summaries, l)
			}
		}
		if len(findings) != len(step.want.findings) {
			t.Errorf("%s: finding lines %q, want %d", step.name, findings, len(step.want.findings))
		}
		for i := range min(len(findings), len(step.want.findings)) {
			if !strings.Contains(findings[i], step.want.findings[i]) {
				t.Errorf("%s: finding line %q does not contain %q", step.name, findings[i], step.want.findings[i])
			}
		}
		if len(summaries) != 1 || !strings.Contains(summaries[0], step.want.summary) {
			t.Errorf("%s: summary lines %q, want one containing %q", step.name, summaries, step.want.summary)
		}
		if got := events.take(); !slices.Equal(got, step.want.events) {
			t.Errorf("%s: events\n got %q\nwant %q", step.name, got, step.want.events)
		}
	}
}

// TestAuditorUsesEngineInForce: each run takes the engine in force, so a config reload
// (here: image-tag turned to audit) shows in the next run.
func TestAuditorUsesEngineInForce(t *testing.T) {
	fc := newFakeCluster(t, objects(baseDeployment(t, "apps", "a", latest, staging), netpolFor("apps", ""))...)
	engines := []*policies.Engine{
		testEngine(t, "", testClock),
		testEngine(t, "policies:\n  image-tag: {action: audit}\n", testClock),
	}
	run := 0
	a, reg := newTestAuditor(t, fc, AuditorOptions{Engine: func() *policies.Engine { return engines[min(run, 1)] }})
	for i, want := range [][]string{{"apps/image-tag/enforce=1"}, {"apps/image-tag/audit=1"}} {
		run = i
		if err := a.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := violationSeries(t, reg); !slices.Equal(got, want) {
			t.Errorf("run %d: %q, want %q", i+1, got, want)
		}
	}
}

// TestAuditorStart: a leader-elected Runnable that audits at once and on every tick,
// reports itself the leader while it runs, and stops with its context.
func TestAuditorStart(t *testing.T) {
	fc := newFakeCluster(t, objects(baseDeployment(t, "apps", "a", latest, staging))...)
	a, reg := newTestAuditor(t, fc, AuditorOptions{Interval: 20 * time.Millisecond})
	if !a.NeedLeaderElection() {
		t.Error("the auditor must need leader election")
	}
	leader := func() float64 { return testutil.ToFloat64(a.o.Metrics.leader) }
	if leader() != 0 {
		t.Error("leader gauge before Start")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- a.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		calls := 0
		for _, c := range fc.listCalls() {
			if c.kind == "DeploymentList" {
				calls++
			}
		}
		if calls >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d runs within 10s at a 20ms interval", calls)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if leader() != 1 {
		t.Error("leader gauge is not 1 while auditing")
	}
	if got := violationSeries(t, reg); len(got) != 2 { // image-tag enforce, network-policy audit
		t.Errorf("violations: %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start() = %v", err)
	}
	if leader() != 0 {
		t.Error("leader gauge still 1 after Start returned")
	}
}

func TestNewAuditorNeedsItsParts(t *testing.T) {
	if _, err := NewAuditor(AuditorOptions{}); err == nil {
		t.Error("NewAuditor without reader, engine and metrics succeeded")
	}
}
