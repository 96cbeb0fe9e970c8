package deploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/loomguard/loomguard/audit"
	"github.com/loomguard/loomguard/policies"
	"github.com/loomguard/loomguard/webhook"
)

// targetLabels are the labels Prometheus attaches to every series scraped through the
// ServiceMonitor; a metric label of the same name is kept as exported_<name>.
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "endpoint", "container"}

// prometheusMetrics are Prometheus' own series the rules may use.
var prometheusMetrics = map[string][]string{"up": nil}

// recorder is a Registerer that remembers what is registered.
type recorder struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var descPattern = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*variableLabels: \{([^}]*)\}\}$`)

// registeredMetrics returns every metric of loomguard's own that `loomguard serve`
// registers (the admission server's and the background audit's), with its label names,
// from the collectors' descriptions: a metric counts even before it has samples.
func registeredMetrics(t *testing.T) map[string][]string {
	t.Helper()
	rec := &recorder{Registerer: prometheus.NewRegistry()}
	if _, err := webhook.NewMetrics(rec, func() *policies.Engine { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.NewMetrics(rec, audit.DefaultMaxNamespaces); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, c := range rec.collectors {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := descPattern.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read metric description %s", d)
			}
			var labels []string
			if m[2] != "" {
				labels = strings.Split(m[2], ",")
			}
			out[m[1]] = labels
		}
	}
	if len(out) == 0 {
		t.Fatal("webhook.NewMetrics registered nothing")
	}
	return out
}

// promQLRef is what an expression uses: metric names with their label matchers, and the
// label names of by/without clauses.
type promQLRef struct {
	metrics  map[string][]string
	grouping []string
}

var (
	identStart = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promQLWord = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
	}
	// promQLAggregations may put their by/without clause before the parenthesis.
	promQLAggregations = map[string]bool{
		"sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true, "stdvar": true,
		"topk": true, "bottomk": true, "quantile": true, "count_values": true, "group": true, "limitk": true, "limit_ratio": true,
	}
)

// parsePromQL is a small PromQL scanner, enough for the rules and the dashboard: it
// checks that brackets balance and collects metric names, their label matchers and the
// grouping labels. Functions and aggregations are the identifiers followed by "(".
func parsePromQL(expr string) (promQLRef, error) {
	ref := promQLRef{metrics: map[string][]string{}}
	var stack []byte
	closing := map[byte]byte{')': '(', ']': '[', '}': '{'}
	s := expr
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return ref, fmt.Errorf("unterminated string at %d in %q", i, expr)
			}
			i += end + 2
		case c == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return ref, fmt.Errorf("unterminated range at %d in %q", i, expr)
			}
			i += end + 1
		case c == '(' || c == '{':
			stack = append(stack, c)
			i++
		case c == ')' || c == '}':
			if len(stack) == 0 || stack[len(stack)-1] != closing[c] {
				return ref, fmt.Errorf("unbalanced %q at %d in %q", c, i, expr)
			}
			stack = stack[:len(stack)-1]
			i++
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == 'e') {
				i++
			}
		case identStart.MatchString(s[i:]):
			word := identStart.FindString(s[i:])
			i += len(word)
			rest := strings.TrimLeft(s[i:], " \t\n")
			switch {
			case word == "by" || word == "without":
				if !strings.HasPrefix(rest, "(") {
					return ref, fmt.Errorf("%s without a label list in %q", word, expr)
				}
				end := strings.IndexByte(rest, ')')
				for _, l := range strings.Split(rest[1:end], ",") {
					ref.grouping = append(ref.grouping, strings.TrimSpace(l))
				}
				i = len(s) - len(rest) + end + 1
			case promQLWord[strings.ToLower(word)]:
			case strings.HasPrefix(rest, "("), promQLAggregations[word]:
				// a function or an aggregation
			default:
				var labels []string
				if strings.HasPrefix(rest, "{") {
					end := strings.IndexByte(rest, '}')
					if end < 0 {
						return ref, fmt.Errorf("unterminated matchers after %s in %q", word, expr)
					}
					for _, m := range splitMatchers(rest[1:end]) {
						name := identStart.FindString(strings.TrimSpace(m))
						if name == "" {
							return ref, fmt.Errorf("bad matcher %q in %q", m, expr)
						}
						labels = append(labels, name)
					}
					i = len(s) - len(rest) + end + 1
				}
				ref.metrics[word] = append(ref.metrics[word], labels...)
			}
		default:
			i++
		}
	}
	if len(stack) > 0 {
		return ref, fmt.Errorf("unclosed %q in %q", stack, expr)
	}
	return ref, nil
}

// splitMatchers splits a matcher list at the commas outside quotes.
func splitMatchers(s string) []string {
	var out []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		switch {
		case quote != 0 && s[i] == '\\':
			i++
		case quote != 0 && s[i] == quote:
			quote = 0
		case quote == 0 && (s[i] == '"' || s[i] == '\''):
			quote = s[i]
		case quote == 0 && s[i] == ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if strings.TrimSpace(s[start:]) != "" {
		out = append(out, s[start:])
	}
	return out
}

// checkExpr checks one expression against the metrics loomguard registers: every metric
// exists, every matcher names one of its labels, every grouping label is on one of them.
func checkExpr(expr string, known map[string][]string) []error {
	ref, err := parsePromQL(expr)
	if err != nil {
		return []error{err}
	}
	var errs []error
	if len(ref.metrics) == 0 {
		errs = append(errs, fmt.Errorf("%q uses no metric", expr))
	}
	allowed := slices.Clone(targetLabels)
	for _, name := range slices.Sorted(maps.Keys(ref.metrics)) {
		base, labels, ok := lookup(name, known)
		if !ok {
			errs = append(errs, fmt.Errorf("metric %s is not registered by loomguard (renamed?) in %q", name, expr))
			continue
		}
		metricLabels := append(slices.Clone(labels), targetLabels...)
		for _, l := range labels {
			metricLabels = append(metricLabels, "exported_"+l)
		}
		if base != name && strings.HasSuffix(name, "_bucket") {
			metricLabels = append(metricLabels, "le")
		}
		for _, m := range ref.metrics[name] {
			if !slices.Contains(metricLabels, m) {
				errs = append(errs, fmt.Errorf("%s has no label %q (it has %v) in %q", name, m, labels, expr))
			}
		}
		allowed = append(allowed, metricLabels...)
	}
	for _, g := range ref.grouping {
		if !slices.Contains(allowed, g) {
			errs = append(errs, fmt.Errorf("grouping label %q is on none of the metrics of %q", g, expr))
		}
	}
	return errs
}

// lookup finds a metric by its name or, for a histogram's series, by its base name.
func lookup(name string, known map[string][]string) (string, []string, bool) {
	if labels, ok := known[name]; ok {
		return name, labels, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if labels, ok := known[base]; ok {
				return base, labels, true
			}
		}
	}
	return "", nil, false
}

func knownMetrics(t *testing.T) map[string][]string {
	t.Helper()
	known := registeredMetrics(t)
	for k, v := range prometheusMetrics {
		known[k] = v
	}
	return known
}

// prometheusRule is the part of a PrometheusRule these tests read, decoded strictly.
type prometheusRule struct {
	Spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// TestAlertExpressions checks every alert of manifests/monitoring against the metrics
// loomguard registers (a renamed metric or label fails here), and that the alerts the
// runbook promises exist.
func TestAlertExpressions(t *testing.T) {
	known := knownMetrics(t)
	objs := decode(t, kustomize(t, "manifests/monitoring"))
	u := find(t, objs, "PrometheusRule", "loomguard")
	var rule prometheusRule
	data, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rule); err != nil {
		t.Fatal(err)
	}
	wantAlerts := map[string]string{
		"LoomguardDown":                    "up",
		"LoomguardAdmissionLatencyHigh":    "loomguard_admission_duration_seconds_bucket",
		"LoomguardAdmissionErrors":         "loomguard_admission_requests_total",
		"LoomguardDenialRateHigh":          "loomguard_admission_requests_total",
		"LoomguardAuditStalled":            "loomguard_audit_last_run_timestamp_seconds",
		"LoomguardAuditViolations":         "loomguard_audit_violations",
		"LoomguardAuditFailing":            "loomguard_audit_errors_total",
		"LoomguardAuditNoLeader":           "loomguard_audit_leader",
		"LoomguardCertificateExpiringSoon": "loomguard_certificate_expiry_timestamp_seconds",
		"LoomguardConfigReloadFailing":     "loomguard_config_reloads_total",
		"LoomguardExceptionExpiringSoon":   "loomguard_exception_expiry_timestamp_seconds",
		"LoomguardMatchConditionsStale":    "loomguard_webhook_match_condition_updates_total",
	}
	seen := map[string]bool{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			t.Run(r.Alert, func(t *testing.T) {
				for _, err := range checkExpr(r.Expr, known) {
					t.Errorf("alert %s: %v", r.Alert, err)
				}
				if seen[r.Alert] {
					t.Errorf("alert %s defined twice", r.Alert)
				}
				seen[r.Alert] = true
				if metric, ok := wantAlerts[r.Alert]; !ok {
					t.Errorf("unexpected alert %s: add it to wantAlerts and docs/install.md", r.Alert)
				} else if ref, _ := parsePromQL(r.Expr); ref.metrics[metric] == nil && !hasKey(ref.metrics, metric) {
					t.Errorf("alert %s does not use %s: %q", r.Alert, metric, r.Expr)
				}
				if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("alert %s needs a severity label and summary and description annotations", r.Alert)
				}
			})
		}
	}
	for a := range wantAlerts {
		if !seen[a] {
			t.Errorf("alert %s is missing", a)
		}
	}
}

func hasKey(m map[string][]string, k string) bool {
	_, ok := m[k]
	return ok
}

// TestDashboardQueries checks every query of the Grafana dashboard the same way.
func TestDashboardQueries(t *testing.T) {
	known := knownMetrics(t)
	var cm struct {
		Data map[string]string `json:"data"`
	}
	u := find(t, decode(t, kustomize(t, "manifests/monitoring")), "ConfigMap", "loomguard-dashboard")
	data, _ := json.Marshal(u.Object)
	if err := json.Unmarshal(data, &cm); err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(cm.Data["loomguard-dashboard.json"]), &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if dash.UID == "" || len(dash.Panels) < 10 {
		t.Fatalf("dashboard uid %q with %d panels", dash.UID, len(dash.Panels))
	}
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			// Grafana variables stand for label values and ranges.
			expr := strings.NewReplacer("$__rate_interval", "5m", "$namespace", "loomguard-system").Replace(target.Expr)
			for _, err := range checkExpr(expr, known) {
				t.Errorf("panel %q: %v", p.Title, err)
			}
			ref, _ := parsePromQL(expr)
			for m := range ref.metrics {
				if base, _, ok := lookup(m, known); ok {
					used[base] = true
				}
			}
		}
	}
	for name := range registeredMetrics(t) {
		if !used[name] {
			t.Errorf("loomguard metric %s is on no dashboard panel", name)
		}
	}
}

func TestParsePromQL(t *testing.T) {
	tests := []struct {
		expr     string
		metrics  map[string][]string
		grouping []string
		err      bool
	}{
		{expr: `histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) > 0.5`, metrics: map[string][]string{"a_bucket": nil}, grouping: []string{"le"}},
		{expr: `sum(rate(x{decision="error", w=~"a,b"}[5m])) / sum(rate(x[5m])) > 0.01`, metrics: map[string][]string{"x": {"decision", "w"}}},
		{expr: `time() - last_run > 600`, metrics: map[string][]string{"last_run": nil}},
		{expr: `expiry - time() < 7 * 24 * 3600 and expiry - time() > 0`, metrics: map[string][]string{"expiry": nil}},
		{expr: `sum without (pod) (v) > 0`, metrics: map[string][]string{"v": nil}, grouping: []string{"pod"}},
		{expr: `sum(rate(x[5m])`, err: true},
		{expr: `x{a="b"`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			ref, err := parsePromQL(tt.expr)
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if tt.err {
				return
			}
			if fmt.Sprint(ref.metrics) != fmt.Sprint(tt.metrics) || !slices.Equal(ref.grouping, tt.grouping) {
				t.Errorf("got %v %v, want %v %v", ref.metrics, ref.grouping, tt.metrics, tt.grouping)
			}
		})
	}
}

// TestCheckExprCatchesRenames: the check fails on a renamed metric, a label the metric does
// not have and a grouping label no metric has, against the live registry.
func TestCheckExprCatchesRenames(t *testing.T) {
	known := registeredMetrics(t)
	tests := []struct {
		expr string
		want string
	}{
		{`increase(loomguard_config_reloads_total{result="error"}[15m]) > 0`, ""},
		{`histogram_quantile(0.99, sum by (le) (rate(loomguard_admission_duration_seconds_bucket[5m]))) > 0.5`, ""},
		{`increase(loomguard_config_reload_total{result="error"}[15m]) > 0`, "loomguard_config_reload_total is not registered"},
		{`sum(rate(loomguard_admission_requests_total{verdict="error"}[5m]))`, `has no label "verdict"`},
		{`sum by (verdict) (rate(loomguard_admission_requests_total[5m]))`, `grouping label "verdict"`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			errs := checkExpr(tt.expr, known)
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("unexpected errors %v", errs)
			case tt.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want)):
				t.Errorf("errors %v, want one containing %q", errs, tt.want)
			}
		})
	}
}

// TestServiceMonitorSecure: every ServiceMonitor rendered scrapes the metrics port over
// HTTPS (--metrics-secure), verifies loomguard's serving certificate with the CA of the
// Secret loomguard-tls under the Service's name, and sends Prometheus's ServiceAccount
// token, which loomguard checks with a TokenReview and a SubjectAccessReview.
func TestServiceMonitorSecure(t *testing.T) {
	seen := 0
	for _, r := range renders() {
		for _, o := range decode(t, r.render(t)) {
			if o.GetKind() != "ServiceMonitor" {
				continue
			}
			seen++
			endpoints, _, err := unstructured.NestedSlice(o.Object, "spec", "endpoints")
			if err != nil || len(endpoints) == 0 {
				t.Fatalf("%s: %s has no endpoints (%v)", r.name, key(o), err)
			}
			for _, e := range endpoints {
				ep, _ := e.(map[string]any)
				str := func(path ...string) string {
					v, _, _ := unstructured.NestedString(ep, path...)
					return v
				}
				wantServer := "loomguard." + o.GetNamespace() + ".svc"
				if str("port") != "metrics" || str("scheme") != "https" ||
					str("bearerTokenFile") != "/var/run/secrets/kubernetes.io/serviceaccount/token" ||
					str("tlsConfig", "serverName") != wantServer ||
					str("tlsConfig", "ca", "secret", "name") != "loomguard-tls" || str("tlsConfig", "ca", "secret", "key") != "ca.crt" {
					t.Errorf("%s: %s endpoint %v: want port metrics over https with the ServiceAccount token, serverName %s and the CA loomguard-tls/ca.crt",
						r.name, key(o), ep, wantServer)
				}
			}
		}
	}
	if seen < 2 {
		t.Errorf("%d ServiceMonitors rendered, want the kustomize one and the Helm one", seen)
	}
}
