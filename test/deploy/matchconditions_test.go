package deploy

import (
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/loomguard/loomguard/certs"
)

// webhookConfigurationsRole grants loomguard its two webhook configurations, by name.
const webhookConfigurationsRole = "loomguard-webhook-configurations"

// TestWebhookConfigurationsWiring: in every installation loomguard may get, list, watch
// and update exactly its two webhook configurations (their matchConditions, and the
// caBundle in self-managed mode), granted once; serve's flags name those objects by
// their defaults and keep the matchConditions on (with leader election, which makes one
// replica the writer) unless the chart turns them off.
func TestWebhookConfigurationsWiring(t *testing.T) {
	type variant struct {
		render
		matchConditions bool
	}
	var variants []variant
	for _, r := range renders() {
		if r.workloads > 0 {
			variants = append(variants, variant{r, true})
		}
	}
	variants = append(variants,
		variant{render{"helm matchConditions.enabled=false", func(t *testing.T) []byte {
			return helmTemplate(t, "--set", "matchConditions.enabled=false")
		}, 1}, false},
		variant{render{"helm certs.mode=files matchConditions.enabled=false", func(t *testing.T) []byte {
			return helmTemplate(t, "--set", "certs.mode=files", "--set", "matchConditions.enabled=false")
		}, 1}, false},
	)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			b := decodeBundle(t, v.render.render(t))
			if b.mutating.Name != certs.DefaultWebhookConfigurationName || b.validating.Name != certs.DefaultWebhookConfigurationName {
				t.Errorf("webhook configurations %q and %q; --mutating-webhook-configuration and --validating-webhook-configuration default to %q",
					b.mutating.Name, b.validating.Name, certs.DefaultWebhookConfigurationName)
			}
			var role rbacv1.ClusterRole
			into(t, find(t, b.objs, "ClusterRole", webhookConfigurationsRole), &role)
			want := []rbacv1.PolicyRule{{
				APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"},
				ResourceNames: []string{b.mutating.Name}, Verbs: []string{"get", "list", "watch", "update"},
			}}
			if !equalRules(role.Rules, want) {
				t.Errorf("ClusterRole %s rules %+v, want exactly %+v", webhookConfigurationsRole, role.Rules, want)
			}
			checkBinding(t, b, "ClusterRoleBinding", webhookConfigurationsRole, "ClusterRole")
			for _, o := range b.objs {
				if (o.GetKind() == "ClusterRole" || o.GetKind() == "Role") && o.GetName() != webhookConfigurationsRole &&
					strings.Contains(toYAML(t, o.Object), "admissionregistration.k8s.io") {
					t.Errorf("%s also grants webhook configurations: grant them once, in %s", key(o), webhookConfigurationsRole)
				}
			}

			args := b.container().Args
			for _, a := range args {
				for _, f := range []string{"--mutating-webhook-configuration", "--validating-webhook-configuration"} {
					if strings.HasPrefix(a, f+"=") {
						t.Errorf("arg %s: the manifests rely on the default, which this test checks against the objects", a)
					}
				}
			}
			mc := slices.IndexFunc(args, func(a string) bool { return a == "--match-conditions" || strings.HasPrefix(a, "--match-conditions=") })
			switch {
			case v.matchConditions && mc >= 0:
				t.Errorf("arg %s: the manifests rely on the default (on)", args[mc])
			case !v.matchConditions && (mc < 0 || args[mc] != "--match-conditions=false"):
				t.Errorf("args %v: want --match-conditions=false", args)
			}
			if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--leader-elect=") && a != "--leader-elect=true" }) {
				t.Errorf("args %v: the matchConditions and the audit need leader election (one writer)", args)
			}
		})
	}
}
