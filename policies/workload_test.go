package policies

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestNewWorkloadPaths(t *testing.T) {
	spec := corev1.PodSpec{
		InitContainers:      []corev1.Container{{Name: "init"}},
		Containers:          []corev1.Container{{Name: "main"}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}},
	}
	tmpl := corev1.PodTemplateSpec{Spec: spec}
	three := int32(3)
	tests := []struct {
		obj          runtime.Object
		kind         string
		specPath     string
		templatePath string
		replicas     int32 // -1: none
	}{
		{&corev1.Pod{Spec: spec}, "Pod", "spec", "metadata", -1},
		{&appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: tmpl, Replicas: &three}}, "Deployment", "spec.template.spec", "spec.template.metadata", 3},
		{&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Template: tmpl}}, "StatefulSet", "spec.template.spec", "spec.template.metadata", 1},
		{&appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: tmpl}}, "DaemonSet", "spec.template.spec", "spec.template.metadata", -1},
		{&appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Template: tmpl}}, "ReplicaSet", "spec.template.spec", "spec.template.metadata", 1},
		{&batchv1.Job{Spec: batchv1.JobSpec{Template: tmpl}}, "Job", "spec.template.spec", "spec.template.metadata", -1},
		{&batchv1.CronJob{Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}},
			"CronJob", "spec.jobTemplate.spec.template.spec", "spec.jobTemplate.spec.template.metadata", -1},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			w, ok := NewWorkload(tt.obj)
			if !ok {
				t.Fatal("not a workload")
			}
			if w.Kind.Kind != tt.kind || w.SpecPath.String() != tt.specPath || w.TemplatePath.String() != tt.templatePath {
				t.Errorf("got %s %s %s", w.Kind.Kind, w.SpecPath, w.TemplatePath)
			}
			if (w.Replicas == nil) != (tt.replicas < 0) || (w.Replicas != nil && *w.Replicas != tt.replicas) {
				t.Errorf("replicas = %v, want %d", w.Replicas, tt.replicas)
			}
			var paths []string
			for _, c := range w.Containers() {
				paths = append(paths, c.Path.String()+"="+c.Name)
			}
			want := []string{
				tt.specPath + ".initContainers[0]=init",
				tt.specPath + ".containers[0]=main",
				tt.specPath + ".ephemeralContainers[0]=debug",
			}
			if len(paths) != 3 || paths[0] != want[0] || paths[1] != want[1] || paths[2] != want[2] {
				t.Errorf("containers = %v, want %v", paths, want)
			}
			// A ContainerRef aliases the object: a fix through it edits the object.
			w.Containers()[2].Image = "edited"
			if w.Spec.EphemeralContainers[0].Image != "edited" {
				t.Error("ephemeral ContainerRef does not alias the object")
			}
		})
	}
	if _, ok := NewWorkload(&corev1.Service{}); ok {
		t.Error("a Service is not a workload")
	}
}

func TestWorkloadTraits(t *testing.T) {
	ctrl := true
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Annotations:     map[string]string{corev1.MirrorPodAnnotationKey: "x"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Node", Name: "n1", Controller: &ctrl}},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:  corev1.RestartPolicyNever,
			InitContainers: []corev1.Container{{Name: "sidecar", RestartPolicy: &always}, {Name: "init"}},
		},
	}
	w, _ := NewWorkload(pod)
	if !w.Mirror() || !w.Controlled() || !w.RunsToCompletion() {
		t.Errorf("Mirror=%v Controlled=%v RunsToCompletion=%v, want all true", w.Mirror(), w.Controlled(), w.RunsToCompletion())
	}
	if c := w.Containers(); !c[0].LongRunning() || c[1].LongRunning() {
		t.Errorf("sidecar LongRunning=%v, init LongRunning=%v", c[0].LongRunning(), c[1].LongRunning())
	}
	d, _ := NewWorkload(&appsv1.Deployment{})
	if d.Mirror() || d.Controlled() || d.RunsToCompletion() {
		t.Error("a bare Deployment is not a mirror, not controlled and runs forever")
	}
}
