package policies

import "k8s.io/apimachinery/pkg/util/validation/field"

// Policy is one named rule of the catalog.
type Policy struct {
	// ID, Description and DefaultAction are those of the policy's Registration: Catalog
	// sets them.
	ID          string
	Description string
	// Fields lists the pod-spec fields the policy reads, relative to the pod spec or the
	// workload, for documentation.
	Fields        []string
	DefaultAction Action
	// Check reports every violation with its field path. It must not modify the workload.
	Check func(*Workload) field.ErrorList
	// Fix applies the policy's safe defaults and reports whether it changed anything.
	// It is nil for policies that cannot be fixed. A fix is idempotent, touches only its
	// own fields, never overrides an explicit value, and never invents label values.
	Fix func(*Workload) bool
	// Clear returns CEL conditions on an admission request's object of t's kind under which
	// Check certainly reports nothing and Fix changes nothing, written with t's names (see
	// MatchConditions); false when the policy's config has a setting they cannot express.
	// Nil for a policy that states none: the API server then calls loomguard for every
	// object while the policy is on.
	Clear func(t celTemplate) (clearance, bool)
	// NoFix returns CEL conditions, as Clear does, under which Fix certainly changes
	// nothing, for the mutating webhook, which only fixes (MutatingMatchConditions). Clear's
	// conditions must imply them (whatever Clear clears, NoFix clears); they are cheaper
	// where Fix leaves an explicit value alone, even a wrong one: the validating webhook
	// judges it. Nil means Clear's.
	NoFix func(t celTemplate) (clearance, bool)
	// CrossObject says the policy checks the workload against other objects of its
	// namespace (Workload.Related). Without that view it reports nothing, so it never
	// denies or warns in admission: only the audit and the CLI can see what it checks.
	CrossObject bool
}

// Catalog returns the policies of the Registry configured by cfg, in the order fixes are
// applied.
func Catalog(cfg *Config) []Policy {
	reg := Registry()
	out := make([]Policy, 0, len(reg))
	for _, r := range reg {
		p := r.New(&cfg.Policies)
		p.ID, p.Description, p.DefaultAction = r.ID, r.Description, r.DefaultAction
		out = append(out, p)
	}
	return out
}
