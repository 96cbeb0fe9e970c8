package policies

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Config is loomguard's one configuration file: a ConfigMap in the cluster, --config for
// the CLI. A file is laid over DefaultConfig: what it leaves out keeps the Loom default;
// a list or map it sets replaces the default one (allowedValues with only "owner" drops the
// default "environment" restriction).
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
	// PodSecurity, when set, replaces pod-security's level and version in these namespaces,
	// like the namespace labels pod-security.kubernetes.io/enforce and enforce-version.
	PodSecurity *PodSecurityLevel `json:"podSecurity,omitempty"`
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
	// Controls, when set, limits a pod-security waiver to these Pod Security Standards
	// controls (PSA check IDs such as hostPathVolumes); Policies must then be [pod-security].
	Controls []string `json:"controls,omitempty"`
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

// Common returns s: every policy's config embeds its Settings.
func (s Settings) Common() Settings { return s }

// Default does nothing: a policy without parameters has no defaults beyond its action.
// A policy with parameters defines its own.
func (s *Settings) Default() {}

// Validate returns nothing: the common settings are validated with the whole config, and a
// policy with parameters defines its own Validate.
func (s *Settings) Validate(*field.Path) field.ErrorList { return nil }

// PolicyConfigs holds each policy's config under its ID: one field per entry of the
// Registry, whose JSON tag is the policy's ID. Each policy's file defines its config type
// (Settings for a policy without parameters), with its defaults and its validation.
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
	PodSecurity            PodSecurityConfig         `json:"pod-security"`
}

// DefaultConfig returns the Loom profile: the policies and values of Loom's Kubernetes
// best-practices guide (see docs/policies.md).
func DefaultConfig() *Config {
	cfg := &Config{
		DefaultAction:    ActionEnforce,
		ExemptNamespaces: []string{"kube-system", "kube-public", "kube-node-lease", "loomguard-system"},
	}
	for _, r := range Registry() {
		r.Config(&cfg.Policies).Default()
	}
	return cfg
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
	clearReplacedMaps(js, cfg)
	// The built-in policy defaults carry actions; a file that names a policy keeps them
	// unless it sets its own, which the overlay does naturally.
	strict, err := kjson.UnmarshalStrict(js, cfg)
	if err != nil {
		return nil, field.ErrorList{typeError(js, err)}
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

// clearReplacedMaps drops the default maps that the file sets: a map the file sets
// replaces the default one, as a list does, where decoding into the default would merge
// the two (and a file could never lift the default's restriction on environment).
// required-labels.allowedValues is the config's only map with a default.
func clearReplacedMaps(js []byte, cfg *Config) {
	var peek struct {
		Policies struct {
			RequiredLabels struct {
				AllowedValues json.RawMessage `json:"allowedValues"`
			} `json:"required-labels"`
		} `json:"policies"`
	}
	if json.Unmarshal(js, &peek) == nil && peek.Policies.RequiredLabels.AllowedValues != nil {
		cfg.Policies.RequiredLabels.AllowedValues = nil
	}
}

// typeError turns a decoding error into a field error. A value of the wrong JSON type is
// reported at its field: the strict decoder's error does not say which, so the standard
// library's decoder, whose UnmarshalTypeError carries the field's path, reads the document
// again to find it. Anything else (the document is not a mapping) is about the root.
func typeError(js []byte, err error) *field.Error {
	var te *json.UnmarshalTypeError
	if again := json.Unmarshal(js, DefaultConfig()); errors.As(again, &te) && te.Field != "" {
		return field.Invalid(fieldPath(te.Field), field.OmitValueType{}, fmt.Sprintf("must be of type %s, not a JSON %s", jsonType(te.Type), te.Value))
	}
	return field.Invalid(field.NewPath(""), field.OmitValueType{}, err.Error())
}

// jsonType names the JSON type a Go type is decoded from.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Pointer:
		return jsonType(t.Elem())
	}
	return t.String()
}

// strictError turns a decoder's unknown or duplicate field into a field error at its path.
func strictError(fe kjson.FieldError) *field.Error {
	p := fieldPath(fe.FieldPath())
	msg := fe.Error()
	switch {
	case strings.Contains(msg, "unknown field"):
		if isPolicyKey(fe.FieldPath()) {
			return field.NotSupported(p, strings.TrimPrefix(fe.FieldPath(), "policies."), PolicyIDs())
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

// fieldPath parses the decoder's dotted path (with [i] indexes) into a field.Path. An empty
// key (`"": 1`) is named "" so that its error still points somewhere.
func fieldPath(s string) *field.Path {
	var p *field.Path
	for _, part := range strings.Split(s, ".") {
		name, idx, hasIdx := strings.Cut(part, "[")
		if name == "" && !hasIdx {
			name = `""`
		}
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
		errs = append(errs, validateNamespaceName(field.NewPath("exemptNamespaces").Index(i), ns)...)
	}
	ids := policyIDs()
	for i, o := range c.Namespaces {
		p := field.NewPath("namespaces").Index(i)
		if len(o.Names) == 0 {
			errs = append(errs, field.Required(p.Child("names"), "at least one namespace glob"))
		}
		for j, n := range o.Names {
			errs = append(errs, validateNamespaceGlob(p.Child("names").Index(j), n)...)
		}
		if o.Action != "" {
			errs = append(errs, validateAction(p.Child("action"), o.Action)...)
		}
		if o.Action == "" && len(o.Policies) == 0 && o.PodSecurity == nil {
			errs = append(errs, field.Required(p, "an action, per-policy actions or a podSecurity level"))
		}
		if o.PodSecurity != nil {
			errs = append(errs, o.PodSecurity.Validate(p.Child("podSecurity"))...)
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

// validate checks every policy's action, in the order of the policy IDs, then each policy's
// own parameters, in registry order.
func (pc *PolicyConfigs) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	settings := pc.settings()
	for _, id := range sortedKeys(settings) {
		if a := settings[id].Action; a != "" {
			errs = append(errs, validateAction(p.Child(id, "action"), a)...)
		}
	}
	for _, r := range Registry() {
		errs = append(errs, r.Config(pc).Validate(p.Child(r.ID))...)
	}
	return errs
}

// settings returns each policy's common settings by ID.
func (pc *PolicyConfigs) settings() map[string]Settings {
	reg := Registry()
	out := make(map[string]Settings, len(reg))
	for _, r := range reg {
		out[r.ID] = r.Config(pc).Common()
	}
	return out
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
		errs = append(errs, validateNamespaceGlob(p.Child("namespace"), ex.Namespace)...)
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
	if len(ex.Controls) > 0 {
		if len(ex.Policies) != 1 || ex.Policies[0] != PodSecurityID {
			errs = append(errs, field.Invalid(p.Child("policies"), ex.Policies, "must be exactly [pod-security] when controls are set: controls are Pod Security Standards checks"))
		}
		controls := PodSecurityControls()
		for i, c := range ex.Controls {
			if !slices.Contains(controls, c) {
				errs = append(errs, field.NotSupported(p.Child("controls").Index(i), c, controls))
			}
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

// policyIDs returns the set of registered policy IDs.
func policyIDs() map[string]bool {
	ids := map[string]bool{}
	for _, r := range Registry() {
		ids[r.ID] = true
	}
	return ids
}
