package webhook

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"

	"github.com/loomguard/loomguard/policies"
)

// decodeObject decodes an admission request's object of the given kind. The API server
// sends JSON of exactly that kind, so the object is decoded straight into its type with
// the same case-sensitive JSON decoder the Kubernetes serializer uses, which saves the
// serializer's extra pass over the document to find its kind. Anything else goes through
// the engine's Decoder, which explains what is wrong with it.
func decodeObject(dec *policies.Decoder, raw []byte, gvk schema.GroupVersionKind) (runtime.Object, error) {
	if len(raw) == 0 {
		return nil, errors.New("the request carries no object")
	}
	k, ok := policies.LookupWorkloadKind(gvk.GroupKind())
	if !ok || k.GroupVersionKind != gvk {
		return dec.Decode(raw, gvk, false)
	}
	obj := k.New()
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, obj); err != nil {
		return nil, err
	}
	// The object's own apiVersion and kind, where it has them, must be the request's.
	kind := obj.GetObjectKind()
	got := kind.GroupVersionKind()
	if got.Kind == "" {
		got.Kind = gvk.Kind
	}
	if got.Group == "" && got.Version == "" {
		got.Group, got.Version = gvk.Group, gvk.Version
	}
	if got != gvk {
		return nil, fmt.Errorf("the object is a %s, the request says %s", got, gvk)
	}
	kind.SetGroupVersionKind(gvk)
	return obj, nil
}
