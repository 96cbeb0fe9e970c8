package policies

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestPodDisruptionBudget(t *testing.T) {
	p := catalogPolicy(t, "pod-disruption-budget")
	if p.DefaultAction != ActionAudit || p.Fix != nil || !p.CrossObject {
		t.Fatalf("pod-disruption-budget: default action %s, fix %v, cross-object %v; want audit, no fix, cross-object",
			p.DefaultAction, p.Fix != nil, p.CrossObject)
	}
	labelsPath := field.NewPath("spec", "template", "metadata", "labels")
	covering := testRelated(testPDB("loom", matchLabels("app", "loom")))
	none := NewRelated()
	dep := func(replicas *int32, env string) func(t testing.TB) runtime.Object {
		return func(t testing.TB) runtime.Object {
			return catalogDeployment(t, func(d *appsv1.Deployment) {
				d.Spec.Replicas = replicas
				d.Labels["environment"] = env
				d.Spec.Template.Labels["environment"] = env
			})
		}
	}
	missing := func(kind, name string, replicas string) *field.Error {
		return field.Required(labelsPath, `no PodDisruptionBudget in namespace "loom" selects the pods of `+kind+` "`+name+`" (`+replicas+` replicas, environment=production)`)
	}
	catalogRun(t, p, []catalogCase{
		{name: "unknown view (admission): nothing reported", obj: dep(new(int32(2)), "production")},
		{name: "covered", obj: dep(new(int32(2)), "production"), related: covering},
		{name: "no budget in the namespace", obj: dep(new(int32(2)), "production"), related: none,
			want: field.ErrorList{missing("Deployment", "loom", "2")}},
		{name: "a budget for other pods", obj: dep(new(int32(5)), "production"),
			related: testRelated(testPDB("temporal", matchLabels("app", "temporal"))),
			want:    field.ErrorList{missing("Deployment", "loom", "5")}},
		{name: "a null selector selects nothing", obj: dep(new(int32(2)), "production"),
			related: testRelated(testPDB("loom", nil)),
			want:    field.ErrorList{missing("Deployment", "loom", "2")}},
		{name: "one replica needs no budget", obj: dep(new(int32(1)), "production"), related: none},
		{name: "replicas unset means one", obj: dep(nil, "production"), related: none},
		{name: "staging needs no budget", obj: dep(new(int32(3)), "staging"), related: none},
		{
			name: "the budget must select the template's labels, not the workload's",
			obj: func(t testing.TB) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					d.Labels["tier"] = "api"
				})
			},
			related: testRelated(testPDB("tier", matchLabels("tier", "api"))),
			want:    field.ErrorList{missing("Deployment", "loom", "2")},
		},
		{
			name: "statefulset",
			obj: func(t testing.TB) runtime.Object {
				return catalogStatefulSet(t, func(s *appsv1.StatefulSet) { s.Name = "loom-db" })
			},
			related: none,
			want:    field.ErrorList{missing("StatefulSet", "loom-db", "2")},
		},
		{
			name: "generateName names an unnamed workload",
			obj: func(t testing.TB) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) { d.Name, d.GenerateName = "", "loom-" })
			},
			related: none,
			want:    field.ErrorList{missing("Deployment", "loom-", "2")},
		},
		{name: "pods are not checked", obj: func(t testing.TB) runtime.Object { return catalogPod(t) }, related: none},
		{name: "cronjobs are not checked", obj: func(t testing.TB) runtime.Object { return catalogCronJob(t) }, related: none},
		{
			name: "replicasets are not checked",
			obj: func(t testing.TB) runtime.Object {
				d := catalogDeployment(t)
				return &appsv1.ReplicaSet{ObjectMeta: d.ObjectMeta, Spec: appsv1.ReplicaSetSpec{Replicas: new(int32(3)), Template: d.Spec.Template}}
			},
			related: none,
		},
	})

	// The config: label, values and minReplicas.
	cfg := PodDisruptionBudgetConfig{Label: "tier", Values: []string{"critical"}, MinReplicas: 3}
	tier := func(replicas int32) func(t testing.TB) runtime.Object {
		return func(t testing.TB) runtime.Object {
			return catalogDeployment(t, func(d *appsv1.Deployment) {
				d.Spec.Replicas = new(replicas)
				d.Labels["tier"] = "critical"
			})
		}
	}
	catalogRun(t, podDisruptionBudget(cfg), []catalogCase{
		{name: "production is not selected", obj: dep(new(int32(4)), "production"), related: none},
		{name: "critical, 2 replicas", obj: tier(2), related: none},
		{name: "critical, 3 replicas", obj: tier(3), related: none,
			want: field.ErrorList{field.Required(labelsPath, `no PodDisruptionBudget in namespace "loom" selects the pods of Deployment "loom" (3 replicas, tier=critical)`)}},
		{name: "critical, covered by an empty selector", obj: tier(3), related: testRelated(testPDB("all", &metav1.LabelSelector{}))},
	})
}
