package policies

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

// TestCatalogPassingPathAllocationFree holds the catalog policies to the engine's budget:
// checking and fixing a passing workload allocates nothing.
func TestCatalogPassingPathAllocationFree(t *testing.T) {
	cfg := DefaultConfig()
	pc := &cfg.Policies
	policies := []Policy{
		requiredLabels(pc.RequiredLabels),
		resourceLimits(pc.ResourceLimits),
		imageTag(pc.ImageTag),
		secretEnv(pc.SecretEnv),
		healthProbes(pc.HealthProbes),
		highAvailability(pc.HighAvailability),
		imageTag(ImageTagConfig{AllowedRegistries: []string{"docker.io", "ghcr.io/jordanhubbard"}, ForbiddenTags: []string{"latest"}}),
	}
	for _, obj := range []runtime.Object{catalogDeployment(t), catalogPod(t), catalogCronJob(t)} {
		w := catalogWorkload(t, obj)
		for _, p := range policies {
			if errs := p.Check(w); len(errs) > 0 {
				t.Fatalf("%s on the base %s: %v", p.ID, w.Kind.Kind, errs)
			}
			if n := testing.AllocsPerRun(100, func() { p.Check(w) }); n != 0 {
				t.Errorf("%s: Check of a passing %s allocates %v times", p.ID, w.Kind.Kind, n)
			}
			if p.Fix != nil {
				if n := testing.AllocsPerRun(100, func() { p.Fix(w) }); n != 0 {
					t.Errorf("%s: Fix of a passing %s allocates %v times", p.ID, w.Kind.Kind, n)
				}
			}
		}
	}
}
