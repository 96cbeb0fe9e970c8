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
// cannot be created (the validating webhook fails closed, quickly) unless the webhooks'
// matchConditions clear them: a compliant Deployment is still admitted and rolled out, its
// ReplicaSet and Pods created by the controllers, and the API server counts the skipped
// calls. Other objects, kube-system and loomguard-system stay writable; after a restart
// admission resumes.
func TestLoomguardStoppedFailsClosed(t *testing.T) {
	s := newScenario(t, "e2e-outage")
	c := s.c
	s.waitForConditions("loomguard's webhooks carry the config's matchConditions", generatedConditions(t, baseConfig))
	excludedBefore := s.matchConditionExclusions()
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

	// What the matchConditions clear needs no loomguard: a compliant Deployment, its
	// ReplicaSet and its Pods are all admitted while loomguard is down.
	begin = time.Now()
	mustSucceed(t, s.apply(compliantDeployment("cleared", 2)))
	_, _, pods := s.waitForReplicaSetPods("cleared")
	t.Logf("with loomguard down, a compliant Deployment and its %d Pods were admitted in %s", len(pods), time.Since(begin).Round(time.Millisecond))
	if excluded := s.matchConditionExclusions() - excludedBefore; excluded < 4 {
		t.Errorf("the API server counted %v calls to loomguard's webhooks skipped by their matchConditions, want at least 4 (Deployment, ReplicaSet, Pods)", excluded)
	}

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

// matchConditionExclusions is how many calls to loomguard's webhooks (both together) the
// API server has skipped because their matchConditions cleared the object.
func (s *scenario) matchConditionExclusions() float64 {
	s.t.Helper()
	m, v, err := s.c.MatchConditionExclusions(s.t.Context())
	if err != nil {
		s.t.Fatal(err)
	}
	return m + v
}
