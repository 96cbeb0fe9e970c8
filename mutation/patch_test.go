package mutation

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"testing"

	jsonpatch5 "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
)

func load(t *testing.T, path string) ([]byte, *policies.Workload) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	gvk, err := policies.PeekKind(raw)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := policies.NewDecoder().Decode(raw, gvk, true)
	if err != nil {
		t.Fatal(err)
	}
	w, ok := policies.NewWorkload(obj)
	if !ok {
		t.Fatalf("%s is not a workload", path)
	}
	return raw, w
}

func engine(t *testing.T) *policies.Engine {
	t.Helper()
	e, err := policies.NewEngine(policies.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestApply proves that the patch applied to the document yields the fixed object with
// the fixed annotation, and that Original is the object as decoded, before the fixes.
func TestApply(t *testing.T) {
	raw, w := load(t, "../policies/testdata/read-only-root-filesystem/fail/unset.yaml")
	decoded := w.Object.DeepCopyObject()
	r, err := Apply(engine(t), w, raw, w.Meta.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(r.Fixed, "read-only-root-filesystem") || len(r.Patch) == 0 {
		t.Fatalf("fixed %v with %d operations", r.Fixed, len(r.Patch))
	}
	if !equality.Semantic.DeepEqual(r.Original, decoded) {
		t.Error("Original is not the object as decoded")
	}
	if equality.Semantic.DeepEqual(w.Object, decoded) {
		t.Error("the workload's object was not fixed")
	}
	ops, err := json.Marshal(r.Patch)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch5.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := p.Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	if w.Meta.Annotations[FixedAnnotation] != "read-only-root-filesystem" {
		t.Errorf("the fixed object's %s is %q", FixedAnnotation, w.Meta.Annotations[FixedAnnotation])
	}
	// The patch carries the fixes; the fixed object's encoding also spells out the typed
	// round trip's empty fields, which the patch leaves out.
	again, err := policies.NewDecoder().Decode(patched, w.Object.GetObjectKind().GroupVersionKind(), true)
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(again, w.Object) {
		t.Errorf("the patched document decodes to another object than the fixed one:\n%s", patched)
	}
}

// TestApplyNothingToFix proves a compliant object yields no patch and no Original.
func TestApplyNothingToFix(t *testing.T) {
	raw, w := load(t, "../policies/testdata/base/deployment.yaml")
	r, err := Apply(engine(t), w, raw, w.Meta.Namespace)
	if err != nil || !reflect.DeepEqual(r, Result{}) {
		t.Errorf("Apply = %+v, %v; want nothing", r, err)
	}
}

// TestRelevant proves what the filter leaves out: removes, empty adds, the round trip's
// noise, and nulls inside added values; and that it orders array indexes numerically.
func TestRelevant(t *testing.T) {
	ops := []jsonpatch.Operation{
		{Operation: "add", Path: "/spec/containers/10/x", Value: 1.0},
		{Operation: "add", Path: "/spec/containers/9/x", Value: map[string]any{"a": nil, "b": 1.0}},
		{Operation: "remove", Path: "/spec/future"},
		{Operation: "add", Path: "/status", Value: map[string]any{}},
		{Operation: "add", Path: "/metadata/creationTimestamp", Value: nil},
		{Operation: "replace", Path: "/spec/cpu", Value: "1"},
	}
	noise := []jsonpatch.Operation{{Operation: "replace", Path: "/spec/cpu", Value: "1"}}
	got := relevant(ops, noise)
	want := []jsonpatch.Operation{
		{Operation: "add", Path: "/spec/containers/9/x", Value: map[string]any{"b": 1.0}},
		{Operation: "add", Path: "/spec/containers/10/x", Value: 1.0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("relevant = %v, want %v", got, want)
	}
}
