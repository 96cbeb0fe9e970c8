package policies

import "k8s.io/apimachinery/pkg/util/validation/field"

// Policy is one named rule of the catalog.
type Policy struct {
	// ID is kebab-case and stable forever: it is a config key, a metric label and a
	// fixture directory.
	ID string
	// Description says in one sentence what the policy requires.
	Description string
	// Fields lists the pod-spec fields the policy reads, relative to the pod spec or the
	// workload, for documentation.
	Fields []string
	// DefaultAction is the action in force when the config does not name one.
	DefaultAction Action
	// Check reports every violation with its field path. It must not modify the workload.
	Check func(*Workload) field.ErrorList
	// Fix applies the policy's safe defaults and reports whether it changed anything.
	// It is nil for policies that cannot be fixed. A fix is idempotent, touches only its
	// own fields, never overrides an explicit value, and never invents label values.
	Fix func(*Workload) bool
	// CrossObject says the policy checks the workload against other objects of its
	// namespace (Workload.Related). Without that view it reports nothing, so it never
	// denies or warns in admission: only the audit and the CLI can see what it checks.
	CrossObject bool
}

// Catalog returns the policies configured by cfg, in the order fixes are applied. The order
// matters where fixes build on each other: read-only-root-filesystem makes the root read
// only before writable-paths mounts volumes over the paths that must stay writable.
func Catalog(cfg *Config) []Policy {
	p := &cfg.Policies
	return []Policy{
		requiredLabels(p.RequiredLabels),
		resourceLimits(p.ResourceLimits),
		runAsNonRoot(p.RunAsNonRoot),
		noPrivilegeEscalation(p.NoPrivilegeEscalation),
		dropAllCapabilities(p.DropAllCapabilities),
		readOnlyRootFilesystem(p.ReadOnlyRootFilesystem),
		writablePaths(p.WritablePaths),
		seccompProfile(p.SeccompProfile),
		hostIsolation(p.HostIsolation),
		imageTag(p.ImageTag),
		secretEnv(p.SecretEnv),
		healthProbes(p.HealthProbes),
		highAvailability(p.HighAvailability),
		podDisruptionBudget(p.PodDisruptionBudget),
		networkPolicy(p.NetworkPolicy),
	}
}
