package policies

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Config is loomguard's one configuration file: a ConfigMap in the cluster, --config for
// the CLI. A file is laid over DefaultConfig: what it leaves out keeps the Loom default;
// a list it sets replaces the default list.
type Config struct {
	// DefaultAction caps the action of every policy that the config does not give an
	// action of its own: enforce (the default) keeps each policy's built-in action, warn
	// turns enforce into warn, audit turns everything into audit.
	DefaultAction Action `json:"defaultAction,omitempty"`
	// ExemptNamespaces are never evaluated or mutated.
	ExemptNamespaces []string `json:"exemptNamespaces,omitempty"`
	// Namespaces overrides actions in the namespaces whose names match a glob.
	Namespaces []NamespaceOverride `json:"namespaces,omitempty"`
	// Policies holds each policy's action and parameters, keyed by policy ID.
	Policies PolicyConfigs `json:"policies"`
	// Exceptions are governed, expiring waivers.
	Exceptions []Exception `json:"exceptions,omitempty"`
}

// NamespaceOverride changes actions in matching namespaces. The first matching entry wins.
type NamespaceOverride struct {
	// Names are globs (path.Match syntax) matched against the namespace name.
	Names []string `json:"names"`
	// Action, when set, caps every policy's action in these namespaces.
	Action Action `json:"action,omitempty"`
	// Policies sets the action of single policies in these namespaces; it wins over Action.
	Policies map[string]Action `json:"policies,omitempty"`
}

// Exception waives policies for matching workloads until it expires.
type Exception struct {
	// Name identifies the exception in reports and metrics.
	Name string `json:"name"`
	// Policies are the waived policy IDs.
	Policies []string `json:"policies"`
	// Namespace is a glob matched against the workload's namespace.
	Namespace string `json:"namespace"`
	// Workload is a glob matched against the workload's name; it also matches the
	// objects its controllers generate (ReplicaSets, Jobs, Pods).
	Workload string `json:"workload"`
	// Containers, when set, limits the waiver to these containers' own fields.
	Containers []string `json:"containers,omitempty"`
	// Owner is who answers for the exception (a team or a person).
	Owner string `json:"owner"`
	// Reason says why the exception is needed.
	Reason string `json:"reason"`
	// Expires is when the exception stops applying: a date (2027-01-31, the end of that
	// day in UTC) or an RFC 3339 time.
	Expires string `json:"expires"`
}

// Settings are what every policy's config has.
type Settings struct {
	// Action overrides the policy's default action.
	Action Action `json:"action,omitempty"`
	// Fix, when false, stops the mutating webhook and `loomguard fix` from applying the
	// policy's safe defaults. Policies without a fix ignore it.
	Fix *bool `json:"fix,omitempty"`
}

// PolicyConfigs holds each policy's settings under its ID.
type PolicyConfigs struct {
	RequiredLabels         RequiredLabelsConfig      `json:"required-labels"`
	ResourceLimits         ResourceLimitsConfig      `json:"resource-limits"`
	RunAsNonRoot           RunAsNonRootConfig        `json:"run-as-non-root"`
	NoPrivilegeEscalation  Settings                  `json:"no-privilege-escalation"`
	DropAllCapabilities    DropAllCapabilitiesConfig `json:"drop-all-capabilities"`
	ReadOnlyRootFilesystem Settings                  `json:"read-only-root-filesystem"`
	WritablePaths          WritablePathsConfig       `json:"writable-paths"`
	SeccompProfile         SeccompProfileConfig      `json:"seccomp-profile"`
	HostIsolation          Settings                  `json:"host-isolation"`
	ImageTag               ImageTagConfig            `json:"image-tag"`
	SecretEnv              SecretEnvConfig           `json:"secret-env"`
	HealthProbes           Settings                  `json:"health-probes"`
	HighAvailability       HighAvailabilityConfig    `json:"high-availability"`
	PodDisruptionBudget    PodDisruptionBudgetConfig `json:"pod-disruption-budget"`
	NetworkPolicy          Settings                  `json:"network-policy"`
}

// RequiredLabelsConfig configures required-labels.
type RequiredLabelsConfig struct {
	Settings `json:",inline"`
	// Labels must be present on the workload and on its pod template.
	Labels []string `json:"labels,omitempty"`
	// AllowedValues restricts the values of some labels.
	AllowedValues map[string][]string `json:"allowedValues,omitempty"`
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

// RunAsNonRootConfig configures run-as-non-root.
type RunAsNonRootConfig struct {
	Settings `json:",inline"`
	// RunAsUser, RunAsGroup and FSGroup are set at pod level where unset.
	RunAsUser  int64 `json:"runAsUser,omitempty"`
	RunAsGroup int64 `json:"runAsGroup,omitempty"`
	FSGroup    int64 `json:"fsGroup,omitempty"`
}

// DropAllCapabilitiesConfig configures drop-all-capabilities.
type DropAllCapabilitiesConfig struct {
	Settings `json:",inline"`
	// AllowedAdd lists the capabilities a container may add back. NET_BIND_SERVICE is
	// allowed only to a container that declares a containerPort below 1024.
	AllowedAdd []string `json:"allowedAdd,omitempty"`
}

// WritablePathsConfig configures writable-paths.
type WritablePathsConfig struct {
	Settings `json:",inline"`
	// Paths must each be covered by a volumeMount when the root filesystem is read only.
	Paths []string `json:"paths,omitempty"`
	// SizeLimit is the sizeLimit of the emptyDir volumes the fix injects ("" for none).
	SizeLimit string `json:"sizeLimit,omitempty"`
}

// SeccompProfileConfig configures seccomp-profile.
type SeccompProfileConfig struct {
	Settings `json:",inline"`
	// AllowedTypes are the accepted seccomp profile types.
	AllowedTypes []string `json:"allowedTypes,omitempty"`
}

// ImageTagConfig configures image-tag.
type ImageTagConfig struct {
	Settings `json:",inline"`
	// ForbiddenTags may never be used (latest, always).
	ForbiddenTags []string `json:"forbiddenTags,omitempty"`
	// AllowedRegistries, when set, are the only registries or repository prefixes images
	// may come from (e.g. ghcr.io or ghcr.io/loom). docker.io is the implicit registry.
	AllowedRegistries []string `json:"allowedRegistries,omitempty"`
	// RequireDigest requires every image to be pinned by digest.
	RequireDigest bool `json:"requireDigest,omitempty"`
}

// SecretEnvConfig configures secret-env.
type SecretEnvConfig struct {
	Settings `json:",inline"`
	// SecretNames are the words that make an environment variable secret-like. A word
	// matches whole parts of the name split at "_", "-" and ".": PWD matches POSTGRES_PWD,
	// API_KEY matches OPENAI_API_KEY.
	SecretNames []string `json:"secretNames,omitempty"`
	// ForbiddenNames may never be set in a pod, even from a Secret.
	ForbiddenNames []string `json:"forbiddenNames,omitempty"`
	// WeakValues are refused in any environment value, command or argument (case-insensitive).
	WeakValues []string `json:"weakValues,omitempty"`
}

// HighAvailabilityConfig configures high-availability.
type HighAvailabilityConfig struct {
	Settings `json:",inline"`
	// Label and Values select the workloads that must be highly available.
	Label  string   `json:"label,omitempty"`
	Values []string `json:"values,omitempty"`
	// MinReplicas is the least replica count of such a workload.
	MinReplicas int32 `json:"minReplicas,omitempty"`
	// SpreadFromReplicas is the replica count from which topologySpreadConstraints are required.
	SpreadFromReplicas int32 `json:"spreadFromReplicas,omitempty"`
}

// PodDisruptionBudgetConfig configures pod-disruption-budget.
type PodDisruptionBudgetConfig struct {
	Settings `json:",inline"`
	// Label and Values select the workloads that need a budget.
	Label  string   `json:"label,omitempty"`
	Values []string `json:"values,omitempty"`
	// MinReplicas is the replica count from which such a workload needs a budget: with a
	// single replica, a budget either blocks every drain or protects nothing.
	MinReplicas int32 `json:"minReplicas,omitempty"`
}

// DefaultConfig returns the Loom profile: the policies and values of Loom's Kubernetes
// best-practices guide (see docs/policies.md).
func DefaultConfig() *Config {
	return &Config{
		DefaultAction:    ActionEnforce,
		ExemptNamespaces: []string{"kube-system", "kube-public", "kube-node-lease", "loomguard-system"},
		Policies: PolicyConfigs{
			RequiredLabels: RequiredLabelsConfig{
				Labels:        []string{"app", "version", "environment"},
				AllowedValues: map[string][]string{"environment": {"development", "staging", "production"}},
			},
			ResourceLimits: ResourceLimitsConfig{
				MaxLimitRequestRatio: 5,
				Defaults: ResourceDefaults{
					Requests: ResourceAmounts{CPU: "100m", Memory: "256Mi"},
					Limits:   ResourceAmounts{CPU: "500m", Memory: "512Mi"},
				},
			},
			RunAsNonRoot:        RunAsNonRootConfig{RunAsUser: 1000, RunAsGroup: 1000, FSGroup: 1000},
			DropAllCapabilities: DropAllCapabilitiesConfig{AllowedAdd: []string{"NET_BIND_SERVICE"}},
			WritablePaths:       WritablePathsConfig{Paths: []string{"/tmp"}, SizeLimit: "256Mi"},
			SeccompProfile:      SeccompProfileConfig{AllowedTypes: []string{"RuntimeDefault", "Localhost"}},
			ImageTag:            ImageTagConfig{ForbiddenTags: []string{"latest"}},
			SecretEnv: SecretEnvConfig{
				SecretNames: []string{
					"PASSWORD", "PASSWD", "PWD", "SECRET", "TOKEN", "API_KEY", "APIKEY",
					"DSN", "PRIVATE_KEY", "CREDENTIALS", "CREDENTIAL", "DATABASE_URL",
				},
				ForbiddenNames: []string{"GITHUB_TOKEN"},
				WeakValues:     []string{"changeme", "loom-default-password", "change-me-in-production"},
			},
			HighAvailability: HighAvailabilityConfig{
				Label:              "environment",
				Values:             []string{"production"},
				MinReplicas:        2,
				SpreadFromReplicas: 3,
			},
			PodDisruptionBudget: PodDisruptionBudgetConfig{
				Label:       "environment",
				Values:      []string{"production"},
				MinReplicas: 2,
			},
		},
	}
}

// LoadConfig decodes a YAML or JSON config laid over DefaultConfig. Decoding is strict:
// every unknown field, duplicate field and invalid value is returned, each with its path.
func LoadConfig(data []byte) (*Config, field.ErrorList) {
	cfg := DefaultConfig()
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, field.ErrorList{field.Invalid(field.NewPath(""), field.OmitValueType{}, err.Error())}
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return cfg, nil
	}
	// The built-in policy defaults carry actions; a file that names a policy keeps them
	// unless it sets its own, which the overlay does naturally.
	strict, err := kjson.UnmarshalStrict(js, cfg)
	if err != nil {
		return nil, field.ErrorList{field.Invalid(field.NewPath(""), field.OmitValueType{}, err.Error())}
	}
	var errs field.ErrorList
	for _, s := range strict {
		var fe kjson.FieldError
		if errors.As(s, &fe) {
			errs = append(errs, strictError(fe))
			continue
		}
		errs = append(errs, field.Invalid(field.NewPath(""), field.OmitValueType{}, s.Error()))
	}
	errs = append(errs, cfg.Validate()...)
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// strictError turns a decoder's unknown or duplicate field into a field error at its path.
func strictError(fe kjson.FieldError) *field.Error {
	p := fieldPath(fe.FieldPath())
	msg := fe.Error()
	switch {
	case strings.Contains(msg, "unknown field"):
		if isPolicyKey(fe.FieldPath()) {
			return field.NotSupported(p, strings.TrimPrefix(fe.FieldPath(), "policies."), sortedKeys(policyIDs(DefaultConfig())))
		}
		return field.Invalid(p, field.OmitValueType{}, "unknown field")
	case strings.Contains(msg, "duplicate field"):
		return field.Duplicate(p, nil)
	}
	return field.Invalid(p, field.OmitValueType{}, msg)
}

// isPolicyKey reports whether a dotted path names a key directly under policies.
func isPolicyKey(p string) bool {
	rest, ok := strings.CutPrefix(p, "policies.")
	return ok && !strings.Contains(rest, ".")
}

// fieldPath parses the decoder's dotted path (with [i] indexes) into a field.Path.
func fieldPath(s string) *field.Path {
	var p *field.Path
	for _, part := range strings.Split(s, ".") {
		name, idx, hasIdx := strings.Cut(part, "[")
		if p == nil {
			p = field.NewPath(name)
		} else if name != "" {
			p = p.Child(name)
		}
		for hasIdx {
			var i int
			var rest string
			i, rest, hasIdx = parseIndex(idx)
			p = p.Index(i)
			idx = rest
		}
	}
	if p == nil {
		return field.NewPath("")
	}
	return p
}

func parseIndex(s string) (int, string, bool) {
	num, rest, _ := strings.Cut(s, "]")
	var i int
	_, _ = fmt.Sscanf(num, "%d", &i)
	rest, more := strings.CutPrefix(rest, "[")
	return i, rest, more
}

// Validate reports every problem of the config at once.
func (c *Config) Validate() field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateAction(field.NewPath("defaultAction"), c.DefaultAction)...)
	for i, ns := range c.ExemptNamespaces {
		if ns == "" {
			errs = append(errs, field.Required(field.NewPath("exemptNamespaces").Index(i), "namespace name"))
		}
	}
	ids := policyIDs(c)
	for i, o := range c.Namespaces {
		p := field.NewPath("namespaces").Index(i)
		if len(o.Names) == 0 {
			errs = append(errs, field.Required(p.Child("names"), "at least one namespace glob"))
		}
		for j, n := range o.Names {
			errs = append(errs, validateGlob(p.Child("names").Index(j), n)...)
		}
		if o.Action != "" {
			errs = append(errs, validateAction(p.Child("action"), o.Action)...)
		}
		if o.Action == "" && len(o.Policies) == 0 {
			errs = append(errs, field.Required(p, "an action or per-policy actions"))
		}
		for _, id := range sortedKeys(o.Policies) {
			pp := p.Child("policies").Key(id)
			if !ids[id] {
				errs = append(errs, field.NotSupported(pp, id, sortedKeys(ids)))
			}
			errs = append(errs, validateAction(pp, o.Policies[id])...)
		}
	}
	errs = append(errs, c.Policies.validate(field.NewPath("policies"))...)
	names := map[string]bool{}
	for i, ex := range c.Exceptions {
		p := field.NewPath("exceptions").Index(i)
		errs = append(errs, ex.validate(p, ids)...)
		if ex.Name != "" {
			if names[ex.Name] {
				errs = append(errs, field.Duplicate(p.Child("name"), ex.Name))
			}
			names[ex.Name] = true
		}
	}
	return errs
}

func (pc *PolicyConfigs) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	settings := pc.settings()
	for _, id := range sortedKeys(settings) {
		if a := settings[id].Action; a != "" {
			errs = append(errs, validateAction(p.Child(id, "action"), a)...)
		}
	}

	rl := p.Child("required-labels")
	for i, l := range pc.RequiredLabels.Labels {
		if l == "" {
			errs = append(errs, field.Required(rl.Child("labels").Index(i), "label key"))
		}
	}
	for _, k := range sortedKeys(pc.RequiredLabels.AllowedValues) {
		if len(pc.RequiredLabels.AllowedValues[k]) == 0 {
			errs = append(errs, field.Required(rl.Child("allowedValues").Key(k), "at least one allowed value"))
		}
	}

	r := p.Child("resource-limits")
	if pc.ResourceLimits.MaxLimitRequestRatio < 0 || (pc.ResourceLimits.MaxLimitRequestRatio > 0 && pc.ResourceLimits.MaxLimitRequestRatio < 1) {
		errs = append(errs, field.Invalid(r.Child("maxLimitRequestRatio"), pc.ResourceLimits.MaxLimitRequestRatio, "must be 0 (no cap) or at least 1"))
	}
	d := pc.ResourceLimits.Defaults
	var qerrs field.ErrorList
	for _, q := range []struct {
		path *field.Path
		val  string
	}{
		{r.Child("defaults", "requests", "cpu"), d.Requests.CPU},
		{r.Child("defaults", "requests", "memory"), d.Requests.Memory},
		{r.Child("defaults", "limits", "cpu"), d.Limits.CPU},
		{r.Child("defaults", "limits", "memory"), d.Limits.Memory},
	} {
		qerrs = append(qerrs, validateQuantity(q.path, q.val, true)...)
	}
	errs = append(errs, qerrs...)
	if len(qerrs) == 0 {
		ratio := pc.ResourceLimits.MaxLimitRequestRatio
		for _, res := range []struct{ name, req, lim string }{{"cpu", d.Requests.CPU, d.Limits.CPU}, {"memory", d.Requests.Memory, d.Limits.Memory}} {
			req, lim := resource.MustParse(res.req), resource.MustParse(res.lim)
			if req.Cmp(lim) > 0 {
				errs = append(errs, field.Invalid(r.Child("defaults", "requests", res.name), res.req, fmt.Sprintf("must not exceed the default limit %s", res.lim)))
			} else if ratio > 0 && float64(lim.MilliValue()) > ratio*float64(req.MilliValue()) {
				errs = append(errs, field.Invalid(r.Child("defaults", "limits", res.name), res.lim, fmt.Sprintf("is more than maxLimitRequestRatio (%g) times the default request %s", ratio, res.req)))
			}
		}
	}

	u := p.Child("run-as-non-root")
	for _, id := range []struct {
		name string
		v    int64
	}{{"runAsUser", pc.RunAsNonRoot.RunAsUser}, {"runAsGroup", pc.RunAsNonRoot.RunAsGroup}, {"fsGroup", pc.RunAsNonRoot.FSGroup}} {
		if id.v <= 0 {
			errs = append(errs, field.Invalid(u.Child(id.name), id.v, "must be a positive, non-root ID"))
		}
	}

	for i, c := range pc.DropAllCapabilities.AllowedAdd {
		if c == "" || c == "ALL" || strings.HasPrefix(c, "CAP_") {
			errs = append(errs, field.Invalid(p.Child("drop-all-capabilities", "allowedAdd").Index(i), c, "must be a capability name without the CAP_ prefix, not ALL"))
		}
	}

	wp := p.Child("writable-paths")
	for i, wpath := range pc.WritablePaths.Paths {
		if !strings.HasPrefix(wpath, "/") || path.Clean(wpath) != wpath || wpath == "/" {
			errs = append(errs, field.Invalid(wp.Child("paths").Index(i), wpath, "must be a clean absolute path other than /"))
		}
	}
	errs = append(errs, validateQuantity(wp.Child("sizeLimit"), pc.WritablePaths.SizeLimit, false)...)

	for i, t := range pc.SeccompProfile.AllowedTypes {
		switch t {
		case "RuntimeDefault", "Localhost":
		default:
			errs = append(errs, field.NotSupported(p.Child("seccomp-profile", "allowedTypes").Index(i), t, []string{"RuntimeDefault", "Localhost"}))
		}
	}
	if len(pc.SeccompProfile.AllowedTypes) == 0 {
		errs = append(errs, field.Required(p.Child("seccomp-profile", "allowedTypes"), "at least one profile type"))
	}

	for i, r := range pc.ImageTag.AllowedRegistries {
		if r == "" || strings.HasSuffix(r, "/") || strings.Contains(r, "://") {
			errs = append(errs, field.Invalid(p.Child("image-tag", "allowedRegistries").Index(i), r, "must be a registry host or repository prefix such as ghcr.io/loom, without scheme or trailing slash"))
		}
	}

	se := p.Child("secret-env")
	for i, n := range pc.SecretEnv.SecretNames {
		if n == "" {
			errs = append(errs, field.Required(se.Child("secretNames").Index(i), "a name word"))
		}
	}
	for i, v := range pc.SecretEnv.WeakValues {
		if v == "" {
			errs = append(errs, field.Required(se.Child("weakValues").Index(i), "a value"))
		}
	}

	ha := p.Child("high-availability")
	if pc.HighAvailability.MinReplicas < 1 {
		errs = append(errs, field.Invalid(ha.Child("minReplicas"), pc.HighAvailability.MinReplicas, "must be at least 1"))
	}
	if pc.HighAvailability.SpreadFromReplicas < 0 {
		errs = append(errs, field.Invalid(ha.Child("spreadFromReplicas"), pc.HighAvailability.SpreadFromReplicas, "must be 0 (never required) or positive"))
	}
	if pc.HighAvailability.Label == "" {
		errs = append(errs, field.Required(ha.Child("label"), "the label that marks production workloads"))
	}

	pdb := p.Child("pod-disruption-budget")
	if pc.PodDisruptionBudget.MinReplicas < 1 {
		errs = append(errs, field.Invalid(pdb.Child("minReplicas"), pc.PodDisruptionBudget.MinReplicas, "must be at least 1"))
	}
	if pc.PodDisruptionBudget.Label == "" {
		errs = append(errs, field.Required(pdb.Child("label"), "the label that marks production workloads"))
	}
	return errs
}

func (ex *Exception) validate(p *field.Path, ids map[string]bool) field.ErrorList {
	var errs field.ErrorList
	if ex.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "a name that identifies the exception"))
	}
	if len(ex.Policies) == 0 {
		errs = append(errs, field.Required(p.Child("policies"), "at least one policy ID"))
	}
	for i, id := range ex.Policies {
		if !ids[id] {
			errs = append(errs, field.NotSupported(p.Child("policies").Index(i), id, sortedKeys(ids)))
		}
	}
	if ex.Namespace == "" {
		errs = append(errs, field.Required(p.Child("namespace"), `a namespace or glob ("*" for every namespace)`))
	} else {
		errs = append(errs, validateGlob(p.Child("namespace"), ex.Namespace)...)
	}
	if ex.Workload == "" {
		errs = append(errs, field.Required(p.Child("workload"), `a workload name or glob ("*" for every workload)`))
	} else {
		errs = append(errs, validateGlob(p.Child("workload"), ex.Workload)...)
	}
	for i, c := range ex.Containers {
		if c == "" {
			errs = append(errs, field.Required(p.Child("containers").Index(i), "a container name"))
		}
	}
	if strings.TrimSpace(ex.Owner) == "" {
		errs = append(errs, field.Required(p.Child("owner"), "who answers for the exception"))
	}
	if strings.TrimSpace(ex.Reason) == "" {
		errs = append(errs, field.Required(p.Child("reason"), "why the exception is needed"))
	}
	if ex.Expires == "" {
		errs = append(errs, field.Required(p.Child("expires"), "an expiry date (2027-01-31) or RFC 3339 time"))
	} else if _, err := ex.ExpiresAt(); err != nil {
		errs = append(errs, field.Invalid(p.Child("expires"), ex.Expires, "must be a date (2027-01-31) or an RFC 3339 time"))
	}
	return errs
}

// ExpiresAt parses Expires. A bare date means the end of that day in UTC.
func (ex *Exception) ExpiresAt() (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, ex.Expires); err == nil {
		return t.Add(24 * time.Hour), nil
	}
	t, err := time.Parse(time.RFC3339, ex.Expires)
	if err != nil {
		return time.Time{}, fmt.Errorf("parsing expiry %q: %w", ex.Expires, err)
	}
	return t, nil
}

func validateAction(p *field.Path, a Action) field.ErrorList {
	if !a.Valid() {
		return field.ErrorList{field.NotSupported(p, a, Actions())}
	}
	return nil
}

func validateGlob(p *field.Path, g string) field.ErrorList {
	if _, err := path.Match(g, ""); err != nil {
		return field.ErrorList{field.Invalid(p, g, "malformed glob")}
	}
	return nil
}

func validateQuantity(p *field.Path, v string, required bool) field.ErrorList {
	if v == "" {
		if required {
			return field.ErrorList{field.Required(p, "a quantity")}
		}
		return nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return field.ErrorList{field.Invalid(p, v, "must be a Kubernetes quantity such as 500m or 256Mi")}
	}
	if q.Sign() <= 0 {
		return field.ErrorList{field.Invalid(p, v, "must be positive")}
	}
	return nil
}

// policyIDs returns the set of known policy IDs.
func policyIDs(c *Config) map[string]bool {
	ids := map[string]bool{}
	for _, p := range Catalog(c) {
		ids[p.ID] = true
	}
	return ids
}
