package policies

import (
	"fmt"

	"math"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// resource-limits requires every init and regular container (sidecars included) to set
// resources.requests and resources.limits for cpu and memory, each positive, with the
// request not above the limit and, when maxLimitRequestRatio is set (Loom's default: 5),
// the limit at most that many times the request. Loom's guide asks for requests 100m/256Mi
// and limits 500m/512Mi; it recommends limits 2–3× the requests, yet its own CPU example is
// 5× (LOOM.md, "guide's resources"), so the default ceiling is 5 and that example passes.
// Ephemeral containers are not checked: the API forbids resources on them.
//
// The policy judges the object as the API server stores it. When a container sets a limit
// and no request for a resource, the API server copies the limit into the request when it
// stores a Pod (SetDefaults_Pod in k8s.io/kubernetes pkg/apis/core/v1/defaults.go, for
// regular and init containers), before admission. It does not do so for the pod template
// of a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob, but every Pod made
// from the template gets it. So such a request counts as set, equal to its limit, for a Pod
// and a template alike: the verdict never depends on which of the two arrives.
//
// The fix fills only what is missing, from the config's defaults, and never changes an
// explicit value: both request and limit when neither is set, the limit when only the
// request is. When the default limit does not fit next to an explicit request — below it,
// or beyond the ratio — it takes the request instead (limit = request). A request that the
// API server will copy from the limit is not missing, so the fix adds none. It leaves a
// resource alone when the explicit value is zero or negative: that is a mistake for a
// person to correct.
func resourceLimits(cfg ResourceLimitsConfig) Policy {
	rules := [...]resourceRule{
		newResourceRule(corev1.ResourceCPU, true, cfg.Defaults.Requests.CPU, cfg.Defaults.Limits.CPU),
		newResourceRule(corev1.ResourceMemory, false, cfg.Defaults.Requests.Memory, cfg.Defaults.Limits.Memory),
	}
	ratio := cfg.MaxLimitRequestRatio
	return Policy{
		Fields: []string{
			"{initContainers,containers}[*].resources.requests",
			"{initContainers,containers}[*].resources.limits",
		},
		Check: func(w *Workload) field.ErrorList {
			var errs field.ErrorList
			for _, c := range w.Containers() {
				if c.Kind == Ephemeral {
					continue
				}
				for i := range rules {
					errs = rules[i].check(errs, c, ratio)
				}
			}
			return errs
		},
		// Cleared: each init and regular container has a limit and a request (or the request
		// the API server copies from the limit) for each resource, the request positive and
		// within the limit, and the limit, rounded up as the check rounds it, within the ratio;
		// the fix then fills nothing.
		Clear: func(t celTemplate) (clearance, bool) {
			var c clearance
			for i := range rules {
				c.NonEphemeral = append(c.NonEphemeral, rules[i].clear(ratio))
			}
			// Per container and resource: two sizes, two regular expressions on quantity
			// strings of at most wholeMaxLen characters (64 is generous), four quantities.
			c.Cost = uint64(celMaxContainers) * uint64(len(rules)) * (2*celRegexCost(64, len(wholeBytes)+2) + 400)
			return c, true
		},
		// No fix: each init and regular container has a limit for each resource, whatever
		// its value (the fix fills only what is missing, and a request without a limit is
		// what it fills a limit for).
		NoFix: func(t celTemplate) (clearance, bool) {
			var c clearance
			for i := range rules {
				c.NonEphemeral = append(c.NonEphemeral, "c.?resources.?limits[?"+celString(string(rules[i].name))+"].hasValue()")
			}
			c.Cost = uint64(celMaxContainers) * uint64(len(rules)) * 20
			return c, true
		},
		Fix: func(w *Workload) bool {
			changed := false
			for _, c := range w.Containers() {
				if c.Kind == Ephemeral {
					continue
				}
				for i := range rules {
					if rules[i].fix(c.Container, ratio) {
						changed = true
					}
				}
			}
			return changed
		},
	}
}

// resourceRule checks and fills one resource (cpu or memory).
type resourceRule struct {
	name corev1.ResourceName
	// milli compares amounts in thousandths (cpu); memory compares whole bytes, whose
	// thousandths would overflow for large quantities.
	milli bool
	// defReq and defLim are the parsed defaults; nil when the config leaves them unset or
	// invalid (an engine is only built from a validated config, but Validate itself builds
	// the catalog to list the policy IDs).
	defReq, defLim *resource.Quantity
}

func newResourceRule(name corev1.ResourceName, milli bool, req, lim string) resourceRule {
	return resourceRule{name: name, milli: milli, defReq: parseDefaultQuantity(req), defLim: parseDefaultQuantity(lim)}
}

func parseDefaultQuantity(s string) *resource.Quantity {
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() <= 0 {
		return nil
	}
	return &q
}

// amount returns q in the rule's unit, as a float for ratios.
func (r *resourceRule) amount(q *resource.Quantity) float64 {
	if r.milli {
		return float64(q.MilliValue())
	}
	return float64(q.Value())
}

// exceeds reports whether lim/req is above ratio (0: no ceiling); req is positive.
func (r *resourceRule) exceeds(req, lim *resource.Quantity, ratio float64) bool {
	return ratio > 0 && r.amount(lim)/r.amount(req) > ratio
}

func (r *resourceRule) check(errs field.ErrorList, c ContainerRef, ratio float64) field.ErrorList {
	req, hasReq := c.Resources.Requests[r.name]
	lim, hasLim := c.Resources.Limits[r.name]
	// The request the API server copies from the limit (see resourceLimits).
	copied := !hasReq && hasLim
	if copied {
		req, hasReq = lim, true
	}
	if hasReq && hasLim && req.Sign() > 0 && lim.Sign() > 0 && req.Cmp(lim) <= 0 && !r.exceeds(&req, &lim, ratio) {
		return errs // the passing path: no allocation
	}
	name := strconv.Quote(c.Name)
	res := string(r.name)
	reqPath := c.Path.Child("resources", "requests").Key(res)
	limPath := c.Path.Child("resources", "limits").Key(res)
	if !hasReq {
		errs = append(errs, field.Required(reqPath, "container "+name+" must set a "+res+" request"))
	} else if copied && req.Sign() <= 0 {
		hasReq = false // reported once, at the limit it is copied from
	} else if req.Sign() <= 0 {
		errs = append(errs, field.Invalid(reqPath, req.String(), "container "+name+" must request a positive amount of "+res))
		hasReq = false
	}
	if !hasLim {
		errs = append(errs, field.Required(limPath, "container "+name+" must set a "+res+" limit"))
	} else if lim.Sign() <= 0 {
		errs = append(errs, field.Invalid(limPath, lim.String(), "container "+name+" must set a positive "+res+" limit"))
		hasLim = false
	}
	if !hasReq || !hasLim {
		return errs
	}
	if req.Cmp(lim) > 0 {
		return append(errs, field.Invalid(reqPath, req.String(),
			"container "+name+" "+res+" request "+req.String()+" exceeds its limit "+lim.String()))
	}
	return append(errs, field.Invalid(limPath, lim.String(),
		"container "+name+" "+res+" limit "+lim.String()+" is "+formatRatio(r.amount(&lim)/r.amount(&req))+
			"× its request "+req.String()+"; at most "+formatRatio(ratio)+"× is allowed"))
}

// clear is the CEL condition on a container c under which check reports nothing. The check
// rounds amounts up to whole units (thousandths of a cpu, bytes) and divides them as
// floating point numbers; the condition therefore takes only positive quantities written in
// whole units below 10^13 units (wholeCPU, wholeBytes), whose amounts in those units are
// exact integers, and compares them by quantity's asApproximateFloat: a whole number times
// a power of ten or two, off by at most two roundings (below 3×10^-16 of the value), while
// two different amounts below 10^13 units differ by more than 10^-13 of the larger. So the
// request's float is at most the limit's only when the request is at most the limit, and
// the limit's at most ratio times the request's only when the limit is at most ratio times
// the request, for a whole ratio; any other ratio is compared a billionth below it. No
// quantity is bound or added: each comparison parses its quantities (cheaper for the API
// server's CEL than binding them, BenchmarkMatchConditions).
func (r *resourceRule) clear(ratio float64) string {
	name := string(r.name)
	lim := "c.?resources.?limits[?" + celString(name) + "].orValue('')"
	req := "c.?resources.?requests[?" + celString(name) + "].orValue(" + lim + ")"
	whole := wholeBytes
	if r.milli {
		whole = wholeCPU
	}
	amount := func(q string) string { return "quantity(" + q + ").asApproximateFloat()" }
	// The sizes first: a quantity string is as long as the request makes it (the canonical
	// form of a many-digit amount keeps every digit), and a regular expression costs the API
	// server's CEL in proportion to it; one of a few hundred thousand digits would exceed the
	// per-call budget, an error that skips the webhook under failurePolicy Ignore.
	size := strconv.Itoa(wholeMaxLen)
	conds := []string{
		"type(" + lim + ") == string", "type(" + req + ") == string",
		"size(" + lim + ") <= " + size, "size(" + req + ") <= " + size,
		lim + ".matches(" + celString(whole) + ")", req + ".matches(" + celString(whole) + ")",
		amount(req) + " <= " + amount(lim),
	}
	switch {
	case ratio <= 0:
	case ratio == math.Trunc(ratio):
		conds = append(conds, amount(lim)+" <= "+celDouble(ratio)+" * "+amount(req))
	default:
		conds = append(conds, amount(lim)+" <= "+celDouble(ratio*(1-1e-9))+" * "+amount(req))
	}
	return "(" + strings.Join(conds, " && ") + ")"
}

// wholeCPU and wholeBytes match the positive quantities below 10^13 units that are whole
// thousandths of a cpu and whole bytes: no leading zero, and a number of digits that keeps
// each suffix's amount below the bound (a cpu in thousandths "m" or in whole cpus; bytes
// alone or with a decimal or binary suffix up to T and Ti). The API server hands them to
// CEL in the canonical form (resource.Quantity's String), in which a whole amount has no
// decimal point: 1.5 is 1500m, 0.5Gi is 512Mi.
const (
	wholeCPU   = `^([1-9][0-9]{0,12}m|[1-9][0-9]{0,9})$`
	wholeBytes = `^[1-9]([0-9]{0,12}|[0-9]{0,9}k|[0-9]{0,6}M|[0-9]{0,3}G|T|[0-9]{0,8}Ki|[0-9]{0,5}Mi|[0-9]{0,2}Gi|Ti)$`
	// wholeMaxLen is the length of the longest string wholeCPU or wholeBytes match: 13
	// digits and "m".
	wholeMaxLen = 14
)

// fix fills a missing request or limit; see resourceLimits.
func (r *resourceRule) fix(c *corev1.Container, ratio float64) bool {
	req, hasReq := c.Resources.Requests[r.name]
	_, hasLim := c.Resources.Limits[r.name]
	switch {
	case hasReq && hasLim:
		return false
	case !hasReq && !hasLim:
		if r.defReq == nil || r.defLim == nil {
			return false
		}
		setQuantity(&c.Resources.Requests, r.name, *r.defReq)
		setQuantity(&c.Resources.Limits, r.name, *r.defLim)
	case hasLim: // the API server copies the limit into the request
		return false
	default: // the limit is missing
		if r.defLim == nil || req.Sign() <= 0 {
			return false
		}
		if req.Cmp(*r.defLim) > 0 || r.exceeds(&req, r.defLim, ratio) {
			setQuantity(&c.Resources.Limits, r.name, req)
		} else {
			setQuantity(&c.Resources.Limits, r.name, *r.defLim)
		}
	}
	return true
}

func setQuantity(l *corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
	if *l == nil {
		*l = corev1.ResourceList{}
	}
	(*l)[name] = q.DeepCopy()
}

// formatRatio renders a ratio with at most two decimals: 5, 2.5, 3.33.
func formatRatio(r float64) string {
	return strconv.FormatFloat(math.Round(r*100)/100, 'f', -1, 64)
}

// ResourceLimitsConfig configures resource-limits.
type ResourceLimitsConfig struct {
	Settings `json:",inline"`
	// MaxLimitRequestRatio caps limit/request for each resource; 0 disables the cap.
	MaxLimitRequestRatio float64 `json:"maxLimitRequestRatio,omitempty"`
	// Defaults fill missing requests and limits.
	Defaults ResourceDefaults `json:"defaults"`
}

// ResourceDefaults are the quantities the fix fills in.
type ResourceDefaults struct {
	Requests ResourceAmounts `json:"requests"`
	Limits   ResourceAmounts `json:"limits"`
}

// ResourceAmounts are a cpu and a memory quantity.
type ResourceAmounts struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

// Default sets Loom's defaults: requests of 100m cpu and 256Mi memory, limits of 500m cpu
// and 512Mi memory, and a limit/request ratio of at most 5.
func (c *ResourceLimitsConfig) Default() {
	c.MaxLimitRequestRatio = 5
	c.Defaults = ResourceDefaults{
		Requests: ResourceAmounts{CPU: "100m", Memory: "256Mi"},
		Limits:   ResourceAmounts{CPU: "500m", Memory: "512Mi"},
	}
}

// Validate requires a ratio of 0 or at least 1 and four positive default quantities, each
// default request within its default limit and the pair within the ratio.
func (c *ResourceLimitsConfig) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.MaxLimitRequestRatio < 0 || (c.MaxLimitRequestRatio > 0 && c.MaxLimitRequestRatio < 1) {
		errs = append(errs, field.Invalid(fldPath.Child("maxLimitRequestRatio"), c.MaxLimitRequestRatio, "must be 0 (no cap) or at least 1"))
	}
	d := c.Defaults
	var qerrs field.ErrorList
	for _, q := range []struct {
		path *field.Path
		val  string
	}{
		{fldPath.Child("defaults", "requests", "cpu"), d.Requests.CPU},
		{fldPath.Child("defaults", "requests", "memory"), d.Requests.Memory},
		{fldPath.Child("defaults", "limits", "cpu"), d.Limits.CPU},
		{fldPath.Child("defaults", "limits", "memory"), d.Limits.Memory},
	} {
		qerrs = append(qerrs, validateQuantity(q.path, q.val, true)...)
	}
	errs = append(errs, qerrs...)
	if len(qerrs) > 0 {
		return errs
	}
	ratio := c.MaxLimitRequestRatio
	for _, res := range []struct{ name, req, lim string }{{"cpu", d.Requests.CPU, d.Limits.CPU}, {"memory", d.Requests.Memory, d.Limits.Memory}} {
		req, lim := resource.MustParse(res.req), resource.MustParse(res.lim)
		if req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(fldPath.Child("defaults", "requests", res.name), res.req, fmt.Sprintf("must not exceed the default limit %s", res.lim)))
		} else if ratio > 0 && float64(lim.MilliValue()) > ratio*float64(req.MilliValue()) {
			errs = append(errs, field.Invalid(fldPath.Child("defaults", "limits", res.name), res.lim, fmt.Sprintf("is more than maxLimitRequestRatio (%g) times the default request %s", ratio, res.req)))
		}
	}
	return errs
}
