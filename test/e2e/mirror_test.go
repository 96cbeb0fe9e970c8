package e2e

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestForgedMirrorPodDenied: a Pod that claims to be a static pod's mirror (the
// kubernetes.io/config.mirror annotation, bound to a node) but is created by a user, not by
// that node's kubelet, is judged like any Pod: on the host network it is denied.
func TestForgedMirrorPodDenied(t *testing.T) {
	s := newScenario(t, "e2e-mirror")
	tmpl := compliantDeployment("etcd", 1).Spec.Template
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "etcd-node-1",
			Labels:      tmpl.Labels,
			Annotations: map[string]string{corev1.MirrorPodAnnotationKey: "5f7c2c0ad0f1c7d4e9a1b2c3d4e5f607"},
		},
		Spec: tmpl.Spec,
	}
	pod.Spec.NodeName = "node-1"
	pod.Spec.HostNetwork = true

	_, err := s.cs.CoreV1().Pods(s.ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("a forged mirror pod on the host network: want a 403 Forbidden, got %v", err)
	}
	found := false
	for _, c := range statusCauses(err) {
		found = found || (c.Field == "spec.hostNetwork" && strings.HasPrefix(c.Message, "[host-isolation] "))
	}
	if !found {
		t.Errorf("no host-isolation cause for spec.hostNetwork in %+v", statusCauses(err))
	}
}
