package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"

	"github.com/loomguard/loomguard/policies"
)

// decodeReviewKubernetes and decodeObjectKubernetes are how the handlers decoded a review
// before the one-pass decoding: the Kubernetes decoder alone. They are the reference the
// handlers' decoding must agree with on every input.
func decodeReviewKubernetes(body []byte) (*admissionv1.AdmissionReview, *failed) {
	ar := &admissionv1.AdmissionReview{}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, ar); err != nil {
		return nil, &failed{code: http.StatusBadRequest, reason: reasonMalformed, uid: peekUID(body),
			msg: fmt.Sprintf("decoding the admission review: %v", err)}
	}
	return checkReview(ar)
}

func decodeObjectKubernetes(dec *policies.Decoder, raw []byte, gvk schema.GroupVersionKind) (runtime.Object, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("the request carries no object")
	}
	k, ok := policies.LookupWorkloadKind(gvk.GroupKind())
	if !ok || k.GroupVersionKind != gvk {
		return dec.Decode(raw, gvk, false)
	}
	obj := k.New()
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, obj); err != nil {
		return nil, err
	}
	if err := ownKind(obj, gvk); err != nil {
		return nil, err
	}
	return obj, nil
}

// sameDecoding decodes body as the handlers do and as the Kubernetes decoder alone does,
// the review and then its object and old object, and fails t where the two differ in
// anything: the error answered, any field of the request, the bytes of a RawExtension,
// the decoded objects or the errors decoding them.
func sameDecoding(t *testing.T, dec *policies.Decoder, body []byte) {
	t.Helper()
	got, gotBad := decodeReview(body)
	want, wantBad := decodeReviewKubernetes(body)
	if !reflect.DeepEqual(gotBad, wantBad) {
		t.Fatalf("answered %+v, the Kubernetes decoder %+v", gotBad, wantBad)
	}
	if wantBad != nil {
		return
	}
	g, w := *got.Request, *want.Request
	if got.TypeMeta != want.TypeMeta || !reflect.DeepEqual(got.Response, want.Response) {
		t.Fatalf("review %+v %v, want %+v %v", got.TypeMeta, got.Response, want.TypeMeta, want.Response)
	}
	exts := []struct {
		name      string
		got, want *runtime.RawExtension
	}{{"object", &g.Object, &w.Object}, {"oldObject", &g.OldObject, &w.OldObject}, {"options", &g.Options, &w.Options}}
	for _, e := range exts {
		if !bytes.Equal(e.got.Raw, e.want.Raw) || (e.got.Raw == nil) != (e.want.Raw == nil) {
			t.Fatalf("%s is %.200q, the Kubernetes decoder's %.200q", e.name, e.got.Raw, e.want.Raw)
		}
	}
	gvk := schema.GroupVersionKind{Group: w.Kind.Group, Version: w.Kind.Version, Kind: w.Kind.Kind}
	for _, e := range exts[:2] {
		gotObj, gotErr := decodeObject(dec, e.got, gvk)
		wantObj, wantErr := decodeObjectKubernetes(dec, e.want.Raw, gvk)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("decoding %s: %v, the Kubernetes decoder: %v", e.name, gotErr, wantErr)
		}
		if !reflect.DeepEqual(gotObj, wantObj) {
			t.Fatalf("%s decodes to\n%#v\nthe Kubernetes decoder's\n%#v", e.name, gotObj, wantObj)
		}
	}
	// Everything else in the request is the Kubernetes decoder's.
	g.Object, g.OldObject, g.Options = runtime.RawExtension{}, runtime.RawExtension{}, runtime.RawExtension{}
	w.Object, w.OldObject, w.Options = runtime.RawExtension{}, runtime.RawExtension{}, runtime.RawExtension{}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("request\n%+v\nthe Kubernetes decoder's\n%+v", g, w)
	}
}

// reviewOf builds an AdmissionReview v1 whose request has the given members, in order:
// `"uid":"u"`, `"object":{...}`.
func reviewOf(members ...string) []byte {
	return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{` + strings.Join(members, ",") + `}}`)
}

// oddReviews are reviews the API server does not send, each paired with whether the
// one-pass decoding reads it (rather than leaving it to the Kubernetes decoder) and
// whether it decodes the object on the way.
func oddReviews(t testing.TB) []struct {
	name         string
	body         []byte
	once, object bool
} {
	pod := fixture(t, "testdata/running-pod.yaml")
	deployment := fixture(t, "../policies/testdata/base/deployment.yaml")
	podKind := `"kind":{"group":"","version":"v1","kind":"Pod"}`
	create := `"operation":"CREATE"`
	uid := `"uid":"u"`
	obj := func(o []byte) string { return `"object":` + string(o) }
	replace := func(o []byte, old, new string) []byte {
		if !bytes.Contains(o, []byte(old)) {
			t.Fatalf("the fixture has no %s", old)
		}
		return bytes.Replace(o, []byte(old), []byte(new), 1)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, admissionReview(t, pod, req{op: admissionv1.Update, old: pod}), "", "  \t"); err != nil {
		t.Fatal(err)
	}
	return []struct {
		name         string
		body         []byte
		once, object bool
	}{
		{"as the API server sends it", reviewOf(uid, podKind, create, obj(pod)), true, true},
		{"indented, with tabs", indented.Bytes(), true, true},
		{"kind after the object", reviewOf(uid, create, obj(pod), podKind), true, false},
		{"operation after the object", reviewOf(uid, podKind, obj(pod), create), true, false},
		{"no operation", reviewOf(uid, podKind, obj(pod)), true, false},
		{"a DELETE", reviewOf(uid, podKind, `"operation":"DELETE"`, `"oldObject":`+string(pod)), true, false},
		{"a subresource", reviewOf(uid, podKind, create, `"subResource":"status"`, obj(pod)), true, false},
		{"the ephemeral containers", reviewOf(uid, podKind, `"operation":"UPDATE"`, `"subResource":"ephemeralcontainers"`, obj(pod), `"oldObject":`+string(pod)), true, true},
		{"another version of the kind", reviewOf(uid, `"kind":{"group":"apps","version":"v1beta2","kind":"Deployment"}`, create, obj(deployment)), true, false},
		{"not a workload", reviewOf(uid, `"kind":{"group":"","version":"v1","kind":"ConfigMap"}`, create, `"object":{"apiVersion":"v1","kind":"ConfigMap","data":{"a":"b"}}`), true, false},
		{"the object of another kind", reviewOf(uid, podKind, create, obj(deployment)), true, false},
		{"the object without apiVersion and kind", reviewOf(uid, podKind, create, `"object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`), true, true},
		{"a null object", reviewOf(uid, podKind, create, `"object":null`), true, false},
		{"a string for the object", reviewOf(uid, podKind, create, `"object":"pod"`), true, false},
		{"a number for the object", reviewOf(uid, podKind, create, `"object":-12.5e3`), true, false},
		{"an array for the object", reviewOf(uid, podKind, create, `"object":[1,2]`), true, false},
		{"an empty object", reviewOf(uid, podKind, create, `"object":{}`), true, true},
		{"whitespace around the colons", reviewOf(uid, podKind, create, "\"object\" \n\t:\r\n "+string(pod)+" \n"), true, true},
		{"names escaped", reviewOf(uid, podKind, create, `"\u006fbject":`+string(replace(pod, `"spec":`, `"sp\u0065c":`))), true, true},
		{"names in other cases", reviewOf(uid, podKind, create, obj(replace(pod, `"spec":`, `"Spec":`)), `"Object":{"x":1}`, `"KIND":{"kind":"Deployment"}`), true, true},
		{"unknown members of every kind", reviewOf(uid, podKind, create, `"x":{"y":[1,{"z":null}],"w":"\ud83d\ude00"}`, obj(replace(pod, `"spec":`, `"x":[[[{}]]],"spec":`))), true, true},
		{"nulls for members", reviewOf(uid, podKind, create, `"dryRun":null`, `"userInfo":null`, `"options":null`, obj(replace(replace(pod, `"spec":`, `"status":null,"spec":`), `"containers":`, `"hostAliases":null,"nodeSelector":null,"containers":`))), true, true},
		{"a null metadata", reviewOf(uid, podKind, create, obj(replace(pod, `"metadata":`, `"metadata":null,"m":`))), true, true},
		{"a quantity as a number", reviewOf(uid, podKind, create, obj(replace(pod, `"cpu":"`, `"cpu":2,"x":"`))), true, true},
		{"a null quantity", reviewOf(uid, podKind, create, obj(replace(pod, `"cpu":"`, `"cpu":null,"x":"`))), true, true},
		{"options and userInfo extra", reviewOf(uid, podKind, create, `"options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}`, `"userInfo":{"username":"u","extra":{"a":["b"]}}`, obj(pod)), true, true},
		// What the one-pass decoding leaves to the Kubernetes decoder.
		{"a duplicate uid", reviewOf(uid, `"uid":"v"`, podKind, create, obj(pod)), false, false},
		{"a duplicate kind", reviewOf(uid, podKind, create, obj(pod), `"kind":{"group":"apps","version":"v1","kind":"Deployment"}`), false, false},
		{"a duplicate object", reviewOf(uid, podKind, create, obj(pod), `"object":{"kind":"Pod"}`), false, false},
		{"a duplicate request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"},"request":{` + podKind + `}}`), false, false},
		{"a duplicate name in the object", reviewOf(uid, podKind, create, obj(replace(pod, `"spec":`, `"spec":{"hostNetwork":true},"spec":`))), false, false},
		{"a duplicate label", reviewOf(uid, podKind, create, obj(replace(pod, `"labels":{`, `"labels":{"a":"1","a":"2",`))), false, false},
		{"a string for a number", reviewOf(uid, `"kind":{"group":"apps","version":"v1","kind":"Deployment"}`, create, obj(replace(deployment, `"replicas":`, `"replicas":"3","x":`))), false, false},
		{"a fraction for an integer", reviewOf(uid, `"kind":{"group":"apps","version":"v1","kind":"Deployment"}`, create, obj(replace(deployment, `"replicas":`, `"replicas":1.0,"x":`))), false, false},
		{"an exponent for an integer", reviewOf(uid, `"kind":{"group":"apps","version":"v1","kind":"Deployment"}`, create, obj(replace(deployment, `"replicas":`, `"replicas":1e0,"x":`))), false, false},
		{"an integer too large", reviewOf(uid, `"kind":{"group":"apps","version":"v1","kind":"Deployment"}`, create, obj(replace(deployment, `"replicas":`, `"replicas":2147483648,"x":`))), false, false},
		{"an object for a list", reviewOf(uid, podKind, create, obj(replace(pod, `"containers":`, `"containers":{},"x":`))), false, false},
		{"a number for the uid", reviewOf(`"uid":5`, podKind, create, obj(pod)), false, false},
		{"a bool for dryRun as a string", reviewOf(uid, podKind, create, `"dryRun":"true"`, obj(pod)), false, false},
		{"invalid UTF-8 in a label", reviewOf(uid, podKind, create, obj(replace(pod, `"labels":{`, "\"labels\":{\"x\":\"\xff\xfe\","))), false, false},
		{"an unpaired surrogate", reviewOf(uid, podKind, create, obj(replace(pod, `"labels":{`, `"labels":{"x":"\ud800",`))), false, false},
		{"a response", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"},"response":{"uid":"u","allowed":true}}`), false, false},
		{"a null response", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"},"response":null}`), false, false},
		{"a null request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`), true, false},
		{"no request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), true, false},
		{"a string for the request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"u"}`), false, false},
		{"another apiVersion", []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`), true, false},
		{"trailing bytes", append(reviewOf(uid, podKind, create, obj(pod)), " x"...), false, false},
		{"truncated", reviewOf(uid, podKind, create, obj(pod))[:200], false, false},
		{"nested too deeply", reviewOf(uid, podKind, create, obj(replace(pod, `"spec":`, `"x":`+strings.Repeat("[", 10001)+strings.Repeat("]", 10001)+`,"spec":`))), false, false},
		{"a huge Pod", reviewOf(uid, podKind, create, obj(bigPod(20000))), true, true},
		{"not JSON", []byte("apiVersion: admission.k8s.io/v1\n"), false, false},
		{"null", []byte(`null`), true, false},
	}
}

// TestDecodeReviewOnce holds the one-pass decoding to the Kubernetes decoder's results on
// reviews of every fixture, as CREATE and as UPDATE, and on reviews the API server never
// sends (oddReviews), and checks which of them it reads itself.
func TestDecodeReviewOnce(t *testing.T) {
	dec := policies.NewDecoder()
	var fixtures []string
	for _, glob := range []string{"../policies/testdata/*/*.yaml", "../policies/testdata/*/*/*.yaml", "testdata/*.yaml"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		fixtures = append(fixtures, m...)
	}
	if len(fixtures) < 100 {
		t.Fatalf("only %d fixtures", len(fixtures))
	}
	for _, path := range fixtures {
		t.Run(path, func(t *testing.T) {
			obj := fixture(t, path)
			gvk, err := policies.PeekKind(obj)
			if err != nil {
				return // a fixture of a document without a kind: no review carries it
			}
			k, ok := policies.LookupWorkloadKind(gvk.GroupKind())
			evaluated := ok && k.GroupVersionKind == gvk
			for _, r := range []req{{}, {op: admissionv1.Update, old: obj}, {dryRun: true, namespace: "other"}} {
				body := admissionReview(t, obj, r)
				sameDecoding(t, dec, body)
				ar, ok := decodeReviewOnce(body)
				if !ok {
					t.Fatalf("the API server's review of %s is left to the Kubernetes decoder", path)
				}
				if typed := ar.Request.Object.Object != nil; typed != evaluated {
					t.Errorf("%s %s: object decoded in one pass: %v, want %v", r.op, gvk, typed, evaluated)
				}
			}
		})
	}
	for _, c := range oddReviews(t) {
		t.Run(c.name, func(t *testing.T) {
			sameDecoding(t, dec, c.body)
			ar, once := decodeReviewOnce(c.body)
			if once != c.once {
				t.Errorf("read in one pass: %v, want %v", once, c.once)
			}
			if object := once && ar.Request != nil && ar.Request.Object.Object != nil; object != c.object {
				t.Errorf("object decoded in one pass: %v, want %v", object, c.object)
			}
		})
	}
}

// TestDecodeReviewOnceRawIsBody: the request's RawExtensions are the body's own bytes, not
// copies of them.
func TestDecodeReviewOnceRawIsBody(t *testing.T) {
	pod := fixture(t, "testdata/running-pod.yaml")
	body := admissionReview(t, pod, req{op: admissionv1.Update, old: pod})
	ar, ok := decodeReviewOnce(body)
	if !ok {
		t.Fatal("not read in one pass")
	}
	start, end := uintptr(unsafe.Pointer(&body[0])), uintptr(unsafe.Pointer(&body[len(body)-1]))
	for _, raw := range [][]byte{ar.Request.Object.Raw, ar.Request.OldObject.Raw} {
		if p := uintptr(unsafe.Pointer(unsafe.SliceData(raw))); len(raw) == 0 || p < start || p > end {
			t.Errorf("%.80q is not a slice of the body", raw)
		}
	}
}

// FuzzDecodeReview holds the one-pass decoding to the Kubernetes decoder's results on any
// body (sameDecoding).
//
//	go test ./webhook -run '^$' -fuzz FuzzDecodeReview -fuzztime 10m -parallel 1
func FuzzDecodeReview(f *testing.F) {
	for _, c := range oddReviews(f) {
		if len(c.body) < 64<<10 { // the huge ones would slow the fuzzer to a crawl
			f.Add(c.body)
		}
	}
	f.Add(admissionReview(f, fixture(f, "../policies/testdata/base/deployment.yaml"), req{}))
	f.Add(admissionReview(f, fixture(f, "testdata/fixable-deployment.yaml"), req{op: admissionv1.Update, old: fixture(f, "testdata/fixable-deployment.yaml")}))
	dec := policies.NewDecoder()
	f.Fuzz(func(t *testing.T, body []byte) {
		sameDecoding(t, dec, body)
	})
}

// TestWorkloadTypesDecodeAlike: the workload types hold no field that encoding/json/v2
// decodes otherwise than the Kubernetes decoder when both accept it: an interface (the
// Kubernetes decoder keeps integers as int64, v2 makes them float64) or a time.Duration
// (a number of nanoseconds for the one, a duration string for the other). A type that
// gained one would need the one-pass decoding to leave it to the Kubernetes decoder.
func TestWorkloadTypesDecodeAlike(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		switch {
		case typ == reflect.TypeFor[time.Duration]():
			t.Errorf("%s is a time.Duration", path)
			return
		case typ.Implements(reflect.TypeFor[json.Unmarshaler]()) || reflect.PointerTo(typ).Implements(reflect.TypeFor[json.Unmarshaler]()):
			return // decoded by its own UnmarshalJSON in both
		}
		switch typ.Kind() {
		case reflect.Interface:
			t.Errorf("%s is an interface (%s)", path, typ)
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(path+"[]", typ.Elem())
		case reflect.Map:
			walk(path+"{key}", typ.Key())
			walk(path+"{}", typ.Elem())
		case reflect.Struct:
			for i := range typ.NumField() {
				if f := typ.Field(i); f.IsExported() && f.Tag.Get("json") != "-" {
					walk(path+"."+f.Name, f.Type)
				}
			}
		}
	}
	for _, k := range policies.WorkloadKinds() {
		walk(k.Kind, reflect.TypeOf(k.New()).Elem())
	}
	walk("AdmissionRequest", reflect.TypeFor[admissionv1.AdmissionRequest]())
	if len(seen) < 100 {
		t.Fatalf("only %d types walked", len(seen))
	}
}
