package webhook

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loomguard/loomguard/mutation"
	"github.com/loomguard/loomguard/policies"
)

// fixableOps is the patch of testdata/fixable-deployment.yaml, in the order Mutate emits it.
const fixableOps = `[
  {"op":"add","path":"/metadata/annotations","value":{"loomguard.io/fixed":"drop-all-capabilities,read-only-root-filesystem"}},
  {"op":"add","path":"/spec/template/spec/containers/0/securityContext/capabilities","value":{"drop":["ALL"]}},
  {"op":"add","path":"/spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem","value":true}
]`

func jsonValue(t testing.TB, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return v
}

func TestMutate(t *testing.T) {
	base := fixture(t, "../policies/testdata/base/deployment.yaml")
	fixable := fixture(t, "testdata/fixable-deployment.yaml")
	generated := fixture(t, "testdata/generated-pod.yaml")
	mirror := fixture(t, "testdata/mirror-pod.yaml")
	controlled := fixture(t, "testdata/controlled-replicaset.yaml")
	scaled := edit(t, fixable, func(m map[string]any) { m["spec"].(map[string]any)["replicas"] = 5 })
	inKubeSystem := edit(t, fixable, func(m map[string]any) { m["metadata"].(map[string]any)["namespace"] = "kube-system" })
	// The bench's Pod as the API server sends it, and that Pod annotated by kubectl (one more
	// managedFields entry): an update that leaves its spec and labels as they were.
	sentPod := apiServerJSON(t, "testdata/apiserver-fix-pod.yaml")
	annotatedPod := edit(t, sentPod, func(m map[string]any) {
		meta := m["metadata"].(map[string]any)
		meta["annotations"] = map[string]any{"note": "x"}
		meta["managedFields"] = append(meta["managedFields"].([]any), map[string]any{
			"manager": "kubectl-annotate", "operation": "Update", "apiVersion": "v1", "time": "2026-11-30T17:05:00Z",
			"fieldsType": "FieldsV1", "fieldsV1": map[string]any{"f:metadata": map[string]any{"f:annotations": map[string]any{".": map[string]any{}, "f:note": map[string]any{}}}},
		})
	})

	const (
		noFix = `policies:
  read-only-root-filesystem:
    fix: false
`
		audit     = "defaultAction: audit\n"
		exception = `exceptions:
  - name: loom-writable-root
    policies: [read-only-root-filesystem]
    namespace: loom
    workload: loom
    owner: platform-team
    reason: dolt writes next to its binary until 0.10
    expires: "2027-01-31"
`
		dropOnly = `[
  {"op":"add","path":"/metadata/annotations","value":{"loomguard.io/fixed":"drop-all-capabilities"}},
  {"op":"add","path":"/spec/template/spec/containers/0/securityContext/capabilities","value":{"drop":["ALL"]}}
]`
	)
	tests := []struct {
		name    string
		config  string
		obj     []byte
		req     req
		patch   string   // the exact JSON patch; "" for none
		fixed   []string // policies named in the warning
		message string   // substring of the status message of an unpatched answer
	}{
		{name: "compliant", obj: base},
		{name: "fixable create", obj: fixable, patch: fixableOps,
			fixed: []string{"drop-all-capabilities", "read-only-root-filesystem"}},
		{name: "fixable dry run", obj: fixable, req: req{dryRun: true}, patch: fixableOps,
			fixed: []string{"drop-all-capabilities", "read-only-root-filesystem"}},
		{name: "update that changes the pod spec", obj: fixable, req: req{op: admissionv1.Update, old: base}, patch: fixableOps,
			fixed: []string{"drop-all-capabilities", "read-only-root-filesystem"}},
		{name: "update that only scales", obj: scaled, req: req{op: admissionv1.Update, old: fixable},
			message: "leaves the pod spec and labels unchanged"},
		{name: "update of a sent pod that only annotates it", obj: annotatedPod, req: req{op: admissionv1.Update, old: sentPod},
			message: "leaves the pod spec and labels unchanged"},
		{name: "generated pod without a namespace", obj: generated, req: req{namespace: "loom"},
			patch: `[
  {"op":"add","path":"/metadata/annotations","value":{"loomguard.io/fixed":"read-only-root-filesystem"}},
  {"op":"add","path":"/spec/containers/0/securityContext/readOnlyRootFilesystem","value":true}
]`, fixed: []string{"read-only-root-filesystem"}},
		{name: "generated pod in an exempt request namespace", obj: generated, req: req{namespace: "kube-system"}},
		{name: "controller-generated ReplicaSet", obj: controlled, message: "does not mutate the ReplicaSets a controller generates"},
		{name: "mirror pod", obj: mirror, message: "does not mutate mirror pods"},
		{name: "exempt namespace", obj: inKubeSystem},
		{name: "delete", obj: fixable, req: req{op: admissionv1.Delete}, message: "never blocks a delete"},
		{name: "status subresource", obj: fixable, req: req{op: admissionv1.Update, subResource: "status"}, message: "status subresource"},
		{name: "audit only watches", config: audit, obj: fixable},
		{name: "fix disabled", config: noFix, obj: fixable, patch: dropOnly, fixed: []string{"drop-all-capabilities"}},
		{name: "exception", config: exception, obj: fixable, patch: dropOnly, fixed: []string{"drop-all-capabilities"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.config)
			resp := post(t, h.mutate, admissionReview(t, tt.obj, tt.req))
			if !resp.Allowed || resp.Result == nil || resp.Result.Code != 200 {
				t.Fatalf("allowed %v, result %+v; the mutating webhook admits", resp.Allowed, resp.Result)
			}
			if !strings.Contains(resp.Result.Message, tt.message) {
				t.Errorf("message %q does not contain %q", resp.Result.Message, tt.message)
			}
			if tt.patch == "" {
				if resp.Patch != nil || resp.PatchType != nil || len(resp.Warnings) > 0 || len(resp.AuditAnnotations) > 0 {
					t.Errorf("patch %s (%v), warnings %q, audit %q; want none", resp.Patch, resp.PatchType, resp.Warnings, resp.AuditAnnotations)
				}
				return
			}
			if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
				t.Errorf("patch type %v, want JSONPatch", resp.PatchType)
			}
			if got, want := jsonValue(t, resp.Patch), jsonValue(t, []byte(tt.patch)); !reflect.DeepEqual(got, want) {
				t.Errorf("patch\n got %s\nwant %s", resp.Patch, tt.patch)
			}
			if want := []string{"loomguard fixed: " + strings.Join(tt.fixed, ", ")}; !slices.Equal(resp.Warnings, want) {
				t.Errorf("warnings %q, want %q", resp.Warnings, want)
			}
			if got := resp.AuditAnnotations[AuditFixed]; got != strings.Join(tt.fixed, ",") {
				t.Errorf("audit annotation %s = %q, want %q", AuditFixed, got, strings.Join(tt.fixed, ","))
			}
		})
	}
}

// TestMutateParity proves that the mutating webhook and `loomguard fix` change every
// fixture in exactly the same way: the response's patch applied to the request's object
// (as the API server does) equals the document the fix path yields (mutation.Apply's patch
// applied with evanphx/json-patch), and, where a golden policies/testdata/<id>/fixed/
// document exists, it is that document plus the fixed annotation.
func TestMutateParity(t *testing.T) {
	h := newHarness(t, "")
	e := h.engine.Load()
	files := yamlFiles(t, "../policies/testdata/*/*/*.yaml")
	files = append(files, yamlFiles(t, "../policies/testdata/base/*.yaml")...)
	files = append(files, yamlFiles(t, "testdata/*.yaml")...)
	patched, goldens := 0, 0
	for _, path := range files {
		if strings.Contains(path, "/fixed/") {
			continue
		}
		t.Run(short(path), func(t *testing.T) {
			obj := fixture(t, path)
			ns := ""
			if !strings.Contains(string(obj), `"namespace":`) {
				ns = "loom"
			}
			resp := post(t, h.mutate, admissionReview(t, obj, req{namespace: ns}))
			webhookDoc := obj
			if resp.Patch != nil {
				patched++
				p, err := jsonpatch.DecodePatch(resp.Patch)
				if err != nil {
					t.Fatal(err)
				}
				if webhookDoc, err = p.Apply(obj); err != nil {
					t.Fatalf("the response's patch does not apply to the request's object: %v", err)
				}
			}

			fixDoc := fixPath(t, e, obj, ns)
			base := filepath.Base(path)
			if base == "mirror-pod.yaml" || base == "controlled-replicaset.yaml" {
				// The webhook leaves these alone on purpose (see Mutate); fix does not know.
				if resp.Patch != nil {
					t.Errorf("the webhook patched %s", base)
				}
				return
			}
			if got, want := jsonValue(t, webhookDoc), jsonValue(t, fixDoc); !reflect.DeepEqual(got, want) {
				t.Errorf("webhook and fix disagree\nwebhook %s\n    fix %s", webhookDoc, fixDoc)
			}

			golden := strings.Replace(path, "/fail/", "/fixed/", 1)
			if golden == path || len(yamlFiles(t, golden)) == 0 {
				return
			}
			goldens++
			got, want := decodeFixture(t, webhookDoc), decodeFixture(t, fixture(t, golden))
			acc, err := meta.Accessor(got)
			if err != nil {
				t.Fatal(err)
			}
			if a := acc.GetAnnotations(); a != nil {
				delete(a, mutation.FixedAnnotation)
				if len(a) == 0 {
					acc.SetAnnotations(nil)
				}
			}
			if !equality.Semantic.DeepEqual(got, want) {
				t.Errorf("the webhook's result differs from the golden %s", short(golden))
			}
		})
	}
	if patched == 0 {
		t.Error("no fixture was patched: the parity test proves nothing")
	}
	if goldens == 0 && len(yamlFiles(t, "../policies/testdata/*/fixed/*.yaml")) > 0 {
		t.Error("no golden fixed/ document was compared")
	}
	t.Logf("%d fixtures, %d patched, %d compared with their golden fixed/ document", len(files), patched, goldens)
}

// fixPath is what `loomguard fix` does with one object: mutation.Apply, then the patch
// applied with evanphx/json-patch to the document it read.
func fixPath(t testing.TB, e *policies.Engine, obj []byte, namespace string) []byte {
	t.Helper()
	gvk, err := policies.PeekKind(obj)
	if err != nil {
		t.Fatal(err)
	}
	o, err := policies.NewDecoder().Decode(obj, gvk, true)
	if err != nil {
		t.Fatal(err)
	}
	w, ok := policies.NewWorkload(o)
	if !ok {
		return obj
	}
	m, err := mutation.Apply(e, w, obj, namespace)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Patch) == 0 {
		return obj
	}
	ops, err := json.Marshal(m.Patch)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(obj)
	if err != nil {
		t.Fatalf("the fix patch does not apply: %v", err)
	}
	return out
}

func decodeFixture(t testing.TB, obj []byte) runtime.Object {
	t.Helper()
	gvk, err := policies.PeekKind(obj)
	if err != nil {
		t.Fatal(err)
	}
	o, err := policies.NewDecoder().Decode(obj, gvk, true)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestMutatePatchKeepsRawSpelling proves that the patch carries only the fixes: what the
// typed round trip would respell (an integer cpu quantity, a status of zero counters, a
// field unknown to loomguard's API types) stays as the document has it.
func TestMutatePatchKeepsRawSpelling(t *testing.T) {
	h := newHarness(t, "")
	obj := edit(t, fixture(t, "testdata/fixable-deployment.yaml"), func(m map[string]any) {
		c := m["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
		c["resources"].(map[string]any)["limits"].(map[string]any)["cpu"] = 1
		c["resources"].(map[string]any)["requests"].(map[string]any)["cpu"] = "0.1"
		c["futureField"] = map[string]any{"enabled": true}
		m["status"] = map[string]any{}
	})
	resp := post(t, h.mutate, admissionReview(t, obj, req{}))
	if got, want := jsonValue(t, resp.Patch), jsonValue(t, []byte(fixableOps)); !reflect.DeepEqual(got, want) {
		t.Errorf("patch\n got %s\nwant %s", resp.Patch, fixableOps)
	}
}
