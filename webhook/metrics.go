package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loomguard/loomguard/policies"
)

// Metric label values. They are fixed sets: object names, UIDs and messages never become
// labels.
const (
	// webhook label
	webhookValidate = "validate"
	webhookMutate   = "mutate"

	// decision label of the validating webhook (admission_requests_total)
	decisionAllowed = "allowed"
	decisionWarned  = "warned"
	decisionDenied  = "denied"
	// decision label of the mutating webhook
	decisionPatched = "patched"
	// decision label of both: not evaluated (DELETE, CONNECT, subresource, not a workload)
	decisionSkipped = "skipped"
	// decision label of both: bad input or an internal error
	decisionError = "error"

	// reason label of admission_requests_total: why a review was answered with an error
	// (decision "error"); empty for every other decision. A fixed set.
	reasonEmptyBody   = "empty_body"   // no body
	reasonTooLarge    = "too_large"    // a body over 7 MiB (413)
	reasonReadFailed  = "read_failed"  // the body could not be read (the client went away)
	reasonContentType = "content_type" // not application/json
	reasonMalformed   = "malformed"    // not JSON, or nested too deep, or of the wrong shape
	reasonAPIVersion  = "api_version"  // not an admission.k8s.io/v1 AdmissionReview
	reasonBadRequest  = "bad_request"  // no request, no uid, no kind
	reasonUndecodable = "undecodable"  // the object does not decode as its kind
	reasonOverloaded  = "overloaded"   // refused at the in-flight limit (429)
	reasonTimeout     = "timeout"      // the review's timeout passed or its client went away
	reasonNoConfig    = "no_config"    // no config loaded yet
	reasonInternal    = "internal"     // a panic or a patch that could not be computed

	// source label of policy_violations_total
	sourceAdmission = "admission"

	// result label of config_reloads_total
	reloadSuccess = "success"
	reloadError   = "error"

	// result label of webhook_match_condition_updates_total
	matchUpdateSuccess  = "success"
	matchUpdateError    = "error"
	matchUpdateRejected = "rejected"

	// state label of exceptions
	exceptionActive  = "active"
	exceptionExpired = "expired"

	// kind label for anything that is not a workload kind, to bound its cardinality
	kindOther = "other"
)

// Metrics are loomguard's own Prometheus metrics. Build them with NewMetrics; the zero value
// is not usable.
type Metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	inFlight   prometheus.Gauge
	violations *prometheus.CounterVec
	mutations  *prometheus.CounterVec
	reloads    *prometheus.CounterVec
	certExpiry prometheus.Gauge
	exceptions *exceptionCollector
	// matchConditions and matchConditionUpdates are the match-condition syncer's.
	matchConditions       *prometheus.GaugeVec
	matchConditionUpdates *prometheus.CounterVec
}

// NewMetrics creates loomguard's metrics and registers them with reg (controller-runtime's
// metrics.Registry in the server, so that they are served on the metrics port next to
// controller-runtime's webhook metrics). engine returns the engine in force; the exception
// gauges are computed from it at scrape time, so an exception shows as expired the moment
// it expires. Metrics that reg already holds (a second server in one process) are reused.
func NewMetrics(reg prometheus.Registerer, engine func() *policies.Engine) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loomguard_admission_requests_total",
			Help: "Admission reviews answered, by webhook (validate, mutate), operation, kind, decision, dry run and, for decision error, reason.",
		}, []string{"webhook", "operation", "kind", "decision", "dry_run", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "loomguard_admission_duration_seconds",
			Help: "Time to decide one admission review, from the decoded review to the response.",
			// From 100µs, since a review takes tens of microseconds, to the API server's timeout.
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}, []string{"webhook"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loomguard_admission_in_flight",
			Help: "Admission reviews received and not yet answered, both webhooks: reading their body, waiting for room, or worked on (at most --max-in-flight of them).",
		}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loomguard_policy_violations_total",
			Help: "Policy violations found, by policy, the action in force and source (admission). Dry runs are not counted.",
		}, []string{"policy", "action", "source"}),
		mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loomguard_mutations_total",
			Help: "Fixes applied by the mutating webhook, by policy. Dry runs are not counted.",
		}, []string{"policy"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loomguard_config_reloads_total",
			Help: "Config reloads, by result (success, error). A rejected config leaves the last good one in force.",
		}, []string{"result"}),
		certExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loomguard_certificate_expiry_timestamp_seconds",
			Help: "Expiry (notAfter) of the serving certificate in force, in Unix seconds.",
		}),
		exceptions: newExceptionCollector(engine),
		matchConditions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loomguard_webhook_match_conditions",
			Help: "matchConditions of loomguard's webhook (validate, mutate) in the live webhook configuration, as the match-condition syncer last set or found them: 1 (not-cleared) normally, 7 (one per workload kind) when one would be too long for the API server's CEL parser, 0 when the API server calls the webhook for every object its rules match. Only the replica that syncs has series.",
		}, []string{"webhook"}),
		matchConditionUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loomguard_webhook_match_condition_updates_total",
			Help: "Updates of a webhook's matchConditions by the match-condition syncer, by webhook (validate, mutate) and result: success, error (retried), rejected (the API server refused the conditions, which were removed instead).",
		}, []string{"webhook", "result"}),
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.inFlight, err = register(reg, m.inFlight); err != nil {
		return nil, err
	}
	if m.violations, err = register(reg, m.violations); err != nil {
		return nil, err
	}
	if m.mutations, err = register(reg, m.mutations); err != nil {
		return nil, err
	}
	if m.reloads, err = register(reg, m.reloads); err != nil {
		return nil, err
	}
	if m.certExpiry, err = register(reg, m.certExpiry); err != nil {
		return nil, err
	}
	if m.matchConditions, err = register(reg, m.matchConditions); err != nil {
		return nil, err
	}
	if m.matchConditionUpdates, err = register(reg, m.matchConditionUpdates); err != nil {
		return nil, err
	}
	existing, err := register(reg, m.exceptions)
	if err != nil {
		return nil, err
	}
	existing.source.Store(&engine)
	m.exceptions = existing
	// Make the reload results visible before the first reload.
	m.reloads.WithLabelValues(reloadSuccess)
	m.reloads.WithLabelValues(reloadError)
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
		return c, fmt.Errorf("registering metrics: %w", err)
	}
	return c, nil
}

func (m *Metrics) observeRequest(webhook, operation, kind, decision, reason string, dryRun bool, seconds float64) {
	m.requests.WithLabelValues(webhook, operation, kind, decision, strconv.FormatBool(dryRun), reason).Inc()
	m.duration.WithLabelValues(webhook).Observe(seconds)
}

func (m *Metrics) violation(policy string, action policies.Action) {
	m.violations.WithLabelValues(policy, string(action), sourceAdmission).Inc()
}

func (m *Metrics) mutation(policy string) {
	m.mutations.WithLabelValues(policy).Inc()
}

func (m *Metrics) reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues(reloadSuccess).Inc()
	} else {
		m.reloads.WithLabelValues(reloadError).Inc()
	}
}

// SetCertificate records the expiry of the serving certificate. It is the certificate
// watcher's callback, called on load and on every reload.
func (m *Metrics) SetCertificate(cert tls.Certificate) {
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return
		}
	}
	if leaf != nil {
		m.certExpiry.Set(float64(leaf.NotAfter.Unix()))
	}
}

// exceptionCollector reports loomguard_exceptions{state} and
// loomguard_exception_expiry_timestamp_seconds{exception} from the engine in force.
type exceptionCollector struct {
	source atomic.Pointer[func() *policies.Engine]
	count  *prometheus.Desc
	expiry *prometheus.Desc
}

func newExceptionCollector(engine func() *policies.Engine) *exceptionCollector {
	c := &exceptionCollector{
		count: prometheus.NewDesc("loomguard_exceptions",
			"Configured policy exceptions, by state (active, expired).", []string{"state"}, nil),
		expiry: prometheus.NewDesc("loomguard_exception_expiry_timestamp_seconds",
			"Expiry of each configured policy exception, in Unix seconds.", []string{"exception"}, nil),
	}
	c.source.Store(&engine)
	return c
}

func (c *exceptionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
	ch <- c.expiry
}

func (c *exceptionCollector) Collect(ch chan<- prometheus.Metric) {
	var e *policies.Engine
	if src := c.source.Load(); src != nil && *src != nil {
		e = (*src)()
	}
	var active, expired int
	if e != nil {
		for _, ex := range e.Exceptions() {
			if ex.Active {
				active++
			} else {
				expired++
			}
			ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, float64(ex.Expires.Unix()), ex.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(active), exceptionActive)
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(expired), exceptionExpired)
}
