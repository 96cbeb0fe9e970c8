package webhook

import (
	"bytes"
	"errors"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"

	"github.com/loomguard/loomguard/policies"
)

// Reviews are decoded in one pass where they can be, with the decoder of encoding/json/v2
// (github.com/go-json-experiment/json, its mirror until Go 1.27): the request's fields and
// its object, straight into the object's type, without copying the object's bytes and
// without reading them again. The Kubernetes decoder (sigs.k8s.io/json, which the API
// server's own serializer uses) validates a whole document before decoding it, skips the
// object's bytes while decoding the review, copies them into a RawExtension and then reads
// them twice more to decode the object: 52 % of loomguard's CPU under the API server's load
// (BENCHMARKS.md).
//
// The one-pass decoding only ever answers with what the Kubernetes decoder would have made
// of the same body: it decodes case-sensitively, and it refuses what the Kubernetes decoder
// would read differently or not at all (duplicate names, invalid UTF-8, a value of the
// wrong type, anything malformed; an AdmissionReview that carries a response). Whatever it
// refuses is decoded again by the Kubernetes decoder, which either reads it or explains
// what is wrong with it, in the words it always has. TestDecodeReviewOnce and
// FuzzDecodeReview hold the two to the same result on every input.

// decodeReviewOnce decodes an AdmissionReview in one pass, or reports false when the
// Kubernetes decoder must read it. The request's object is decoded into its type when the
// request is one the handlers evaluate and its kind, operation and subresource come before
// the object, as the API server sends them (RawExtension.Object, with its apiVersion and
// kind set); otherwise RawExtension.Raw alone carries it, as it carries oldObject and
// options, and decodeObject decodes it when needed. Every Raw is a slice of body.
func decodeReviewOnce(body []byte) (*admissionv1.AdmissionReview, bool) {
	env := reviewOnce{Request: requestOnce{body: body}}
	if err := jsonv2.Unmarshal(body, &env); err != nil || env.Response != nil {
		return nil, false
	}
	ar := &admissionv1.AdmissionReview{TypeMeta: env.TypeMeta}
	if f := env.Request.fields; f != nil {
		req := f.AdmissionRequest
		req.Object = runtime.RawExtension{Raw: f.Object.raw, Object: f.Object.obj}
		req.OldObject = runtime.RawExtension{Raw: f.OldObject.raw}
		req.Options = runtime.RawExtension{Raw: f.Options.raw}
		ar.Request = &req
	}
	return ar, true
}

// reviewOnce is an AdmissionReview v1 as decodeReviewOnce reads it.
type reviewOnce struct {
	metav1.TypeMeta `json:",inline"`
	Request         requestOnce `json:"request"`
	// Response is not read: a review that carries one is left to the Kubernetes decoder.
	Response jsontext.Value `json:"response"`
}

// requestOnce reads the request of a review: fields stays nil for a null request, as the
// Kubernetes decoder leaves AdmissionReview.Request.
type requestOnce struct {
	fields *requestFields
	body   []byte
}

// requestFields are an AdmissionRequest whose object, oldObject and options are read by
// objectOnce (the shallower fields win over the embedded request's, as in Go).
type requestFields struct {
	admissionv1.AdmissionRequest `json:",inline"`
	Object                       objectOnce `json:"object"`
	OldObject                    objectOnce `json:"oldObject"`
	Options                      objectOnce `json:"options"`
}

func (r *requestOnce) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == 'n' {
		_, err := dec.ReadToken()
		r.fields = nil
		return err
	}
	f := &requestFields{}
	f.Object = objectOnce{body: r.body, req: &f.AdmissionRequest}
	f.OldObject = objectOnce{body: r.body}
	f.Options = objectOnce{body: r.body}
	r.fields = f
	return jsonv2.UnmarshalDecode(dec, f)
}

// objectOnce reads an object of a request: raw is its JSON, a slice of body (nil for
// null, as RawExtension keeps it); obj is the object decoded, when req (the request read so
// far) names a workload kind the handlers evaluate.
type objectOnce struct {
	raw  []byte
	obj  runtime.Object
	body []byte
	req  *admissionv1.AdmissionRequest // nil: keep the JSON only
}

func (o *objectOnce) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	start := dec.InputOffset()
	kind := dec.PeekKind()
	if gvk, k, ok := o.evaluated(); ok && kind == '{' {
		obj := k.New()
		if err := jsonv2.UnmarshalDecode(dec, obj); err != nil {
			return err
		}
		if ownKind(obj, gvk) == nil {
			o.obj = obj
		}
	} else if err := dec.SkipValue(); err != nil {
		return err
	}
	// The value's bytes follow the member's name, a colon and whitespace.
	raw := bytes.TrimLeft(o.body[start:dec.InputOffset()], " \t\r\n:")
	if len(raw) == 0 || jsontext.Kind(raw[0]) != kind && !(kind == '0' && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')) {
		return errors.New("the value's bytes are not where the decoder read them")
	}
	if kind != 'n' {
		o.raw = raw
	}
	return nil
}

// evaluated returns the request's kind when the request read so far is one the handlers
// decode its object for: a CREATE or UPDATE of a workload kind, in the version loomguard
// reads, of the object itself or of pods/ephemeralcontainers (review.skipReason).
func (o *objectOnce) evaluated() (schema.GroupVersionKind, policies.WorkloadKind, bool) {
	r := o.req
	if r == nil || (r.Operation != admissionv1.Create && r.Operation != admissionv1.Update) ||
		(r.SubResource != "" && r.SubResource != "ephemeralcontainers") {
		return schema.GroupVersionKind{}, policies.WorkloadKind{}, false
	}
	gvk := schema.GroupVersionKind{Group: r.Kind.Group, Version: r.Kind.Version, Kind: r.Kind.Kind}
	k, ok := policies.LookupWorkloadKind(gvk.GroupKind())
	if !ok || k.GroupVersionKind != gvk {
		return schema.GroupVersionKind{}, policies.WorkloadKind{}, false
	}
	return gvk, k, true
}

// decodeObject decodes an admission request's object of the given kind. The API server
// sends JSON of exactly that kind, so the object is decoded straight into its type with
// a case-sensitive JSON decoder, which saves the serializer's extra pass over the document
// to find its kind; decodeReviewOnce has usually done so already (ext.Object). Anything
// else goes through the engine's Decoder, which explains what is wrong with it.
func decodeObject(dec *policies.Decoder, ext *runtime.RawExtension, gvk schema.GroupVersionKind) (runtime.Object, error) {
	raw := ext.Raw
	if len(raw) == 0 {
		return nil, errors.New("the request carries no object")
	}
	if ext.Object != nil && ext.Object.GetObjectKind().GroupVersionKind() == gvk {
		return ext.Object, nil
	}
	k, ok := policies.LookupWorkloadKind(gvk.GroupKind())
	if !ok || k.GroupVersionKind != gvk {
		return dec.Decode(raw, gvk, false)
	}
	obj := k.New()
	if err := jsonv2.Unmarshal(raw, obj); err != nil {
		// What encoding/json/v2 refuses, the Kubernetes decoder reads or explains.
		obj = k.New()
		if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, obj); err != nil {
			return nil, err
		}
	}
	if err := ownKind(obj, gvk); err != nil {
		return nil, err
	}
	return obj, nil
}

// ownKind checks that the object's own apiVersion and kind, where it has them, are the
// request's, and sets them to the request's.
func ownKind(obj runtime.Object, gvk schema.GroupVersionKind) error {
	kind := obj.GetObjectKind()
	got := kind.GroupVersionKind()
	if got.Kind == "" {
		got.Kind = gvk.Kind
	}
	if got.Group == "" && got.Version == "" {
		got.Group, got.Version = gvk.Group, gvk.Version
	}
	if got != gvk {
		return fmt.Errorf("the object is a %s, the request says %s", got, gvk)
	}
	kind.SetGroupVersionKind(gvk)
	return nil
}
