package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// mapSetup is the setup whose only admission is mutatingAdmissionPolicy.
const mapSetup = "map"

// mapName names the MutatingAdmissionPolicy and its binding.
const mapName = "loom-pod-fixes"

// mutatingAdmissionPolicy applies, in kube-apiserver itself (MutatingAdmissionPolicy, GA and
// on by default since Kubernetes 1.36), the JSON patch that loomguard's mutating webhook
// returns for the fix Pod (fixPodYAML): the in-tree yardstick of the fix workload, as
// validatingAdmissionPolicy is of the others. It is written for that Pod's shape (one
// container, none of the fields set that the fixes add, perhaps the service account token
// volume that the ServiceAccount admission plugin adds before) and fixes nothing else; the
// benchmark checks that it yields the Pod loomguard's patch yields (checkFixedPod).
// %s is the loomguard.io/fixed annotation's value.
const mutatingAdmissionPolicy = `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata:
  name: ` + mapName + `
spec:
  failurePolicy: Fail
  reinvocationPolicy: IfNeeded
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        resources: [pods]
        operations: [CREATE]
  matchConditions:
    - name: the-fix-pod
      expression: >-
        size(object.spec.containers) == 1 && !has(object.spec.initContainers) &&
        !has(object.metadata.annotations) && !has(object.spec.securityContext.runAsNonRoot) &&
        !has(object.spec.containers[0].securityContext) &&
        !object.spec.?volumes.orValue([]).exists(v, v.name == 'tmp')
  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: >-
          [
            JSONPatch{op: "add", path: "/metadata/annotations", value: {"` + fixedAnnotation + `": %q}},
            JSONPatch{op: "add", path: "/spec/containers/0/securityContext", value: Object.spec.containers.securityContext{
              allowPrivilegeEscalation: false,
              capabilities: Object.spec.containers.securityContext.capabilities{drop: ["ALL"]},
              readOnlyRootFilesystem: true}},
            has(object.spec.containers[0].volumeMounts) ?
              JSONPatch{op: "add", path: "/spec/containers/0/volumeMounts/-", value:
                Object.spec.containers.volumeMounts{mountPath: "/tmp", name: "tmp"}} :
              JSONPatch{op: "add", path: "/spec/containers/0/volumeMounts", value: [
                Object.spec.containers.volumeMounts{mountPath: "/tmp", name: "tmp"}]},
            JSONPatch{op: "add", path: "/spec/securityContext", value: Object.spec.securityContext{
              fsGroup: 1000, runAsGroup: 1000, runAsNonRoot: true, runAsUser: 1000,
              seccompProfile: Object.spec.securityContext.seccompProfile{type: "RuntimeDefault"}}},
            has(object.spec.volumes) ?
              JSONPatch{op: "add", path: "/spec/volumes/-", value:
                Object.spec.volumes{name: "tmp", emptyDir: Object.spec.volumes.emptyDir{sizeLimit: "256Mi"}}} :
              JSONPatch{op: "add", path: "/spec/volumes", value: [
                Object.spec.volumes{name: "tmp", emptyDir: Object.spec.volumes.emptyDir{sizeLimit: "256Mi"}}]}
          ]
`

// mutatingAdmissionPolicyBinding applies it in the namespaces loomguard's webhooks govern.
const mutatingAdmissionPolicyBinding = `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata:
  name: ` + mapName + `
spec:
  policyName: ` + mapName + `
  matchResources:
` + governedNamespaceSelector

// decodeMAP returns the policy, with fixed as its annotation value, and its binding.
func decodeMAP(fixed string) (*admissionregistrationv1.MutatingAdmissionPolicy, *admissionregistrationv1.MutatingAdmissionPolicyBinding, error) {
	p, err := decodeStrict[admissionregistrationv1.MutatingAdmissionPolicy](fmt.Sprintf(mutatingAdmissionPolicy, fixed))
	if err != nil {
		return nil, nil, err
	}
	b, err := decodeStrict[admissionregistrationv1.MutatingAdmissionPolicyBinding](mutatingAdmissionPolicyBinding)
	if err != nil {
		return nil, nil, err
	}
	return p, b, nil
}

// applyMAP creates the policy and its binding when want, else deletes them.
func (b *bench) applyMAP(ctx context.Context, want bool) error {
	ar := b.c.Clientset().AdmissionregistrationV1()
	if !want {
		if err := ar.MutatingAdmissionPolicyBindings().Delete(ctx, mapName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err := ar.MutatingAdmissionPolicies().Delete(ctx, mapName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	}
	p, bind, err := decodeMAP(b.fixedPod.Annotations[fixedAnnotation])
	if err != nil {
		return err
	}
	if _, err := ar.MutatingAdmissionPolicies().Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating MutatingAdmissionPolicy %s: %w", mapName, err)
	}
	if _, err := ar.MutatingAdmissionPolicyBindings().Create(ctx, bind, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating MutatingAdmissionPolicyBinding %s: %w", mapName, err)
	}
	return nil
}

// tokenVolumePrefix begins the name of the projected service account token volume that
// the ServiceAccount admission plugin adds, with its mounts, before any webhook or policy.
const tokenVolumePrefix = "kube-api-access-"

// withoutTokenVolume is pod without the service account token volume and its mounts.
func withoutTokenVolume(pod *corev1.Pod) *corev1.Pod {
	p := pod.DeepCopy()
	p.Spec.Volumes = slices.DeleteFunc(p.Spec.Volumes, func(v corev1.Volume) bool { return strings.HasPrefix(v.Name, tokenVolumePrefix) })
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return strings.HasPrefix(m.Name, tokenVolumePrefix) })
		if len(c.VolumeMounts) == 0 {
			c.VolumeMounts = nil
		}
	}
	if len(p.Spec.Volumes) == 0 {
		p.Spec.Volumes = nil
	}
	return p
}

// patchedPod applies a JSON patch to pod.
func patchedPod(pod *corev1.Pod, patch []byte) (*corev1.Pod, error) {
	raw, err := podJSON(pod)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, fmt.Errorf("decoding the fix patch: %w", err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		return nil, fmt.Errorf("applying the fix patch: %w", err)
	}
	var fixed corev1.Pod
	if err := json.Unmarshal(out, &fixed); err != nil {
		return nil, err
	}
	return &fixed, nil
}

// checkFixedPod says how a Pod that the API server created from the fix Pod differs from
// the fix Pod with loomguard's patch applied (b.fixedPod), in the fields the fixes set:
// nil when it carries exactly loomguard's fixes.
func (b *bench) checkFixedPod(created *corev1.Pod) error {
	want := b.fixedPod
	created = withoutTokenVolume(created)
	var diffs []string
	if got := created.Annotations[fixedAnnotation]; got != want.Annotations[fixedAnnotation] {
		diffs = append(diffs, fmt.Sprintf("annotation %s %q, want %q", fixedAnnotation, got, want.Annotations[fixedAnnotation]))
	}
	if !equality.Semantic.DeepEqual(created.Spec.SecurityContext, want.Spec.SecurityContext) {
		diffs = append(diffs, fmt.Sprintf("spec.securityContext %+v, want %+v", created.Spec.SecurityContext, want.Spec.SecurityContext))
	}
	if !equality.Semantic.DeepEqual(created.Spec.Volumes, want.Spec.Volumes) {
		diffs = append(diffs, fmt.Sprintf("spec.volumes %+v, want %+v", created.Spec.Volumes, want.Spec.Volumes))
	}
	if len(created.Spec.Containers) != len(want.Spec.Containers) {
		diffs = append(diffs, fmt.Sprintf("%d containers, want %d", len(created.Spec.Containers), len(want.Spec.Containers)))
	} else {
		for i, c := range created.Spec.Containers {
			w := want.Spec.Containers[i]
			if !equality.Semantic.DeepEqual(c.SecurityContext, w.SecurityContext) || !equality.Semantic.DeepEqual(c.VolumeMounts, w.VolumeMounts) {
				diffs = append(diffs, fmt.Sprintf("spec.containers[%d]: securityContext %+v and volumeMounts %+v, want %+v and %+v",
					i, c.SecurityContext, c.VolumeMounts, w.SecurityContext, w.VolumeMounts))
			}
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the fix Pod is not fixed as loomguard fixes it: %s", strings.Join(diffs, "; "))
	}
	return nil
}
