package policies

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestHighAvailability(t *testing.T) {
	p := catalogPolicy(t, "high-availability")
	if p.DefaultAction != ActionAudit || p.Fix != nil {
		t.Fatalf("high-availability: default action %s, fix %v; want audit and no fix", p.DefaultAction, p.Fix != nil)
	}
	replicasPath := field.NewPath("spec", "replicas")
	spreadPath := field.NewPath("spec", "template", "spec", "topologySpreadConstraints")
	spread := []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.ScheduleAnyway}}
	dep := func(replicas *int32, env string, constraints []corev1.TopologySpreadConstraint) func(t testing.TB) runtime.Object {
		return func(t testing.TB) runtime.Object {
			return catalogDeployment(t, func(d *appsv1.Deployment) {
				d.Spec.Replicas = replicas
				d.Labels["environment"] = env
				d.Spec.Template.Labels["environment"] = env
				d.Spec.Template.Spec.TopologySpreadConstraints = constraints
			})
		}
	}
	tooFew := func(kind, label string, n int32) *field.Error {
		return field.Invalid(replicasPath, n, "a "+kind+" labelled "+label+" must run at least 2 replicas (Loom runs more than one replica only with Postgres, not SQLite)")
	}
	noSpread := func(path *field.Path, kind, label, n string) *field.Error {
		return field.Required(path, "a "+kind+" labelled "+label+" with "+n+" replicas must spread its pods with at least one topologySpreadConstraint")
	}
	catalogRun(t, p, []catalogCase{
		{name: "base: 2 production replicas, no spread needed", obj: dep(new(int32(2)), "production", nil)},
		{name: "3 replicas spread", obj: dep(new(int32(3)), "production", spread)},
		{name: "staging: 1 replica is fine", obj: dep(new(int32(1)), "staging", nil)},
		{name: "production, 1 replica", obj: dep(new(int32(1)), "production", nil), want: field.ErrorList{tooFew("Deployment", "environment=production", 1)}},
		{name: "production, replicas unset means 1", obj: dep(nil, "production", nil), want: field.ErrorList{tooFew("Deployment", "environment=production", 1)}},
		{name: "production, scaled to 0", obj: dep(new(int32(0)), "production", nil), want: field.ErrorList{tooFew("Deployment", "environment=production", 0)}},
		{
			name: "production, 5 replicas without spread",
			obj:  dep(new(int32(5)), "production", nil),
			want: field.ErrorList{noSpread(spreadPath, "Deployment", "environment=production", "5")},
		},
		{
			name: "only the workload's own label selects it",
			obj: func(t testing.TB) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					d.Spec.Replicas = new(int32(1))
					d.Labels["environment"] = "staging"
				})
			},
		},
		{
			name: "statefulset",
			obj: func(t testing.TB) runtime.Object {
				return catalogStatefulSet(t, func(s *appsv1.StatefulSet) { s.Spec.Replicas = new(int32(1)) })
			},
			want: field.ErrorList{tooFew("StatefulSet", "environment=production", 1)},
		},
		{
			name: "pods, cronjobs and replicasets are not checked",
			obj:  func(t testing.TB) runtime.Object { return catalogPod(t) },
		},
		{name: "cronjob", obj: func(t testing.TB) runtime.Object { return catalogCronJob(t) }},
		{
			name: "replicaset",
			obj: func(t testing.TB) runtime.Object {
				d := catalogDeployment(t)
				return &appsv1.ReplicaSet{ObjectMeta: d.ObjectMeta, Spec: appsv1.ReplicaSetSpec{Replicas: new(int32(1)), Template: d.Spec.Template}}
			},
		},
	})

	// The config: label, values, minReplicas, spreadFromReplicas (0 turns spreading off).
	cfg := HighAvailabilityConfig{Label: "tier", Values: []string{"critical", "gold"}, MinReplicas: 3, SpreadFromReplicas: 0}
	tier := func(replicas int32, value string) func(t testing.TB) runtime.Object {
		return func(t testing.TB) runtime.Object {
			return catalogDeployment(t, func(d *appsv1.Deployment) {
				d.Spec.Replicas = new(replicas)
				d.Labels["tier"] = value
			})
		}
	}
	catalogRun(t, highAvailability(cfg), []catalogCase{
		{name: "production is not selected", obj: dep(new(int32(1)), "production", nil)},
		{name: "gold, 6 replicas, no spread required", obj: tier(6, "gold")},
		{
			name: "critical, 2 replicas",
			obj:  tier(2, "critical"),
			want: field.ErrorList{field.Invalid(replicasPath, int32(2),
				"a Deployment labelled tier=critical must run at least 3 replicas (Loom runs more than one replica only with Postgres, not SQLite)")},
		},
	})
	cfg = HighAvailabilityConfig{Label: "environment", Values: []string{"production"}, MinReplicas: 1, SpreadFromReplicas: 2}
	catalogRun(t, highAvailability(cfg), []catalogCase{
		{name: "1 replica allowed", obj: dep(new(int32(1)), "production", nil)},
		{
			name: "spread from 2",
			obj:  dep(new(int32(2)), "production", nil),
			want: field.ErrorList{noSpread(spreadPath, "Deployment", "environment=production", "2")},
		},
	})
}
