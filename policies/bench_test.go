package policies

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// BenchmarkEvaluate evaluates the base Loom Deployment against the whole default catalog
// (target: < 20 µs and < 50 allocations per evaluation; see BENCHMARKS.md).
func BenchmarkEvaluate(b *testing.B) {
	e := fixtureEngine(b)
	w := loadWorkload(b, "testdata/base/deployment.yaml")
	b.ReportAllocs()
	for b.Loop() {
		r := e.Evaluate(w, w.Meta.Namespace)
		if len(r.Violations) > 0 {
			b.Fatal(messages(r))
		}
	}
}

// BenchmarkMutate runs every fix on the base Loom Deployment (which needs none).
func BenchmarkMutate(b *testing.B) {
	e := fixtureEngine(b)
	w := loadWorkload(b, "testdata/base/deployment.yaml")
	b.ReportAllocs()
	for b.Loop() {
		if fixed := e.Mutate(w, w.Meta.Namespace); len(fixed) > 0 {
			b.Fatal(fixed)
		}
	}
}

// BenchmarkMutateFixAll fixes a Deployment stripped of its security contexts, resources
// and /tmp mount, starting from a fresh copy each time as the webhook does.
func BenchmarkMutateFixAll(b *testing.B) {
	e := fixtureEngine(b)
	w := loadWorkload(b, "testdata/base/deployment.yaml")
	w.Spec.SecurityContext = nil
	for i := range w.Spec.Containers {
		c := &w.Spec.Containers[i]
		c.SecurityContext = nil
		c.Resources = corev1.ResourceRequirements{}
		c.VolumeMounts = c.VolumeMounts[1:]
	}
	w.Spec.Volumes = w.Spec.Volumes[1:]
	b.ReportAllocs()
	for b.Loop() {
		cp, _ := NewWorkload(w.Object.DeepCopyObject())
		if fixed := e.Mutate(cp, cp.Meta.Namespace); len(fixed) == 0 {
			b.Fatal("nothing fixed")
		}
	}
}

// BenchmarkPodSecurity evaluates the base Loom Deployment with pod-security alone, at
// baseline and restricted (passing: PSA's evaluator only), and a template that fails
// restricted on four controls (the per-control attribution and field finders run too).
func BenchmarkPodSecurity(b *testing.B) {
	failing := loadWorkload(b, "testdata/base/deployment.yaml")
	failing.Spec.SecurityContext = nil
	failing.Spec.Containers[0].SecurityContext = nil
	for _, bc := range []struct {
		name, level string
		w           *Workload
		violations  int
	}{
		{"baseline-pass", "baseline", loadWorkload(b, "testdata/base/deployment.yaml"), 0},
		{"restricted-pass", "restricted", loadWorkload(b, "testdata/base/deployment.yaml"), 0},
		{"restricted-fail", "restricted", failing, 4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg, errs := LoadConfig([]byte("defaultAction: \"off\"\npolicies:\n  pod-security: {action: enforce, level: " + bc.level + "}\n"))
			if len(errs) > 0 {
				b.Fatal(errs.ToAggregate())
			}
			e, err := NewEngine(cfg, fixtureClock)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if r := e.Evaluate(bc.w, "loom"); len(r.Violations) != bc.violations {
					b.Fatalf("want %d violations, got:%s", bc.violations, messages(r))
				}
			}
		})
	}
}
