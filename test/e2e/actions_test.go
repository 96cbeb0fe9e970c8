package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWarnAndAuditActions: per-namespace overrides turn the enforced image-tag into a
// warning kubectl prints, or into an audit record only (the API server's audit log carries
// loomguard's annotation); both admit the Deployment.
func TestWarnAndAuditActions(t *testing.T) {
	s := newScenario(t, "e2e-warn")
	a := newScenario(t, "e2e-audit")
	s.setConfig(fmt.Sprintf(`namespaces:
  - names: [%s]
    action: warn
  - names: [%s]
    policies:
      image-tag: audit
`, s.ns, a.ns))

	d := compliantDeployment("web", 1)
	d.Spec.Template.Spec.Containers[0].Image = "loom:latest"

	r := s.apply(d)
	mustSucceed(t, r)
	if w := warnings(r); len(w) != 1 || !strings.HasPrefix(w[0], "Warning: "+imageTagDenial) {
		t.Fatalf("warn: want exactly the image-tag warning, got %q\n%s", w, r)
	}

	r = a.apply(d)
	mustSucceed(t, r)
	if w := warnings(r); len(w) > 0 {
		t.Fatalf("audit: want no warning, got %q\n%s", w, r)
	}
	a.waitForAuditAnnotation("create", "deployments", "web", auditKeyPrefix+"image-tag", `"loom:latest"`)
	// The Deployment's controller-generated children are admitted as well.
	a.waitForReplicaSetPods("web")
}

// TestExemptNamespaces: kube-system is never sent to loomguard (namespaceSelector), and a
// namespace in the config's exemptNamespaces is neither validated nor mutated.
func TestExemptNamespaces(t *testing.T) {
	s := newScenario(t, "e2e-exempt")
	c := s.c

	// A root pod with the latest tag and nothing else, in kube-system: admitted untouched.
	name := s.ns + "-pod"
	r := c.Kubectl("-n", "kube-system", "run", name, "--image=busybox:latest", "--restart=Never", "--", "sleep", "3600")
	mustSucceed(t, r)
	mustNotContain(t, "kubectl run output", r.Output(), "loomguard")
	pod, err := s.cs.CoreV1().Pods("kube-system").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pod.Annotations[fixedAnnotation]; ok || pod.Spec.SecurityContext.RunAsUser != nil {
		t.Errorf("the kube-system pod was mutated: annotations %v, securityContext %+v", pod.Annotations, pod.Spec.SecurityContext)
	}
	t.Cleanup(func() { c.Kubectl("-n", "kube-system", "delete", "pod", name, "--wait=false") })

	// Governed by default: denied.
	d := legacyDeployment("legacy", 1)
	r = s.apply(d, "--dry-run=server")
	mustFail(t, r)
	mustContain(t, "kubectl apply stderr", r.Stderr, imageTagDenial)

	// Exempt by config: loomguard is called (the namespaceSelector does not know the
	// namespace) and lets everything through unchanged.
	s.setConfig(fmt.Sprintf("exemptNamespaces: [kube-system, kube-public, kube-node-lease, loomguard-system, %s]\n", s.ns))
	r = s.apply(d)
	mustSucceed(t, r)
	mustNotContain(t, "kubectl apply output", r.Output(), "loomguard", "Warning")
	stored, err := s.cs.AppsV1().Deployments(s.ns).Get(t.Context(), "legacy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := stored.Annotations[fixedAnnotation]; ok || stored.Spec.Template.Spec.SecurityContext.RunAsUser != nil {
		t.Errorf("the Deployment in an exempt namespace was mutated: %s=%q, securityContext %+v", fixedAnnotation, v, stored.Spec.Template.Spec.SecurityContext)
	}
	s.waitForReplicaSetPods("legacy")
}

// TestExceptionExpiry: an exception waives image-tag for its workloads (and what their
// controllers generate) until it expires; an expired one waives nothing. Once the Pods of
// the waived Deployment exist, the waiver's expiry is moved to a few seconds ahead: it then
// ends with no further reload.
func TestExceptionExpiry(t *testing.T) {
	s := newScenario(t, "e2e-exception")
	config := func(expires time.Time) string {
		return fmt.Sprintf(`exceptions:
  - name: legacy-latest
    policies: [image-tag]
    namespace: %[1]s
    workload: legacy-*
    owner: e2e@loomguard.io
    reason: waived for a few seconds by the e2e test
    expires: %[2]s
  - name: expired-latest
    policies: [image-tag]
    namespace: %[1]s
    workload: expired-*
    owner: e2e@loomguard.io
    reason: already expired
    expires: %[3]s
`, s.ns, expires.Format(time.RFC3339), time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	}
	// Before expiry: admitted, waived in the audit log, and the Deployment can run. The
	// waiver lasts an hour while the controllers create the Pods (however slow the machine),
	// then is set to expire a few seconds later, and time alone must end it.
	s.setConfig(config(time.Now().Add(time.Hour).UTC().Truncate(time.Second)))
	d := compliantDeployment("legacy-a", 1)
	d.Spec.Template.Spec.Containers[0].Image = "loom:latest"
	r := s.apply(d)
	mustSucceed(t, r)
	mustNotContain(t, "kubectl apply output", r.Output(), "image-tag")
	s.waitForAuditAnnotation("create", "deployments", "legacy-a", auditKeyPrefix+"waived", "image-tag=legacy-latest")
	s.waitForReplicaSetPods("legacy-a")
	expires := time.Now().Add(4 * time.Second).UTC().Truncate(time.Second)
	s.setConfig(config(expires))

	// An expired exception waives nothing.
	e := compliantDeployment("expired-a", 1)
	e.Spec.Template.Spec.Containers[0].Image = "loom:latest"
	r = s.apply(e)
	mustFail(t, r)
	mustContain(t, "kubectl apply stderr", r.Stderr, imageTagDenial)

	// After expiry the same config denies the waived workloads.
	b := compliantDeployment("legacy-b", 1)
	b.Spec.Template.Spec.Containers[0].Image = "loom:latest"
	var last string
	err := poll(time.Until(expires)+waitTimeout, func(context.Context) error {
		r := s.apply(b, "--dry-run=server")
		if r.ExitCode != 0 && strings.Contains(r.Stderr, imageTagDenial) {
			return nil
		}
		last = r.String()
		return errors.New("still admitted")
	})
	if err != nil {
		t.Fatalf("legacy-b after the exception expired at %s: %v\n%s", expires.Format(time.RFC3339), err, last)
	}
	if time.Now().Before(expires) {
		t.Fatalf("legacy-b was denied before the exception expired at %s", expires.Format(time.RFC3339))
	}
	r = s.apply(b)
	mustFail(t, r)
	mustContain(t, "kubectl apply stderr", r.Stderr, imageTagDenial)
}
