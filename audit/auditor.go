package audit

import (
	"context"
	"errors"
	"hash/maphash"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loomguard/loomguard/policies"
)

// Defaults of AuditorOptions, shared with the serve command's flags.
const (
	DefaultInterval = 60 * time.Second
	// DefaultMaxFindingLogs caps the finding log lines of one run.
	DefaultMaxFindingLogs = 50
	// DefaultMaxEvents caps the Events of one run.
	DefaultMaxEvents = 100

	// EventReason and EventAction are those of the Events on offending objects.
	EventReason = "PolicyViolation"
	EventAction = "Audit"
	// maxEventNote is the events.k8s.io/v1 limit on an Event's note.
	maxEventNote = 1024
)

// EventRecorder records Events on objects: client-go's events.EventRecorder, which the
// manager's GetEventRecorder returns.
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// AuditorOptions configure an Auditor.
type AuditorOptions struct {
	// Reader lists objects straight from the API server: the manager's APIReader.
	Reader client.Reader
	// Engine returns the engine in force, the one the webhook uses; each run takes it once.
	Engine func() *policies.Engine
	// Interval is the time between the starts of two runs; DefaultInterval when zero.
	Interval time.Duration
	// PageSize is the limit of each List call; DefaultPageSize when zero.
	PageSize int64
	// Metrics receive each complete run.
	Metrics *Metrics
	// Log receives a line per new finding (at most MaxFindingLogs per run) and a summary
	// line per run.
	Log logr.Logger
	// Events, when set, records a Warning Event on the offending object for each of its
	// fields with new findings, noting them all (at most MaxEvents per run).
	Events EventRecorder
	// MaxFindingLogs and MaxEvents cap a run's finding lines and Events; the defaults when
	// zero, none when negative. A finding over the cap is reported by a later run.
	MaxFindingLogs, MaxEvents int
	// Now is the clock of the runs; time.Now when nil.
	Now func() time.Time
}

// Auditor runs the audit on a timer in `loomguard serve`: a controller-runtime Runnable
// that needs leader election, so that one replica audits. Each complete run is published
// to the metrics; a failed run is counted and logged, and the last complete result stays.
//
// Findings are logged, and recorded as Events, once: when a run first sees them (a
// finding is a workload's violation: its UID, policy, field and message). A finding that
// the per-run cap held back is reported by a later run; one that disappears and comes
// back is new again. This memory lives in the leader: a new leader reports every finding
// once more.
type Auditor struct {
	o    AuditorOptions
	seed maphash.Seed
	// seen holds what was reported of the findings of the last complete run, by key.
	seen map[uint64]reported
}

// reported says what was done about a finding.
type reported struct{ logged, evented bool }

// NewAuditor returns an Auditor.
func NewAuditor(o AuditorOptions) (*Auditor, error) {
	if o.Reader == nil || o.Engine == nil || o.Metrics == nil {
		return nil, errors.New("audit: the auditor needs a reader, an engine and metrics")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxFindingLogs == 0 {
		o.MaxFindingLogs = DefaultMaxFindingLogs
	}
	if o.MaxEvents == 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	return &Auditor{o: o, seed: maphash.MakeSeed(), seen: map[uint64]reported{}}, nil
}

// NeedLeaderElection is true: one replica audits.
func (a *Auditor) NeedLeaderElection() bool { return true }

// Start audits at once and then every interval until ctx is done. A failed run does not
// stop it.
func (a *Auditor) Start(ctx context.Context) error {
	a.o.Metrics.SetLeader(true)
	defer a.o.Metrics.SetLeader(false)
	a.o.Log.Info("auditing running workloads", "interval", a.o.Interval.String(), "pageSize", a.o.PageSize,
		"events", a.o.Events != nil)
	ticker := time.NewTicker(a.o.Interval)
	defer ticker.Stop()
	for {
		_ = a.RunOnce(ctx) // logged and counted
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// RunOnce runs one audit with the engine in force and publishes it. On error the last
// complete result stays published, the error is counted and logged, and returned.
func (a *Auditor) RunOnce(ctx context.Context) error {
	engine := a.o.Engine()
	if engine == nil {
		return errors.New("audit: no engine loaded")
	}
	res, err := Run(ctx, Options{Reader: a.o.Reader, Engine: engine, PageSize: a.o.PageSize, Now: a.o.Now})
	if err != nil {
		if ctx.Err() != nil {
			return err // shutting down: not a failure
		}
		a.o.Metrics.Failed()
		a.o.Log.Error(err, "audit run failed; the last complete result stays published")
		return err
	}
	a.o.Metrics.Publish(res)
	a.report(res)
	return nil
}

// fieldEvent is the notes of the new findings at one field of a workload, recorded as one
// Event.
type fieldEvent struct{ notes []string }

// report logs the run's new findings and its summary, and records Events.
func (a *Auditor) report(res *Result) {
	next := make(map[uint64]reported, len(a.seen))
	events := map[corev1.ObjectReference]*fieldEvent{}
	var eventOrder []corev1.ObjectReference
	var (
		violations, fresh, still             int
		logged, unlogged, evented, unevented int
		byAction                             = map[policies.Action]int{}
	)
	for i := range res.Workloads {
		w := &res.Workloads[i]
		for _, v := range w.Report.Violations {
			violations++
			byAction[v.Action]++
			k := a.key(&w.Ref, &v)
			r, ok := a.seen[k]
			if ok {
				still++
			} else {
				fresh++
			}
			if !r.logged {
				if a.o.MaxFindingLogs > 0 && logged < a.o.MaxFindingLogs {
					a.o.Log.Info("audit finding", "kind", w.Ref.Kind, "namespace", w.Ref.Namespace, "name", w.Ref.Name,
						"policy", v.Policy, "action", string(v.Action), "field", v.Field, "message", v.Detail)
					r.logged = true
					logged++
				} else {
					unlogged++
				}
			}
			if a.o.Events != nil && !r.evented {
				// One Event per violating field of a workload, which regards that field
				// (ObjectReference.FieldPath) and notes every new finding there: client-go's
				// events.k8s.io recorder merges Events of the same type, reason, action and
				// regarding object into one series that keeps the first note, so Events that
				// regarded only the workload would lose all its findings but one.
				ref := w.Ref
				ref.FieldPath = v.Field
				e, ok := events[ref]
				if !ok && a.o.MaxEvents > 0 && len(eventOrder) < a.o.MaxEvents {
					e = &fieldEvent{}
					events[ref] = e
					eventOrder = append(eventOrder, ref)
					ok = true
				}
				if ok {
					e.notes = append(e.notes, v.Message()+" ("+string(v.Action)+")")
					r.evented = true
				} else {
					unevented++
				}
			}
			next[k] = r
		}
	}
	for i := range eventOrder {
		ref := &eventOrder[i]
		note := strings.Join(events[*ref].notes, "; ")
		if len(note) > maxEventNote {
			note = note[:maxEventNote-3] + "..."
		}
		a.o.Events.Eventf(ref, nil, corev1.EventTypeWarning, EventReason, EventAction, "%s", note)
	}
	evented = len(eventOrder)
	resolved := len(a.seen) - still
	a.seen = next
	kv := []any{
		"workloads", len(res.Workloads), "violations", violations,
		"enforce", byAction[policies.ActionEnforce], "warn", byAction[policies.ActionWarn], "audit", byAction[policies.ActionAudit],
		"new", fresh, "resolved", resolved, "owned", res.Owned, "exempt", res.Exempt,
		"duration", res.Duration.String(),
	}
	if unlogged > 0 {
		kv = append(kv, "findingsNotLogged", unlogged)
	}
	if a.o.Events != nil {
		kv = append(kv, "events", evented)
		if unevented > 0 {
			kv = append(kv, "eventsHeldBack", unevented)
		}
	}
	a.o.Log.Info("audit run finished", kv...)
}

// key identifies a finding across runs.
func (a *Auditor) key(ref *corev1.ObjectReference, v *policies.Violation) uint64 {
	var h maphash.Hash
	h.SetSeed(a.seed)
	for _, s := range []string{string(ref.UID), ref.Kind, ref.Namespace, ref.Name, v.Policy, string(v.Action), v.Field, v.Detail} {
		h.WriteString(s)
		h.WriteByte(0)
	}
	return h.Sum64()
}
