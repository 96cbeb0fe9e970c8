package webhook

import (
	"bytes"
	"testing"
)

// TestRequestNamespaceIsAuthoritative proves that the admission request's namespace, not
// the one the object claims, decides exemption, namespace overrides and exceptions, in
// both webhooks. The API server refuses an object whose namespace differs from the
// request's before admission, so only a client talking to the webhook directly can send
// one; such a client must not buy an exemption by writing kube-system into the object.
func TestRequestNamespaceIsAuthoritative(t *testing.T) {
	const config = `
namespaces:
  - names: [sandbox]
    action: audit
` + activeException // waives image-tag for lo* in namespace loom
	h := newHarness(t, config)
	inNamespace := func(path, ns string) []byte {
		return bytes.Replace(fixture(t, path), []byte("namespace: loom\n"), []byte("namespace: "+ns+"\n"), 1)
	}
	tests := []struct {
		name              string
		objectNS, request string
		allowed           bool
		warnings          int
		exempt            bool
		patched           bool
	}{
		{name: "object claims an exempt namespace", objectNS: "kube-system", request: "demo", allowed: false, patched: true},
		{name: "request is in an exempt namespace", objectNS: "demo", request: "kube-system", allowed: true, exempt: true},
		{name: "object claims an overridden namespace", objectNS: "sandbox", request: "demo", allowed: false, patched: true},
		{name: "request is in an overridden namespace", objectNS: "demo", request: "sandbox", allowed: true},
		{name: "object claims the excepted namespace", objectNS: "loom", request: "demo", allowed: false, patched: true},
		{name: "request is in the excepted namespace", objectNS: "demo", request: "loom", allowed: true, patched: true},
		{name: "object has no namespace", objectNS: "", request: "demo", allowed: false, patched: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			latest := admissionReview(t, inNamespace("testdata/latest-image.yaml", tt.objectNS), req{namespace: tt.request})
			resp := post(t, h.validate, latest)
			if resp.Allowed != tt.allowed {
				t.Errorf("validate: allowed %v, want %v (%v)", resp.Allowed, tt.allowed, resp.Result)
			}
			exempt := resp.Result != nil && resp.Result.Message == "namespace "+tt.request+" is exempt from loomguard"
			if exempt != tt.exempt {
				t.Errorf("validate: exempt %v, want %v (%v)", exempt, tt.exempt, resp.Result)
			}
			if !tt.allowed && !bytes.Contains([]byte(resp.Result.Message), []byte("Deployment "+tt.request+"/loom violates")) {
				t.Errorf("validate: the denial does not name the request's namespace: %s", resp.Result.Message)
			}

			fixable := admissionReview(t, inNamespace("testdata/fixable-deployment.yaml", tt.objectNS), req{namespace: tt.request})
			resp = post(t, h.mutate, fixable)
			if patched := len(resp.Patch) > 0; patched != tt.patched {
				t.Errorf("mutate: patched %v, want %v", patched, tt.patched)
			}
		})
	}
}
