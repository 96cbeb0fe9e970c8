package policies

import (
	"maps"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestRequiredLabels(t *testing.T) {
	envValues := []string{"development", "staging", "production"}
	notSupported := func(path, value, subject string) *field.Error {
		e := field.NotSupported(field.NewPath(path), value, envValues)
		e.Detail = subject + ` label "environment" has the unsupported value "` + value + `"; supported values: "development", "staging", "production"`
		return e
	}
	meta := field.NewPath("metadata", "labels")
	tmpl := field.NewPath("spec", "template", "metadata", "labels")
	cronTmpl := field.NewPath("spec", "jobTemplate", "spec", "template", "metadata", "labels")
	dep := func(edit func(d *appsv1.Deployment)) func(t testing.TB) runtime.Object {
		return func(t testing.TB) runtime.Object { return catalogDeployment(t, edit) }
	}
	templateLabels := func(want map[string]string) func(t *testing.T, obj runtime.Object) {
		return func(t *testing.T, obj runtime.Object) {
			if got := catalogWorkload(t, obj).Template.Labels; !maps.Equal(got, want) {
				t.Errorf("template labels = %v, want %v", got, want)
			}
		}
	}
	base := map[string]string{"app": "loom", "version": "0.9.3", "environment": "production"}
	replicaSet := func(t testing.TB, edit func(*appsv1.ReplicaSet)) runtime.Object {
		d := catalogDeployment(t)
		rs := &appsv1.ReplicaSet{ObjectMeta: d.ObjectMeta, Spec: appsv1.ReplicaSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template}}
		rs.Name, rs.Labels = "loom-5d8f7c", nil // a generated ReplicaSet's own labels are not checked
		catalogControlledBy(&rs.ObjectMeta, "Deployment", "loom")
		edit(rs)
		return rs
	}

	catalogRun(t, requiredLabels(DefaultConfig().Policies.RequiredLabels), []catalogCase{
		{name: "base deployment", obj: dep(func(*appsv1.Deployment) {})},
		{
			name: "deployment without its own version label: not fixable, never invented",
			obj:  dep(func(d *appsv1.Deployment) { delete(d.Labels, "version") }),
			want: field.ErrorList{field.Required(meta.Key("version"), `the Deployment must have the label "version" with a non-empty value`)},
		},
		{
			name:  "template without version: copied from the deployment",
			obj:   dep(func(d *appsv1.Deployment) { delete(d.Spec.Template.Labels, "version") }),
			want:  field.ErrorList{field.Required(tmpl.Key("version"), `the pod template must have the label "version" with a non-empty value`)},
			fixed: templateLabels(base),
		},
		{
			name: "template without labels: all copied",
			obj:  dep(func(d *appsv1.Deployment) { d.Spec.Template.Labels = nil }),
			want: field.ErrorList{
				field.Required(tmpl.Key("app"), `the pod template must have the label "app" with a non-empty value`),
				field.Required(tmpl.Key("version"), `the pod template must have the label "version" with a non-empty value`),
				field.Required(tmpl.Key("environment"), `the pod template must have the label "environment" with a non-empty value`),
			},
			fixed: templateLabels(base),
		},
		{
			name: "empty template label: explicit, never overridden",
			obj:  dep(func(d *appsv1.Deployment) { d.Spec.Template.Labels["version"] = "" }),
			want: field.ErrorList{field.Required(tmpl.Key("version"), `the pod template must have the label "version" with a non-empty value`)},
		},
		{
			name: "empty workload label",
			obj:  dep(func(d *appsv1.Deployment) { d.Labels["app"] = "" }),
			want: field.ErrorList{field.Required(meta.Key("app"), `the Deployment must have the label "app" with a non-empty value`)},
		},
		{
			name: "workload environment not allowed",
			obj:  dep(func(d *appsv1.Deployment) { d.Labels["environment"] = "prod" }),
			want: field.ErrorList{notSupported("metadata.labels[environment]", "prod", "the Deployment")},
		},
		{
			name: "template environment not allowed: never replaced",
			obj:  dep(func(d *appsv1.Deployment) { d.Spec.Template.Labels["environment"] = "qa" }),
			want: field.ErrorList{notSupported("spec.template.metadata.labels[environment]", "qa", "the pod template")},
		},
		{
			name: "a disallowed workload value is not copied to the template",
			obj: dep(func(d *appsv1.Deployment) {
				d.Labels["environment"] = "prod"
				delete(d.Spec.Template.Labels, "environment")
			}),
			want: field.ErrorList{
				notSupported("metadata.labels[environment]", "prod", "the Deployment"),
				field.Required(tmpl.Key("environment"), `the pod template must have the label "environment" with a non-empty value`),
			},
		},
		{
			name: "an empty workload value is not copied to the template",
			obj: dep(func(d *appsv1.Deployment) {
				d.Labels["app"] = ""
				delete(d.Spec.Template.Labels, "app")
			}),
			want: field.ErrorList{
				field.Required(meta.Key("app"), `the Deployment must have the label "app" with a non-empty value`),
				field.Required(tmpl.Key("app"), `the pod template must have the label "app" with a non-empty value`),
			},
		},
		{
			name: "statefulset template fixed",
			obj: func(t testing.TB) runtime.Object {
				return catalogStatefulSet(t, func(s *appsv1.StatefulSet) { delete(s.Spec.Template.Labels, "app") })
			},
			want:  field.ErrorList{field.Required(tmpl.Key("app"), `the pod template must have the label "app" with a non-empty value`)},
			fixed: templateLabels(base),
		},
		{
			name: "pod: its labels are checked once",
			obj: func(t testing.TB) runtime.Object {
				return catalogPod(t, func(p *corev1.Pod) { delete(p.Labels, "app") })
			},
			want: field.ErrorList{field.Required(meta.Key("app"), `the Pod must have the label "app" with a non-empty value`)},
		},
		{
			name: "pod environment not allowed",
			obj: func(t testing.TB) runtime.Object {
				return catalogPod(t, func(p *corev1.Pod) { p.Labels["environment"] = "qa" })
			},
			want: field.ErrorList{notSupported("metadata.labels[environment]", "qa", "the Pod")},
		},
		{
			name: "generated pod: checked on its labels, which are its template's",
			obj: func(t testing.TB) runtime.Object {
				return catalogPod(t, func(p *corev1.Pod) {
					catalogControlledBy(&p.ObjectMeta, "ReplicaSet", "loom-5d8f7c")
					delete(p.Labels, "version")
				})
			},
			want: field.ErrorList{field.Required(meta.Key("version"), `the Pod must have the label "version" with a non-empty value`)},
		},
		{name: "base cronjob (no jobTemplate.metadata.labels needed)", obj: func(t testing.TB) runtime.Object { return catalogCronJob(t) }},
		{
			name: "cronjob: own labels and pod template labels",
			obj: func(t testing.TB) runtime.Object {
				return catalogCronJob(t, func(cj *batchv1.CronJob) {
					delete(cj.Labels, "version")
					delete(cj.Spec.JobTemplate.Spec.Template.Labels, "app")
				})
			},
			want: field.ErrorList{
				field.Required(meta.Key("version"), `the CronJob must have the label "version" with a non-empty value`),
				field.Required(cronTmpl.Key("app"), `the pod template must have the label "app" with a non-empty value`),
			},
			fixed: templateLabels(map[string]string{"app": "loom", "version": "0.9.3", "environment": "production"}),
			stillFails: field.ErrorList{
				field.Required(meta.Key("version"), `the CronJob must have the label "version" with a non-empty value`),
			},
		},
		{
			name: "cronjob labels on jobTemplate.metadata only do not count",
			obj: func(t testing.TB) runtime.Object {
				return catalogCronJob(t, func(cj *batchv1.CronJob) {
					cj.Spec.JobTemplate.Labels = cj.Labels
					cj.Labels = nil
				})
			},
			want: field.ErrorList{
				field.Required(meta.Key("app"), `the CronJob must have the label "app" with a non-empty value`),
				field.Required(meta.Key("version"), `the CronJob must have the label "version" with a non-empty value`),
				field.Required(meta.Key("environment"), `the CronJob must have the label "environment" with a non-empty value`),
			},
		},
		{
			name: "job generated by a cronjob: its own labels are not checked",
			obj: func(t testing.TB) runtime.Object {
				cj := catalogCronJob(t)
				job := &batchv1.Job{ObjectMeta: cj.ObjectMeta, Spec: cj.Spec.JobTemplate.Spec}
				job.Name, job.Labels = "loom-gc-29000000", map[string]string{"environment": "anything"}
				catalogControlledBy(&job.ObjectMeta, "CronJob", "loom-gc")
				return job
			},
		},
		{
			name: "generated replicaset: only its template is checked, and never fixed",
			obj: func(t testing.TB) runtime.Object {
				return replicaSet(t, func(rs *appsv1.ReplicaSet) { delete(rs.Spec.Template.Labels, "version") })
			},
			want: field.ErrorList{field.Required(tmpl.Key("version"), `the pod template must have the label "version" with a non-empty value`)},
		},
		{
			name: "generated replicaset with a complete template",
			obj:  func(t testing.TB) runtime.Object { return replicaSet(t, func(*appsv1.ReplicaSet) {}) },
		},
	})

	// The config: other labels, duplicates, and allowed values for a label that is not required.
	cfg := RequiredLabelsConfig{
		Labels:        []string{"team", "team", "environment"},
		AllowedValues: map[string][]string{"tier": {"frontend", "backend"}, "environment": {"prod"}},
	}
	tier := func(path, subject string) *field.Error {
		e := field.NotSupported(field.NewPath(path), "db", []string{"frontend", "backend"})
		e.Detail = subject + ` label "tier" has the unsupported value "db"; supported values: "frontend", "backend"`
		return e
	}
	catalogRun(t, requiredLabels(cfg), []catalogCase{
		{
			name: "custom labels",
			obj: dep(func(d *appsv1.Deployment) {
				d.Labels = map[string]string{"team": "core", "environment": "prod", "tier": "db"}
				d.Spec.Template.Labels = map[string]string{"environment": "production"}
			}),
			want: field.ErrorList{
				tier("metadata.labels[tier]", "the Deployment"),
				field.Required(tmpl.Key("team"), `the pod template must have the label "team" with a non-empty value`),
				func() *field.Error {
					e := field.NotSupported(tmpl.Key("environment"), "production", []string{"prod"})
					e.Detail = `the pod template label "environment" has the unsupported value "production"; supported values: "prod"`
					return e
				}(),
			},
			// team is copied; tier is not required, so it is not copied.
			fixed: templateLabels(map[string]string{"team": "core", "environment": "production"}),
			stillFails: field.ErrorList{
				tier("metadata.labels[tier]", "the Deployment"),
				func() *field.Error {
					e := field.NotSupported(tmpl.Key("environment"), "production", []string{"prod"})
					e.Detail = `the pod template label "environment" has the unsupported value "production"; supported values: "prod"`
					return e
				}(),
			},
		},
		{
			name: "a restricted label that is not required may be absent",
			obj: dep(func(d *appsv1.Deployment) {
				d.Labels = map[string]string{"team": "core", "environment": "prod"}
				d.Spec.Template.Labels = map[string]string{"team": "core", "environment": "prod"}
			}),
		},
	})
}
