package policies

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestNetworkPolicy(t *testing.T) {
	p := catalogPolicy(t, "network-policy")
	if p.DefaultAction != ActionAudit || p.Fix != nil || !p.CrossObject {
		t.Fatalf("network-policy: default action %s, fix %v, cross-object %v; want audit, no fix, cross-object",
			p.DefaultAction, p.Fix != nil, p.CrossObject)
	}
	none := NewRelated()
	loomOnly := testRelated(testNetpol("loom", *matchLabels("app", "loom")))
	missing := func(path *field.Path, what string) *field.Error {
		return field.Required(path, `no NetworkPolicy in namespace "loom" selects `+what)
	}
	deploymentPath := field.NewPath("spec", "template", "metadata", "labels")
	catalogRun(t, p, []catalogCase{
		{name: "unknown view (admission): nothing reported", obj: func(t testing.TB) runtime.Object { return catalogDeployment(t) }},
		{name: "selected", obj: func(t testing.TB) runtime.Object { return catalogDeployment(t) }, related: loomOnly},
		{name: "an empty podSelector selects every pod", obj: func(t testing.TB) runtime.Object { return catalogDeployment(t) },
			related: testRelated(testNetpol("default-deny", metav1.LabelSelector{}))},
		{name: "no policy in the namespace", obj: func(t testing.TB) runtime.Object { return catalogDeployment(t) }, related: none,
			want: field.ErrorList{missing(deploymentPath, `the pods of Deployment "loom"`)}},
		{name: "a policy for other pods", obj: func(t testing.TB) runtime.Object { return catalogDeployment(t) },
			related: testRelated(testNetpol("temporal", *matchLabels("app", "temporal"))),
			want:    field.ErrorList{missing(deploymentPath, `the pods of Deployment "loom"`)}},
		{
			name: "the policy must select the template's labels, not the workload's",
			obj: func(t testing.TB) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) { d.Labels["app"] = "frontend" })
			},
			related: testRelated(testNetpol("frontend", *matchLabels("app", "frontend"))),
			want:    field.ErrorList{missing(deploymentPath, `the pods of Deployment "loom"`)},
		},
		{name: "a staging workload needs one too", obj: func(t testing.TB) runtime.Object {
			return catalogDeployment(t, func(d *appsv1.Deployment) { d.Labels["environment"] = "staging" })
		}, related: none, want: field.ErrorList{missing(deploymentPath, `the pods of Deployment "loom"`)}},
		{name: "pod", obj: func(t testing.TB) runtime.Object { return catalogPod(t) }, related: none,
			want: field.ErrorList{missing(field.NewPath("metadata", "labels"), `Pod "loom"`)}},
		{name: "pod selected", obj: func(t testing.TB) runtime.Object { return catalogPod(t) }, related: loomOnly},
		{name: "cronjob", obj: func(t testing.TB) runtime.Object { return catalogCronJob(t) }, related: none,
			want: field.ErrorList{missing(field.NewPath("spec", "jobTemplate", "spec", "template", "metadata", "labels"), `the pods of CronJob "loom-gc"`)}},
		{name: "job", obj: func(t testing.TB) runtime.Object {
			cj := catalogCronJob(t)
			return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "loom-gc-29000000", Namespace: "loom"}, Spec: cj.Spec.JobTemplate.Spec}
		}, related: none, want: field.ErrorList{missing(deploymentPath, `the pods of Job "loom-gc-29000000"`)}},
		{name: "daemonset selected", obj: func(t testing.TB) runtime.Object {
			d := catalogDeployment(t)
			return &appsv1.DaemonSet{ObjectMeta: d.ObjectMeta, Spec: appsv1.DaemonSetSpec{Template: d.Spec.Template}}
		}, related: loomOnly},
		{name: "a pod without labels", obj: func(t testing.TB) runtime.Object {
			return catalogPod(t, func(p *corev1.Pod) { p.Labels = nil })
		}, related: loomOnly, want: field.ErrorList{missing(field.NewPath("metadata", "labels"), `Pod "loom"`)}},
	})
}
