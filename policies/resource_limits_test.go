package policies

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// resourcesList builds a ResourceList from cpu and memory quantities ("" leaves one out).
func resourcesList(cpu, memory string) corev1.ResourceList {
	l := corev1.ResourceList{}
	if cpu != "" {
		l[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		l[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	return l
}

// resourcesWant checks the resources of the first regular container after the fix; the
// quantities must render as given.
func resourcesWant(reqCPU, reqMem, limCPU, limMem string) func(t *testing.T, obj runtime.Object) {
	return func(t *testing.T, obj runtime.Object) {
		t.Helper()
		c := catalogWorkload(t, obj).Spec.Containers[0]
		got := [4]string{}
		for i, q := range []struct {
			l corev1.ResourceList
			n corev1.ResourceName
		}{{c.Resources.Requests, "cpu"}, {c.Resources.Requests, "memory"}, {c.Resources.Limits, "cpu"}, {c.Resources.Limits, "memory"}} {
			if v, ok := q.l[q.n]; ok {
				got[i] = v.String()
			}
		}
		if want := [4]string{reqCPU, reqMem, limCPU, limMem}; got != want {
			t.Errorf("requests cpu/memory, limits cpu/memory = %q, want %q", got, want)
		}
	}
}

func TestResourceLimits(t *testing.T) {
	c0 := field.NewPath("spec", "template", "spec", "containers").Index(0)
	req := func(c *field.Path, r string) *field.Path { return c.Child("resources", "requests").Key(r) }
	lim := func(c *field.Path, r string) *field.Path { return c.Child("resources", "limits").Key(r) }
	dep := func(edit func(c *corev1.Container)) func(t testing.TB) runtime.Object {
		return func(t testing.TB) runtime.Object {
			return catalogDeployment(t, func(d *appsv1.Deployment) { edit(&d.Spec.Template.Spec.Containers[0]) })
		}
	}
	set := func(reqCPU, reqMem, limCPU, limMem string) func(c *corev1.Container) {
		return func(c *corev1.Container) {
			c.Resources = corev1.ResourceRequirements{Requests: resourcesList(reqCPU, reqMem), Limits: resourcesList(limCPU, limMem)}
		}
	}

	catalogRun(t, resourceLimits(DefaultConfig().Policies.ResourceLimits), []catalogCase{
		{name: "base: the guide's 100m→500m cpu (5×) passes", obj: dep(func(*corev1.Container) {})},
		{
			name: "no resources: all four defaults filled",
			obj:  dep(func(c *corev1.Container) { c.Resources = corev1.ResourceRequirements{} }),
			want: field.ErrorList{
				field.Required(req(c0, "cpu"), `container "loom" must set a cpu request`),
				field.Required(lim(c0, "cpu"), `container "loom" must set a cpu limit`),
				field.Required(req(c0, "memory"), `container "loom" must set a memory request`),
				field.Required(lim(c0, "memory"), `container "loom" must set a memory limit`),
			},
			fixed: resourcesWant("100m", "256Mi", "500m", "512Mi"),
		},
		{
			name: "missing cpu request with a limit: the API server copies the limit, so it is set (the reported case)",
			obj:  dep(set("", "256Mi", "400m", "512Mi")),
		},
		{
			name: "only limits, no requests at all: both copied, nothing to fix",
			obj:  dep(set("", "", "500m", "512Mi")),
		},
		{
			name: "only limits on a Pod: judged as on a template",
			obj: func(t testing.TB) runtime.Object {
				return catalogPod(t, func(p *corev1.Pod) { p.Spec.Containers[0].Resources.Requests = nil })
			},
		},
		{
			name:  "neither memory request nor limit: both defaults filled",
			obj:   dep(set("100m", "", "500m", "")),
			want:  field.ErrorList{field.Required(req(c0, "memory"), `container "loom" must set a memory request`), field.Required(lim(c0, "memory"), `container "loom" must set a memory limit`)},
			fixed: resourcesWant("100m", "256Mi", "500m", "512Mi"),
		},
		{
			name:  "missing memory limit: default filled",
			obj:   dep(set("100m", "300Mi", "500m", "")),
			want:  field.ErrorList{field.Required(lim(c0, "memory"), `container "loom" must set a memory limit`)},
			fixed: resourcesWant("100m", "300Mi", "500m", "512Mi"),
		},
		{
			name:  "only a request above the default limit: limit = request",
			obj:   dep(set("100m", "1Gi", "500m", "")),
			want:  field.ErrorList{field.Required(lim(c0, "memory"), `container "loom" must set a memory limit`)},
			fixed: resourcesWant("100m", "1Gi", "500m", "1Gi"),
		},
		{
			name:  "only a request too far below the default limit: limit = request",
			obj:   dep(set("100m", "64Mi", "500m", "")),
			want:  field.ErrorList{field.Required(lim(c0, "memory"), `container "loom" must set a memory limit`)},
			fixed: resourcesWant("100m", "64Mi", "500m", "64Mi"),
		},
		{
			name: "request above limit: explicit, not fixed",
			obj:  dep(set("1", "256Mi", "500m", "512Mi")),
			want: field.ErrorList{field.Invalid(req(c0, "cpu"), "1", `container "loom" cpu request 1 exceeds its limit 500m`)},
		},
		{
			name: "cpu ratio above 5",
			obj:  dep(set("100m", "256Mi", "1", "512Mi")),
			want: field.ErrorList{field.Invalid(lim(c0, "cpu"), "1", `container "loom" cpu limit 1 is 10× its request 100m; at most 5× is allowed`)},
		},
		{
			name: "memory ratio above 5",
			obj:  dep(set("100m", "100Mi", "500m", "1Gi")),
			want: field.ErrorList{field.Invalid(lim(c0, "memory"), "1Gi", `container "loom" memory limit 1Gi is 10.24× its request 100Mi; at most 5× is allowed`)},
		},
		{
			name: "zero request and zero limit: not fixed",
			obj:  dep(set("0", "256Mi", "500m", "0")),
			want: field.ErrorList{
				field.Invalid(req(c0, "cpu"), "0", `container "loom" must request a positive amount of cpu`),
				field.Invalid(lim(c0, "memory"), "0", `container "loom" must set a positive memory limit`),
			},
		},
		{
			name: "zero limit without request: reported once, at the limit the request is copied from",
			obj:  dep(set("100m", "", "500m", "0")),
			want: field.ErrorList{
				field.Invalid(lim(c0, "memory"), "0", `container "loom" must set a positive memory limit`),
			},
		},
		{
			name: "init and sidecar containers are checked; the fix fills them",
			obj: func(t testing.TB) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					d.Spec.Template.Spec.InitContainers = []corev1.Container{
						{Name: "migrate", Image: "ghcr.io/jordanhubbard/loom:0.9.3", Resources: corev1.ResourceRequirements{
							Requests: resourcesList("100m", "256Mi"), Limits: resourcesList("500m", ""),
						}},
						{Name: "proxy", Image: "ghcr.io/jordanhubbard/proxy:1.0", RestartPolicy: new(corev1.ContainerRestartPolicyAlways), Resources: corev1.ResourceRequirements{
							Requests: resourcesList("", "256Mi"), Limits: resourcesList("500m", "512Mi"),
						}},
					}
				})
			},
			want: field.ErrorList{
				field.Required(lim(field.NewPath("spec", "template", "spec", "initContainers").Index(0), "memory"), `container "migrate" must set a memory limit`),
			},
			fixed: func(t *testing.T, obj runtime.Object) {
				init := obj.(*appsv1.Deployment).Spec.Template.Spec.InitContainers
				if q := init[0].Resources.Limits[corev1.ResourceMemory]; q.String() != "512Mi" {
					t.Errorf("migrate memory limit = %s", q.String())
				}
				if _, ok := init[1].Resources.Requests[corev1.ResourceCPU]; ok {
					t.Error("the fix added a cpu request to proxy, which the API server copies from its limit")
				}
			},
		},
		{
			name: "pod: spec.containers; ephemeral containers are neither checked nor fixed",
			obj: func(t testing.TB) runtime.Object {
				return catalogPod(t, func(p *corev1.Pod) {
					p.Spec.Containers[0].Resources.Limits = nil
					p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox:1.36"}}}
				})
			},
			want: field.ErrorList{
				field.Required(lim(field.NewPath("spec", "containers").Index(0), "cpu"), `container "loom" must set a cpu limit`),
				field.Required(lim(field.NewPath("spec", "containers").Index(0), "memory"), `container "loom" must set a memory limit`),
			},
			fixed: func(t *testing.T, obj runtime.Object) {
				p := obj.(*corev1.Pod)
				resourcesWant("100m", "256Mi", "500m", "512Mi")(t, p)
				if p.Spec.EphemeralContainers[0].Resources.Requests != nil || p.Spec.EphemeralContainers[0].Resources.Limits != nil {
					t.Error("the fix set resources on an ephemeral container")
				}
			},
		},
		{
			name: "cronjob path",
			obj: func(t testing.TB) runtime.Object {
				return catalogCronJob(t, func(cj *batchv1.CronJob) {
					c := &cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
					delete(c.Resources.Requests, corev1.ResourceMemory)
					delete(c.Resources.Limits, corev1.ResourceMemory)
				})
			},
			want: field.ErrorList{field.Required(req(field.NewPath("spec", "jobTemplate", "spec", "template", "spec", "containers").Index(0), "memory"),
				`container "loom" must set a memory request`), field.Required(lim(field.NewPath("spec", "jobTemplate", "spec", "template", "spec", "containers").Index(0), "memory"),
				`container "loom" must set a memory limit`)},
			fixed: resourcesWant("100m", "256Mi", "500m", "512Mi"),
		},
	})

	// The config: the ratio ceiling (fractional, and 0 for none) and other defaults.
	custom := ResourceLimitsConfig{
		MaxLimitRequestRatio: 2.5,
		Defaults: ResourceDefaults{
			Requests: ResourceAmounts{CPU: "250m", Memory: "128Mi"},
			Limits:   ResourceAmounts{CPU: "1", Memory: "256Mi"},
		},
	}
	catalogRun(t, resourceLimits(custom), []catalogCase{
		{
			name: "ratio 2.5",
			obj:  dep(set("300m", "128Mi", "1", "256Mi")),
			want: field.ErrorList{field.Invalid(lim(c0, "cpu"), "1", `container "loom" cpu limit 1 is 3.33× its request 300m; at most 2.5× is allowed`)},
		},
		{name: "ratio exactly 2.5", obj: dep(set("400m", "128Mi", "1", "256Mi"))},
		{
			name: "custom defaults; the default limit is 4× the explicit request, beyond 2.5",
			obj: dep(func(c *corev1.Container) {
				c.Resources = corev1.ResourceRequirements{Requests: resourcesList("250m", "")}
			}),
			want: field.ErrorList{
				field.Required(lim(c0, "cpu"), `container "loom" must set a cpu limit`),
				field.Required(req(c0, "memory"), `container "loom" must set a memory request`),
				field.Required(lim(c0, "memory"), `container "loom" must set a memory limit`),
			},
			fixed: resourcesWant("250m", "128Mi", "250m", "256Mi"),
		},
	})
	none := DefaultConfig().Policies.ResourceLimits
	none.MaxLimitRequestRatio = 0
	catalogRun(t, resourceLimits(none), []catalogCase{
		{name: "ratio 0: no ceiling", obj: dep(set("10m", "16Mi", "4", "8Gi"))},
		{
			name:  "ratio 0: a default limit far above the request is kept",
			obj:   dep(set("10m", "256Mi", "", "512Mi")),
			want:  field.ErrorList{field.Required(lim(c0, "cpu"), `container "loom" must set a cpu limit`)},
			fixed: resourcesWant("10m", "256Mi", "500m", "512Mi"),
		},
	})
}
