package policies

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestHealthProbes(t *testing.T) {
	p := catalogPolicy(t, "health-probes")
	if p.DefaultAction != ActionWarn || p.Fix != nil {
		t.Fatalf("health-probes: default action %s, fix %v; want warn and no fix", p.DefaultAction, p.Fix != nil)
	}
	c0 := field.NewPath("spec", "template", "spec", "containers").Index(0)
	liveness := func(c *field.Path, name string) *field.Error {
		return field.Required(c.Child("livenessProbe"), `container "`+name+`" must define a liveness probe`)
	}
	readiness := func(c *field.Path, name string) *field.Error {
		return field.Required(c.Child("readinessProbe"), `container "`+name+`" must define a readiness probe`)
	}
	noProbes := func(c *corev1.Container) { c.LivenessProbe, c.ReadinessProbe = nil, nil }
	sidecar := corev1.ContainerRestartPolicyAlways
	catalogRun(t, p, []catalogCase{
		{name: "base", obj: func(t testing.TB) runtime.Object { return catalogDeployment(t) }},
		{
			name: "deployment without probes; a startupProbe replaces neither",
			obj: func(t testing.TB) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					c := &d.Spec.Template.Spec.Containers[0]
					noProbes(c)
					c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health"}}}
				})
			},
			want: field.ErrorList{liveness(c0, "loom"), readiness(c0, "loom")},
		},
		{
			name: "readiness only missing",
			obj: func(t testing.TB) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].ReadinessProbe = nil })
			},
			want: field.ErrorList{readiness(c0, "loom")},
		},
		{
			name: "sidecars are long-running; plain init containers are not",
			obj: func(t testing.TB) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					d.Spec.Template.Spec.InitContainers = []corev1.Container{
						{Name: "migrate", Image: "ghcr.io/jordanhubbard/loom:0.9.3"},
						{Name: "proxy", Image: "ghcr.io/jordanhubbard/proxy:1.0", RestartPolicy: &sidecar},
					}
				})
			},
			want: field.ErrorList{
				liveness(field.NewPath("spec", "template", "spec", "initContainers").Index(1), "proxy"),
				readiness(field.NewPath("spec", "template", "spec", "initContainers").Index(1), "proxy"),
			},
		},
		{
			name: "pod (restartPolicy Always by default); ephemeral containers are not checked",
			obj: func(t testing.TB) runtime.Object {
				return catalogPod(t, func(p *corev1.Pod) {
					noProbes(&p.Spec.Containers[0])
					p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}}
				})
			},
			want: field.ErrorList{liveness(field.NewPath("spec", "containers").Index(0), "loom"), readiness(field.NewPath("spec", "containers").Index(0), "loom")},
		},
		{
			name: "pod that runs to completion",
			obj: func(t testing.TB) runtime.Object {
				return catalogPod(t, func(p *corev1.Pod) {
					noProbes(&p.Spec.Containers[0])
					p.Spec.RestartPolicy = corev1.RestartPolicyNever
				})
			},
		},
		{
			name: "cronjob runs to completion",
			obj: func(t testing.TB) runtime.Object {
				return catalogCronJob(t, func(cj *batchv1.CronJob) { noProbes(&cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]) })
			},
		},
		{
			name: "job runs to completion",
			obj: func(t testing.TB) runtime.Object {
				cj := catalogCronJob(t, func(cj *batchv1.CronJob) { noProbes(&cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]) })
				return &batchv1.Job{ObjectMeta: cj.ObjectMeta, Spec: cj.Spec.JobTemplate.Spec}
			},
		},
		{
			name: "statefulset",
			obj: func(t testing.TB) runtime.Object {
				return catalogStatefulSet(t, func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].LivenessProbe = nil })
			},
			want: field.ErrorList{liveness(c0, "loom")},
		},
	})
}
