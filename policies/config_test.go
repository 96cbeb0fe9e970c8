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
		name: "names no object can carry (apimachinery's validators)",
		in: `
exemptNamespaces: [kube-system, Kube_System, ""]
namespaces:
  - names: ["team_*", "dev-*", "a?"]
    action: warn
policies:
  required-labels:
    labels: [app, "team~x", "example.com/owner", "-bad"]
    allowedValues: {"tier": [web, "has space"], "bad key!": [x]}
  high-availability: {label: "env ironment", values: [production, "x/y"]}
  image-tag:
    allowedRegistries: [GHCR.IO, "localhost:5000/loom", "[::1]:5000", "ghcr.io/", "https://ghcr.io", "ghcr.io/Loom", "ghcr.io:", "reg_1.example.com", "ghcr.io:99999"]
exceptions:
  - name: x
    policies: [image-tag]
    namespace: "Team-A"
    workload: web
    owner: team-a
    reason: vendor image
    expires: 2099-01-01
`,
		want: []string{
			`exemptNamespaces[1]: Invalid value: "Kube_System"`,
			`exemptNamespaces[2]: Required value`,
			`namespaces[0].names[0]: Invalid value: "team_*": no namespace matches`,
			`policies.required-labels.labels[1]: Invalid value: "team~x"`,
			`policies.required-labels.labels[3]: Invalid value: "-bad"`,
			`policies.required-labels.allowedValues[bad key!]: Invalid value: "bad key!"`,
			`policies.required-labels.allowedValues[tier][1]: Invalid value: "has space"`,
			`policies.image-tag.allowedRegistries[3]: Invalid value: "ghcr.io/"`,
			`policies.image-tag.allowedRegistries[4]: Invalid value: "https://ghcr.io": must be a registry host or repository prefix such as ghcr.io/loom: must not have a scheme`,
			`policies.image-tag.allowedRegistries[5]: Invalid value: "ghcr.io/Loom"`,
			`policies.image-tag.allowedRegistries[6]: Invalid value: "ghcr.io:": must be a registry host or repository prefix such as ghcr.io/loom: the port must be a number`,
			`policies.image-tag.allowedRegistries[7]: Invalid value: "reg_1.example.com"`,
			`policies.image-tag.allowedRegistries[8]: Invalid value: "ghcr.io:99999"`,
			`policies.high-availability.label: Invalid value: "env ironment"`,
			`policies.high-availability.values[1]: Invalid value: "x/y"`,
			`exceptions[0].namespace: Invalid value: "Team-A": no namespace matches`,
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
