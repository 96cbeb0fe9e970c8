package main

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
	lgwebhook "github.com/loomguard/loomguard/webhook"
)

// vapName names the ValidatingAdmissionPolicy and its binding.
const vapName = "loom-pod-checks"

// validatingAdmissionPolicy mirrors loomguard's core pod checks of the default Loom profile
// (docs/policies.md) in CEL, for Pods and the pod templates of workloads: required labels,
// resource requests and limits, non-root user, no privilege escalation, all capabilities
// dropped, read-only root filesystem, an allowed seccomp profile, host isolation and pinned
// image tags. It is the in-tree yardstick of the benchmark, not a replacement for
// loomguard: it neither fixes nor checks the limit/request ratio, /tmp volumes, secret
// environment variables or probes.
const validatingAdmissionPolicy = `
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: ` + vapName + `
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        resources: [pods]
        operations: [CREATE, UPDATE]
      - apiGroups: [apps]
        apiVersions: ["v1"]
        resources: [deployments, statefulsets, daemonsets, replicasets]
        operations: [CREATE, UPDATE]
      - apiGroups: [batch]
        apiVersions: ["v1"]
        resources: [jobs, cronjobs]
        operations: [CREATE, UPDATE]
  variables:
    - name: template
      expression: >-
        object.kind == 'Pod' ? object :
        object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template :
        object.spec.template
    - name: spec
      expression: variables.template.spec
    - name: containers
      expression: >-
        variables.spec.containers +
        (has(variables.spec.initContainers) ? variables.spec.initContainers : [])
    - name: podRunAsNonRoot
      expression: >-
        has(variables.spec.securityContext) && has(variables.spec.securityContext.runAsNonRoot) &&
        variables.spec.securityContext.runAsNonRoot
    - name: podRunAsUser
      expression: >-
        has(variables.spec.securityContext) && has(variables.spec.securityContext.runAsUser) ?
        variables.spec.securityContext.runAsUser : 0
    - name: podSeccomp
      expression: >-
        has(variables.spec.securityContext) && has(variables.spec.securityContext.seccompProfile) ?
        variables.spec.securityContext.seccompProfile.type : ''
  validations:
    - message: the workload and its pod template carry the labels app, version and environment (development, staging or production)
      expression: >-
        [object.metadata, variables.template.metadata].all(m, has(m.labels) &&
        ['app', 'version', 'environment'].all(k, k in m.labels) &&
        m.labels['environment'] in ['development', 'staging', 'production'])
    - message: containers set cpu and memory requests and limits
      expression: >-
        variables.containers.all(c, has(c.resources) && has(c.resources.requests) && has(c.resources.limits) &&
        ['cpu', 'memory'].all(r, r in c.resources.requests && r in c.resources.limits))
    - message: containers run with runAsNonRoot and a non-zero runAsUser
      expression: >-
        variables.containers.all(c,
        (has(c.securityContext) && has(c.securityContext.runAsNonRoot) ? c.securityContext.runAsNonRoot : variables.podRunAsNonRoot) &&
        (has(c.securityContext) && has(c.securityContext.runAsUser) ? c.securityContext.runAsUser : variables.podRunAsUser) != 0)
    - message: containers set allowPrivilegeEscalation false and are not privileged
      expression: >-
        variables.containers.all(c, has(c.securityContext) &&
        has(c.securityContext.allowPrivilegeEscalation) && !c.securityContext.allowPrivilegeEscalation &&
        !(has(c.securityContext.privileged) && c.securityContext.privileged))
    - message: containers drop ALL capabilities and add back only NET_BIND_SERVICE
      expression: >-
        variables.containers.all(c, has(c.securityContext) && has(c.securityContext.capabilities) &&
        has(c.securityContext.capabilities.drop) && 'ALL' in c.securityContext.capabilities.drop &&
        (!has(c.securityContext.capabilities.add) || c.securityContext.capabilities.add.all(a, a == 'NET_BIND_SERVICE')))
    - message: containers set readOnlyRootFilesystem true
      expression: >-
        variables.containers.all(c, has(c.securityContext) &&
        has(c.securityContext.readOnlyRootFilesystem) && c.securityContext.readOnlyRootFilesystem)
    - message: containers run under the RuntimeDefault or a Localhost seccomp profile
      expression: >-
        variables.containers.all(c,
        (has(c.securityContext) && has(c.securityContext.seccompProfile) ? c.securityContext.seccompProfile.type : variables.podSeccomp)
        in ['RuntimeDefault', 'Localhost'])
    - message: pods use neither the host's network, PID or IPC namespace nor hostPath volumes or host ports
      expression: >-
        !(has(variables.spec.hostNetwork) && variables.spec.hostNetwork) &&
        !(has(variables.spec.hostPID) && variables.spec.hostPID) &&
        !(has(variables.spec.hostIPC) && variables.spec.hostIPC) &&
        (!has(variables.spec.volumes) || variables.spec.volumes.all(v, !has(v.hostPath))) &&
        variables.containers.all(c, !has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0))
    - message: images are pinned by a tag other than latest or by a digest
      expression: >-
        variables.containers.all(c, c.image.contains('@') ||
        (c.image.lastIndexOf(':') > c.image.lastIndexOf('/') && !c.image.endsWith(':latest')))
`

// validatingAdmissionPolicyBinding denies in the namespaces loomguard's webhooks govern.
const validatingAdmissionPolicyBinding = `
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: ` + vapName + `
spec:
  policyName: ` + vapName + `
  validationActions: [Deny]
  matchResources:
` + governedNamespaceSelector

// governedNamespaceSelector is a binding's matchResources.namespaceSelector, indented for
// it: the namespaces loomguard's webhooks govern (manifests/base/webhook-configurations.yaml).
const governedNamespaceSelector = `    namespaceSelector:
      matchExpressions:
        - key: kubernetes.io/metadata.name
          operator: NotIn
          values: [kube-system, kube-public, kube-node-lease, loomguard-system]
`

func decodeVAP() (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding, error) {
	p, err := decodeStrict[admissionregistrationv1.ValidatingAdmissionPolicy](validatingAdmissionPolicy)
	if err != nil {
		return nil, nil, err
	}
	b, err := decodeStrict[admissionregistrationv1.ValidatingAdmissionPolicyBinding](validatingAdmissionPolicyBinding)
	if err != nil {
		return nil, nil, err
	}
	return p, b, nil
}

// decodeStrict decodes the YAML doc into a T, refusing unknown and duplicate fields.
func decodeStrict[T any](doc string) (*T, error) {
	var v T
	if err := yaml.UnmarshalStrict([]byte(doc), &v); err != nil {
		return nil, fmt.Errorf("decoding the %T: %w", v, err)
	}
	return &v, nil
}

// conditionsVAPSetup is the setup whose only admission is conditionsVAP.
const conditionsVAPSetup = "vap-conditions"

// conditionsVAPName names conditionsVAP's policy and binding.
const conditionsVAPName = "loomguard-conditions"

// conditionsVAP returns a ValidatingAdmissionPolicy, and its binding to the governed
// namespaces, that denies the Pods loomguard's webhooks' matchConditions under cfg do not
// clear: one validation per webhook, the negation of the conjunction of its conditions (the
// API server calls a webhook only when every one of them is true). It makes kube-apiserver
// evaluate, in-tree and with no webhook, the very CEL that each Pod loomguard clears costs
// it: the yardstick that tells what loomguard's checks cost from what its webhooks add. It
// applies to Pods only (loomguard clears a workload's pod template too; the rollout's one
// Deployment and ReplicaSet are nothing next to its Pods) and denies the fix Pod, which
// both webhooks are called for.
func conditionsVAP(cfg *policies.Config) (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding, error) {
	fail := admissionregistrationv1.Fail
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: conditionsVAPName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
					},
				}},
			},
		},
	}
	for _, name := range []string{lgwebhook.ValidatingWebhookName, lgwebhook.MutatingWebhookName} {
		conds := lgwebhook.WantMatchConditions(name, cfg)
		if len(conds) == 0 {
			return nil, nil, fmt.Errorf("loomguard's config gives webhook %s no matchConditions", name)
		}
		all := make([]string, len(conds))
		for i, c := range conds {
			all[i] = "(" + c.Expression + ")"
		}
		p.Spec.Validations = append(p.Spec.Validations, admissionregistrationv1.Validation{
			Expression: "!(" + strings.Join(all, " && ") + ")",
			Message:    "webhook " + name + "'s matchConditions do not clear the object",
		})
	}
	b, err := decodeStrict[admissionregistrationv1.ValidatingAdmissionPolicyBinding](validatingAdmissionPolicyBinding)
	if err != nil {
		return nil, nil, err
	}
	b.Name, b.Spec.PolicyName = conditionsVAPName, conditionsVAPName
	return p, b, nil
}
