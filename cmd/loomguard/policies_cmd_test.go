package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
)

// TestPoliciesMatchConditions: `policies -o match-conditions` prints the matchConditions
// that serve keeps on its webhooks, for the config given, and an empty list when a config
// leaves nothing to clear.
func TestPoliciesMatchConditions(t *testing.T) {
	for _, tt := range []struct {
		name, config string
		want         []policies.MatchCondition
	}{
		{name: "loom profile", want: policies.MatchConditions(policies.DefaultConfig())},
		{name: "exception everywhere", config: "exceptions:\n- {name: x, policies: [image-tag], namespace: \"*\", workload: \"*\", owner: me, reason: r, expires: \"2099-01-01\"}\n", want: []policies.MatchCondition{}},
		{name: "pod-security before v1.25", config: "policies:\n  pod-security: {version: v1.20}\n", want: []policies.MatchCondition{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"policies", "-o", "match-conditions"}
			if tt.config != "" {
				path := filepath.Join(t.TempDir(), "config.yaml")
				if err := os.WriteFile(path, []byte(tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", path)
			}
			res := runCLI(t, "", args...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			var got struct {
				MatchConditions []policies.MatchCondition `json:"matchConditions"`
			}
			if err := yaml.UnmarshalStrict([]byte(res.stdout), &got); err != nil {
				t.Fatalf("output is not a matchConditions list: %v\n%s", err, res.stdout)
			}
			if len(tt.want) > 0 && len(got.MatchConditions) != 7 {
				t.Errorf("%d conditions, want one per workload kind (7)", len(got.MatchConditions))
			}
			if !reflect.DeepEqual(got.MatchConditions, tt.want) {
				t.Errorf("printed %d conditions, want %d (policies.MatchConditions)", len(got.MatchConditions), len(tt.want))
			}
		})
	}
}
