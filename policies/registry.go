package policies

import (
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PolicyConfig is one policy's block of the config file, policies.<id>: the settings every
// policy has and the policy's own parameters. Each policy's file defines its config type.
type PolicyConfig interface {
	// Common returns the settings every policy has.
	Common() Settings
	// Default sets the policy's parameters to the values of the Loom profile (DefaultConfig).
	Default()
	// Validate reports every problem of the policy's own parameters, each at its path under
	// fldPath (policies.<id>). The common settings are validated with the whole config.
	Validate(fldPath *field.Path) field.ErrorList
}

// Registration is one policy of the registry: who it is, where its config lives and how
// to build it from a config.
type Registration struct {
	// ID is kebab-case and stable forever: it is the policy's key under policies: in the
	// config (the JSON tag of its PolicyConfigs field), a metric label and the name of its
	// fixture directory (testdata/<id>).
	ID string
	// Description says in one sentence what the policy requires.
	Description string
	// DefaultAction is the action in force when the config does not name one.
	DefaultAction Action
	// Config returns the policy's block of a config: a pointer into p.
	Config func(p *PolicyConfigs) PolicyConfig
	// New builds the policy's checks and fix from its block of p.
	New func(p *PolicyConfigs) Policy
}

// Registry returns every policy, in the order fixes are applied. The order matters where
// fixes build on each other: read-only-root-filesystem makes the root read only before
// writable-paths mounts volumes over the paths that must stay writable.
//
// Everything else derives from it: the catalog, each policy's settings, the config's
// validation, the IDs a config may name, `loomguard policies` and docs/policies.md.
// Adding a policy adds its file (config type, constructor, checks and fix), its field in
// PolicyConfigs and one entry here.
func Registry() []Registration {
	return []Registration{
		{
			ID:            "required-labels",
			Description:   "The workload and its pod template carry the required labels, with allowed values.",
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.RequiredLabels },
			New:           func(p *PolicyConfigs) Policy { return requiredLabels(p.RequiredLabels) },
		},
		{
			ID:            "resource-limits",
			Description:   "Init and regular containers set cpu and memory requests and limits, within the limit/request ratio.",
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.ResourceLimits },
			New:           func(p *PolicyConfigs) Policy { return resourceLimits(p.ResourceLimits) },
		},
		{
			ID:            "run-as-non-root",
			Description:   "Containers run with runAsNonRoot: true and a numeric, non-zero runAsUser.",
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.RunAsNonRoot },
			New:           func(p *PolicyConfigs) Policy { return runAsNonRoot(p.RunAsNonRoot) },
		},
		{
			ID:            "no-privilege-escalation",
			Description:   "Containers set allowPrivilegeEscalation: false and are not privileged.",
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.NoPrivilegeEscalation },
			New:           func(p *PolicyConfigs) Policy { return noPrivilegeEscalation(p.NoPrivilegeEscalation) },
		},
		{
			ID:            "drop-all-capabilities",
			Description:   `Containers drop "ALL" capabilities and add back only allowed ones (NET_BIND_SERVICE for a port below 1024).`,
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.DropAllCapabilities },
			New:           func(p *PolicyConfigs) Policy { return dropAllCapabilities(p.DropAllCapabilities) },
		},
		{
			ID:            "read-only-root-filesystem",
			Description:   "Init and regular containers set readOnlyRootFilesystem: true.",
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.ReadOnlyRootFilesystem },
			New:           func(p *PolicyConfigs) Policy { return readOnlyRootFilesystem(p.ReadOnlyRootFilesystem) },
		},
		{
			ID:            "writable-paths",
			Description:   "Containers with a read-only root filesystem have a writable volume mounted at each path they must write to (default /tmp).",
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.WritablePaths },
			New:           func(p *PolicyConfigs) Policy { return writablePaths(p.WritablePaths) },
		},
		{
			ID:            "seccomp-profile",
			Description:   "Containers run under an allowed seccomp profile (RuntimeDefault or Localhost), never Unconfined.",
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.SeccompProfile },
			New:           func(p *PolicyConfigs) Policy { return seccompProfile(p.SeccompProfile) },
		},
		{
			ID:            "host-isolation",
			Description:   "Pods do not use the host's network, PID or IPC namespace, hostPath volumes or host ports.",
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.HostIsolation },
			New:           func(p *PolicyConfigs) Policy { return hostIsolation(p.HostIsolation) },
		},
		{
			ID:            "image-tag",
			Description:   "Container images are pinned by a version tag or a digest, never latest, from allowed registries.",
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.ImageTag },
			New:           func(p *PolicyConfigs) Policy { return imageTag(p.ImageTag) },
		},
		{
			ID:            "secret-env",
			Description:   "Secret-like environment variables come from Secrets; forbidden variables and known default passwords are refused.",
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.SecretEnv },
			New:           func(p *PolicyConfigs) Policy { return secretEnv(p.SecretEnv) },
		},
		{
			ID:            "health-probes",
			Description:   "Long-running containers define liveness and readiness probes.",
			DefaultAction: ActionWarn,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.HealthProbes },
			New:           func(p *PolicyConfigs) Policy { return healthProbes(p.HealthProbes) },
		},
		{
			ID:            "high-availability",
			Description:   "Production Deployments and StatefulSets run enough replicas and spread them across the topology.",
			DefaultAction: ActionAudit,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.HighAvailability },
			New:           func(p *PolicyConfigs) Policy { return highAvailability(p.HighAvailability) },
		},
		{
			ID:            PodSecurityID,
			Description:   "Pod templates meet the Pod Security Standards at the configured level and version, judged by the API server's own PodSecurity checks.",
			DefaultAction: ActionEnforce,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.PodSecurity },
			New:           func(p *PolicyConfigs) Policy { return podSecurity(p.PodSecurity) },
		},
		{
			ID:            "pod-disruption-budget",
			Description:   "A PodDisruptionBudget selects the pods of every production Deployment and StatefulSet with two or more replicas (audit and CLI only).",
			DefaultAction: ActionAudit,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.PodDisruptionBudget },
			New:           func(p *PolicyConfigs) Policy { return podDisruptionBudget(p.PodDisruptionBudget) },
		},
		{
			ID:            "network-policy",
			Description:   "Some NetworkPolicy selects the pods of every workload (audit and CLI only).",
			DefaultAction: ActionAudit,
			Config:        func(p *PolicyConfigs) PolicyConfig { return &p.NetworkPolicy },
			New:           func(p *PolicyConfigs) Policy { return networkPolicy(p.NetworkPolicy) },
		},
	}
}

// PolicyIDs returns the IDs of every registered policy, sorted.
func PolicyIDs() []string {
	reg := Registry()
	ids := make([]string, 0, len(reg))
	for _, r := range reg {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}
