package deploy

import "testing"

// render is one way of installing loomguard, rendered.
type render struct {
	name string
	// render produces the manifests.
	render func(t *testing.T) []byte
	// workloads is how many workloads it holds (the Deployment, or none).
	workloads int
}

// renders are every supported installation: the kustomize overlays, the optional
// monitoring bundle and component, and the Helm chart in each certificate mode.
func renders() []render {
	return []render{
		{"kustomize base", func(t *testing.T) []byte { return kustomize(t, "manifests/base") }, 1},
		{"kustomize overlays/self-managed", func(t *testing.T) []byte { return kustomize(t, "manifests/overlays/self-managed") }, 1},
		{"kustomize overlays/cert-manager", func(t *testing.T) []byte { return kustomize(t, "manifests/overlays/cert-manager") }, 1},
		{"kustomize monitoring", func(t *testing.T) []byte { return kustomize(t, "manifests/monitoring") }, 0},
		{"kustomize self-managed + components/audit-events", func(t *testing.T) []byte {
			return kustomizeWith(t, []string{"manifests/overlays/self-managed"}, []string{"manifests/components/audit-events"})
		}, 1},
		{"helm default (self-managed)", func(t *testing.T) []byte { return helmTemplate(t) }, 1},
		{"helm certs.mode=cert-manager", func(t *testing.T) []byte { return helmTemplate(t, "--set", "certs.mode=cert-manager") }, 1},
		{"helm certs.mode=files", func(t *testing.T) []byte { return helmTemplate(t, "--set", "certs.mode=files") }, 1},
		{"helm monitoring.enabled=true", func(t *testing.T) []byte { return helmTemplate(t, "--set", "monitoring.enabled=true") }, 1},
	}
}
