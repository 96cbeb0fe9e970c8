package policies

import (
	"cmp"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MatchCondition is one entry of an admission webhook's matchConditions
// (admissionregistration.k8s.io/v1 MatchCondition): a name and a CEL expression over
// object, oldObject and request. The API server calls the webhook only when every
// condition of the webhook is true.
type MatchCondition struct {
	Name       string `json:"name"`
	Expression string `json:"expression"`
}

// Limits of what a cleared object may hold. With them, the policies' Cost bounds what the
// conditions cost whatever a request holds, and celCostLimit keeps that within the API
// server's budget for a webhook's matchConditions (celconfig.PerCallLimit, 1,000,000 per
// expression, and RuntimeCELCostBudgetMatchConditions, 2,500,000 for all of them, in
// k8s.io/apiserver pkg/apis/cel/config.go): a condition that ran out of budget would be an
// error, which denies the request under failurePolicy Fail. An object beyond the limits is
// never cleared: loomguard reviews it.
const (
	celMaxContainers = 8   // init, regular and ephemeral together
	celMaxEnv        = 32  // env entries of a container
	celMaxItems      = 16  // command, args, ports, volumeMounts, capabilities.add and .drop of a container
	celMaxVolumes    = 32  // volumes of the pod
	celMaxMeta       = 64  // labels, annotations
	celMaxName       = 128 // an env name
	celMaxString     = 256 // an env value, a command or args element, a mountPath
)

// celCostLimit is the most the conditions may cost on any object, by the sum of the
// policies' Cost and celBaseCost: 90 % of the API server's per-expression limit
// (celconfig.PerCallLimit, 1,000,000; the model errs high, the Loom profile's costliest Pod
// measures 397,000 against its 658,000). A config whose conditions could cost more gets
// none: loomguard is called for every object. TestMatchConditionsCostModel holds the model
// above what the API server measures on the costliest Pods under many configs.
const celCostLimit = 900_000

// celBaseCost bounds what the request part, the bindings and the bounds cost.
const celBaseCost = 2_000

// celRegexCost is what the API server's CEL charges for s.matches(re) with len(s) ≤ str
// and len(re) = re: ⌈(1 + len(s)) × 0.1⌉ × ⌈len(re) × 0.25⌉ (the "matches" case of
// k8s.io/apiserver/pkg/cel/library/cost.go, with cel-go's string traversal and regex
// length cost factors).
func celRegexCost(str, re int) uint64 {
	return uint64((1+str+9)/10) * uint64((re+3)/4)
}

// MatchConditions returns the matchConditions of loomguard's validating webhook under cfg:
// one condition, not-cleared, false exactly when the request is for a workload kind and its
// object is cleared (one per kind, not-cleared-<kind>, when the one would be longer than the
// API server's CEL parses: celMaxExpressionCodePoints). An object is cleared when it
// certainly passes every policy that is not off — no violation of any action, so no denial,
// warning or audit annotation — and needs no fix: the API server then skips the call, and
// an object that loomguard would only have waved through is admitted even while loomguard
// is down.
//
// The conditions are conservative: they clear only objects whose every checked field has a
// plainly compliant form, and leave everything else to loomguard, which always has the last
// word. In particular they never clear
//
//   - a request for a subresource (pods/ephemeralcontainers) or other than CREATE and UPDATE;
//   - an object in a namespace that a namespaces entry or an exception of cfg names, or an
//     object in a Windows pod;
//   - an object beyond the limits above (container count, list lengths, string sizes).
//
// Each policy states its own conditions next to its checks (Policy.Clear). MatchConditions
// returns nil — call loomguard for every request — when some policy that is not off cannot
// express its checks as conditions under cfg, when a namespaces entry or an exception names
// every namespace, when the conditions could cost more than celCostLimit, or when even one
// kind's condition would be too long to parse (WhyNoMatchConditions says which).
//
// These are the validating webhook's conditions; MutatingMatchConditions are the mutating
// webhook's.
func MatchConditions(cfg *Config) []MatchCondition {
	conds, _ := matchConditions(cfg, false)
	return conds
}

// MutatingMatchConditions returns the matchConditions of loomguard's mutating webhook under
// cfg, which only applies fixes (it never denies or warns: the validating webhook does,
// with MatchConditions): they clear an object when no fix of a policy that fixes in
// admission (enforced or warned, its fix on) would change it. Each such policy contributes
// its Policy.NoFix conditions (its Clear ones when it has none): mostly that the fields its
// fix fills are set, whatever their value, since a fix never overrides an explicit value.
// They are cheaper for the API server to evaluate than MatchConditions and clear at least
// what it clears. Single or one per kind is decided for each webhook on its own; nil means
// call the mutating webhook for every request.
func MutatingMatchConditions(cfg *Config) []MatchCondition {
	conds, _ := matchConditions(cfg, true)
	return conds
}

// WhyNoMatchConditions says why MatchConditions, or with mutating MutatingMatchConditions,
// returns none for cfg — a policy that cannot express its checks, a namespace glob of "*",
// a cost over the limit (naming the policies that cost most), a kind's condition too long
// for the API server's parser, an invalid config — and is "" when it returns some.
func WhyNoMatchConditions(cfg *Config, mutating bool) string {
	_, why := matchConditions(cfg, mutating)
	return why
}

// matchConditions builds the conditions of the validating webhook, or with fixesOnly of the
// mutating one; without any, it says why.
func matchConditions(cfg *Config, fixesOnly bool) ([]MatchCondition, string) {
	catalog := Catalog(cfg)
	e, err := newEngine(cfg, catalog, nil)
	if err != nil {
		return nil, err.Error()
	}
	var active []*Policy
	for i := range e.policies {
		p := &e.policies[i]
		a := e.actions[p.ID]
		switch {
		case a == ActionOff || p.CrossObject:
			continue // off, or reports nothing in admission (no related objects there)
		case fixesOnly && (!e.fixes[p.ID] || (a != ActionEnforce && a != ActionWarn)):
			continue // Engine.Mutate does not apply its fix
		}
		if p.clearance(fixesOnly) == nil {
			return nil, "policy " + p.ID + " states no conditions"
		}
		active = append(active, p)
	}
	unsent := unsentNamespaces(cfg)
	if unsent == everyNamespace {
		return nil, `a namespaces entry or an exception names every namespace ("*"): nothing could be cleared`
	}
	// One condition for every kind, a chain of conditionals on the request's kind: the API
	// server evaluates each condition of a webhook on every request, and one per kind would
	// cost it a condition's setup and a kind test per other kind (BenchmarkMatchConditions).
	branches := make([]string, 0, len(workloadKinds))
	cleared := make([]string, 0, len(workloadKinds)) // each kind's object test
	for i := range workloadKinds {
		k := &workloadKinds[i]
		t := newCELTemplate(k)
		var c clearance
		costs := map[string]uint64{}
		for _, p := range active {
			pc, ok := p.clearance(fixesOnly)(t)
			if !ok {
				return nil, "policy " + p.ID + " has a setting its conditions cannot express"
			}
			c.add(pc)
			costs[p.ID] = pc.Cost
		}
		if cost := c.Cost + celBaseCost + celRegexCost(63, len(unsent)); cost > celCostLimit {
			// It could run out of the API server's budget: an error, a denial.
			ids := sortedKeys(costs)
			slices.SortStableFunc(ids, func(a, b string) int { return -cmp.Compare(costs[a], costs[b]) })
			var top []string
			for _, id := range ids[:min(3, len(ids))] {
				top = append(top, id+" "+strconv.FormatUint(costs[id], 10))
			}
			return nil, "the conditions could cost the API server's CEL " + strconv.FormatUint(cost, 10) + " on an object at the limits, over the " +
				strconv.Itoa(celCostLimit) + " allowed (most: " + strings.Join(top, ", ") + ")"
		}
		cleared = append(cleared, t.specPresent+" && "+t.expression(c))
		branches = append(branches, t.kindTest()+" ? ("+cleared[i]+")")
	}
	expr := "!(" + request(unsent) + " && (" + strings.Join(branches, " : ") + " : false))"
	if utf8.RuneCountInString(expr) <= celMaxExpressionCodePoints {
		return []MatchCondition{{Name: "not-cleared", Expression: expr}}, ""
	}
	// Too long for the API server's parser: one condition per kind, as many as it takes.
	perKind := make([]MatchCondition, len(workloadKinds))
	for i := range workloadKinds {
		t := newCELTemplate(&workloadKinds[i])
		mc := MatchCondition{
			Name:       "not-cleared-" + strings.ToLower(t.kind.Kind),
			Expression: "!(" + t.kindTest() + " && " + request(unsent) + " && " + cleared[i] + ")",
		}
		if n := utf8.RuneCountInString(mc.Expression); n > celMaxExpressionCodePoints {
			return nil, "condition " + mc.Name + " is " + strconv.Itoa(n) + " code points long, over the " +
				strconv.Itoa(celMaxExpressionCodePoints) + " the API server's CEL parses"
		}
		perKind[i] = mc
	}
	return perKind, ""
}

// celMaxExpressionCodePoints is the longest expression the API server's CEL parses (cel-go's
// default ParserExpressionSizeLimit, which k8s.io/apiserver keeps): it refuses a webhook
// configuration with a longer matchCondition.
const celMaxExpressionCodePoints = 100_000

// clearance returns the conditions p states for the validating webhook (Clear) or, with
// fixesOnly, for the mutating one (NoFix, else Clear).
func (p *Policy) clearance(fixesOnly bool) func(celTemplate) (clearance, bool) {
	if fixesOnly && p.NoFix != nil {
		return p.NoFix
	}
	return p.Clear
}

// unsentNamespaces returns a regular expression matching every namespace whose objects are
// never cleared: those a namespaces entry or an exception names (an override may make a
// policy stricter there, and an exception's waiver is recorded even when nothing fails), or
// "" when there is none. Globs become supersets: "*" any run of characters, "?" and any
// bracket expression any one character.
func unsentNamespaces(cfg *Config) string {
	var globs []string
	for _, o := range cfg.Namespaces {
		globs = append(globs, o.Names...)
	}
	for _, ex := range cfg.Exceptions {
		globs = append(globs, ex.Namespace)
	}
	if len(globs) == 0 {
		return ""
	}
	alts := make([]string, 0, len(globs))
	for _, g := range globs {
		if g == "*" {
			return everyNamespace
		}
		alts = append(alts, globRegexp(g))
	}
	return "^(" + strings.Join(alts, "|") + ")$"
}

// everyNamespace is unsentNamespaces' answer when a glob matches every namespace.
const everyNamespace = "^(.*)$"

// globRegexp turns a path.Match glob into a regular expression that matches at least every
// string the glob matches.
func globRegexp(g string) string {
	if _, err := path.Match(g, ""); err != nil {
		return ".*" // refused by Config.Validate; the widest answer is the safe one
	}
	var b strings.Builder
	for i := 0; i < len(g); i++ {
		switch ch := g[i]; ch {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			b.WriteString(".")
			// Skip the bracket expression: path.Match validated it, so it closes.
			j := i + 1
			if j < len(g) && g[j] == '^' {
				j++
			}
			if j < len(g) && g[j] == ']' {
				j++
			}
			for j < len(g) && g[j] != ']' {
				if g[j] == '\\' {
					j++
				}
				j++
			}
			i = j
		case '\\':
			if i+1 < len(g) {
				i++
			}
			b.WriteString(regexp.QuoteMeta(g[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(string(ch)))
		}
	}
	return b.String()
}

// celTemplate names, as CEL expressions, the parts of an admission request's object of one
// workload kind that the policies read; each is followed by ".?field" where it is read.
// Spec is the pod spec (object.spec of a Pod, object.spec.template.spec of a Deployment),
// TemplateMeta the pod template's metadata (a Pod's own), Meta the object's metadata:
// paths from object, which the API server's CEL resolves as one attribute each (its typed
// object caches every field it has read), cheaper than binding them. PodSC, the pod's
// securityContext, is bound once as psc ({} when unset; a one-element list's all() is
// CEL's let), and so, in container conditions, is the container's as sc; c is the
// container.
type celTemplate struct {
	kind                                    *WorkloadKind
	Object, Meta, TemplateMeta, Spec, PodSC string
	// specPresent tests that Spec can be selected.
	specPresent string
}

func newCELTemplate(k *WorkloadKind) celTemplate {
	t := celTemplate{kind: k, Object: "object", Meta: "object.metadata", Spec: "object.spec", PodSC: "psc"}
	if k.TemplatePath == nil { // a Pod is its own template
		t.TemplateMeta = t.Meta
		t.specPresent = "has(object.metadata) && has(object.spec)"
		return t
	}
	tmpl := "object"
	present := []string{"has(object.metadata)"}
	for _, step := range strings.Split(k.TemplatePath.String(), ".") {
		present = append(present, "has("+tmpl+"."+step+")")
		tmpl += "." + step
	}
	present = append(present, "has("+tmpl+".spec)")
	t.Spec, t.TemplateMeta = tmpl+".spec", tmpl+".?metadata"
	t.specPresent = strings.Join(present, " && ")
	return t
}

// RunsToCompletion reports whether the kind's pods exit when done, as CEL: a Job's or a
// CronJob's always, a Pod's when its restartPolicy is set and not Always (see
// Workload.RunsToCompletion).
func (t celTemplate) RunsToCompletion() string {
	switch {
	case t.kind.RunsToCompletion:
		return "true"
	case t.kind.TemplatePath == nil:
		return "(" + t.Spec + ".?restartPolicy.orValue('') != '' && " + t.Spec + ".?restartPolicy.orValue('') != 'Always')"
	}
	return "false"
}

// Linux is true when the pod is not a Windows pod (spec.os.name), which the policies judge
// apart; Windows pods are never cleared.
func (t celTemplate) Linux() string {
	return t.Spec + ".?os.?name.orValue('') != 'windows'"
}

// request is the condition's part about the request: CREATE or UPDATE of the object
// itself, in a namespace the config does not single out.
func request(unsent string) string {
	parts := []string{
		"request.operation in ['CREATE', 'UPDATE']",
		"request.?subResource.orValue('') == ''",
	}
	if unsent != "" {
		parts = append(parts, "!request.?namespace.orValue('').matches("+celString(unsent)+")")
	}
	return strings.Join(parts, " && ")
}

// kindTest is true when the request is for t's kind.
func (t celTemplate) kindTest() string {
	return "request.kind.kind == " + celString(t.kind.Kind) + " && request.kind.group == " + celString(t.kind.Group)
}

// clearance is what one policy needs of an object to report nothing and fix nothing (Clear),
// or only to fix nothing (NoFix): CEL conditions over the pod template (celTemplate's
// names), and conditions over each container c of a class. Conditions that read a list or a string of unbounded size check
// its size first, against the limits above.
type clearance struct {
	// Pod conditions read the object, its metadata, the template's metadata and the spec.
	Pod []string
	// Containers conditions hold for every init, regular and ephemeral container c;
	// NonEphemeral ones for every init and regular container; LongRunning ones for every
	// regular container and restartable init container (a sidecar), see ContainerRef.
	Containers, NonEphemeral, LongRunning []string
	// Cost bounds what the conditions cost the API server's CEL on an object at the limits
	// (celMaxContainers and the others), by its runtime cost model (see celRegexCost): the
	// conditions are used only while the sum over the policies stays within celCostLimit.
	Cost uint64
}

func (c *clearance) add(o clearance) {
	c.Cost += o.Cost
	c.Pod = appendNew(c.Pod, o.Pod...)
	c.Containers = appendNew(c.Containers, o.Containers...)
	c.NonEphemeral = appendNew(c.NonEphemeral, o.NonEphemeral...)
	c.LongRunning = appendNew(c.LongRunning, o.LongRunning...)
}

// AllContainers and NonEphemeralContainers are the CEL lists of the pod's init, regular and
// ephemeral containers and of its init and regular ones.
func (t celTemplate) AllContainers() string {
	return "(" + t.list("initContainers") + " + " + t.list("containers") + " + " + t.list("ephemeralContainers") + ")"
}

func (t celTemplate) NonEphemeralContainers() string {
	return "(" + t.list("initContainers") + " + " + t.list("containers") + ")"
}

// AllLongRunning is true when every regular container and restartable init container (a
// sidecar) c meets cond: a pass over each list, no list built.
func (t celTemplate) AllLongRunning(cond string) string {
	return "(" + t.list("containers") + ".all(c, " + cond + ") && " + t.list("initContainers") + ".all(c, c.?restartPolicy.orValue('') != 'Always' || (" + cond + ")))"
}

// list is a list field of the pod spec, [] when absent.
func (t celTemplate) list(field string) string {
	return t.Spec + ".?" + field + ".orValue([])"
}

// bounds are the limits of a cleared object that are not checked where the lists are read:
// the container count and the sizes of the maps and the volumes. The first is that the
// containers are not null: containers is the one list field the API types do not omit when
// empty (no omitempty in corev1.PodSpec), so the API server's object may hold null there,
// which would make list operations fail; such an object is never cleared, and the bounds
// and the conditions after them are not evaluated on it (CEL's && stops at false).
func (t celTemplate) bounds() []string {
	meta := strconv.Itoa(celMaxMeta)
	bounds := []string{
		t.list("containers") + " != null",
		"size(" + t.list("initContainers") + ") + size(" + t.list("containers") + ") + size(" + t.list("ephemeralContainers") + ") <= " + strconv.Itoa(celMaxContainers),
		"size(" + t.list("volumes") + ") <= " + strconv.Itoa(celMaxVolumes),
		"size(" + t.Meta + ".?labels.orValue({})) <= " + meta,
		"size(" + t.Meta + ".?annotations.orValue({})) <= " + meta,
	}
	if t.TemplateMeta != t.Meta {
		bounds = append(bounds,
			"size("+t.TemplateMeta+".?labels.orValue({})) <= "+meta,
			"size("+t.TemplateMeta+".?annotations.orValue({})) <= "+meta)
	}
	return bounds
}

// sizedList is true when the CEL list l has at most max elements, each e of which meets
// cond.
func sizedList(l string, max int, e, cond string) string {
	return "(size(" + l + ") <= " + strconv.Itoa(max) + " && " + l + ".all(" + e + ", " + cond + "))"
}

// expression joins the bounds and the conditions: the conditions on every container and on
// the init and regular ones in one pass, on long-running ones in another, with the pod's
// securityContext bound (see celTemplate).
func (t celTemplate) expression(c clearance) string {
	parts := append([]string{t.Linux()}, t.bounds()...)
	parts = append(parts, c.Pod...)
	if len(c.NonEphemeral) == 0 {
		parts = appendClass(parts, t.AllContainers(), c.Containers)
	} else {
		// Init and regular containers in one pass with both classes' conditions, ephemeral
		// ones in another: each container's securityContext is bound once.
		parts = appendClass(parts, t.NonEphemeralContainers(), slices.Concat(c.Containers, c.NonEphemeral))
		parts = appendClass(parts, t.list("ephemeralContainers"), c.Containers)
	}
	if len(c.LongRunning) > 0 {
		parts = append(parts, t.AllLongRunning("[c.?securityContext.orValue({})].all(sc, "+strings.Join(c.LongRunning, " && ")+")"))
	}
	return "[" + t.Spec + ".?securityContext.orValue({})].all(psc, " + strings.Join(parts, " && ") + ")"
}

// appendClass appends to parts the condition that every container c of the CEL list meets
// conds, with sc bound to its securityContext ({} when unset); nothing without conds.
func appendClass(parts []string, list string, conds []string) []string {
	if len(conds) == 0 {
		return parts
	}
	return append(parts, list+".all(c, [c.?securityContext.orValue({})].all(sc, "+strings.Join(conds, " && ")+"))")
}

// celString quotes s as a CEL string literal.
func celString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatInt(int64(r)|0x100, 16)[1:])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// celStrings renders a list of CEL string literals.
func celStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = celString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// celDouble renders f as a CEL double literal.
func celDouble(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// appendNew appends each condition not already in list: policies that check the same field
// state the same condition once.
func appendNew(list []string, conds ...string) []string {
	for _, c := range conds {
		if !slices.Contains(list, c) {
			list = append(list, c)
		}
	}
	return list
}
