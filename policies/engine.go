package policies

import (
	"fmt"
	"path"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Engine evaluates and fixes workloads under one config. It is immutable and safe for
// concurrent use; a new config means a new Engine.
type Engine struct {
	cfg        *Config
	policies   []Policy
	actions    map[string]Action // the action in force outside any namespace override
	fixes      map[string]bool   // whether a policy's fix is enabled
	exempt     map[string]bool
	exceptions []compiledException
	now        func() time.Time
	// podSecurityIn is pod-security at the level of each namespaces entry that sets
	// podSecurity, by entry index.
	podSecurityIn map[int]Policy
}

type compiledException struct {
	Exception
	policies   map[string]bool
	containers map[string]bool
	controls   []string
	expires    time.Time
}

// NewEngine compiles a config. now is the clock that decides whether exceptions have
// expired; nil means time.Now.
func NewEngine(cfg *Config, now func() time.Time) (*Engine, error) {
	return newEngine(cfg, Catalog(cfg), now)
}

// newEngine builds an engine over the given policies; tests use it with stand-in policies.
func newEngine(cfg *Config, catalog []Policy, now func() time.Time) (*Engine, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid config: %w", errs.ToAggregate())
	}
	if now == nil {
		now = time.Now
	}
	e := &Engine{
		cfg:      cfg,
		policies: catalog,
		actions:  map[string]Action{},
		fixes:    map[string]bool{},
		exempt:   map[string]bool{},
		now:      now,
	}
	settings := cfg.Policies.settings()
	for _, p := range e.policies {
		s := settings[p.ID]
		a := p.DefaultAction
		if s.Action != "" {
			a = s.Action
		} else {
			a = a.atMost(cfg.DefaultAction)
		}
		e.actions[p.ID] = a
		e.fixes[p.ID] = p.Fix != nil && (s.Fix == nil || *s.Fix)
		if p.ID == PodSecurityID {
			e.podSecurityIn = namespacePodSecurity(cfg, &p)
		}
	}
	for _, ns := range cfg.ExemptNamespaces {
		e.exempt[ns] = true
	}
	for _, ex := range cfg.Exceptions {
		exp, _ := ex.ExpiresAt() // validated above
		ce := compiledException{Exception: ex, policies: map[string]bool{}, controls: ex.Controls, expires: exp}
		for _, id := range ex.Policies {
			ce.policies[id] = true
		}
		if len(ex.Containers) > 0 {
			ce.containers = map[string]bool{}
			for _, c := range ex.Containers {
				ce.containers[c] = true
			}
		}
		e.exceptions = append(e.exceptions, ce)
	}
	return e, nil
}

// Config returns the config the engine was built from. Callers must not modify it.
func (e *Engine) Config() *Config { return e.cfg }

// Policies returns the policies in fix order. Callers must not modify them.
func (e *Engine) Policies() []Policy { return e.policies }

// Exempt reports whether a namespace is exempt from every policy.
func (e *Engine) Exempt(namespace string) bool { return e.exempt[namespace] }

// Action returns the action of a policy in a namespace.
func (e *Engine) Action(policyID, namespace string) Action {
	a := e.actions[policyID]
	for i := range e.cfg.Namespaces {
		o := &e.cfg.Namespaces[i]
		if !matchAny(o.Names, namespace) {
			continue
		}
		if pa, ok := o.Policies[policyID]; ok {
			return pa
		}
		if o.Action != "" {
			return a.atMost(o.Action)
		}
		return a
	}
	return a
}

// ExceptionState is an exception's state at a point in time.
type ExceptionState struct {
	Name    string
	Expires time.Time
	Active  bool
}

// Exceptions returns each configured exception with its expiry and whether it still applies.
func (e *Engine) Exceptions() []ExceptionState {
	now := e.now()
	out := make([]ExceptionState, 0, len(e.exceptions))
	for _, ex := range e.exceptions {
		out = append(out, ExceptionState{Name: ex.Name, Expires: ex.expires, Active: now.Before(ex.expires)})
	}
	return out
}

// Violation is one policy violation with the action in force for it.
type Violation struct {
	Policy string
	Action Action
	*field.Error
}

// Message renders the violation as users see it: "[policy-id] field.path: detail".
func (v Violation) Message() string {
	return "[" + v.Policy + "] " + v.Field + ": " + v.Detail
}

// Waiver records a policy that an exception took off a workload, wholly or for some containers.
type Waiver struct {
	Policy    string
	Exception string
}

// Decision is the overall outcome of a report.
type Decision string

const (
	Denied  Decision = "denied"
	Warned  Decision = "warned"
	Allowed Decision = "allowed"
)

// Report is the outcome of evaluating one workload.
type Report struct {
	Kind      schema.GroupKind
	Namespace string
	Name      string
	// Exempt is true when the namespace is exempt: nothing was evaluated.
	Exempt     bool
	Violations []Violation
	Waivers    []Waiver
}

// Decision is denied when any violation is enforced, warned when any warns, else allowed.
func (r *Report) Decision() Decision {
	d := Allowed
	for _, v := range r.Violations {
		switch v.Action {
		case ActionEnforce:
			return Denied
		case ActionWarn:
			d = Warned
		}
	}
	return d
}

// Count returns the number of violations with the given action.
func (r *Report) Count(a Action) int {
	n := 0
	for _, v := range r.Violations {
		if v.Action == a {
			n++
		}
	}
	return n
}

// Evaluate checks a workload against every policy that is not off in namespace, and
// returns the report. namespace decides exemption, namespace overrides and exceptions: the
// admission request's namespace in the webhook, the object's (or a default) elsewhere; the
// object's own metadata.namespace is not read. Evaluate never modifies the workload.
func (e *Engine) Evaluate(w *Workload, namespace string) Report {
	r := Report{Kind: w.Kind, Namespace: namespace, Name: w.Meta.Name}
	if e.exempt[namespace] {
		r.Exempt = true
		return r
	}
	for i := range e.policies {
		p := e.policyIn(i, namespace)
		a := e.Action(p.ID, namespace)
		if a == ActionOff {
			continue
		}
		view := e.waive(w, namespace, p.ID, &r)
		if view == nil {
			continue
		}
		for _, err := range p.Check(view) {
			r.Violations = append(r.Violations, Violation{Policy: p.ID, Action: a, Error: err})
		}
	}
	r.Violations = dedupPodSecurity(r.Violations)
	return r
}

// policyIn returns the i-th policy as it runs in a namespace: pod-security at the level of
// the first namespaces entry matching it, when that entry sets podSecurity.
func (e *Engine) policyIn(i int, namespace string) *Policy {
	p := &e.policies[i]
	if p.ID != PodSecurityID || len(e.podSecurityIn) == 0 {
		return p
	}
	for j := range e.cfg.Namespaces {
		if matchAny(e.cfg.Namespaces[j].Names, namespace) {
			if q, ok := e.podSecurityIn[j]; ok {
				return &q
			}
			return p
		}
	}
	return p
}

// dedupPodSecurity keeps one violation per field where pod-security and other policies
// report the same field: pod-security's only when its action is stronger than all of
// theirs, else theirs, whose messages say what to do in loomguard's words. Every other
// violation stays, in order.
func dedupPodSecurity(vs []Violation) []Violation {
	others := map[string]Action{} // the strongest action of the other policies, by field
	hasPS := false
	for _, v := range vs {
		if v.Policy == PodSecurityID {
			hasPS = true
		} else if a, ok := others[v.Field]; !ok || v.Action.rank() > a.rank() {
			others[v.Field] = v.Action
		}
	}
	if !hasPS || len(others) == 0 {
		return vs
	}
	psWins := map[string]bool{}
	for _, v := range vs {
		if a, ok := others[v.Field]; ok && v.Policy == PodSecurityID && v.Action.rank() > a.rank() {
			psWins[v.Field] = true
		}
	}
	out := make([]Violation, 0, len(vs))
	for _, v := range vs {
		if _, shared := others[v.Field]; shared && (v.Policy == PodSecurityID) != psWins[v.Field] {
			continue
		}
		out = append(out, v)
	}
	return out
}

// Mutate applies the fixes of the policies that are enforced or warned in namespace (see
// Evaluate), in catalog order, and returns the IDs of those that changed something.
// Policies in audit mode only watch: they change nothing. Mutate is the only method that
// changes the object.
func (e *Engine) Mutate(w *Workload, namespace string) []string {
	if e.exempt[namespace] {
		return nil
	}
	var fixed []string
	for i := range e.policies {
		p := &e.policies[i]
		if !e.fixes[p.ID] {
			continue
		}
		if a := e.Action(p.ID, namespace); a != ActionEnforce && a != ActionWarn {
			continue
		}
		if view := e.waive(w, namespace, p.ID, nil); view != nil && p.Fix(view) {
			fixed = append(fixed, p.ID)
		}
	}
	return fixed
}

// waive applies the unexpired exceptions for one policy and returns the view of w the
// policy runs on: nil when an exception waives the whole workload, w itself when none
// applies, and otherwise a new view without the waived containers (w is left as it is).
// Waivers are recorded in r when it is not nil.
func (e *Engine) waive(w *Workload, namespace, policyID string, r *Report) *Workload {
	if len(e.exceptions) == 0 {
		return w
	}
	var (
		now      time.Time
		waived   map[string]bool
		controls map[string]map[string]bool // pod-security controls waived, see Workload.waived
	)
	for i := range e.exceptions {
		ex := &e.exceptions[i]
		if !ex.policies[policyID] {
			continue
		}
		if now.IsZero() {
			now = e.now()
		}
		if !now.Before(ex.expires) || !ex.matches(w, namespace) {
			continue
		}
		if r != nil {
			r.Waivers = append(r.Waivers, Waiver{Policy: policyID, Exception: ex.Name})
		}
		if len(ex.controls) > 0 {
			controls = waiveControls(controls, ex.controls, ex.containers)
			continue
		}
		if ex.containers == nil {
			return nil
		}
		if waived == nil {
			waived = map[string]bool{}
		}
		for c := range ex.containers {
			waived[c] = true
		}
	}
	view := w
	if waived != nil {
		view = w.without(waived)
	}
	if controls != nil {
		if view == w {
			v := *w
			view = &v
		}
		view.waived = controls
	}
	return view
}

func (ex *compiledException) matches(w *Workload, namespace string) bool {
	if !globMatch(ex.Namespace, namespace) {
		return false
	}
	for _, name := range workloadNames(w) {
		if globMatch(ex.Workload, name) {
			return true
		}
	}
	return false
}

// workloadNames returns the names an exception's workload glob is matched against: the
// object's own name (or generateName prefix), and for a generated object the names of the
// workload that generated it, so that a waiver granted to a Deployment or CronJob also
// covers its ReplicaSets, Jobs and Pods.
func workloadNames(w *Workload) []string {
	names := make([]string, 0, 4)
	if w.Meta.Name != "" {
		names = append(names, w.Meta.Name)
	} else if w.Meta.GenerateName != "" {
		names = append(names, strings.TrimSuffix(w.Meta.GenerateName, "-"))
	}
	for _, ref := range w.Meta.OwnerReferences {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		names = append(names, ref.Name)
		// The owner's kind, by name alone: an owner reference may omit its apiVersion.
		for i := range workloadKinds {
			if k := &workloadKinds[i]; k.Kind == ref.Kind && k.generator != nil {
				if n, ok := k.generator(ref.Name, w.Meta.Labels); ok {
					names = append(names, n)
				}
			}
		}
	}
	return names
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func globMatch(glob, s string) bool {
	ok, _ := path.Match(glob, s) // globs are validated with the config
	return ok
}

func matchAny(globs []string, s string) bool {
	for _, g := range globs {
		if globMatch(g, s) {
			return true
		}
	}
	return false
}
