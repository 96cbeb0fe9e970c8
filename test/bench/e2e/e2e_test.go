package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/common/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
)

func TestParseStatCPU(t *testing.T) {
	// proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime stime ...
	line := "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 0 0"
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Errorf("parseStatCPU = %s, want %s (325 ticks of 10 ms)", got, want)
	}
	for _, bad := range []string{"4242 kube S 1", "4242 (x) S 1 2 3"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q): no error", bad)
		}
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Errorf("cpuTime(self): %v", err)
	}
}

func TestPodCreateLatencies(t *testing.T) {
	const rs = "system:serviceaccount:kube-system:replicaset-controller"
	log := `{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"pods","namespace":"bench"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.012000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"pods","namespace":"bench"},"responseStatus":{"code":403},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.002000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"admin"},"objectRef":{"resource":"pods","namespace":"bench"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.005000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"pods","namespace":"other"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.005000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"pods","namespace":"bench","subresource":"binding"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.005000Z"}
{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"replicasets","namespace":"bench"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T12:00:00.000000Z","stageTimestamp":"2026-11-30T12:00:00.005000Z"}
`
	path := filepath.Join(t.TempDir(), "audit.log")
	skipped := `{"kind":"Event","stage":"ResponseComplete","verb":"create","user":{"username":"` + rs + `"},"objectRef":{"resource":"pods","namespace":"bench"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-30T11:00:00.000000Z","stageTimestamp":"2026-11-30T11:00:09.000000Z"}` + "\n"
	if err := os.WriteFile(path, []byte(skipped+log), 0o600); err != nil {
		t.Fatal(err)
	}
	lat, failed, err := podCreateLatencies(path, int64(len(skipped)), "bench", rs)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 1 || lat[0] != 12*time.Millisecond || failed != 1 {
		t.Errorf("podCreateLatencies = %v, %d failed; want [12ms], 1 failed (the line before the offset, other users, namespaces, subresources and resources not counted)", lat, failed)
	}
}

func TestDecodeVAP(t *testing.T) {
	p, b, err := decodeVAP()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.Validations) != 9 || b.Spec.PolicyName != p.Name {
		t.Errorf("policy with %d validations, binding of %q; want 9, %q", len(p.Spec.Validations), b.Spec.PolicyName, p.Name)
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDecodeMAP(t *testing.T) {
	p, b, err := decodeMAP("run-as-non-root")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.Mutations) != 1 || p.Spec.Mutations[0].JSONPatch == nil || b.Spec.PolicyName != p.Name {
		t.Fatalf("policy with %d mutations, binding of %q; want one JSONPatch, %q", len(p.Spec.Mutations), b.Spec.PolicyName, p.Name)
	}
	if want := `{"` + fixedAnnotation + `": "run-as-non-root"}`; !strings.Contains(p.Spec.Mutations[0].JSONPatch.Expression, want) {
		t.Errorf("the patch expression lacks %s", want)
	}
}

// TestFixedPod: the fix Pod with loomguard's patch applied carries every fix, and
// checkFixedPod accepts it with the service account token volume the API server adds, and
// names what is missing otherwise.
func TestFixedPod(t *testing.T) {
	fix := decodePod(t, fixPodYAML)
	raw, err := podJSON(fix)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := fixPatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	fixed, err := patchedPod(fix, patch)
	if err != nil {
		t.Fatal(err)
	}
	sc := fixed.Spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || len(fixed.Spec.Volumes) != 1 ||
		fixed.Spec.Containers[0].SecurityContext == nil || fixed.Annotations[fixedAnnotation] == "" {
		t.Fatalf("the fixed Pod lacks fixes: %+v", fixed)
	}
	b := &bench{fix: fix, fixedPod: fixed}

	created := fixed.DeepCopy()
	created.Spec.Volumes = append([]corev1.Volume{{Name: tokenVolumePrefix + "x7k2p"}}, created.Spec.Volumes...)
	c := &created.Spec.Containers[0]
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: tokenVolumePrefix + "x7k2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"})
	if err := b.checkFixedPod(created); err != nil {
		t.Errorf("with the token volume: %v", err)
	}
	for _, tt := range []struct {
		name, want string // want: in the error
		mutate     func(p *corev1.Pod)
	}{
		{"no annotation", "annotation " + fixedAnnotation, func(p *corev1.Pod) { delete(p.Annotations, fixedAnnotation) }},
		{"no runAsUser", "spec.securityContext", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = nil }},
		{"no volumes", "spec.volumes", func(p *corev1.Pod) { p.Spec.Volumes = nil }},
		{"no readOnlyRootFilesystem", "spec.containers[0]", func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil }},
		{"no volumeMounts", "spec.containers[0]", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts = nil }},
		{"two containers", "2 containers, want 1", func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, p.Spec.Containers[0]) }},
	} {
		p := fixed.DeepCopy()
		tt.mutate(p)
		if err := b.checkFixedPod(p); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: checkFixedPod = %v, want an error naming %s", tt.name, err, tt.want)
		}
	}
	if err := b.checkFixedPod(fix); err == nil {
		t.Error("checkFixedPod accepts the unfixed Pod")
	}
}

func TestReviewUID(t *testing.T) {
	for _, tt := range []struct {
		body string
		uid  string
		ok   bool
	}{
		{`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"705ab4f5-6393-11e8","kind":{}}}`, "705ab4f5-6393-11e8", true},
		{`{"request":{"kind":{},"uid":"x"}}`, "", false}, // not where kube-apiserver puts it: decoded instead
		{`{"request":{"uid":""}}`, "", false},
		{`{"request":{"uid":"` + strings.Repeat("a", 65) + `"}}`, "", false},
	} {
		uid, ok := reviewUID([]byte(tt.body))
		if string(uid) != tt.uid || ok != tt.ok {
			t.Errorf("reviewUID(%s) = %q, %t; want %q, %t", tt.body, uid, ok, tt.uid, tt.ok)
		}
	}
}

func decodePod(t *testing.T, doc string) *corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(doc), &pod); err != nil {
		t.Fatal(err)
	}
	return &pod
}

func TestWaitsForNothingFixing(t *testing.T) {
	for _, tt := range []struct {
		prev, next string
		want       bool
	}{
		{"", "none", false},
		{"none", "loomguard", false},
		{"loomguard", "loomguard-no-mc", false},
		{"", mapSetup, true},
		{"loomguard", staticPatchSetup, true},
		{mapSetup, staticPatchSetup, true},
		{staticPatchSetup, "none", true},
		{mapSetup, "loomguard", true},
		{staticPatchSetup, staticPatchSetup, false}, // kept from one round to the next
		{mapSetup, mapSetup, false},
	} {
		if got := waitsForNothingFixing(tt.prev, tt.next); got != tt.want {
			t.Errorf("waitsForNothingFixing(%q, %q) = %t, want %t", tt.prev, tt.next, got, tt.want)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// proc(5): cpu user nice system idle iowait irq softirq steal guest guest_nice
	stat := "cpu  100 20 30 5000 400 5 6 7 50 0\ncpu0 50 10 15 2500 200 2 3 3 25 0\nintr 1 2 3\n"
	got, err := parseProcStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1680 * time.Millisecond; got != want {
		t.Errorf("parseProcStat = %s, want %s (168 busy ticks: idle, iowait and guest not counted)", got, want)
	}
	for _, bad := range []string{"cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu 1 x 3 4 5 6 7 8\n", ""} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q): no error", bad)
		}
	}
	if _, err := machineBusy(); err != nil {
		t.Errorf("machineBusy: %v", err)
	}
}

func TestBusyCores(t *testing.T) {
	for _, tc := range []struct {
		before, after, wall time.Duration
		want                float64
	}{
		{0, 500 * time.Millisecond, time.Second, 0.5},
		{time.Second, 3 * time.Second, time.Second, 2},
		{time.Second, time.Second, time.Second, 0},
		{2 * time.Second, time.Second, time.Second, 0}, // a reading that went back
		{0, time.Second, 0, 0},
	} {
		if got := busyCores(tc.before, tc.after, tc.wall); got != tc.want {
			t.Errorf("busyCores(%s, %s, %s) = %g, want %g", tc.before, tc.after, tc.wall, got, tc.want)
		}
	}
}

// TestConditionsVAP evaluates the vap-conditions policy's validations as kube-apiserver
// compiles and runs a ValidatingAdmissionPolicy's: the compliant Pod passes both (loomguard's
// webhooks are called for neither); the fix Pod and the denied Pod fail both (both are
// called).
func TestConditionsVAP(t *testing.T) {
	p, b, err := conditionsVAP(policies.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != conditionsVAPName || b.Spec.PolicyName != conditionsVAPName || p.Name != conditionsVAPName {
		t.Errorf("policy %q, binding %q of policy %q; want all %q", p.Name, b.Name, b.Spec.PolicyName, conditionsVAPName)
	}
	exprs := make([]cel.ExpressionAccessor, len(p.Spec.Validations))
	for i, v := range p.Spec.Validations {
		exprs[i] = &validating.ValidationCondition{Expression: v.Expression}
	}
	if len(exprs) != 2 {
		t.Fatalf("%d validations, want 2 (one per webhook)", len(exprs))
	}
	compiler := cel.NewConditionCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	// As the API server compiles a policy when it is created.
	eval := compiler.CompileCondition(exprs, cel.OptionalVariableDeclarations{}, environment.NewExpressions)
	for _, tc := range []struct {
		name string
		yaml string
		want []bool // validating webhook's, mutating webhook's
	}{
		{"compliant", compliantPodYAML, []bool{true, true}},
		{"fix", fixPodYAML, []bool{false, false}},
		{"denied", deniedPodYAML, []bool{false, false}}, // and has no security context to fix
	} {
		var pod corev1.Pod
		if err := yaml.UnmarshalStrict([]byte(tc.yaml), &pod); err != nil {
			t.Fatal(err)
		}
		pod.Name = "p"
		gvk := corev1.SchemeGroupVersion.WithKind("Pod")
		gvr := corev1.SchemeGroupVersion.WithResource("pods")
		attr := admission.NewAttributesRecord(&pod, nil, gvk, namespace, pod.Name, gvr, "", admission.Create, nil, false, &user.DefaultInfo{Name: "bench"})
		va, err := admission.NewVersionedAttributes(attr, gvk, nil)
		if err != nil {
			t.Fatal(err)
		}
		results, _, err := eval.ForInput(context.Background(), va, cel.CreateAdmissionRequest(attr, metav1.GroupVersionResource(gvr), metav1.GroupVersionKind(gvk)), cel.OptionalVariableBindings{}, nil, celconfig.RuntimeCELCostBudget)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range results {
			if r.Error != nil {
				t.Fatalf("%s Pod, validation %d: %v", tc.name, i, r.Error)
			}
			if got := r.EvalResult == types.True; got != tc.want[i] {
				t.Errorf("%s Pod, validation %d (%s): %t, want %t", tc.name, i, p.Spec.Validations[i].Message, got, tc.want[i])
			}
		}
	}
}
