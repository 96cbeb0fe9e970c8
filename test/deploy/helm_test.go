package deploy

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// helmOnlyLabels are the labels the chart adds to every object and kustomize does not.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance"}

// TestHelmMatchesKustomize renders the chart and the matching kustomize installation and
// compares them object by object, after normalizing what is allowed to differ:
//
//   - the labels only Helm adds (helmOnlyLabels);
//   - embedded config and dashboard files, compared parsed (the chart renders the config
//     from values with toYaml, without the comments of manifests/base/config.yaml);
//   - the Namespace, which kustomize creates and Helm does not (helm install
//     --create-namespace creates the release namespace before the chart).
func TestHelmMatchesKustomize(t *testing.T) {
	tests := []struct {
		name      string
		helm      []string
		kustomize func(t *testing.T) []byte
	}{
		{"default = overlays/self-managed", nil, func(t *testing.T) []byte { return kustomize(t, "manifests/overlays/self-managed") }},
		{"certs.mode=cert-manager = overlays/cert-manager", []string{"--set", "certs.mode=cert-manager"},
			func(t *testing.T) []byte { return kustomize(t, "manifests/overlays/cert-manager") }},
		{"certs.mode=files = base", []string{"--set", "certs.mode=files"},
			func(t *testing.T) []byte { return kustomize(t, "manifests/base") }},
		{"monitoring.enabled=true = overlays/self-managed + monitoring", []string{"--set", "monitoring.enabled=true"},
			func(t *testing.T) []byte {
				return kustomizeWith(t, []string{"manifests/overlays/self-managed", "manifests/monitoring"}, nil)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := normalize(t, decode(t, helmTemplate(t, tt.helm...)))
			want := normalize(t, decode(t, tt.kustomize(t)))
			delete(want, "/Namespace /"+namespace)
			for k, w := range want {
				g, ok := got[k]
				if !ok {
					t.Errorf("helm does not render %s", k)
					continue
				}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s differs (- kustomize, + helm):\n%s", k, lineDiff(toYAML(t, w), toYAML(t, g)))
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("helm renders %s, which kustomize does not", k)
				}
			}
		})
	}
}

// normalize keys the objects by group, kind, namespace and name and removes what may
// differ between Helm and kustomize.
func normalize(t *testing.T, objs []*unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, o := range objs {
		o = o.DeepCopy()
		if labels := o.GetLabels(); labels != nil {
			for _, l := range helmOnlyLabels {
				delete(labels, l)
			}
			o.SetLabels(labels)
		}
		if o.GetKind() == "ConfigMap" {
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			parsed := map[string]any{}
			for k, v := range data {
				var x any
				var err error
				switch {
				case strings.HasSuffix(k, ".json"):
					err = json.Unmarshal([]byte(v), &x)
				default:
					err = yaml.Unmarshal([]byte(v), &x)
				}
				if err != nil {
					t.Fatalf("%s: data %s: %v", key(o), k, err)
				}
				parsed[k] = x
			}
			o.Object["data"] = parsed
		}
		k := key(o)
		if _, dup := out[k]; dup {
			t.Fatalf("%s rendered twice", k)
		}
		out[k] = o.Object
	}
	return out
}

func toYAML(t *testing.T, v any) string {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// lineDiff lists the lines only in a ("-") and only in b ("+"), in order, from a longest
// common subsequence of lines.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			out.WriteString("+ " + y[j] + "\n")
			j++
		default:
			out.WriteString("- " + x[i] + "\n")
			i++
		}
	}
	return out.String()
}

// TestHelmLint runs `helm lint --strict` on the chart in each certificate mode, and checks
// that the chart refuses what would break loomguard: an unknown certificate mode, and
// exempt namespaces without its own.
func TestHelmLint(t *testing.T) {
	chart := filepath.Join(repoRoot(t), helmChart)
	for _, mode := range []string{"self-managed", "cert-manager", "files"} {
		t.Run("lint "+mode, func(t *testing.T) {
			run(t, nil, tool(t, "helm"), "lint", "--strict", chart, "--namespace", namespace, "--set", "certs.mode="+mode, "--set", "monitoring.enabled=true")
		})
	}
	for _, tt := range []struct {
		name string
		set  string
		want string
	}{
		{"unknown mode", "certs.mode=acme", `certs.mode "acme"`},
		{"own namespace not exempt", "config.exemptNamespaces={kube-system}", `must contain the release namespace "loomguard-system"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := runCode(t, nil, tool(t, "helm"), "template", "loomguard", chart, "--namespace", namespace, "--set", tt.set)
			if err == nil || !strings.Contains(string(stderr), tt.want) {
				t.Errorf("helm template --set %s: %v\n%s\nwant a failure saying %q", tt.set, err, stderr, tt.want)
			}
		})
	}
}
