package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/loomguard/loomguard/policies"
)

// TestConfigMapIsDefaultConfig proves that the config every installation ships loads with
// policies.LoadConfig, strictly, to exactly policies.DefaultConfig(), and that the
// Deployment reads it where the ConfigMap is mounted, as a directory (a subPath mount would
// never see an update, and hot reload would silently stop working).
func TestConfigMapIsDefaultConfig(t *testing.T) {
	tests := []struct {
		name   string
		render func(t *testing.T) []byte
	}{
		{"kustomize overlays/self-managed", func(t *testing.T) []byte { return kustomize(t, "manifests/overlays/self-managed") }},
		{"kustomize overlays/cert-manager", func(t *testing.T) []byte { return kustomize(t, "manifests/overlays/cert-manager") }},
		{"helm default", func(t *testing.T) []byte { return helmTemplate(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := decode(t, tt.render(t))
			var cm corev1.ConfigMap
			into(t, find(t, objs, "ConfigMap", "loomguard-config"), &cm)
			var d appsv1.Deployment
			into(t, find(t, objs, "Deployment", "loomguard"), &d)

			configPath := flagValue(t, d.Spec.Template.Spec.Containers[0].Args, "--config")
			dir, file := filepath.Split(configPath)
			mount := volumeMount(t, &d, "config")
			if filepath.Clean(mount.MountPath) != filepath.Clean(dir) || mount.SubPath != "" || !mount.ReadOnly {
				t.Errorf("config volume mounted at %q (subPath %q, readOnly %v); want the directory of --config %s, no subPath, read-only", mount.MountPath, mount.SubPath, mount.ReadOnly, configPath)
			}
			if v := volume(t, &d, "config"); v.ConfigMap == nil || v.ConfigMap.Name != cm.Name || len(v.ConfigMap.Items) != 0 {
				t.Errorf("config volume %+v: want the whole ConfigMap %s", v.VolumeSource, cm.Name)
			}
			data, ok := cm.Data[file]
			if !ok {
				t.Fatalf("ConfigMap %s has no key %q (the file --config names)", cm.Name, file)
			}
			cfg, errs := policies.LoadConfig([]byte(data))
			if len(errs) > 0 {
				t.Fatalf("the shipped config does not load: %v", errs.ToAggregate())
			}
			if !reflect.DeepEqual(cfg, policies.DefaultConfig()) {
				t.Errorf("the shipped config differs from policies.DefaultConfig():\n got %+v\nwant %+v", cfg, policies.DefaultConfig())
			}
		})
	}
}

// TestConfigFileIsDefaultConfig is the same for manifests/base/config.yaml itself, without
// any tool.
func TestConfigFileIsDefaultConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "manifests/base/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, errs := policies.LoadConfig(data)
	if len(errs) > 0 {
		t.Fatalf("manifests/base/config.yaml does not load: %v", errs.ToAggregate())
	}
	if !reflect.DeepEqual(cfg, policies.DefaultConfig()) {
		t.Errorf("manifests/base/config.yaml differs from policies.DefaultConfig():\n got %+v\nwant %+v", cfg, policies.DefaultConfig())
	}
}

// flagValue returns the value of --name=value in args; it fails the test when absent.
func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	t.Fatalf("args %q have no %s=", args, name)
	return ""
}

func volumeMount(t *testing.T, d *appsv1.Deployment, name string) corev1.VolumeMount {
	t.Helper()
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("container has no volumeMount %q", name)
	return corev1.VolumeMount{}
}

func volume(t *testing.T, d *appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("pod has no volume %q", name)
	return corev1.Volume{}
}
