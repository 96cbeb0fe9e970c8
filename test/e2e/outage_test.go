package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/loomguard/loomguard/test/cluster"
)

// failClosedWithin bounds how long a create may take to fail while loomguard is down: the
// webhooks' timeoutSeconds (3) plus kubectl and API server overhead on a loaded machine.
const failClosedWithin = 10 * time.Second

// TestLoomguardStoppedFailsClosed: with loomguard down, workloads in governed namespaces
// cannot be created (the validating webhook fails closed, quickly), while other objects,
// kube-system and loomguard-system stay writable; after a restart admission resumes.
func TestLoomguardStoppedFailsClosed(t *testing.T) {
	s := newScenario(t, "e2e-outage")
	c := s.c
	begin := time.Now()
	if err := c.StopLoomguard(); err != nil {
		t.Fatal(err)
	}
	t.Logf("loomguard stopped in %s", time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		// Leave loomguard running for the next test whatever happened here.
		if c.LoomguardPID() != 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.StartLoomguard(ctx); err != nil {
			t.Errorf("restarting loomguard: %v", err)
		}
	})

	r := s.kubectl("create", "deployment", "web", "--image=ghcr.io/loomguard/e2e-app:1.0.0")
	mustFail(t, r)
	mustContain(t, "kubectl create stderr", r.Stderr, `failed calling webhook "validate.loomguard.io"`)
	if r.Duration > failClosedWithin {
		t.Errorf("kubectl create failed after %s, want within %s", r.Duration, failClosedWithin)
	}
	t.Logf("failed closed in %s: %s", r.Duration.Round(time.Millisecond), r.Stderr)
	// Only workloads are governed.
	mustSucceed(t, s.kubectl("create", "configmap", "still-writable", "--from-literal=a=b"))

	// The control plane's and loomguard's own namespaces are never sent to loomguard.
	for _, ns := range []string{"kube-system", cluster.LoomguardNamespace} {
		name := s.ns
		mustSucceed(t, c.Kubectl("-n", ns, "create", "configmap", name, "--from-literal=a=b"))
		mustSucceed(t, c.Kubectl("-n", ns, "run", name, "--image=busybox:1.36.1", "--restart=Never", "--", "sleep", "3600"))
		t.Cleanup(func() {
			c.Kubectl("-n", ns, "delete", "pod,configmap", name, "--wait=false")
		})
	}

	begin = time.Now()
	if err := c.StartLoomguard(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("loomguard restarted and ready in %s", time.Since(begin).Round(time.Millisecond))
	mustSucceed(t, s.apply(compliantDeployment("web", 1)))
	r = s.apply(legacyDeployment("legacy", 1))
	mustFail(t, r)
	mustContain(t, "kubectl apply stderr", r.Stderr, `admission webhook "validate.loomguard.io" denied the request`, imageTagDenial)
}
