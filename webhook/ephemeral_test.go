package webhook

import (
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/loomguard/loomguard/policies"
)

// debugContainer returns the running Pod with one ephemeral container added, as
// `kubectl debug` sends it through pods/ephemeralcontainers.
func debugContainer(t *testing.T, running []byte, securityContext map[string]any) []byte {
	return edit(t, running, func(m map[string]any) {
		ec := map[string]any{
			"name": "debugger", "image": "busybox:1.36.1", "command": []any{"sh"},
			"stdin": true, "tty": true, "targetContainerName": "shop",
		}
		if securityContext != nil {
			ec["securityContext"] = securityContext
		}
		m["spec"].(map[string]any)["ephemeralContainers"] = []any{ec}
	})
}

// TestEphemeralContainers: an UPDATE of pods/ephemeralcontainers is judged on what it adds,
// with the violations `loomguard check` reports for the ephemeral container; the mutating
// webhook leaves it alone; other subresources stay skipped.
func TestEphemeralContainers(t *testing.T) {
	h := newHarness(t, "")
	running := fixture(t, "testdata/running-pod.yaml")
	e := h.engine.Load()
	evaluate := func(obj []byte) policies.Report {
		t.Helper()
		w := workloadOf(t, obj)
		return e.Evaluate(w, w.Meta.Namespace)
	}
	if r := evaluate(running); len(r.Violations) > 0 {
		t.Fatalf("the running pod is not compliant: %v", r.Violations)
	}
	sub := req{op: admissionv1.Update, old: running, subResource: "ephemeralcontainers"}

	// The reported case: privileged, UID 0, runAsNonRoot false.
	privileged := debugContainer(t, running, map[string]any{"runAsUser": 0, "runAsNonRoot": false, "privileged": true})
	resp := post(t, h.validate, admissionReview(t, privileged, sub))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != 403 {
		t.Fatalf("privileged debug container: allowed=%v result=%+v, want a 403", resp.Allowed, resp.Result)
	}
	var want, got []string
	for _, v := range evaluate(privileged).Violations {
		if v.Action == policies.ActionEnforce {
			want = append(want, "["+v.Policy+"] "+v.Detail+" @ "+v.Field)
		}
	}
	for _, c := range resp.Result.Details.Causes {
		got = append(got, c.Message+" @ "+c.Field)
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("causes:\n  %s\nwant what check reports:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, id := range []string{"run-as-non-root", "no-privilege-escalation", "drop-all-capabilities"} {
		if !strings.Contains(resp.Result.Message, "["+id+"] spec.ephemeralContainers[0]") {
			t.Errorf("the denial does not name %s at the ephemeral container: %s", id, resp.Result.Message)
		}
	}
	for _, id := range []string{"resource-limits", "health-probes", "read-only-root-filesystem", "writable-paths"} {
		if strings.Contains(resp.Result.Message, "["+id+"]") {
			t.Errorf("%s does not apply to ephemeral containers (no resources, probes or ports, no volumes of their own): %s", id, resp.Result.Message)
		}
	}

	// A compliant debug container is admitted.
	compliant := debugContainer(t, running, map[string]any{
		"runAsNonRoot": true, "runAsUser": 1000, "allowPrivilegeEscalation": false,
		"capabilities": map[string]any{"drop": []any{"ALL"}},
	})
	if resp := post(t, h.validate, admissionReview(t, compliant, sub)); !resp.Allowed {
		t.Errorf("compliant debug container denied: %+v", resp.Result)
	}

	// A debug container that inherits the pod's settings is judged with them: the running
	// Pod runs as non-root with a UID and RuntimeDefault, so only its own fields count.
	inherits := debugContainer(t, running, nil)
	resp = post(t, h.validate, admissionReview(t, inherits, sub))
	if resp.Allowed || !strings.Contains(resp.Result.Message, `[no-privilege-escalation] spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation`) ||
		strings.Contains(resp.Result.Message, "[run-as-non-root]") {
		t.Errorf("debug container without a securityContext: %+v", resp.Result)
	}

	// A running Pod with a violation of its own (admitted under warn, say) does not make
	// every debug container fail: only what the update adds is judged.
	latestRunning := edit(t, running, func(m map[string]any) {
		m["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"] = "ghcr.io/shop/app:latest"
	})
	latestDebug := edit(t, compliant, func(m map[string]any) {
		m["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"] = "ghcr.io/shop/app:latest"
	})
	if resp := post(t, h.validate, admissionReview(t, latestDebug, req{op: admissionv1.Update, old: latestRunning, subResource: "ephemeralcontainers"})); !resp.Allowed {
		t.Errorf("a compliant debug container on a pod with a violation of its own: denied %+v", resp.Result)
	}

	// The mutating webhook does not fix ephemeral containers.
	resp = post(t, h.mutate, admissionReview(t, privileged, sub))
	if !resp.Allowed || len(resp.Patch) > 0 || resp.Result == nil || !strings.Contains(resp.Result.Message, "does not fix ephemeral containers") {
		t.Errorf("mutate on pods/ephemeralcontainers: allowed=%v patch=%s result=%+v", resp.Allowed, resp.Patch, resp.Result)
	}

	// Other pod subresources are still skipped: they cannot change a container's image or
	// security context (docs/subresources.md).
	for _, s := range []string{"status", "resize", "binding", "eviction"} {
		resp := post(t, h.validate, admissionReview(t, privileged, req{op: admissionv1.Update, old: running, subResource: s}))
		if !resp.Allowed || !strings.Contains(resp.Result.Message, s+" subresource") {
			t.Errorf("pods/%s: allowed=%v result=%+v, want skipped", s, resp.Allowed, resp.Result)
		}
	}
}
