package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// imageTagDenial is how kubectl shows the image-tag violation of a Deployment whose
// container "app" runs loom:latest.
const imageTagDenial = `[image-tag] spec.template.spec.containers[0].image: container "app" image "loom:latest"`

// TestDenyNonCompliant: a Deployment that only violates image-tag is refused, by kubectl
// with the violation as `[policy] field: detail`, by client-go with a 403 and one status
// cause per violation; nothing is stored.
func TestDenyNonCompliant(t *testing.T) {
	s := newScenario(t, "e2e-deny")
	d := compliantDeployment("web", 1)
	d.Spec.Template.Spec.Containers[0].Image = "loom:latest"

	r := s.apply(d)
	mustFail(t, r)
	mustContain(t, "kubectl apply stderr", r.Stderr,
		`Error from server (Forbidden)`,
		`admission webhook "validate.loomguard.io" denied the request`,
		"Deployment "+s.ns+"/web violates 1 loomguard policy",
		imageTagDenial)
	if w := warnings(r); len(w) > 0 {
		t.Errorf("a Deployment whose only finding is enforced gets no warning, got %q", w)
	}
	r = s.kubectl("get", "deployment", "web")
	mustFail(t, r)
	mustContain(t, "kubectl get stderr", r.Stderr, "NotFound")

	_, err := s.cs.AppsV1().Deployments(s.ns).Create(t.Context(), d, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("client-go create: want a 403 Forbidden, got %v", err)
	}
	causes := statusCauses(err)
	if len(causes) != 1 {
		t.Fatalf("want one status cause, got %+v", causes)
	}
	if c := causes[0]; c.Field != "spec.template.spec.containers[0].image" || !strings.HasPrefix(c.Message, "[image-tag] ") {
		t.Errorf("status cause: got %+v, want field spec.template.spec.containers[0].image and an [image-tag] message", c)
	}
}

// TestMutationInjectsDefaults: a Deployment without capabilities drop,
// allowPrivilegeEscalation, seccomp profile, runAsUser and a /tmp volume is admitted with
// them filled in, says so, and its ReplicaSet and Pods (which carry the fixed template)
// pass validation.
func TestMutationInjectsDefaults(t *testing.T) {
	s := newScenario(t, "e2e-mutate")
	d := compliantDeployment("web", 2)
	pod := &d.Spec.Template.Spec
	pod.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: new(true)}
	ctr := &pod.Containers[0]
	ctr.SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: new(true)}
	ctr.VolumeMounts = nil
	pod.Volumes = nil

	r := s.apply(d)
	mustSucceed(t, r)
	wantFixed := []string{"run-as-non-root", "no-privilege-escalation", "drop-all-capabilities", "writable-paths", "seccomp-profile"}
	w := warnings(r)
	if len(w) != 1 || !strings.HasPrefix(w[0], "Warning: loomguard fixed: ") {
		t.Fatalf("want one warning listing the fixes, got %q\n%s", w, r)
	}
	mustContain(t, "the fix warning", w[0], wantFixed...)

	stored, err := s.cs.AppsV1().Deployments(s.ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fixed := strings.Split(stored.Annotations[fixedAnnotation], ",")
	for _, id := range wantFixed {
		if !slices.Contains(fixed, id) {
			t.Errorf("annotation %s=%q lacks %s", fixedAnnotation, stored.Annotations[fixedAnnotation], id)
		}
	}
	checkHardened(t, "Deployment web", &stored.Spec.Template.Spec)

	_, rs, pods := s.waitForReplicaSetPods("web")
	checkHardened(t, "ReplicaSet "+rs.Name, &rs.Spec.Template.Spec)
	for _, p := range pods {
		checkHardened(t, "Pod "+p.Name, &p.Spec)
	}
}

// checkHardened asserts the fields TestMutationInjectsDefaults expects loomguard to fill.
func checkHardened(t *testing.T, what string, spec *corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	switch {
	case psc == nil:
		t.Fatalf("%s: no pod securityContext", what)
	case psc.RunAsUser == nil || *psc.RunAsUser != 1000:
		t.Errorf("%s: runAsUser %v, want 1000", what, psc.RunAsUser)
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("%s: seccompProfile %+v, want RuntimeDefault", what, psc.SeccompProfile)
	}
	ctr := spec.Containers[0]
	sc := ctr.SecurityContext
	switch {
	case sc == nil:
		t.Fatalf("%s: no container securityContext", what)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: allowPrivilegeEscalation %v, want false", what, sc.AllowPrivilegeEscalation)
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
		t.Errorf("%s: capabilities %+v, want drop ALL", what, sc.Capabilities)
	}
	var tmpVolume string
	for _, m := range ctr.VolumeMounts {
		if m.MountPath == "/tmp" {
			tmpVolume = m.Name
		}
	}
	if tmpVolume == "" {
		t.Fatalf("%s: no volumeMount at /tmp: %+v", what, ctr.VolumeMounts)
	}
	for _, v := range spec.Volumes {
		if v.Name == tmpVolume {
			if v.EmptyDir == nil {
				t.Errorf("%s: volume %s at /tmp is not an emptyDir: %+v", what, v.Name, v.VolumeSource)
			}
			return
		}
	}
	t.Errorf("%s: volumeMount /tmp names volume %q, which does not exist", what, tmpVolume)
}

// TestDryRunServer: `kubectl apply --dry-run=server` gets the same denial, and the same
// warnings, as the real apply, and stores nothing.
func TestDryRunServer(t *testing.T) {
	s := newScenario(t, "e2e-dryrun")
	before := s.dryRunReviews(t)

	denied := compliantDeployment("denied", 1)
	denied.Spec.Template.Spec.Containers[0].Image = "loom:latest"
	dry := s.apply(denied, "--dry-run=server")
	mustFail(t, dry)
	mustContain(t, "dry-run stderr", dry.Stderr, imageTagDenial)
	mustFail(t, s.kubectl("get", "deployment", "denied"))
	applied := s.apply(denied)
	mustFail(t, applied)
	if dry.Stderr != applied.Stderr {
		t.Errorf("dry run and apply disagree:\n--- dry run\n%s--- apply\n%s", dry.Stderr, applied.Stderr)
	}

	// health-probes is a warning by default.
	warned := compliantDeployment("warned", 1)
	warned.Spec.Template.Spec.Containers[0].LivenessProbe = nil
	warned.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
	dry = s.apply(warned, "--dry-run=server")
	mustSucceed(t, dry)
	mustContain(t, "dry-run stdout", dry.Stdout, "deployment.apps/warned created (server dry run)")
	mustContain(t, "dry-run warnings", strings.Join(warnings(dry), "\n"),
		`Warning: [health-probes] spec.template.spec.containers[0].livenessProbe: `,
		`Warning: [health-probes] spec.template.spec.containers[0].readinessProbe: `)
	r := s.kubectl("get", "deployment", "warned")
	mustFail(t, r)
	mustContain(t, "kubectl get stderr", r.Stderr, "NotFound")
	applied = s.apply(warned)
	mustSucceed(t, applied)
	if dry.Stderr != applied.Stderr {
		t.Errorf("dry run and apply warn differently:\n--- dry run\n%s--- apply\n%s", dry.Stderr, applied.Stderr)
	}
	mustSucceed(t, s.kubectl("get", "deployment", "warned"))

	// loomguard's validating webhook saw the dry runs as dry runs (its mutating webhook is not
	// called for them: they need no fix, which its matchConditions tell the API server).
	if after := s.dryRunReviews(t); after < before+2 {
		t.Errorf("loomguard_admission_requests_total{webhook=\"validate\",dry_run=\"true\"} went from %v to %v, want at least 2 more (2 dry runs)", before, after)
	}
}

// dryRunReviews sums the validating webhook's admission requests labelled dry_run="true".
func (s *scenario) dryRunReviews(t *testing.T) float64 {
	t.Helper()
	samples, err := s.c.LoomguardMetric(context.Background(), "loomguard_admission_requests_total")
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for labels, v := range samples {
		if strings.Contains(labels, `dry_run="true"`) && strings.Contains(labels, `webhook="validate"`) {
			n += v
		}
	}
	return n
}
