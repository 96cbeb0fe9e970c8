package gatekeeper

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loomguard/loomguard/policies"
)

// Status says how completely a Constraint carries over.
type Status string

const (
	// Mapped: loomguard enforces what the Constraint enforces, where it enforces it.
	Mapped Status = "mapped"
	// Partial: loomguard enforces something close; Lost says what differs.
	Partial Status = "partial"
	// Unmapped: loomguard has no equivalent; Instead says what to do.
	Unmapped Status = "unmapped"
)

// Options changes what Migrate builds.
type Options struct {
	// WithLoomProfile keeps loomguard's Loom profile on next to the Constraints: where both
	// apply, the stricter action and parameters win. Without it, every policy that no
	// Constraint maps to is off and fixes run only where an Assign mutator did the same.
	WithLoomProfile bool
	// MaxAction, when set, caps every action of the migrated config: audit gives the config
	// to run next to Gatekeeper before switching (nothing denied or warned, fixes off).
	MaxAction policies.Action
}

// Report is the outcome of a migration, constraint by constraint.
type Report struct {
	Summary     Summary      `json:"summary"`
	Constraints []Entry      `json:"constraints"`
	Conflicts   []Conflict   `json:"conflicts,omitempty"`
	Exemptions  []Exemption  `json:"exemptions,omitempty"`
	Mutators    []Mutator    `json:"mutators,omitempty"`
	Consider    []Consider   `json:"consider,omitempty"`
	Ignored     []IgnoredObj `json:"ignored,omitempty"`
}

// Summary counts the Constraints by status.
type Summary struct {
	Constraints int `json:"constraints"`
	Mapped      int `json:"mapped"`
	Partial     int `json:"partial"`
	Unmapped    int `json:"unmapped"`
}

// Entry is one Constraint's migration.
type Entry struct {
	Source string `json:"source"`
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Policy is the loomguard policy the Constraint became ("" when unmapped).
	Policy string `json:"policy,omitempty"`
	// Action is the carried-over action; EnforcementAction the Constraint's own.
	Action            policies.Action `json:"action,omitempty"`
	EnforcementAction string          `json:"enforcementAction"`
	// Scope says where it applies ("every namespace", "namespaces a, b").
	Scope    string   `json:"scope"`
	Settings []string `json:"settings,omitempty"`
	Lost     []string `json:"lost,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Instead  string   `json:"instead,omitempty"`
}

// Conflict is a policy that several Constraints set to different actions somewhere.
type Conflict struct {
	Policy string `json:"policy"`
	// Where is "every namespace" or a namespace name or glob.
	Where       string          `json:"where"`
	Constraints []string        `json:"constraints"`
	Resolved    policies.Action `json:"resolved"`
}

// Exemption is one namespace that Gatekeeper's Config exempts.
type Exemption struct {
	Source    string   `json:"source"`
	Namespace string   `json:"namespace"`
	Processes []string `json:"processes"`
	Note      string   `json:"note,omitempty"`
}

// Mutator is one Assign or AssignMetadata and what became of it.
type Mutator struct {
	Source   string `json:"source"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Location string `json:"location"`
	// Policy is the loomguard policy whose fix now does the same ("" when none).
	Policy string `json:"policy,omitempty"`
	Note   string `json:"note"`
}

// Consider is a loomguard policy that the migrated config leaves off.
type Consider struct {
	Policy      string `json:"policy"`
	Description string `json:"description"`
}

// IgnoredObj is an input object that is not a Constraint, Config or mutator.
type IgnoredObj struct {
	Source string `json:"source"`
	Kind   string `json:"kind"`
	Name   string `json:"name"`
}

// Result is the migrated config and its report.
type Result struct {
	Config *policies.Config
	Report Report
	// Constraints are the parsed Constraints, for Compare.
	Constraints []*Constraint
}

// mapped is a Constraint with its mapping.
type mapped struct {
	c *Constraint
	m mapping
	e *Entry
}

// Migrate builds a loomguard config from Gatekeeper objects. Objects that are not
// Constraints, Gatekeeper Configs or mutators are listed as ignored. Malformed Gatekeeper
// objects are errors naming the source, the object and the field; nothing is skipped silently.
func Migrate(objs []Object, opts Options) (*Result, error) {
	res := &Result{}
	var errs []error
	var all []*mapped
	var exempt []Exemption
	var mutators []mutatorObj
	for _, o := range objs {
		u := o.Obj
		gvk := u.GroupVersionKind()
		where := fmt.Sprintf("%s: %s %q", o.Source, gvk.Kind, u.GetName())
		switch {
		case gvk.Group == ConstraintGroup:
			c, ferrs := parseConstraint(o)
			p := &params{m: c.Parameters}
			var m mapping
			if km, ok := kinds[c.Kind]; ok {
				m = km(c, p)
			} else if instead, ok := unmappedKinds[c.Kind]; ok {
				m = mapping{instead: instead}
			} else {
				m = mapping{instead: "loomguard has no policy for this constraint kind; keep it in Gatekeeper or rewrite it as a ValidatingAdmissionPolicy"}
			}
			ferrs = append(ferrs, p.errs...)
			if len(ferrs) > 0 {
				errs = append(errs, fieldErrors(where, ferrs)...)
				continue
			}
			res.Constraints = append(res.Constraints, c)
			all = append(all, &mapped{c: c, m: m})
		case gvk.Group == ConfigGroup && gvk.Kind == "Config":
			ex, ferrs := parseConfig(o)
			if len(ferrs) > 0 {
				errs = append(errs, fieldErrors(where, ferrs)...)
				continue
			}
			exempt = append(exempt, ex...)
		case gvk.Group == MutationGroup:
			mu, ferrs := parseMutator(o)
			if len(ferrs) > 0 {
				errs = append(errs, fieldErrors(where, ferrs)...)
				continue
			}
			mutators = append(mutators, mu)
		default:
			res.Report.Ignored = append(res.Report.Ignored, IgnoredObj{Source: o.Source, Kind: gvk.Kind, Name: u.GetName()})
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	cfg, err := buildConfig(all, exempt, mutators, opts, &res.Report)
	if err != nil {
		return nil, err
	}
	res.Config = cfg
	return res, nil
}

// buildConfig lays the mappings over the base config and fills the report.
func buildConfig(all []*mapped, exempt []Exemption, mutators []mutatorObj, opts Options, rep *Report) (*policies.Config, error) {
	cfg := policies.DefaultConfig()
	var ids []string
	loomAction := map[string]policies.Action{}
	for _, r := range policies.Registry() {
		ids = append(ids, r.ID)
		loomAction[r.ID] = r.DefaultAction
	}
	byPolicy := map[string][]*mapped{}
	for _, x := range all {
		x.e = entryFor(x)
		if x.m.policy != "" {
			byPolicy[x.m.policy] = append(byPolicy[x.m.policy], x)
		}
	}

	// Parameters: from a neutral start (without the profile) or the Loom profile, each
	// Constraint's in turn. Parameters are global in loomguard: Constraints that set
	// different ones on one policy are merged, and the report says so.
	for _, id := range sortedKeys(byPolicy) {
		xs := byPolicy[id]
		resetParams(&cfg.Policies, id, opts.WithLoomProfile)
		for _, x := range xs {
			x.m.apply(&cfg.Policies)
		}
		if len(xs) > 1 {
			noteMerged(id, xs, opts.WithLoomProfile)
		}
		for _, x := range xs {
			if uncovered := uncoveredAspects(id, x, xs); len(uncovered) > 0 {
				x.e.Lost = append(x.e.Lost, fmt.Sprintf("loomguard's %s also requires %s, which no Constraint on it requires wherever this one applies", id, strings.Join(uncovered, ", ")))
			}
		}
	}
	fitDefaultsToRatio(&cfg.Policies.ResourceLimits)
	if opts.WithLoomProfile {
		def := policies.DefaultConfig()
		if len(byPolicy["drop-all-capabilities"]) > 0 {
			cfg.Policies.DropAllCapabilities.AllowedAdd = intersectStrict(cfg.Policies.DropAllCapabilities.AllowedAdd, def.Policies.DropAllCapabilities.AllowedAdd)
		}
	}

	// Actions: each policy's action everywhere, then per namespace where the Constraints'
	// matches make it differ.
	settings := map[string]policies.Settings{}
	base := map[string]policies.Action{}
	for _, id := range ids {
		a := policies.ActionOff
		if opts.WithLoomProfile {
			a = loomAction[id]
		}
		base[id] = a
	}
	tokens := namespaceTokens(all)
	global := map[string]policies.Action{}
	for _, id := range ids {
		global[id] = actionAt(byPolicy[id], base[id], "", rep)
	}
	var overrides []policies.NamespaceOverride
	for _, ex := range exempt {
		if !ex.exempts() {
			continue
		}
		if strings.Contains(ex.Namespace, "*") {
			overrides = append(overrides, policies.NamespaceOverride{Names: []string{ex.Namespace}, Action: policies.ActionOff})
		} else if !slices.Contains(cfg.ExemptNamespaces, ex.Namespace) {
			cfg.ExemptNamespaces = append(cfg.ExemptNamespaces, ex.Namespace)
		}
	}
	// An override names the policies whose action there differs from everywhere else, and
	// also those that a later glob override would set for it: overrides are first-match.
	differs := make([]map[string]bool, len(tokens))
	for i, t := range tokens {
		differs[i] = map[string]bool{}
		for _, id := range ids {
			if actionAt(byPolicy[id], base[id], t, nil) != global[id] {
				differs[i][id] = true
			}
		}
	}
	for i, t := range tokens {
		o := policies.NamespaceOverride{Names: []string{t}}
		set := map[string]bool{}
		for id := range differs[i] {
			set[id] = true
		}
		for j := i + 1; j < len(tokens); j++ {
			if ok, _ := path.Match(tokens[j], t); ok {
				for id := range differs[j] {
					set[id] = true
				}
			}
		}
		for _, id := range ids {
			if set[id] {
				if o.Policies == nil {
					o.Policies = map[string]policies.Action{}
				}
				o.Policies[id] = actionAt(byPolicy[id], base[id], t, rep)
			}
		}
		if o.Policies != nil {
			overrides = append(overrides, o)
		}
	}
	if opts.MaxAction != "" {
		for id, a := range global {
			global[id] = weaker(a, opts.MaxAction)
		}
		for _, o := range overrides {
			for id, a := range o.Policies {
				o.Policies[id] = weaker(a, opts.MaxAction)
			}
		}
	}
	cfg.Namespaces = overrides
	for _, id := range ids {
		s := policies.Settings{Action: global[id]}
		if !opts.WithLoomProfile {
			s.Fix = ptr(false)
		}
		settings[id] = s
	}
	rep.Exemptions = exempt

	// Mutators: a fix runs where a Gatekeeper mutator set the same field.
	for _, mu := range mutators {
		m := Mutator{Source: mu.source, Kind: mu.kind, Name: mu.name, Location: mu.location, Note: mu.note}
		if mu.policy != "" {
			m.Policy = mu.policy
			anyOn := global[mu.policy] == policies.ActionEnforce || global[mu.policy] == policies.ActionWarn
			for _, o := range overrides {
				if a := o.Policies[mu.policy]; a == policies.ActionEnforce || a == policies.ActionWarn {
					anyOn = true
				}
			}
			if anyOn {
				s := settings[mu.policy]
				s.Fix = ptr(true)
				settings[mu.policy] = s
				if mu.apply != nil {
					mu.apply(&cfg.Policies)
				}
				m.Note = fmt.Sprintf("carried over: %s's fix sets it where %s is enforced or warned", mu.policy, mu.policy)
				if len(mu.scoped) > 0 {
					m.Note += fmt.Sprintf("; its %s is not: loomguard fixes wherever the policy is enforced or warned", strings.Join(mu.scoped, ", "))
				}
			} else {
				m.Policy = ""
				m.Note = fmt.Sprintf("not carried over: %s's fix would set it, but loomguard fixes only where the policy is enforced or warned, and no Constraint enforces %s", mu.policy, mu.policy)
			}
		}
		rep.Mutators = append(rep.Mutators, m)
	}

	if err := setSettings(&cfg.Policies, settings); err != nil {
		return nil, err
	}

	for _, x := range all {
		x.e.Status = statusOf(x.e)
		rep.Constraints = append(rep.Constraints, *x.e)
		switch x.e.Status {
		case Mapped:
			rep.Summary.Mapped++
		case Partial:
			rep.Summary.Partial++
		case Unmapped:
			rep.Summary.Unmapped++
		}
	}
	rep.Summary.Constraints = len(all)
	for _, p := range policies.Registry() {
		if global[p.ID] == policies.ActionOff && !anyOverrideOn(overrides, p.ID) {
			rep.Consider = append(rep.Consider, Consider{Policy: p.ID, Description: p.Description})
		}
	}
	return cfg, nil
}

func anyOverrideOn(overrides []policies.NamespaceOverride, id string) bool {
	for _, o := range overrides {
		if a, ok := o.Policies[id]; ok && a != policies.ActionOff {
			return true
		}
	}
	return false
}

// entryFor starts a Constraint's report entry: its mapping, and what its match loses.
func entryFor(x *mapped) *Entry {
	c, m := x.c, x.m
	e := &Entry{
		Source: c.Source, Kind: c.Kind, Name: c.Name, Policy: m.policy,
		EnforcementAction: cmp.Or(c.EnforcementAction, "deny"), Scope: c.Match.describeScope(),
		Settings: m.settings, Lost: slices.Clone(m.lost), Notes: slices.Clone(m.notes), Instead: m.instead,
	}
	if m.policy == "" {
		return e
	}
	e.Action = c.Action
	e.Lost = append(e.Lost, c.lost...)
	if imgs, _ := stringList(c.Parameters["exemptImages"], paramsPath.Child("exemptImages")); len(imgs) > 0 {
		e.Lost = append(e.Lost, fmt.Sprintf("exemptImages %s: loomguard waives by workload and container name, not by image; "+
			"add exceptions for the workloads that run these images", strings.Join(imgs, ", ")))
	}
	mt := &c.Match
	if mt.LabelSelector {
		e.Lost = append(e.Lost, "match.labelSelector: loomguard cannot select objects by label; the policy applies to every object in scope")
	}
	if mt.NamespaceSelector {
		e.Lost = append(e.Lost, "match.namespaceSelector: loomguard selects namespaces by name only; the policy applies in every namespace in scope")
	}
	if mt.Name != "" {
		e.Lost = append(e.Lost, fmt.Sprintf("match.name %q: loomguard cannot select one object by name; the policy applies to every object in scope (an exception can waive the others)", mt.Name))
	}
	if mt.Scope == "Cluster" {
		e.Lost = append(e.Lost, "match.scope Cluster: Gatekeeper matches only cluster-scoped objects, so this Constraint checks no workload; loomguard checks every workload")
	}
	workloads, others := mt.workloadKinds()
	switch {
	case c.Kind == "K8sRequiredLabels":
		if len(others) > 0 || len(mt.Kinds) == 0 {
			what := "kinds other than workloads"
			if len(others) > 0 {
				what = strings.Join(others, ", ")
			}
			if len(workloads) == 0 && len(mt.Kinds) > 0 {
				e.Policy, e.Action = "", ""
				e.Instead = fmt.Sprintf("the Constraint matches %s, which loomguard does not govern (it checks workloads only); keep a ValidatingAdmissionPolicy on their labels", what)
				x.m.policy = ""
				return e
			}
			e.Lost = append(e.Lost, fmt.Sprintf("labels of %s are not checked: loomguard governs workloads only", what))
		}
		if len(mt.Kinds) > 0 && len(workloads) < len(podKinds) {
			e.Lost = append(e.Lost, fmt.Sprintf("loomguard requires the labels on every workload kind, not only %s", strings.Join(workloads, ", ")))
		}
	case mt.governsPods():
		e.Notes = append(e.Notes, "the Constraint matches Pods: loomguard checks the pod template of every Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob too, "+
			"so it denies at the workload what Gatekeeper denies only when the controller creates the Pods")
	default:
		e.Lost = append(e.Lost, fmt.Sprintf("the Constraint matches %s only; gatekeeper-library's templates read spec.containers, which only Pods have, "+
			"while loomguard checks Pods and the pod templates of every workload kind", strings.Join(mt.Kinds, ", ")))
	}
	return e
}

func statusOf(e *Entry) Status {
	switch {
	case e.Policy == "":
		return Unmapped
	case len(e.Lost) > 0:
		return Partial
	}
	return Mapped
}

// uncoveredAspects are the requirements of a policy that x does not have and that no
// Constraint on the policy has wherever x applies: loomguard checks them there too.
func uncoveredAspects(id string, x *mapped, xs []*mapped) []string {
	covered := map[string]bool{}
	for _, y := range xs {
		if y != x && !y.c.Match.coversScope(&x.c.Match) {
			continue
		}
		for _, a := range y.m.covers {
			covered[a] = true
		}
	}
	var out []string
	for _, a := range aspects[id] {
		if !covered[a.id] {
			out = append(out, a.text)
		}
	}
	return out
}

// noteMerged tells a Constraint that loomguard's one set of parameters per policy changes
// what it enforces: when another Constraint on the policy with a different scope sets
// parameters (they then apply in both scopes), or sets the same parameter to another value.
func noteMerged(id string, xs []*mapped, withProfile bool) {
	neutral := policies.DefaultConfig().Policies
	resetParams(&neutral, id, withProfile)
	base, _ := policySettingsValue(&neutral, id).(map[string]any)
	changed := make([]map[string]any, len(xs))
	for i, x := range xs {
		pc := policies.DefaultConfig().Policies
		resetParams(&pc, id, withProfile)
		x.m.apply(&pc)
		alone, _ := policySettingsValue(&pc, id).(map[string]any)
		changed[i] = map[string]any{}
		for k, v := range alone {
			if !reflect.DeepEqual(v, base[k]) {
				changed[i][k] = v
			}
		}
	}
	for i, x := range xs {
		var others []string
		for j, y := range xs {
			if i == j {
				continue
			}
			sameScope := slices.Equal(x.c.Match.Namespaces, y.c.Match.Namespaces) && slices.Equal(x.c.Match.ExcludedNamespaces, y.c.Match.ExcludedNamespaces)
			conflict := !sameScope && len(changed[j]) > 0
			for k, v := range changed[j] {
				if w, ok := changed[i][k]; ok && !reflect.DeepEqual(v, w) {
					conflict = true
				}
			}
			if conflict {
				others = append(others, y.c.Kind+"/"+y.c.Name)
			}
		}
		if len(others) > 0 {
			x.e.Lost = append(x.e.Lost, fmt.Sprintf("loomguard has one set of %s parameters for every namespace: merged with %s's (required values united, allowed values intersected, the smaller ratio)", id, strings.Join(others, ", ")))
		}
	}
}

// resetParams clears the list parameters that Constraints fill, so that the migrated config
// holds only theirs; with the Loom profile, required lists keep Loom's entries.
func resetParams(pc *policies.PolicyConfigs, id string, withProfile bool) {
	switch id {
	case "required-labels":
		if !withProfile {
			pc.RequiredLabels.Labels, pc.RequiredLabels.AllowedValues = nil, nil
		}
	case "resource-limits":
		if !withProfile {
			pc.ResourceLimits.MaxLimitRequestRatio = 0
		}
	case "image-tag":
		if !withProfile {
			pc.ImageTag.ForbiddenTags = nil
		}
		pc.ImageTag.AllowedRegistries = nil
	case "drop-all-capabilities":
		pc.DropAllCapabilities.AllowedAdd = nil
	case "seccomp-profile":
		pc.SeccompProfile.AllowedTypes = nil
	}
}

// namespaceTokens are the namespace names and globs the Constraints name, names first, then
// globs from the most specific: loomguard's overrides are first-match.
func namespaceTokens(all []*mapped) []string {
	set := map[string]bool{}
	for _, x := range all {
		if x.m.policy == "" {
			continue
		}
		for _, ns := range append(slices.Clone(x.c.Match.Namespaces), x.c.Match.ExcludedNamespaces...) {
			set[ns] = true
		}
	}
	tokens := sortedKeys(set)
	slices.SortStableFunc(tokens, func(a, b string) int {
		ga, gb := strings.Contains(a, "*"), strings.Contains(b, "*")
		switch {
		case ga != gb:
			if ga {
				return 1
			}
			return -1
		case ga:
			return cmp.Compare(len(b), len(a))
		}
		return 0
	})
	return tokens
}

// actionAt is a policy's action in one namespace ("" for one that no Constraint names):
// the stricter of the base and every Constraint that matches there. Constraints that
// disagree there are reported once.
func actionAt(xs []*mapped, base policies.Action, ns string, rep *Report) policies.Action {
	a := base
	var who []string
	actions := map[policies.Action]bool{}
	for _, x := range xs {
		m := &x.c.Match
		if ns == "" {
			if len(m.Namespaces) > 0 {
				continue
			}
		} else if !m.matchesNamespace(ns) {
			continue
		}
		a = stricter(a, x.c.Action)
		who = append(who, fmt.Sprintf("%s/%s (%s)", x.c.Kind, x.c.Name, x.c.Action))
		actions[x.c.Action] = true
	}
	if len(actions) > 1 && rep != nil {
		where := ns
		if where == "" {
			where = "every namespace"
		}
		rep.Conflicts = append(rep.Conflicts, Conflict{Policy: xs[0].m.policy, Where: where, Constraints: who, Resolved: a})
	}
	return a
}

// setSettings sets each policy's action and fix switch, by ID, through the config's JSON
// form: every policy's block holds the common settings inline.
func setSettings(pc *policies.PolicyConfigs, settings map[string]policies.Settings) error {
	m, err := toMap(pc)
	if err != nil {
		return err
	}
	for id, s := range settings {
		block, _ := m[id].(map[string]any)
		if block == nil {
			block = map[string]any{}
			m[id] = block
		}
		block["action"] = string(s.Action)
		if s.Fix != nil {
			block["fix"] = *s.Fix
		} else {
			delete(block, "fix")
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("setting the policies' actions: %w", err)
	}
	if err := json.Unmarshal(b, pc); err != nil {
		return fmt.Errorf("setting the policies' actions: %w", err)
	}
	return nil
}

// policySettingsValue returns one policy's whole config section, through its JSON form.
func policySettingsValue(pc *policies.PolicyConfigs, id string) any {
	b, _ := json.Marshal(pc)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m[id]
}

func intersectStrict(a, b []string) []string {
	out := []string{}
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func fieldErrors(where string, errs field.ErrorList) []error {
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		out = append(out, fmt.Errorf("%s: %w", where, e))
	}
	return out
}

// joinedError lists several input errors, one per line.
type joinedError []error

func (j joinedError) Error() string {
	s := make([]string, len(j))
	for i, e := range j {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors.
func (j joinedError) Unwrap() []error { return j }

func joinErrors(errs []error) error { return joinedError(errs) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }

// fitDefaultsToRatio lowers the fix's default limits to at most maxLimitRequestRatio times
// the default requests, which a valid config requires (the Loom defaults are 5x apart).
func fitDefaultsToRatio(rl *policies.ResourceLimitsConfig) {
	ratio := rl.MaxLimitRequestRatio
	if ratio <= 0 {
		return
	}
	d := &rl.Defaults
	fit := func(req, lim string, milli bool) string {
		rq, err1 := resource.ParseQuantity(req)
		lq, err2 := resource.ParseQuantity(lim)
		if err1 != nil || err2 != nil {
			return lim
		}
		if milli {
			if float64(lq.MilliValue()) <= ratio*float64(rq.MilliValue()) {
				return lim
			}
			return resource.NewMilliQuantity(int64(ratio*float64(rq.MilliValue())), resource.DecimalSI).String()
		}
		if float64(lq.Value()) <= ratio*float64(rq.Value()) {
			return lim
		}
		return resource.NewQuantity(int64(ratio*float64(rq.Value())), resource.BinarySI).String()
	}
	d.Limits.CPU = fit(d.Requests.CPU, d.Limits.CPU, true)
	d.Limits.Memory = fit(d.Requests.Memory, d.Limits.Memory, false)
}
