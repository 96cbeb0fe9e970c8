package policies

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// FuzzEngine holds the engine to its contract on any workload that decodes: Evaluate never
// changes the object; Mutate is idempotent: a second run fixes nothing and changes nothing,
// so the first left no violation that a fix could remove. Its seeds are every policy fixture
// (as JSON, as the API server sends objects) and testdata/fuzz/FuzzEngine.
//
// (Mutate may leave a violation it cannot fix where there was none: testdata/fuzz/FuzzEngine
// holds a Deployment whose volume "tmp" is not an emptyDir; read-only-root-filesystem's fix
// makes the root read-only and writable-paths' fix backs off from the taken name.)
//
//	go test ./policies -run '^$' -fuzz FuzzEngine -fuzztime 10m -parallel 1
func FuzzEngine(f *testing.F) {
	files, err := filepath.Glob("testdata/*/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	base, _ := filepath.Glob("testdata/base/*.yaml")
	for _, path := range append(files, base...) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(splitFixture(data)[0])
		if err != nil {
			f.Fatalf("%s: %v", path, err)
		}
		f.Add(js)
	}
	engine := fixtureEngine(f)
	dec := NewDecoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		gvk, err := PeekKind(data)
		if err != nil {
			return
		}
		decode := func() *Workload {
			obj, err := dec.Decode(data, gvk, false)
			if err != nil {
				return nil
			}
			w, _ := NewWorkload(obj)
			return w
		}
		w := decode()
		if w == nil {
			return
		}
		before := w.Object.DeepCopyObject()
		engine.Evaluate(w, w.Meta.Namespace)
		if !equality.Semantic.DeepEqual(before, w.Object) {
			t.Fatalf("Evaluate changed the object")
		}

		fixed := engine.Mutate(w, w.Meta.Namespace)
		once := w.Object.DeepCopyObject()
		if again := engine.Mutate(w, w.Meta.Namespace); len(again) > 0 {
			t.Fatalf("Mutate is not idempotent: the second run fixed %v (the first fixed %v)", again, fixed)
		}
		if !equality.Semantic.DeepEqual(once, w.Object) {
			t.Fatalf("Mutate is not idempotent: the second run changed the object and reported no fix")
		}
	})
}

// FuzzLoadConfig holds the config loader to its contract on any input: it never panics, and
// it either returns a valid config or errors that each carry a field path.
//
//	go test ./policies -run '^$' -fuzz FuzzLoadConfig -fuzztime 10m -parallel 1
func FuzzLoadConfig(f *testing.F) {
	for _, seed := range []string{
		"",
		"defaultAction: warn\n",
		"exemptNamespaces: [kube-system]\npolicies:\n  run-as-non-root:\n    action: enforce\n",
		"exceptions:\n- name: legacy\n  namespace: loom\n  policies: [image-tag]\n  expires: \"2027-01-01\"\n  reason: migration\n",
		"policies:\n  resource-limits:\n    defaultLimits: {cpu: \"1\", memory: 1Gi}\n",
		"{\"defaultAction\": \"enforce\", \"unknown\": 1}",
		"namespaces:\n  demo:\n    defaultAction: audit\n",
		"defaultAction: [",
		"defaultAction: 3\nexemptNamespaces: 1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, errs := LoadConfig(data)
		if len(errs) == 0 {
			if cfg == nil {
				t.Fatal("LoadConfig returned neither a config nor errors")
			}
			if _, err := NewEngine(cfg, fixtureClock); err != nil {
				t.Fatalf("a config LoadConfig accepted does not compile: %v", err)
			}
			return
		}
		if cfg != nil {
			t.Fatalf("LoadConfig returned a config and errors: %v", errs)
		}
		// Only a document that is not a mapping at all (a YAML syntax error, a list, a
		// scalar) is reported at the root; every other error names its field.
		js, yerr := yaml.YAMLToJSON(data)
		mapping := yerr == nil && bytes.HasPrefix(bytes.TrimSpace(js), []byte("{"))
		root := field.NewPath("").String()
		for _, err := range errs {
			if (err.Field == "" || err.Field == root) && mapping {
				t.Errorf("error about a mapping without a field path: %v", err)
			}
			if !slices.Contains([]field.ErrorType{
				field.ErrorTypeNotFound, field.ErrorTypeRequired, field.ErrorTypeDuplicate, field.ErrorTypeInvalid,
				field.ErrorTypeNotSupported, field.ErrorTypeForbidden, field.ErrorTypeTooLong, field.ErrorTypeTooMany,
				field.ErrorTypeInternal, field.ErrorTypeTypeInvalid,
			}, err.Type) {
				t.Errorf("error of unknown type %q: %v", err.Type, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, err.Field) {
				t.Errorf("error %q does not start with its field %q", msg, err.Field)
			}
		}
	})
}
