package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
	"github.com/loomguard/loomguard/webhook"
)

// TestPoliciesMatchConditions: `policies -o match-conditions` prints the matchConditions
// that serve keeps on its webhooks, for the config given, and an empty list when a config
// leaves nothing to clear.
func TestPoliciesMatchConditions(t *testing.T) {
	for _, tt := range []struct {
		name, config string
		counts       [2]int // conditions printed for the mutating and the validating webhook (one or none)
		why          string // on stderr, for a webhook without conditions
	}{
		{name: "loom profile", counts: [2]int{1, 1}},
		{name: "exception everywhere", config: "exceptions:\n- {name: x, policies: [image-tag], namespace: \"*\", workload: \"*\", owner: me, reason: r, expires: \"2099-01-01\"}\n",
			why: `names every namespace ("*")`},
		// pod-security has no fix: the mutating webhook's conditions do not need it.
		{name: "pod-security before v1.25", config: "policies:\n  pod-security: {version: v1.20}\n", counts: [2]int{1, 0},
			why: "validate.loomguard.io gets no matchConditions (the API server sends it every object): policy pod-security has a setting its conditions cannot express"},
		{name: "three writable paths", config: "policies:\n  writable-paths: {paths: [/tmp, /a, /b]}\n", counts: [2]int{1, 0},
			why: "over the 900000 allowed (most: writable-paths "},
		{name: "long list of label values", config: "policies:\n  required-labels: {labels: [app, version, environment, team], allowedValues: {team: [" + teams(160) + "]}}\n",
			counts: [2]int{1, 7}, why: "validate.loomguard.io gets 7 matchConditions, one per workload kind"},
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
			if !strings.Contains(res.stderr, tt.why) || (tt.why == "") != (res.stderr == "") {
				t.Errorf("stderr %q, want it to say %q", res.stderr, tt.why)
			}
			var got struct {
				Webhooks []struct {
					Name            string                                   `json:"name"`
					MatchConditions []admissionregistrationv1.MatchCondition `json:"matchConditions"`
				} `json:"webhooks"`
			}
			if err := yaml.UnmarshalStrict([]byte(res.stdout), &got); err != nil {
				t.Fatalf("output is not a list of webhooks: %v\n%s", err, res.stdout)
			}
			if len(got.Webhooks) != 2 || got.Webhooks[0].Name != webhook.MutatingWebhookName || got.Webhooks[1].Name != webhook.ValidatingWebhookName {
				t.Fatalf("webhooks %+v, want %s and %s", got.Webhooks, webhook.MutatingWebhookName, webhook.ValidatingWebhookName)
			}
			cfg, errs := policies.LoadConfig([]byte(tt.config))
			if len(errs) > 0 {
				t.Fatal(errs.ToAggregate())
			}
			for i, w := range got.Webhooks {
				want := webhook.WantMatchConditions(w.Name, cfg)
				if want == nil {
					want = []admissionregistrationv1.MatchCondition{}
				}
				if len(want) != tt.counts[i] {
					t.Errorf("%s: %d conditions generated, want %d", w.Name, len(want), tt.counts[i])
				}
				if !reflect.DeepEqual(w.MatchConditions, want) {
					t.Errorf("%s: printed %d conditions, want %d (webhook.WantMatchConditions)", w.Name, len(w.MatchConditions), len(want))
				}
			}
		})
	}
}

// teams lists n label values, team-000 and on.
func teams(n int) string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf("team-%03d", i)
	}
	return strings.Join(vs, ", ")
}
