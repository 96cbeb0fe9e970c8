package policies

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/yaml"
)

// Decoder turns JSON or YAML into typed workload objects.
type Decoder struct {
	scheme *runtime.Scheme
	strict runtime.Decoder
	lax    runtime.Decoder
	// strictKnown is strict's JSON serializer without reading apiVersion and kind, for
	// DecodeKnownJSON.
	strictKnown runtime.Decoder
}

// NewDecoder returns a decoder for the API groups of AddToScheme: the workload kinds' and
// those of the objects a Related view is built from.
func NewDecoder() *Decoder {
	s := runtime.NewScheme()
	// AddToScheme only fails on conflicting registrations, which these groups do not have.
	_ = AddToScheme(s)
	return &Decoder{
		scheme: s,
		strict: serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer(),
		lax:    serializer.NewCodecFactory(s).UniversalDeserializer(),
		strictKnown: json.NewSerializerWithOptions(knownKind{}, s, s,
			json.SerializerOptions{Strict: true}),
	}
}

// knownKind is a json.MetaFactory for documents whose apiVersion and kind the caller has
// read already: it reports neither, so the serializer takes the kind it is given
// (apimachinery's gvkWithDefaults) instead of parsing the whole document once more.
type knownKind struct{}

func (knownKind) Interpret([]byte) (*schema.GroupVersionKind, error) {
	return &schema.GroupVersionKind{}, nil
}

// TypeMeta is the apiVersion and kind of a document, read before decoding it.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// PeekKind reads a document's apiVersion and kind.
func PeekKind(data []byte) (schema.GroupVersionKind, error) {
	var tm TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return schema.GroupVersionKind{}, err
	}
	if tm.Kind == "" {
		return schema.GroupVersionKind{}, errors.New("missing kind")
	}
	if tm.APIVersion == "" {
		return schema.GroupVersionKind{}, fmt.Errorf("%s: missing apiVersion", tm.Kind)
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("parsing apiVersion %q: %w", tm.APIVersion, err)
	}
	return gv.WithKind(tm.Kind), nil
}

// Decode decodes a workload document (or a PodDisruptionBudget or NetworkPolicy, for a
// Related view) of the given kind into its typed object. With strict
// set, unknown and duplicate fields are errors naming each field, as kubectl's strict field
// validation would report them.
func (d *Decoder) Decode(data []byte, gvk schema.GroupVersionKind, strict bool) (runtime.Object, error) {
	if !d.scheme.Recognizes(gvk) {
		if IsWorkloadGroupKind(gvk.GroupKind()) {
			return nil, fmt.Errorf("unsupported apiVersion %q for %s (want %s)", gvk.GroupVersion(), gvk.Kind, servedVersion(gvk.GroupKind()))
		}
		return nil, fmt.Errorf("%s is not a workload kind", gvk)
	}
	dec := d.lax
	if strict {
		dec = d.strict
	}
	return decodeWith(dec, data, gvk)
}

// DecodeKnownJSON is Decode(data, gvk, true) for a JSON object whose apiVersion and kind
// the caller has read and found to be gvk's: the same object and the same errors, without
// the serializer parsing the whole document again for them (the CLI reads every document's
// apiVersion, kind and name before decoding it).
func (d *Decoder) DecodeKnownJSON(data []byte, gvk schema.GroupVersionKind) (runtime.Object, error) {
	if !d.scheme.Recognizes(gvk) {
		return d.Decode(data, gvk, true) // the same error
	}
	return decodeWith(d.strictKnown, data, gvk)
}

func decodeWith(dec runtime.Decoder, data []byte, gvk schema.GroupVersionKind) (runtime.Object, error) {
	obj, _, err := dec.Decode(data, &gvk, nil)
	if err != nil {
		if runtime.IsStrictDecodingError(err) {
			return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "strict decoding error: "))
		}
		return nil, err
	}
	return obj, nil
}

func servedVersion(gk schema.GroupKind) string {
	if k := lookupWorkloadKind(gk); k != nil {
		return k.GroupVersion().String()
	}
	return ""
}
