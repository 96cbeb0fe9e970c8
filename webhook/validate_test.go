package webhook

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// latestImage is how users see the image-tag violation of testdata/latest-image.yaml.
	latestImage = `[image-tag] spec.template.spec.containers[0].image: container "loom" image "ghcr.io/jordanhubbard/loom:latest" uses the forbidden tag "latest"; pin a version tag or a digest`

	warnImageTag  = "policies:\n  image-tag:\n    action: warn\n"
	auditImageTag = "policies:\n  image-tag:\n    action: audit\n"
	// exceptions are judged at testClock, 2026-11-01.
	activeException = `
exceptions:
  - name: loom-latest
    policies: [image-tag]
    namespace: loom
    workload: "lo*"
    owner: platform-team
    reason: the release pipeline pins digests from 0.10 on
    expires: "2027-01-31"
`
	expiredException = `
exceptions:
  - name: loom-latest
    policies: [image-tag]
    namespace: loom
    workload: loom
    owner: platform-team
    reason: the release pipeline pins digests from 0.10 on
    expires: "2026-10-31"
`
)

// denial renders what a denial's message must be for the engine's expectation.
func denial(object string, x expected, e expectedMessages) string {
	noun := "policies"
	if len(x.policies) == 1 {
		noun = "policy"
	}
	return fmt.Sprintf("%s violates %d loomguard %s: %s", object, len(x.policies), noun, strings.Join(e, "; "))
}

type expectedMessages []string

func enforcedMessages(x expected) expectedMessages {
	var out expectedMessages
	for _, c := range x.causes {
		policy, detail, _ := strings.Cut(strings.TrimPrefix(c.Message, "["), "] ")
		out = append(out, "["+policy+"] "+c.Field+": "+detail)
	}
	return out
}

func TestValidate(t *testing.T) {
	base := fixture(t, "../policies/testdata/base/deployment.yaml")
	insecure := fixture(t, "testdata/insecure-deployment.yaml")
	latest := fixture(t, "testdata/latest-image.yaml")
	generated := fixture(t, "testdata/generated-pod.yaml")
	mirror := fixture(t, "testdata/mirror-pod.yaml")
	unbound := edit(t, mirror, func(m map[string]any) { delete(m["spec"].(map[string]any), "nodeName") })
	scaled := edit(t, insecure, func(m map[string]any) {
		m["spec"].(map[string]any)["replicas"] = 3
		m["metadata"].(map[string]any)["annotations"] = map[string]any{"deployment.kubernetes.io/revision": "2"}
	})
	relabelled := edit(t, insecure, func(m map[string]any) {
		m["metadata"].(map[string]any)["labels"].(map[string]any)["tier"] = "web"
	})
	inKubeSystem := edit(t, insecure, func(m map[string]any) {
		m["metadata"].(map[string]any)["namespace"] = "kube-system"
	})
	configMap := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"loom"},"data":{"LOG_LEVEL":"info"}}`)
	widget := []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"loom"},"spec":{"containers":"not a pod"}}`)
	undecodable := edit(t, base, func(m map[string]any) { m["spec"] = "three replicas please" })
	oldAPI := edit(t, base, func(m map[string]any) { m["apiVersion"] = "apps/v1beta2" })

	type want struct {
		allowed bool
		code    int32
		// object is how the denial names the object; set for denials.
		object string
		// fromEngine: causes, warnings and audit annotations must be the engine's verdict on
		// the object (in the request's namespace).
		fromEngine bool
		warnings   []string
		audit      map[string]string // exact, when fromEngine is false
		// recorded: the engine's enforce and warn verdicts must be audit annotations only.
		recorded bool
		message  string // substring of the status message
	}
	tests := []struct {
		name   string
		config string
		obj    []byte
		req    req
		want   want
	}{
		{name: "compliant create", obj: base,
			want: want{allowed: true, code: 200}},
		{name: "violating create", obj: insecure,
			want: want{code: 403, object: "Deployment loom/web", fromEngine: true}},
		{name: "violating dry run", obj: insecure, req: req{dryRun: true},
			want: want{code: 403, object: "Deployment loom/web", fromEngine: true}},
		{name: "update that changes the pod spec", obj: latest, req: req{op: admissionv1.Update, old: base},
			want: want{code: 403, object: "Deployment loom/loom", fromEngine: true}},
		{name: "update that only scales and annotates", obj: scaled, req: req{op: admissionv1.Update, old: insecure},
			want: want{allowed: true, code: 200, recorded: true}},
		{name: "update that changes a label", obj: relabelled, req: req{op: admissionv1.Update, old: insecure},
			want: want{code: 403, object: "Deployment loom/web", fromEngine: true}},
		{name: "delete", obj: insecure, req: req{op: admissionv1.Delete},
			want: want{allowed: true, code: 200, message: "never blocks a delete"}},
		{name: "exempt namespace", obj: inKubeSystem,
			want: want{allowed: true, code: 200, message: "namespace kube-system is exempt"}},
		{name: "active exception", config: activeException, obj: latest,
			want: want{allowed: true, code: 200, audit: map[string]string{AuditWaived: "image-tag=loom-latest"}}},
		{name: "expired exception", config: expiredException, obj: latest,
			want: want{code: 403, object: "Deployment loom/loom", fromEngine: true}},
		{name: "warn", config: warnImageTag, obj: latest,
			want: want{allowed: true, code: 200, fromEngine: true, warnings: []string{latestImage}}},
		{name: "audit", config: auditImageTag, obj: latest,
			want: want{allowed: true, code: 200, fromEngine: true, audit: map[string]string{"image-tag": latestImage}}},
		// Only the kubelet of the pod's own node makes a mirror pod (NodeRestriction); the
		// annotation from anyone else is a Pod like any other.
		{name: "mirror pod from its node's kubelet", obj: mirror, req: req{user: kubelet("node-1")},
			want: want{allowed: true, code: 200, recorded: true}},
		{name: "mirror annotation from a user", obj: mirror,
			want: want{code: 403, object: "Pod loom/etcd-node-1", fromEngine: true}},
		{name: "mirror annotation from another node's kubelet", obj: mirror, req: req{user: kubelet("node-2")},
			want: want{code: 403, object: "Pod loom/etcd-node-1", fromEngine: true}},
		{name: "mirror annotation from a node name outside system:nodes", obj: mirror,
			req:  req{user: &authenticationv1.UserInfo{Username: "system:node:node-1", Groups: []string{"system:authenticated"}}},
			want: want{code: 403, object: "Pod loom/etcd-node-1", fromEngine: true}},
		{name: "mirror annotation on a pod bound to no node", obj: unbound, req: req{user: &authenticationv1.UserInfo{Username: "system:node:", Groups: []string{"system:nodes"}}},
			want: want{code: 403, object: "Pod loom/etcd-node-1", fromEngine: true}},
		{name: "scale subresource", obj: insecure, req: req{op: admissionv1.Update, subResource: "scale"},
			want: want{allowed: true, code: 200, message: "scale subresource"}},
		{name: "status subresource", obj: insecure, req: req{op: admissionv1.Update, subResource: "status"},
			want: want{allowed: true, code: 200, message: "status subresource"}},
		{name: "not a workload", obj: configMap,
			want: want{allowed: true, code: 200, message: "ConfigMap is not a workload kind"}},
		{name: "unknown kind", obj: widget,
			want: want{allowed: true, code: 200, message: "Widget is not a workload kind"}},
		{name: "generated pod takes the request's namespace", obj: generated, req: req{namespace: "loom"},
			want: want{code: 403, object: "Pod loom/web-6d4cf56db6-", fromEngine: true}},
		{name: "generated pod in an exempt request namespace", obj: generated, req: req{namespace: "kube-system"},
			want: want{allowed: true, code: 200, message: "namespace kube-system is exempt"}},
		{name: "undecodable workload", obj: undecodable,
			want: want{code: 400, message: "loomguard cannot decode Deployment loom/loom"}},
		{name: "unserved workload version", obj: oldAPI,
			want: want{code: 400, message: `unsupported apiVersion "apps/v1beta2" for Deployment`}},
		{name: "workload without an object", obj: base, req: req{noObject: true},
			want: want{code: 400, message: "carries no object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.config)
			resp := post(t, h.validate, admissionReview(t, tt.obj, tt.req))

			if resp.UID != "705ab4f5-6393-11e8-b7cc-42010a800002" {
				t.Errorf("uid %q, want the request's", resp.UID)
			}
			if resp.Allowed != tt.want.allowed {
				t.Errorf("allowed = %v, want %v (%+v)", resp.Allowed, tt.want.allowed, resp.Result)
			}
			if resp.Result == nil || resp.Result.Code != tt.want.code {
				t.Fatalf("result %+v, want code %d", resp.Result, tt.want.code)
			}
			if tt.want.message != "" && !strings.Contains(resp.Result.Message, tt.want.message) {
				t.Errorf("message %q does not contain %q", resp.Result.Message, tt.want.message)
			}
			if resp.Patch != nil || resp.PatchType != nil {
				t.Errorf("validating response carries a patch: %s", resp.Patch)
			}

			ns := tt.req.namespace
			switch {
			case tt.want.fromEngine:
				x := expect(t, h.engine.Load(), tt.obj, ns)
				if tt.want.code == 403 {
					checkDenial(t, resp, tt.want.object, x)
				} else if resp.Result.Details != nil {
					t.Errorf("allowed response has details %+v", resp.Result.Details)
				}
				if !slices.Equal(resp.Warnings, x.warnings) {
					t.Errorf("warnings\n got %q\nwant %q", resp.Warnings, x.warnings)
				}
				if !maps.Equal(resp.AuditAnnotations, x.audit) {
					t.Errorf("audit annotations\n got %q\nwant %q", resp.AuditAnnotations, x.audit)
				}
				if tt.want.warnings != nil && !slices.Equal(resp.Warnings, tt.want.warnings) {
					t.Errorf("warnings\n got %q\nwant %q", resp.Warnings, tt.want.warnings)
				}
				if tt.want.audit != nil && !maps.Equal(resp.AuditAnnotations, tt.want.audit) {
					t.Errorf("audit annotations\n got %q\nwant %q", resp.AuditAnnotations, tt.want.audit)
				}
			case tt.want.recorded:
				x := expect(t, h.engine.Load(), tt.obj, ns)
				if len(x.causes) == 0 {
					t.Fatal("the fixture violates no enforced policy: the test proves nothing")
				}
				if len(resp.Warnings) != 0 {
					t.Errorf("warnings %q, want none", resp.Warnings)
				}
				for _, c := range x.causes {
					policy := strings.TrimPrefix(strings.SplitN(c.Message, "]", 2)[0], "[")
					if !strings.Contains(resp.AuditAnnotations[policy], c.Field) {
						t.Errorf("audit annotation %q = %q does not record %s", policy, resp.AuditAnnotations[policy], c.Field)
					}
				}
				if resp.AuditAnnotations[AuditRecordOnly] == "" {
					t.Errorf("audit annotations %q lack %q", resp.AuditAnnotations, AuditRecordOnly)
				}
			default:
				if len(resp.Warnings) != 0 {
					t.Errorf("warnings %q, want none", resp.Warnings)
				}
				if !maps.Equal(resp.AuditAnnotations, tt.want.audit) {
					t.Errorf("audit annotations %q, want %q", resp.AuditAnnotations, tt.want.audit)
				}
			}
		})
	}
}

// kubelet is the identity a node's kubelet authenticates as (the Node authorizer's naming).
func kubelet(node string) *authenticationv1.UserInfo {
	return &authenticationv1.UserInfo{Username: "system:node:" + node, Groups: []string{"system:nodes", "system:authenticated"}}
}

// checkDenial asserts a 403 and that it carries exactly the engine's enforced violations.
func checkDenial(t *testing.T, resp *admissionv1.AdmissionResponse, object string, x expected) {
	t.Helper()
	if len(x.causes) == 0 {
		t.Fatal("the engine finds no enforced violation: the fixture proves nothing")
	}
	st := resp.Result
	if st.Status != metav1.StatusFailure || st.Reason != metav1.StatusReasonForbidden {
		t.Errorf("status %q reason %q, want Failure Forbidden", st.Status, st.Reason)
	}
	if want := denial(object, x, enforcedMessages(x)); st.Message != want {
		t.Errorf("message\n got %q\nwant %q", st.Message, want)
	}
	if st.Details == nil {
		t.Fatal("denial without details")
	}
	if !equality.Semantic.DeepEqual(st.Details.Causes, x.causes) {
		t.Errorf("causes\n got %+v\nwant %+v", st.Details.Causes, x.causes)
	}
	if _, name, _ := strings.Cut(object, "/"); st.Details.Name != name {
		t.Errorf("details name %q, want %q", st.Details.Name, name)
	}
}

// TestValidateExactDenial pins one denial down to the byte, independent of the engine.
func TestValidateExactDenial(t *testing.T) {
	h := newHarness(t, "")
	resp := post(t, h.validate, admissionReview(t, fixture(t, "testdata/latest-image.yaml"), req{}))
	detail := strings.TrimPrefix(latestImage, "[image-tag] spec.template.spec.containers[0].image: ")
	want := &metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusForbidden,
		Reason:  metav1.StatusReasonForbidden,
		Message: "Deployment loom/loom violates 1 loomguard policy: [image-tag] spec.template.spec.containers[0].image: " + detail,
		Details: &metav1.StatusDetails{
			Name:  "loom",
			Group: "apps",
			Kind:  "deployments",
			Causes: []metav1.StatusCause{{
				Type:    metav1.CauseTypeFieldValueInvalid,
				Message: "[image-tag] " + detail,
				Field:   "spec.template.spec.containers[0].image",
			}},
		},
	}
	if resp.Allowed || !equality.Semantic.DeepEqual(resp.Result, want) {
		t.Errorf("result\n got %+v\nwant %+v", resp.Result, want)
	}
}

// TestValidateFixtures runs every policy fixture through the validating webhook: a fail
// fixture is answered according to its policy's action and names only that policy, a pass
// fixture is admitted without a word. A cross-object policy's fail fixture is admitted
// without a word too: admission sees one object, never the PodDisruptionBudgets and
// NetworkPolicies the policy checks it against.
func TestValidateFixtures(t *testing.T) {
	h := newHarness(t, "")
	e := h.engine.Load()
	for _, p := range e.Policies() {
		action := e.Action(p.ID, "loom")
		for _, kind := range []string{"pass", "fail"} {
			pattern := "../policies/testdata/" + p.ID + "/" + kind + "/*.yaml"
			files := yamlFiles(t, pattern)
			if len(files) == 0 {
				// Every policy has both (policies' fixture test); an empty match is a broken
				// pattern or a lost directory, never a pass.
				t.Errorf("no %s fixture of %s matches %s", kind, p.ID, pattern)
			}
			for _, path := range files {
				t.Run(short(path), func(t *testing.T) {
					obj := fixture(t, path)
					resp := post(t, h.validate, admissionReview(t, obj, req{}))
					x := expect(t, e, obj, "")
					if kind == "pass" || p.CrossObject {
						if !resp.Allowed || len(resp.Warnings) > 0 || len(resp.AuditAnnotations) > 0 {
							t.Errorf("%s fixture: allowed %v, warnings %q, audit %q (%+v)", kind, resp.Allowed, resp.Warnings, resp.AuditAnnotations, resp.Result)
						}
						return
					}
					prefix := "[" + p.ID + "] "
					switch action {
					case "enforce":
						if resp.Allowed || resp.Result.Code != http.StatusForbidden {
							t.Fatalf("fail fixture of an enforced policy admitted: %+v", resp.Result)
						}
						for _, c := range resp.Result.Details.Causes {
							if !strings.HasPrefix(c.Message, prefix) {
								t.Errorf("cause %q is not from %s", c.Message, p.ID)
							}
						}
						if !equality.Semantic.DeepEqual(resp.Result.Details.Causes, x.causes) {
							t.Errorf("causes\n got %+v\nwant %+v", resp.Result.Details.Causes, x.causes)
						}
					case "warn":
						if !resp.Allowed || len(resp.Warnings) == 0 {
							t.Fatalf("fail fixture of a warned policy: allowed %v, warnings %q", resp.Allowed, resp.Warnings)
						}
						for _, w := range resp.Warnings {
							if !strings.HasPrefix(w, prefix) {
								t.Errorf("warning %q is not from %s", w, p.ID)
							}
						}
					case "audit":
						if !resp.Allowed || resp.AuditAnnotations[p.ID] == "" || len(resp.Warnings) > 0 {
							t.Fatalf("fail fixture of an audited policy: allowed %v, warnings %q, audit %q", resp.Allowed, resp.Warnings, resp.AuditAnnotations)
						}
					}
				})
			}
		}
	}
}

// TestValidateBadInput sends what a broken or hostile client might: every answer is a clear
// error, never a panic and never an admission.
func TestValidateBadInput(t *testing.T) {
	h := newHarness(t, "")
	base := fixture(t, "../policies/testdata/base/deployment.yaml")
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = ' '
	}
	copy(big, admissionReview(t, base, req{}))

	tests := []struct {
		name        string
		body        []byte
		contentType string
		code        int32
		message     string
	}{
		{"malformed JSON", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{`), "", 400, "decoding the admission review: unexpected end of JSON input"},
		{"not JSON", []byte("request: yes\n"), "", 400, "decoding the admission review: invalid character"},
		{"request of the wrong shape", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":1}}`), "", 400, "decoding the admission review"},
		{"empty body", nil, "", 400, "request body is empty"},
		{"empty object", []byte(`{}`), "", 400, "expected an admission.k8s.io/v1 AdmissionReview"},
		{"wrong AdmissionReview apiVersion", []byte(`{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"1"}}`), "", 400, `got apiVersion "admission.k8s.io/v2"`},
		{"v1beta1 AdmissionReview", []byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1","request":{"uid":"1"}}`), "", 400, `got apiVersion "admission.k8s.io/v1beta1"`},
		{"apiVersion after the request", []byte(`{"request":{"uid":"1"},"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v2"}`), "", 400, `got apiVersion "admission.k8s.io/v2"`},
		{"not an AdmissionReview", []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}`), "", 400, `kind "Pod"`},
		{"missing request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), "", 400, "has no request"},
		{"null request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`), "", 400, "has no request"},
		{"request without a uid", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}`), "", 400, "has no request (or a request without a uid)"},
		{"request without a kind", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE"}}`), "", 400, "names no kind"},
		{"wrong content type", admissionReview(t, base, req{}), "application/yaml", 400, "expected application/json"},
		{"object of another kind than the request's", bytes.Replace(admissionReview(t, base, req{}), []byte(`"kind":"Deployment","metadata"`), []byte(`"kind":"StatefulSet","metadata"`), 1), "", 400, "the object is a apps/v1, Kind=StatefulSet, the request says apps/v1, Kind=Deployment"},
		{"oversized body", big, "", 413, "request entity is too large"},
	}
	for _, tt := range tests {
		for name, hook := range map[string]http.Handler{"validate": h.validate, "mutate": h.mutate} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				ct := tt.contentType
				if ct == "" {
					ct = "application/json"
				}
				resp := postContent(t, hook, tt.body, ct)
				if resp.Allowed {
					t.Errorf("bad input admitted")
				}
				if resp.Result == nil || resp.Result.Code != tt.code {
					t.Fatalf("result %+v, want code %d", resp.Result, tt.code)
				}
				if !strings.Contains(resp.Result.Message, tt.message) {
					t.Errorf("message %q does not contain %q", resp.Result.Message, tt.message)
				}
			})
		}
	}
}

// TestPanic proves that a panicking handler answers with an error: the validating webhook
// denies, the mutating webhook (failurePolicy Ignore) admits the object unchanged.
func TestPanic(t *testing.T) {
	h := newHarness(t, "")
	broken := *h.handlers
	broken.engine = nil // Load panics
	body := admissionReview(t, fixture(t, "testdata/insecure-deployment.yaml"), req{})

	v := post(t, broken.ValidatingWebhook(), body)
	if v.Allowed || v.Result.Code != http.StatusInternalServerError || !strings.Contains(v.Result.Message, "internal error") {
		t.Errorf("validate after a panic: allowed %v, result %+v; want a 500 denial", v.Allowed, v.Result)
	}
	m := post(t, broken.MutatingWebhook(), body)
	if !m.Allowed || m.Patch != nil || len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], "could not apply its fixes") {
		t.Errorf("mutate after a panic: allowed %v, patch %s, warnings %q; want admitted unchanged with a warning", m.Allowed, m.Patch, m.Warnings)
	}
	for _, wh := range []string{"validate", "mutate"} {
		if got := testutil.ToFloat64(h.metrics.requests.WithLabelValues(wh, "CREATE", "Deployment", "error", "false", "internal")); got != 1 {
			t.Errorf("%s error requests = %v, want 1", wh, got)
		}
	}
}
