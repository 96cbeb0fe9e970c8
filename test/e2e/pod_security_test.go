package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPodSecurity runs pod-security on the real control plane: a Deployment whose pod
// template violates the baseline level (a probe aimed at another host, forbidden from
// v1.34) is denied at the Deployment with the control and the field path; a namespace pinned
// to v1.33 admits it, its ReplicaSet and Pods too; an exception for a control applies until
// it expires; in audit mode the background audit's gauge carries the control.
func TestPodSecurity(t *testing.T) {
	s := newScenario(t, "e2e-pss")
	legacy := newScenario(t, "e2e-pss-legacy")
	watched := newScenario(t, "e2e-pss-audit")
	s.setConfig(fmt.Sprintf(`namespaces:
  - names: [%[1]s]
    podSecurity: {level: baseline, version: v1.33}
  - names: [%[5]s]
    policies: {pod-security: audit}
exceptions:
  - name: sysctl-live
    policies: [pod-security]
    controls: [sysctls]
    namespace: %[2]s
    workload: live-*
    owner: e2e@loomguard.io
    reason: a tuned kernel for the e2e test
    expires: %[3]s
  - name: sysctl-expired
    policies: [pod-security]
    controls: [sysctls]
    namespace: %[2]s
    workload: expired-*
    owner: e2e@loomguard.io
    reason: lapsed an hour ago
    expires: %[4]s
`, legacy.ns, s.ns, time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339), time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), watched.ns))

	probeHost := func(name string) *appsv1.Deployment {
		d := compliantDeployment(name, 1)
		d.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Host = "169.254.169.254"
		return d
	}
	const (
		field  = "spec.template.spec.containers[0].livenessProbe.httpGet.host"
		denial = `[pod-security] ` + field + `: PodSecurity "baseline:latest" control hostProbesAndHostLifecycle: probe or lifecycle host (container "app" uses probe or lifecycle host "169.254.169.254")`
	)

	// Denied at the Deployment, by kubectl and by client-go, with the field as the cause.
	r := s.apply(probeHost("web"))
	mustFail(t, r)
	mustContain(t, "kubectl apply stderr", r.Stderr, `admission webhook "validate.loomguard.io" denied the request`, denial)
	_, err := s.cs.AppsV1().Deployments(s.ns).Create(t.Context(), probeHost("web"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("client-go create: want a 403 Forbidden, got %v", err)
	}
	if causes := statusCauses(err); len(causes) != 1 || causes[0].Field != field || !strings.HasPrefix(causes[0].Message, "[pod-security] ") {
		t.Errorf("status causes: got %+v, want one at %s with a [pod-security] message", causes, field)
	}

	// The namespace pinned to v1.33 admits what v1.33 allowed, and the Deployment runs: its
	// ReplicaSet and Pods are admitted too.
	r = legacy.apply(probeHost("web"))
	mustSucceed(t, r)
	mustNotContain(t, "kubectl apply output", r.Output(), "pod-security")
	legacy.waitForReplicaSetPods("web")

	// An exception for the sysctls control: applies while it lasts, not once it expired.
	sysctl := func(name string) *appsv1.Deployment {
		d := compliantDeployment(name, 1)
		d.Spec.Template.Spec.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "kernel.msgmax", Value: "65536"}}
		return d
	}
	r = s.apply(sysctl("live-a"), "--dry-run=server")
	mustSucceed(t, r)
	mustNotContain(t, "kubectl apply output", r.Output(), "pod-security")
	r = s.apply(sysctl("expired-a"), "--dry-run=server")
	mustFail(t, r)
	mustContain(t, "kubectl apply stderr", r.Stderr,
		`[pod-security] spec.template.spec.securityContext.sysctls[0]: PodSecurity "baseline:latest" control sysctls: forbidden sysctls (kernel.msgmax)`)

	// In audit mode the Deployment is admitted, and the background audit counts the finding
	// under its control (the Deployment only: its ReplicaSet and Pods are not counted again).
	mustSucceed(t, watched.apply(probeHost("web")))
	eventually(t, "the audit gauge of the hostProbesAndHostLifecycle finding", func(ctx context.Context) error {
		m, err := s.c.LoomguardMetrics(ctx, mViolations)
		if err != nil {
			return err
		}
		var got []string
		for labels, n := range m[mViolations] {
			if l := parseLabels(labels); l["namespace"] == watched.ns && l["policy"] == "pod-security" {
				got = append(got, fmt.Sprintf("%s/%s=%g", l["control"], l["action"], n))
			}
		}
		if len(got) != 1 || got[0] != "hostProbesAndHostLifecycle/audit=1" {
			return fmt.Errorf("pod-security series of %s: %v", watched.ns, got)
		}
		return nil
	})
}
