package e2e

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDebugContainer: `kubectl debug` adds an ephemeral container to a running Pod through
// pods/ephemeralcontainers. A privileged one (kubectl's sysadmin profile) is denied with
// loomguard's message and not added; a compliant one (the restricted profile) is admitted.
func TestDebugContainer(t *testing.T) {
	s := newScenario(t, "e2e-debug")
	d := compliantDeployment("shop", 1)
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: d.Spec.Template.Labels},
		Spec:       d.Spec.Template.Spec,
	}
	mustSucceed(t, s.apply(pod))

	r := s.kubectl("debug", "shop", "--image=busybox:1.36.1", "--profile=sysadmin", "--attach=false", "-c", "root-debugger", "--", "sh")
	mustFail(t, r)
	mustContain(t, "kubectl debug --profile=sysadmin stderr", r.Stderr,
		`admission webhook "validate.loomguard.io" denied the request`,
		"Pod "+s.ns+"/shop violates",
		`[no-privilege-escalation] spec.ephemeralContainers[0].securityContext.privileged`)
	mustNotContain(t, "kubectl debug --profile=sysadmin stderr", r.Stderr, "[resource-limits]", "[health-probes]")
	got, err := s.cs.CoreV1().Pods(s.ns).Get(t.Context(), "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Spec.EphemeralContainers); n != 0 {
		t.Fatalf("the denied debug container was added: %+v", got.Spec.EphemeralContainers)
	}

	r = s.kubectl("debug", "shop", "--image=busybox:1.36.1", "--profile=restricted", "--attach=false", "-c", "debugger", "--", "sh")
	mustSucceed(t, r)
	got, err = s.cs.CoreV1().Pods(s.ns).Get(t.Context(), "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Spec.EphemeralContainers); n != 1 || got.Spec.EphemeralContainers[0].Name != "debugger" {
		t.Fatalf("the compliant debug container was not added: %+v", got.Spec.EphemeralContainers)
	}
}
