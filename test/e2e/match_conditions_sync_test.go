package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/loomguard/loomguard/policies"
	"github.com/loomguard/loomguard/test/cluster"
	"github.com/loomguard/loomguard/webhook"
)

// webhookConfigurationName is the name of both webhook configurations the harness
// registers (manifests/base/webhook-configurations.yaml), and the default of serve's
// --mutating-webhook-configuration and --validating-webhook-configuration.
const webhookConfigurationName = "loomguard"

// webhookConditions are the matchConditions of loomguard's two webhooks.
type webhookConditions struct {
	mutating, validating []admissionregistrationv1.MatchCondition
}

// generatedConditions are the matchConditions loomguard must keep for config content.
func generatedConditions(t *testing.T, content string) webhookConditions {
	t.Helper()
	cfg, errs := policies.LoadConfig([]byte(content))
	if len(errs) > 0 {
		t.Fatalf("config %q: %v", content, errs.ToAggregate())
	}
	return webhookConditions{
		mutating:   webhook.WantMatchConditions(webhook.MutatingWebhookName, cfg),
		validating: webhook.WantMatchConditions(webhook.ValidatingWebhookName, cfg),
	}
}

// liveConditions are the matchConditions of loomguard's two webhooks in the live
// configurations.
func (s *scenario) liveConditions(ctx context.Context) (mutating, validating []admissionregistrationv1.MatchCondition, err error) {
	m, v, err := cluster.LiveWebhooks(ctx, s.cs, webhookConfigurationName, webhookConfigurationName)
	if err != nil {
		return nil, nil, err
	}
	found := 0
	for _, w := range m {
		if w.Name == webhook.MutatingWebhookName {
			mutating, found = w.MatchConditions, found+1
		}
	}
	for _, w := range v {
		if w.Name == webhook.ValidatingWebhookName {
			validating, found = w.MatchConditions, found+1
		}
	}
	if found != 2 {
		return nil, nil, fmt.Errorf("the live configurations lack loomguard's webhooks: %+v %+v", m, v)
	}
	return mutating, validating, nil
}

// waitForConditions waits until both webhooks carry want.
func (s *scenario) waitForConditions(what string, want webhookConditions) {
	s.t.Helper()
	eventually(s.t, what, func(ctx context.Context) error {
		m, v, err := s.liveConditions(ctx)
		if err != nil {
			return err
		}
		if !slices.Equal(m, want.mutating) || !slices.Equal(v, want.validating) {
			return fmt.Errorf("live matchConditions: mutating %v, validating %v; want %v and %v", m, v, want.mutating, want.validating)
		}
		return nil
	})
}

// resetConditions removes the matchConditions of every webhook of both configurations, as an
// apply of a manifest without them by another field manager would.
func resetConditions(t *testing.T, s *scenario) {
	t.Helper()
	ctx := t.Context()
	ar := s.cs.AdmissionregistrationV1()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		m, err := ar.MutatingWebhookConfigurations().Get(ctx, webhookConfigurationName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for i := range m.Webhooks {
			m.Webhooks[i].MatchConditions = nil
		}
		_, err = ar.MutatingWebhookConfigurations().Update(ctx, m, metav1.UpdateOptions{FieldManager: "e2e-reset"})
		return err
	})
	if err != nil {
		t.Fatalf("resetting the MutatingWebhookConfiguration: %v", err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		v, err := ar.ValidatingWebhookConfigurations().Get(ctx, webhookConfigurationName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for i := range v.Webhooks {
			v.Webhooks[i].MatchConditions = nil
		}
		_, err = ar.ValidatingWebhookConfigurations().Update(ctx, v, metav1.UpdateOptions{FieldManager: "e2e-reset"})
		return err
	})
	if err != nil {
		t.Fatalf("resetting the ValidatingWebhookConfiguration: %v", err)
	}
}

// TestMatchConditionsFollowConfig: the running loomguard keeps the matchConditions of its
// webhooks in the live configurations equal to webhook.WantMatchConditions of the config in
// force: after start, after a config reload, and after someone resets them (a `kubectl
// apply` of an older manifest, here an update that removes them), without touching the
// rest of the objects.
func TestMatchConditionsFollowConfig(t *testing.T) {
	s := newScenario(t, "e2e-match")
	ctx := t.Context()
	base := generatedConditions(t, baseConfig)
	s.waitForConditions("the base config's matchConditions", base)
	// The harness's wait for the webhooks still ends with the conditions in place.
	if err := s.c.WaitForWebhooks(ctx); err != nil {
		t.Fatal(err)
	}

	// A reload to a config whose conditions differ: a namespace of its own actions.
	changed := "namespaces:\n  - names: [" + s.ns + "]\n    action: warn\n"
	want := generatedConditions(t, changed)
	if slices.Equal(want.mutating, base.mutating) || slices.Equal(want.validating, base.validating) {
		t.Fatalf("the test's config has the base config's matchConditions %v: pick one that changes them", base)
	}
	updates := func() float64 {
		t.Helper()
		samples, err := s.c.LoomguardMetric(ctx, "loomguard_webhook_match_condition_updates_total")
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		for labels, v := range samples {
			if strings.Contains(labels, `result="success"`) {
				n += v
			}
		}
		return n
	}
	before := updates()
	s.setConfig(changed)
	s.waitForConditions("the reloaded config's matchConditions", want)
	if got := updates() - before; got < 2 {
		t.Errorf("loomguard_webhook_match_condition_updates_total{result=\"success\"} went up by %v, want at least 2 (one per webhook)", got)
	}

	// An external reset of each configuration, keeping everything else.
	ar := s.cs.AdmissionregistrationV1()
	m, err := ar.MutatingWebhookConfigurations().Get(ctx, webhookConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caBundle := m.Webhooks[0].ClientConfig.CABundle
	resetConditions(t, s)
	s.waitForConditions("the repair of the reset matchConditions", want)
	m, err = ar.MutatingWebhookConfigurations().Get(ctx, webhookConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Webhooks[0].ClientConfig.CABundle) != string(caBundle) {
		t.Error("the repair changed the caBundle")
	}

	// Back to the base config: its conditions come back.
	s.setConfig(baseConfig)
	s.waitForConditions("the base config's matchConditions again", base)
}

// TestMatchConditionsTurnedOff: loomguard restarted with --match-conditions=false removes
// the conditions its predecessor kept (no Lease needed), and restarted with them on puts
// them back.
func TestMatchConditionsTurnedOff(t *testing.T) {
	s := newScenario(t, "e2e-match-off")
	c := s.c
	base := generatedConditions(t, baseConfig)
	if len(base.mutating) == 0 || len(base.validating) == 0 {
		t.Fatal("the base config has no matchConditions: nothing to turn off")
	}
	s.waitForConditions("the base config's matchConditions", base)
	t.Cleanup(func() {
		if t.Failed() {
			restartLoomguard(t, c)
		}
	})

	restartLoomguard(t, c, "--match-conditions=false")
	s.waitForConditions("loomguard with --match-conditions=false to remove the matchConditions", webhookConditions{})
	restartLoomguard(t, c)
	s.waitForConditions("loomguard with --match-conditions on to put them back", base)
}
