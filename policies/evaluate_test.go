package policies

import (
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
)

// TestEvaluateDoesNotModify evaluates every fixture under the default config and under one
// whose exceptions waive some containers for every policy (the path that builds a view per
// policy), and proves that neither the object nor its workload view changed: Evaluate takes
// everything it needs as arguments and writes nothing.
func TestEvaluateDoesNotModify(t *testing.T) {
	plain := fixtureEngine(t)
	cfg := DefaultConfig()
	cfg.Exceptions = []Exception{{
		Name: "some-containers", Policies: PolicyIDs(), Namespace: "*", Workload: "*",
		Containers: []string{"app", "sidecar", "init", "debug"}, Owner: "team-a", Reason: "test", Expires: "2027-01-31",
	}}
	waiving, err := NewEngine(cfg, fixtureClock)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".yaml") {
			files = append(files, path)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures (%v)", err)
	}
	for _, f := range files {
		for name, e := range map[string]*Engine{"default": plain, "waiving": waiving} {
			w := loadWorkload(t, f)
			before := w.Object.DeepCopyObject()
			containers := slices.Clone(w.Containers())
			view := *w
			r := e.Evaluate(w, "loom")
			if !equality.Semantic.DeepEqual(before, w.Object) || !reflect.DeepEqual(before, w.Object) {
				t.Errorf("%s (%s): Evaluate modified the object", f, name)
			}
			if !slices.Equal(containers, w.Containers()) || !reflect.DeepEqual(view, *w) {
				t.Errorf("%s (%s): Evaluate modified the workload view", f, name)
			}
			if name == "waiving" && len(r.Waivers) == 0 {
				t.Errorf("%s: no waiver recorded, so the view path was not exercised", f)
			}
		}
	}
}

// TestEngineNamespaceArgument proves that the namespace argument, not the object's
// metadata.namespace, decides exemption, namespace overrides and exceptions.
func TestEngineNamespaceArgument(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Namespaces = []NamespaceOverride{{Names: []string{"sandbox"}, Action: ActionAudit}}
	cfg.Exceptions = []Exception{{Name: "demo-web", Policies: []string{"image-tag"}, Namespace: "demo", Workload: "web",
		Owner: "team-a", Reason: "vendor image", Expires: "2027-01-31"}}
	e, err := newEngine(cfg, engineStandIns(), engineClock)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		objectNS, namespace string
		want                []string
		fixed               []string
	}{
		// The object claims an exempt namespace; the namespace it is evaluated in is not.
		{"kube-system", "loom", []string{"image-tag=enforce@spec.containers[0].name", "health-probes=warn@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"}, []string{"image-tag"}},
		// The object claims an ordinary namespace; it is evaluated in an exempt one.
		{"loom", "kube-system", nil, nil},
		{"loom", "sandbox", []string{"image-tag=audit@spec.containers[0].name", "health-probes=audit@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"}, nil},
		{"loom", "demo", []string{"health-probes=warn@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"}, []string{"health-probes"}},
		{"demo", "loom", []string{"image-tag=enforce@spec.containers[0].name", "health-probes=warn@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"}, []string{"image-tag"}},
	}
	for _, tt := range tests {
		t.Run(tt.objectNS+" in "+tt.namespace, func(t *testing.T) {
			r := e.Evaluate(enginePod(tt.objectNS, "bad"), tt.namespace)
			if got := engineVerdicts(r); !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			if r.Namespace != tt.namespace || r.Exempt != (tt.namespace == "kube-system") {
				t.Errorf("report namespace %q exempt %v", r.Namespace, r.Exempt)
			}
			if fixed := e.Mutate(enginePod(tt.objectNS, "bad"), tt.namespace); !slices.Equal(fixed, tt.fixed) {
				t.Errorf("Mutate fixed %v, want %v", fixed, tt.fixed)
			}
		})
	}
}
