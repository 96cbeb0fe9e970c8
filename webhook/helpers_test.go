package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
)

// testClock is the fixtures' fixed instant, so exceptions never depend on the date tests run.
func testClock() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }

// harness is a pair of handlers on a config, with their own metrics registry.
type harness struct {
	engine   atomic.Pointer[policies.Engine]
	reg      *prometheus.Registry
	metrics  *Metrics
	handlers *Handlers
	validate http.Handler
	mutate   http.Handler
}

func newHarness(t testing.TB, config string) *harness {
	t.Helper()
	return newHarnessLog(t, config, quiet())
}

func newHarnessLog(t testing.TB, config string, log logr.Logger) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry()}
	e, err := CompileConfig("test", []byte(config), testClock)
	if err != nil {
		t.Fatal(err)
	}
	h.engine.Store(e)
	h.metrics, err = NewMetrics(h.reg, h.engine.Load)
	if err != nil {
		t.Fatal(err)
	}
	h.handlers = NewHandlers(&h.engine, h.metrics, log, HandlerOptions{})
	h.validate = h.handlers.ValidatingWebhook()
	h.mutate = h.handlers.MutatingWebhook()
	return h
}

// fixture reads a YAML fixture and returns it as JSON, as the API server sends objects.
func fixture(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A fixture's first document is its workload; the PodDisruptionBudgets and
	// NetworkPolicies after it are the cross-object policies' related view, which
	// admission never sees.
	first, _, _ := bytes.Cut(data, []byte("\n---\n"))
	js, err := yaml.YAMLToJSON(first)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return js
}

// apiServerJSON reads a Pod fixture and returns it encoded as kube-apiserver encodes the
// objects it sends to webhooks: encoding/json of the typed object, so members in the order of
// the Go fields (not sorted as YAMLToJSON leaves them) and every empty struct spelled out.
func apiServerJSON(t testing.TB, path string) []byte {
	t.Helper()
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(fixture(t, path), &pod); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	js, err := json.Marshal(&pod)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return js
}

// edit decodes a JSON object, lets fn change it and encodes it again.
func edit(t testing.TB, obj []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// req describes one admission request around an object.
type req struct {
	op          admissionv1.Operation
	namespace   string // the request's namespace; the object's when empty
	old         []byte
	dryRun      bool
	subResource string
	noObject    bool
	user        *authenticationv1.UserInfo // alice@example.com when nil
}

// resource is the plural resource name of a kind, as the API server puts it in a request.
func resource(kind string) string {
	return strings.ToLower(kind) + "s"
}

// admissionReview wraps an object into AdmissionReview v1 JSON as the API server sends it.
func admissionReview(t testing.TB, obj []byte, r req) []byte {
	t.Helper()
	gvk, err := policies.PeekKind(obj)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(obj, &meta); err != nil {
		t.Fatal(err)
	}
	if r.op == "" {
		r.op = admissionv1.Create
	}
	if r.namespace == "" {
		r.namespace = meta.Metadata.Namespace
	}
	gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: resource(gvk.Kind)}
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:             types.UID("705ab4f5-6393-11e8-b7cc-42010a800002"),
			Kind:            metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			Resource:        metav1.GroupVersionResource{Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource},
			RequestKind:     &metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			RequestResource: &metav1.GroupVersionResource{Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource},
			SubResource:     r.subResource,
			Name:            meta.Metadata.Name,
			Namespace:       r.namespace,
			Operation:       r.op,
			UserInfo:        authenticationv1.UserInfo{Username: "alice@example.com", Groups: []string{"system:authenticated"}},
			DryRun:          &r.dryRun,
		},
	}
	if r.user != nil {
		ar.Request.UserInfo = *r.user
	}
	switch {
	case r.op == admissionv1.Delete:
		ar.Request.OldObject = runtime.RawExtension{Raw: obj}
	case !r.noObject:
		ar.Request.Object = runtime.RawExtension{Raw: obj}
	}
	if r.old != nil {
		ar.Request.OldObject = runtime.RawExtension{Raw: r.old}
	}
	body, err := json.Marshal(ar)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// post sends a body to a webhook and decodes the AdmissionReview it answers.
func post(t testing.TB, h http.Handler, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	return postContent(t, h, body, "application/json")
}

func postContent(t testing.TB, h http.Handler, body []byte, contentType string) *admissionv1.AdmissionResponse {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("HTTP status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil {
		t.Fatalf("decoding response %q: %v", w.Body, err)
	}
	if ar.Response == nil {
		t.Fatalf("response without a response: %s", w.Body)
	}
	if ar.APIVersion != "admission.k8s.io/v1" || ar.Kind != "AdmissionReview" {
		t.Errorf("response is a %q %q, want an admission.k8s.io/v1 AdmissionReview", ar.APIVersion, ar.Kind)
	}
	return ar.Response
}

// expected computes what the engine says about an object, the way the validating webhook
// must render it: the denial's causes, the warnings and the audit annotations.
type expected struct {
	causes   []metav1.StatusCause
	warnings []string
	audit    map[string]string
	policies []string // enforced policy IDs, in order
}

// workloadOf decodes a YAML or JSON workload document.
func workloadOf(t testing.TB, obj []byte) *policies.Workload {
	t.Helper()
	gvk, err := policies.PeekKind(obj)
	if err != nil {
		t.Fatal(err)
	}
	o, err := policies.NewDecoder().Decode(obj, gvk, false)
	if err != nil {
		t.Fatal(err)
	}
	w, ok := policies.NewWorkload(o)
	if !ok {
		t.Fatalf("%s is not a workload kind", gvk)
	}
	return w
}

func expect(t testing.TB, e *policies.Engine, obj []byte, namespace string) expected {
	t.Helper()
	w := workloadOf(t, obj)
	if namespace == "" { // the request's namespace; the object's when the request has none
		namespace = w.Meta.Namespace
	}
	r := e.Evaluate(w, namespace)
	var x expected
	for _, v := range r.Violations {
		switch v.Action {
		case policies.ActionEnforce:
			x.causes = append(x.causes, metav1.StatusCause{Type: metav1.CauseType(v.Type), Message: "[" + v.Policy + "] " + v.Detail, Field: v.Field})
			if len(x.policies) == 0 || x.policies[len(x.policies)-1] != v.Policy {
				x.policies = append(x.policies, v.Policy)
			}
		case policies.ActionWarn:
			x.warnings = append(x.warnings, v.Message())
		case policies.ActionAudit:
			if x.audit == nil {
				x.audit = map[string]string{}
			}
			if prev := x.audit[v.Policy]; prev != "" {
				x.audit[v.Policy] = prev + "; " + v.Message()
			} else {
				x.audit[v.Policy] = v.Message()
			}
		}
	}
	return x
}

// yamlFiles lists a directory's YAML files, or nothing when it does not exist.
func yamlFiles(t testing.TB, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func short(path string) string {
	return strings.TrimPrefix(path, "../policies/testdata/")
}

// quiet is a logger that drops everything. Unlike logr.Discard it has a sink, so that
// controller-runtime's admission.Webhook uses it instead of its global logger.
func quiet() logr.Logger {
	return funcr.New(func(string, string) {}, funcr.Options{})
}
