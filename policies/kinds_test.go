package policies

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestWorkloadKindsTable proves each entry of the table is self-consistent: its scheme
// knows the kind and its list, New and NewList build that kind and its typed list, the
// Decoder decodes a document of the kind into New's type, and NewWorkload recognises New's
// object as the kind.
func TestWorkloadKindsTable(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder()
	seen := map[string]bool{}
	for _, k := range WorkloadKinds() {
		t.Run(k.Kind, func(t *testing.T) {
			if seen[k.GroupKind().String()] {
				t.Fatal("listed twice")
			}
			seen[k.GroupKind().String()] = true
			if !IsWorkloadGroupKind(k.GroupKind()) {
				t.Error("IsWorkloadGroupKind is false")
			}
			obj := k.New()
			if gvks, _, err := s.ObjectKinds(obj); err != nil || len(gvks) != 1 || gvks[0] != k.GroupVersionKind {
				t.Errorf("New() is %T, of kinds %v (%v)", obj, gvks, err)
			}
			list := k.NewList()
			if gvks, _, err := s.ObjectKinds(list); err != nil || len(gvks) != 1 || gvks[0] != k.GroupVersion().WithKind(k.Kind+"List") {
				t.Errorf("NewList() is %T, of kinds %v (%v)", list, gvks, err)
			}
			if err := meta.SetList(list, []runtime.Object{k.New()}); err != nil {
				t.Errorf("NewList() does not hold New()'s objects: %v", err)
			}
			doc := []byte(`{"apiVersion":"` + k.GroupVersion().String() + `","kind":"` + k.Kind + `","metadata":{"name":"x"}}`)
			decoded, err := dec.Decode(doc, k.GroupVersionKind, true)
			if err != nil || reflect.TypeOf(decoded) != reflect.TypeOf(obj) {
				t.Errorf("Decode = %T, %v; want %T", decoded, err, obj)
			}
			w, ok := NewWorkload(obj)
			if !ok || w.Kind != k.GroupKind() {
				t.Fatalf("NewWorkload(New()) = %v, %v", w, ok)
			}
			if (k.TemplatePath == nil) != (w.Template == w.Meta) {
				t.Errorf("TemplatePath %v, but the template is the object's own metadata: %v", k.TemplatePath, w.Template == w.Meta)
			}
		})
	}
}
