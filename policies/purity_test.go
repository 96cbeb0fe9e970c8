package policies

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestPurity proves the engine stays a pure library: its transitive imports are the
// standard library, the Kubernetes API types, apimachinery, the two sigs.k8s.io
// serialization modules, and exactly two packages of k8s.io/pod-security-admission (the
// checks kube-apiserver runs, and their level/version types), with their own dependencies —
// no controller-runtime, client-go, Prometheus, logging or network client.
func TestPurity(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/loomguard/loomguard/policies",
		"k8s.io/api/", "k8s.io/apimachinery/", "sigs.k8s.io/yaml", "sigs.k8s.io/json",
		// apimachinery's own dependencies, reached through it.
		"k8s.io/klog/", "k8s.io/utils/", "k8s.io/kube-openapi/pkg/util", "sigs.k8s.io/structured-merge-diff/",
		"sigs.k8s.io/randfill", "github.com/go-logr/logr", "github.com/fxamacker/cbor/", "github.com/x448/float16",
		"gopkg.in/inf.v0", "github.com/json-iterator/go", "github.com/modern-go/", "go.yaml.in/yaml/",
		"golang.org/x/net/", "golang.org/x/text/",
		// Exactly these two pod-security-admission packages (not its admission, webhook or
		// metrics packages), and the one package api reaches: component-base/version, a
		// build-info struct read by api.GetAPIVersion, which pod-security never calls.
		"k8s.io/pod-security-admission/policy", "k8s.io/pod-security-admission/api", "k8s.io/component-base/version",
	}
	exact := map[string]bool{
		"k8s.io/pod-security-admission/policy": true, "k8s.io/pod-security-admission/api": true, "k8s.io/component-base/version": true,
	}
	forbidden := []string{"sigs.k8s.io/controller-runtime", "k8s.io/client-go", "github.com/prometheus/", "go.uber.org/zap"}
	pkgs := strings.Fields(string(out))
	for want := range exact {
		if !slices.Contains(pkgs, want) {
			t.Errorf("policies no longer depends on %s: drop it from the allowed list", want)
		}
	}
	for _, pkg := range pkgs {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("policies depends on %s", pkg)
			}
		}
		ok := false
		for _, a := range allowed {
			if pkg == strings.TrimSuffix(a, "/") || (!exact[a] && strings.HasPrefix(pkg, a)) {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("policies depends on %s, which is not on the allowed list", pkg)
		}
	}
}
