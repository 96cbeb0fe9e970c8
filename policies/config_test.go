package policies

import (
	"strings"
	"testing"
)

func TestLoadConfigDefaults(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "null", "{}"} {
		cfg, errs := LoadConfig([]byte(in))
		if len(errs) > 0 {
			t.Fatalf("LoadConfig(%q): %v", in, errs)
		}
		if cfg.DefaultAction != ActionEnforce || cfg.Policies.ResourceLimits.MaxLimitRequestRatio != 5 {
			t.Errorf("LoadConfig(%q) did not keep the Loom defaults: %+v", in, cfg)
		}
	}
}

func TestLoadConfigOverlay(t *testing.T) {
	cfg, errs := LoadConfig([]byte(`
defaultAction: warn
policies:
  resource-limits:
    maxLimitRequestRatio: 6
  writable-paths:
    paths: [/tmp, /home/loom]
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := cfg.Policies.ResourceLimits.MaxLimitRequestRatio; got != 6 {
		t.Errorf("ratio = %v, want 6", got)
	}
	if got := cfg.Policies.ResourceLimits.Defaults.Limits.Memory; got != "512Mi" {
		t.Errorf("an unnamed field lost its default: limits.memory = %q", got)
	}
	if got := cfg.Policies.WritablePaths.Paths; len(got) != 2 || got[1] != "/home/loom" {
		t.Errorf("a list did not replace the default: %v", got)
	}
	if got := cfg.Policies.RequiredLabels.Labels; len(got) != 3 {
		t.Errorf("required labels lost their default: %v", got)
	}
}

// TestLoadConfigReplacesMaps checks that a map the file sets replaces the default map, as
// a list does, and that one it leaves out keeps the default.
func TestLoadConfigReplacesMaps(t *testing.T) {
	cfg, errs := LoadConfig([]byte(`
policies:
  required-labels:
    allowedValues:
      owner: [team-a, team-b]
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := cfg.Policies.RequiredLabels.AllowedValues
	if len(got) != 1 || len(got["owner"]) != 2 {
		t.Errorf("allowedValues = %v, want only owner: the file's map replaces the default", got)
	}
	cfg, errs = LoadConfig([]byte("policies:\n  required-labels:\n    labels: [app]\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := cfg.Policies.RequiredLabels.AllowedValues; len(got["environment"]) != 3 {
		t.Errorf("allowedValues lost its default when the file left it out: %v", got)
	}
}

// TestLoadConfigErrors checks that every problem is reported at once, each at its path.
func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{{
		name: "unknown fields and policy IDs",
		in: `
defaultActon: warn
policies:
  no-such-policy: {action: warn}
  image-tag:
    requireDigests: true
`,
		want: []string{
			`defaultActon: Invalid value: unknown field`,
			`policies.no-such-policy: Unsupported value: "no-such-policy"`,
			`policies.image-tag.requireDigests: Invalid value: unknown field`,
		},
	}, {
		name: "bad values",
		in: `
defaultAction: block
namespaces:
  - names: ["[dev"]
    policies: {image-tag: maybe, nope: off}
policies:
  resource-limits:
    maxLimitRequestRatio: 0.5
    defaults: {requests: {cpu: lots}, limits: {memory: "-1"}}
  run-as-non-root: {runAsUser: 0}
  writable-paths: {paths: [tmp, /a/../b], sizeLimit: big}
  seccomp-profile: {allowedTypes: [Unconfined]}
  drop-all-capabilities: {allowedAdd: [CAP_NET_RAW]}
  high-availability: {minReplicas: 0, action: loud}
  pod-disruption-budget: {minReplicas: -1, label: ""}
  network-policy: {action: deny, fix: true}
`,
		want: []string{
			`defaultAction: Unsupported value: "block"`,
			`namespaces[0].names[0]: Invalid value: "[dev": malformed glob`,
			`namespaces[0].policies[image-tag]: Unsupported value: "maybe"`,
			`namespaces[0].policies[nope]: Unsupported value: "nope"`,
			`policies.high-availability.action: Unsupported value: "loud"`,
			`policies.resource-limits.maxLimitRequestRatio: Invalid value: 0.5: must be 0 (no cap) or at least 1`,
			`policies.resource-limits.defaults.requests.cpu: Invalid value: "lots"`,
			`policies.resource-limits.defaults.limits.memory: Invalid value: "-1": must be positive`,
			`policies.run-as-non-root.runAsUser: Invalid value: 0`,
			`policies.drop-all-capabilities.allowedAdd[0]: Invalid value: "CAP_NET_RAW"`,
			`policies.writable-paths.paths[0]: Invalid value: "tmp"`,
			`policies.writable-paths.paths[1]: Invalid value: "/a/../b"`,
			`policies.writable-paths.sizeLimit: Invalid value: "big"`,
			`policies.seccomp-profile.allowedTypes[0]: Unsupported value: "Unconfined"`,
			`policies.high-availability.minReplicas: Invalid value: 0`,
			`policies.network-policy.action: Unsupported value: "deny"`,
			`policies.pod-disruption-budget.minReplicas: Invalid value: -1: must be at least 1`,
			`policies.pod-disruption-budget.label: Required value`,
		},
	}, {
		name: "ungoverned exceptions",
		in: `
exceptions:
  - name: legacy
    policies: [read-only-root-filesystem, made-up]
    namespace: batch
    workload: legacy-*
  - name: legacy
    policies: [image-tag]
    namespace: "*"
    workload: x
    owner: team-a
    reason: vendor image
    expires: next week
`,
		want: []string{
			`exceptions[0].policies[1]: Unsupported value: "made-up"`,
			`exceptions[0].owner: Required value`,
			`exceptions[0].reason: Required value`,
			`exceptions[0].expires: Required value`,
			`exceptions[1].expires: Invalid value: "next week"`,
			`exceptions[1].name: Duplicate value: "legacy"`,
		},
	}, {
		name: "yaml syntax error names the line",
		in:   "policies:\n  image-tag:\n    requireDigest: [\n",
		want: []string{`line 3`},
	}, {
		name: "default limit beyond the ratio",
		in:   "policies:\n  resource-limits:\n    maxLimitRequestRatio: 2\n",
		want: []string{
			`policies.resource-limits.defaults.limits.cpu: Invalid value: "500m": is more than maxLimitRequestRatio (2) times the default request 100m`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, errs := LoadConfig([]byte(tt.in))
			if cfg != nil {
				t.Errorf("LoadConfig returned a config with errors")
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					if strings.Contains(g, w) {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("missing error %q in:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}
