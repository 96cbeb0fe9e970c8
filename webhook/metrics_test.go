package webhook

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
)

func TestAdmissionMetrics(t *testing.T) {
	h := newHarness(t, "")
	base := fixture(t, "../policies/testdata/base/deployment.yaml")
	insecure := fixture(t, "testdata/insecure-deployment.yaml")
	fixable := fixture(t, "testdata/fixable-deployment.yaml")
	configMap := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"loom"}}`)

	post(t, h.validate, admissionReview(t, base, req{}))
	post(t, h.validate, admissionReview(t, insecure, req{}))
	post(t, h.validate, admissionReview(t, insecure, req{dryRun: true}))
	post(t, h.validate, admissionReview(t, insecure, req{op: admissionv1.Delete}))
	post(t, h.validate, admissionReview(t, configMap, req{}))
	post(t, h.mutate, admissionReview(t, fixable, req{}))
	post(t, h.mutate, admissionReview(t, fixable, req{dryRun: true}))
	post(t, h.mutate, admissionReview(t, base, req{}))

	requests := []struct {
		labels []string
		want   float64
	}{
		{[]string{"validate", "CREATE", "Deployment", "allowed", "false", ""}, 1},
		{[]string{"validate", "CREATE", "Deployment", "denied", "false", ""}, 1},
		{[]string{"validate", "CREATE", "Deployment", "denied", "true", ""}, 1},
		{[]string{"validate", "DELETE", "Deployment", "skipped", "false", ""}, 1},
		{[]string{"validate", "CREATE", "other", "skipped", "false", ""}, 1},
		{[]string{"mutate", "CREATE", "Deployment", "patched", "false", ""}, 1},
		{[]string{"mutate", "CREATE", "Deployment", "patched", "true", ""}, 1},
		{[]string{"mutate", "CREATE", "Deployment", "allowed", "false", ""}, 1},
	}
	for _, r := range requests {
		if got := testutil.ToFloat64(h.metrics.requests.WithLabelValues(r.labels...)); got != r.want {
			t.Errorf("loomguard_admission_requests_total%q = %v, want %v", r.labels, got, r.want)
		}
	}
	if n := testutil.CollectAndCount(h.metrics.requests); n != len(requests) {
		t.Errorf("%d request series, want %d", n, len(requests))
	}

	// The violations of the one non-dry-run denial, each counted with its action.
	x := expect(t, h.engine.Load(), insecure, "")
	counts := map[string]int{}
	for _, c := range x.causes {
		counts[strings.TrimPrefix(strings.SplitN(c.Message, "]", 2)[0], "[")+",enforce"]++
	}
	for _, w := range x.warnings {
		counts[strings.TrimPrefix(strings.SplitN(w, "]", 2)[0], "[")+",warn"]++
	}
	for key, n := range counts {
		policy, action, _ := strings.Cut(key, ",")
		if got := testutil.ToFloat64(h.metrics.violations.WithLabelValues(policy, action, "admission")); got != float64(n) {
			t.Errorf("loomguard_policy_violations_total{policy=%q,action=%q} = %v, want %d", policy, action, got, n)
		}
	}
	if n := testutil.CollectAndCount(h.metrics.violations); n != len(counts) {
		t.Errorf("%d violation series, want %d (dry runs must not count)", n, len(counts))
	}

	const mutations = `
# HELP loomguard_mutations_total Fixes applied by the mutating webhook, by policy. Dry runs are not counted.
# TYPE loomguard_mutations_total counter
loomguard_mutations_total{policy="drop-all-capabilities"} 1
loomguard_mutations_total{policy="read-only-root-filesystem"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(mutations), "loomguard_mutations_total"); err != nil {
		t.Error(err)
	}

	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	observed := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "loomguard_admission_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			observed[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
			if b := m.GetHistogram().GetBucket(); b[0].GetUpperBound() != 0.0001 {
				t.Errorf("first bucket %v, want 100µs", b[0].GetUpperBound())
			}
		}
	}
	if observed["validate"] != 5 || observed["mutate"] != 3 {
		t.Errorf("duration observations %v, want validate 5, mutate 3", observed)
	}
}

func TestExceptionMetrics(t *testing.T) {
	h := newHarness(t, `
exceptions:
  - name: loom-latest
    policies: [image-tag]
    namespace: loom
    workload: loom
    owner: platform-team
    reason: the release pipeline pins digests from 0.10 on
    expires: "2027-01-31"
  - name: temporal-root
    policies: [run-as-non-root]
    namespace: loom
    workload: temporal
    owner: platform-team
    reason: upstream image runs as root
    expires: "2026-10-01T00:00:00Z"
`)
	// A bare date means the end of that day in UTC.
	expected := fmt.Sprintf(`
# HELP loomguard_exceptions Configured policy exceptions, by state (active, expired).
# TYPE loomguard_exceptions gauge
loomguard_exceptions{state="active"} 1
loomguard_exceptions{state="expired"} 1
# HELP loomguard_exception_expiry_timestamp_seconds Expiry of each configured policy exception, in Unix seconds.
# TYPE loomguard_exception_expiry_timestamp_seconds gauge
loomguard_exception_expiry_timestamp_seconds{exception="loom-latest"} %d
loomguard_exception_expiry_timestamp_seconds{exception="temporal-root"} %d
`, time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).Unix())
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(expected), "loomguard_exceptions", "loomguard_exception_expiry_timestamp_seconds"); err != nil {
		t.Error(err)
	}
}

func TestCertificateMetric(t *testing.T) {
	h := newHarness(t, "")
	ca := newCA(t)
	leaf := ca.issue(t, 1)
	h.metrics.SetCertificate(leaf.tls(t))
	if got, want := testutil.ToFloat64(h.metrics.certExpiry), float64(leaf.cert.NotAfter.Unix()); got != want {
		t.Errorf("loomguard_certificate_expiry_timestamp_seconds = %v, want %v", got, want)
	}
}

// TestMetricsReuse registers twice in one registry, as two servers in one process do.
func TestMetricsReuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, "")
	m1, err := NewMetrics(reg, h.engine.Load)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := NewMetrics(reg, h.engine.Load)
	if err != nil {
		t.Fatal(err)
	}
	m1.mutation("run-as-non-root")
	m2.mutation("run-as-non-root")
	if got := testutil.ToFloat64(m2.mutations.WithLabelValues("run-as-non-root")); got != 2 {
		t.Errorf("shared counter = %v, want 2", got)
	}
}

// logLines captures log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

func (l *logLines) matching(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

func TestAdmissionLogs(t *testing.T) {
	for _, verbosity := range []int{0, 1} {
		t.Run(fmt.Sprintf("v%d", verbosity), func(t *testing.T) {
			var logs logLines
			h := newHarnessLog(t, "", funcr.New(logs.add, funcr.Options{Verbosity: verbosity}))
			insecure := fixture(t, "testdata/insecure-deployment.yaml")
			post(t, h.validate, admissionReview(t, insecure, req{dryRun: true}))
			post(t, h.mutate, admissionReview(t, fixture(t, "testdata/fixable-deployment.yaml"), req{}))
			post(t, h.validate, admissionReview(t, fixture(t, "../policies/testdata/base/deployment.yaml"), req{}))

			denied := logs.matching(`"msg"="denied"`)
			if len(denied) != 1 {
				t.Fatalf("%d denial lines, want 1:\n%s", len(denied), strings.Join(logs.lines, "\n"))
			}
			for _, field := range []string{`"kind"="Deployment"`, `"namespace"="loom"`, `"name"="web"`, `"user"="alice@example.com"`,
				`"dryRun"=true`, `"uid"="705ab4f5-6393-11e8-b7cc-42010a800002"`, `"policies"=[`, `"image-tag"`, `"operation"="CREATE"`} {
				if !strings.Contains(denied[0], field) {
					t.Errorf("denial line lacks %s: %s", field, denied[0])
				}
			}
			mutated := logs.matching(`"msg"="mutated"`)
			if len(mutated) != 1 || !strings.Contains(mutated[0], `"policies"=["drop-all-capabilities" "read-only-root-filesystem"]`) {
				t.Errorf("mutation lines %q, want one naming the fixes", mutated)
			}
			reviewed := logs.matching(`"msg"="reviewed"`)
			if want := 3 * verbosity; len(reviewed) != want {
				t.Errorf("%d debug lines at verbosity %d, want %d", len(reviewed), verbosity, want)
			}
			for _, line := range logs.lines {
				for _, secret := range []string{"loom-default-password", "loom:latest", "containers"} {
					if strings.Contains(line, secret) {
						t.Errorf("log line leaks the object (%q): %s", secret, line)
					}
				}
			}
		})
	}
}
