package e2e

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// auditNamespaceConfig puts every policy in namespace ns in audit: objects are admitted
// as they are (audit neither denies nor fixes).
func auditNamespaceConfig(ns string) string {
	return fmt.Sprintf("namespaces:\n  - names: [%s]\n    action: audit\n", ns)
}

// TestUnchangedUpdateAllowed: an existing non-compliant Deployment (created while its
// namespace was in audit) can still be annotated and scaled once the policies are enforced,
// and its controller can scale its ReplicaSet; a change of its pod spec is denied.
func TestUnchangedUpdateAllowed(t *testing.T) {
	s := newScenario(t, "e2e-update")
	s.setConfig(auditNamespaceConfig(s.ns))
	mustSucceed(t, s.apply(legacyDeployment("legacy", 2)))
	_, rs, _ := s.waitForReplicaSetPods("legacy")

	s.setConfig(baseConfig)
	r := s.apply(legacyDeployment("legacy-new", 1), "--dry-run=server")
	mustFail(t, r)
	mustContain(t, "kubectl apply stderr", r.Stderr, imageTagDenial)

	r = s.kubectl("annotate", "deployment", "legacy", "e2e.loomguard.io/touched=yes")
	mustSucceed(t, r)
	mustNotContain(t, "kubectl annotate output", r.Output(), "loomguard")
	s.waitForAuditAnnotation("patch", "deployments", "legacy", auditKeyPrefix+"record-only", "unchanged")

	// kubectl scale goes through the scale subresource; the Deployment controller then
	// UPDATEs the non-compliant ReplicaSet, which loomguard must let through.
	mustSucceed(t, s.kubectl("scale", "deployment", "legacy", "--replicas=1"))
	eventually(t, "ReplicaSet "+rs.Name+" scaled to 1 with 1 Pod", func(ctx context.Context) error {
		got, err := s.cs.AppsV1().ReplicaSets(s.ns).Get(ctx, rs.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pods, err := s.podsOf(ctx, s.ns, got.UID)
		if err != nil {
			return err
		}
		if *got.Spec.Replicas != 1 || got.Status.Replicas != 1 || len(pods) != 1 {
			return fmt.Errorf("spec.replicas %d, status.replicas %d, %d Pods", *got.Spec.Replicas, got.Status.Replicas, len(pods))
		}
		return nil
	})

	// A pod-spec change is evaluated, and the Deployment is still non-compliant.
	r = s.kubectl("set", "env", "deployment/legacy", "E2E=1")
	mustFail(t, r)
	mustContain(t, "kubectl set env stderr", r.Stderr, `admission webhook "validate.loomguard.io" denied the request`, imageTagDenial)
}

// TestRolloutScalesDownNonCompliantReplicaSet: a non-compliant Deployment (created while
// its namespace was in audit) is brought into compliance once the policies are enforced;
// the rollout creates the new ReplicaSet and Pods and scales the old, non-compliant
// ReplicaSet down to zero. The test plays the kubelet by marking Pods ready.
func TestRolloutScalesDownNonCompliantReplicaSet(t *testing.T) {
	s := newScenario(t, "e2e-rollout")
	s.setConfig(auditNamespaceConfig(s.ns))
	old := legacyDeployment("app", 2)
	mustSucceed(t, s.apply(old))
	_, oldRS, _ := s.waitForReplicaSetPods("app")
	eventually(t, "Deployment app available", func(ctx context.Context) error {
		if err := s.markPodsReady(ctx); err != nil {
			return err
		}
		return s.deploymentComplete(ctx, "app")
	})

	s.setConfig(baseConfig)
	next := compliantDeployment("app", 2)
	next.Spec.Selector = old.Spec.Selector
	r := s.apply(next)
	mustSucceed(t, r)
	if w := warnings(r); len(w) > 0 {
		t.Errorf("the compliant template gets no warning, got %q", w)
	}

	eventually(t, "the rollout of Deployment app to complete", func(ctx context.Context) error {
		if err := s.markPodsReady(ctx); err != nil {
			return err
		}
		if err := s.deploymentComplete(ctx, "app"); err != nil {
			return err
		}
		got, err := s.cs.AppsV1().ReplicaSets(s.ns).Get(ctx, oldRS.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if *got.Spec.Replicas != 0 || got.Status.Replicas != 0 {
			return fmt.Errorf("old ReplicaSet %s: spec.replicas %d, status.replicas %d", got.Name, *got.Spec.Replicas, got.Status.Replicas)
		}
		return nil
	})
	r = s.kubectl("rollout", "status", "deployment/app", "--timeout=10s")
	mustSucceed(t, r)
	mustContain(t, "kubectl rollout status", r.Stdout, "successfully rolled out")
}

// deploymentComplete reports whether a Deployment's rollout is done: the controller saw
// the latest spec, and every replica is updated, ready and available, with no old Pod left.
func (s *scenario) deploymentComplete(ctx context.Context, name string) error {
	d, err := s.cs.AppsV1().Deployments(s.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	st, want := d.Status, *d.Spec.Replicas
	if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != want || st.Replicas != want ||
		st.ReadyReplicas != want || st.AvailableReplicas != want {
		return fmt.Errorf("Deployment %s: %s", name, rolloutState(d))
	}
	return nil
}

func rolloutState(d *appsv1.Deployment) string {
	st := d.Status
	return fmt.Sprintf("generation %d observed %d, replicas %d/%d updated %d ready %d available %d",
		d.Generation, st.ObservedGeneration, st.Replicas, *d.Spec.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas)
}
