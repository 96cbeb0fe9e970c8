package policies

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Test helpers shared by the security-context policies' tests (run-as-non-root,
// no-privilege-escalation, drop-all-capabilities, read-only-root-filesystem, writable-paths,
// seccomp-profile, host-isolation). Every name starts with secCtx.

// Field path prefixes of the pod spec for each kind.
const (
	secCtxPodSpec     = "spec"
	secCtxDeploySpec  = "spec.template.spec"
	secCtxCronJobSpec = "spec.jobTemplate.spec.template.spec"
)

// secCtxContainer returns a container that satisfies every security-context policy, like
// the base fixture's "loom" container.
func secCtxContainer(name string) corev1.Container {
	return corev1.Container{
		Name:  name,
		Image: "ghcr.io/jordanhubbard/loom:0.9.3",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8081}},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: new(false),
			ReadOnlyRootFilesystem:   new(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}, {Name: "data", MountPath: "/app/data"}},
	}
}

// secCtxSpec returns a pod spec that satisfies every security-context policy: the base
// fixture's pod spec with one container, "loom".
func secCtxSpec() corev1.PodSpec {
	size := resource.MustParse("256Mi")
	return corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   new(true),
			RunAsUser:      new(int64(1000)),
			RunAsGroup:     new(int64(1000)),
			FSGroup:        new(int64(1000)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{secCtxContainer("loom")},
		Volumes: []corev1.Volume{
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &size}}},
			{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "loom-data"}}},
		},
	}
}

// secCtxEphemeral returns an ephemeral container made from c.
func secCtxEphemeral(c corev1.Container) corev1.EphemeralContainer {
	c.Ports = nil // the API refuses ports on ephemeral containers
	return corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon(c), TargetContainerName: "loom"}
}

// secCtxWorkload wraps spec in a workload of the given kind: Pod, Deployment, StatefulSet,
// DaemonSet, Job or CronJob.
func secCtxWorkload(t testing.TB, kind string, spec corev1.PodSpec) *Workload {
	t.Helper()
	meta := metav1.ObjectMeta{Name: "loom", Namespace: "loom", Labels: map[string]string{"app": "loom"}}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: meta.Labels}, Spec: spec}
	var obj runtime.Object
	switch kind {
	case "Pod":
		obj = &corev1.Pod{ObjectMeta: meta, Spec: spec}
	case "Deployment":
		obj = &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Template: tmpl}}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Template: tmpl}}
	case "DaemonSet":
		obj = &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Template: tmpl}}
	case "Job":
		obj = &batchv1.Job{ObjectMeta: meta, Spec: batchv1.JobSpec{Template: tmpl}}
	case "CronJob":
		obj = &batchv1.CronJob{ObjectMeta: meta, Spec: batchv1.CronJobSpec{
			Schedule:    "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}},
		}}
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	w, ok := NewWorkload(obj)
	if !ok {
		t.Fatalf("%s is not a workload", kind)
	}
	return w
}

// Expected errors, built from the exact strings users see.

func secCtxRequired(path, detail string) *field.Error {
	return &field.Error{Type: field.ErrorTypeRequired, Field: path, BadValue: "", Detail: detail}
}

func secCtxForbidden(path, detail string) *field.Error {
	return &field.Error{Type: field.ErrorTypeForbidden, Field: path, BadValue: "", Detail: detail}
}

func secCtxInvalid(path string, value any, detail string) *field.Error {
	return &field.Error{Type: field.ErrorTypeInvalid, Field: path, BadValue: value, Detail: detail}
}

// secCtxErrors renders errors one a line with their type, path, bad value and detail.
func secCtxErrors(errs field.ErrorList) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  %s %s (%T)%#v %q", e.Type, e.Field, e.BadValue, e.BadValue, e.Detail)
	}
	if b.Len() == 0 {
		return " (none)"
	}
	return b.String()
}

// secCtxAssertErrors compares two error lists on Type, Field, BadValue and Detail, in order.
func secCtxAssertErrors(t testing.TB, what string, got, want field.ErrorList) {
	t.Helper()
	if secCtxErrors(got) != secCtxErrors(want) {
		t.Errorf("%s:\ngot:%s\nwant:%s", what, secCtxErrors(got), secCtxErrors(want))
	}
}

// secCtxCase is one table entry of a security-context policy test.
type secCtxCase struct {
	name string
	// policy is the policy under test when it differs from the table's (another config).
	policy *Policy
	// kind is the workload kind (default Deployment).
	kind string
	// edit turns the compliant secCtxSpec into the case's spec.
	edit func(s *corev1.PodSpec)
	// want is what Check reports.
	want field.ErrorList
	// fixed is whether Fix reports a change.
	fixed bool
	// after is what Check reports after Fix (nil: the fix repairs everything).
	after field.ErrorList
	// verify checks the fixed spec further.
	verify func(t *testing.T, s *corev1.PodSpec)
}

// secCtxRun runs a table: Check must report exactly want and leave the workload untouched;
// Fix must report fixed, leave exactly after, never touch an unfixable workload, and be
// idempotent.
func secCtxRun(t *testing.T, p Policy, cases []secCtxCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pol := p
			if tc.policy != nil {
				pol = *tc.policy
			}
			kind := tc.kind
			if kind == "" {
				kind = "Deployment"
			}
			spec := secCtxSpec()
			if tc.edit != nil {
				tc.edit(&spec)
			}
			w := secCtxWorkload(t, kind, spec)
			before := w.Object.DeepCopyObject()
			secCtxAssertErrors(t, "Check", pol.Check(w), tc.want)
			if !equality.Semantic.DeepEqual(before, w.Object) {
				t.Fatal("Check modified the workload")
			}
			if pol.Fix == nil {
				if tc.fixed || tc.after != nil || tc.verify != nil {
					t.Fatal("the case expects a fix but the policy has none")
				}
				return
			}
			if got := pol.Fix(w); got != tc.fixed {
				t.Errorf("Fix reported %v, want %v", got, tc.fixed)
			}
			if !tc.fixed && !equality.Semantic.DeepEqual(before, w.Object) {
				t.Errorf("Fix reported no change but changed the workload")
			}
			secCtxAssertErrors(t, "Check after Fix", pol.Check(w), tc.after)
			if tc.verify != nil {
				tc.verify(t, w.Spec)
			}
			again := w.Object.DeepCopyObject()
			if pol.Fix(w) || !equality.Semantic.DeepEqual(again, w.Object) {
				t.Errorf("Fix is not idempotent")
			}
		})
	}
}

// TestSecCtxPassingPathAllocs checks that the security-context policies allocate nothing
// on a compliant workload, so that they stay within the engine's allocation budget.
func TestSecCtxPassingPathAllocs(t *testing.T) {
	spec := secCtxSpec()
	spec.InitContainers = []corev1.Container{secCtxContainer("migrate")}
	w := secCtxWorkload(t, "Deployment", spec)
	for _, id := range []string{
		"run-as-non-root", "no-privilege-escalation", "drop-all-capabilities", "read-only-root-filesystem",
		"writable-paths", "seccomp-profile", "host-isolation",
	} {
		p := catalogPolicy(t, id)
		if errs := p.Check(w); len(errs) > 0 {
			t.Fatalf("%s: compliant workload fails:%s", id, secCtxErrors(errs))
		}
		if n := testing.AllocsPerRun(100, func() { p.Check(w) }); n != 0 {
			t.Errorf("%s: Check allocates %v times on a compliant workload, want 0", id, n)
		}
		if p.Fix != nil {
			if n := testing.AllocsPerRun(100, func() { p.Fix(w) }); n != 0 {
				t.Errorf("%s: Fix allocates %v times on a compliant workload, want 0", id, n)
			}
		}
	}
}

// TestSecCtxContainersPhrase checks the container lists of pod-level details.
func TestSecCtxContainersPhrase(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{[]string{"loom"}, `container "loom"`},
		{[]string{"migrate", "loom"}, `containers "migrate", "loom"`},
		{[]string{"a", "b", "c"}, `containers "a", "b", "c"`},
	} {
		if got := containersPhrase(tc.names); got != tc.want {
			t.Errorf("containersPhrase(%q) = %q, want %q", tc.names, got, tc.want)
		}
	}
	if got, want := quotedList([]string{"RuntimeDefault", "Localhost"}), `"RuntimeDefault" or "Localhost"`; got != want {
		t.Errorf("quotedList = %q, want %q", got, want)
	}
	if got, want := quotedList([]string{"A", "B", "C"}), `"A", "B" or "C"`; got != want {
		t.Errorf("quotedList = %q, want %q", got, want)
	}
}
