package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestConfigHotReload: editing loomguard's config file changes its verdicts without a
// restart; a broken edit is rejected and the last good config stays in force.
func TestConfigHotReload(t *testing.T) {
	s := newScenario(t, "e2e-reload")
	pid := s.c.LoomguardPID()
	d := compliantDeployment("web", 1)
	d.Spec.Template.Spec.Containers[0].Image = "loom:latest"

	r := s.apply(d, "--dry-run=server")
	mustFail(t, r)
	mustContain(t, "kubectl apply stderr", r.Stderr, imageTagDenial)

	s.setConfig("policies:\n  image-tag:\n    action: \"off\"\n")
	// setConfig waited for loomguard's reload metric; the verdict must follow at once, but
	// poll anyway (bounded) so that a slow reload shows as a clear failure.
	eventually(t, "loomguard to admit loom:latest", func(context.Context) error {
		if r := s.apply(d, "--dry-run=server"); !r.OK() {
			return errors.New(r.String())
		}
		return nil
	})
	r = s.apply(d)
	mustSucceed(t, r)
	mustNotContain(t, "kubectl apply output", r.Output(), "image-tag")

	// A config with an unknown policy is rejected; image-tag stays off.
	err := s.c.SetLoomguardConfig(t.Context(), "policies:\n  image-tga:\n    action: enforce\n")
	if err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Fatalf("want loomguard to reject a config with an unknown policy, got %v", err)
	}
	d.Name = "web-2"
	mustSucceed(t, s.apply(d))

	if now := s.c.LoomguardPID(); now != pid {
		t.Errorf("loomguard restarted (pid %d, then %d): the config must reload in place", pid, now)
	}
}
