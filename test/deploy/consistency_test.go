package deploy

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/loomguard/loomguard/certs"
)

// bundle is a render decoded into the typed objects the wiring tests look at.
type bundle struct {
	objs       []*unstructured.Unstructured
	deployment appsv1.Deployment
	service    corev1.Service
	mutating   admissionregistrationv1.MutatingWebhookConfiguration
	validating admissionregistrationv1.ValidatingWebhookConfiguration
}

func decodeBundle(t *testing.T, data []byte) *bundle {
	t.Helper()
	b := &bundle{objs: decode(t, data)}
	into(t, find(t, b.objs, "Deployment", "loomguard"), &b.deployment)
	into(t, find(t, b.objs, "Service", certs.DefaultServiceName), &b.service)
	into(t, find(t, b.objs, "MutatingWebhookConfiguration", certs.DefaultWebhookConfigurationName), &b.mutating)
	into(t, find(t, b.objs, "ValidatingWebhookConfiguration", certs.DefaultWebhookConfigurationName), &b.validating)
	return b
}

func (b *bundle) container() *corev1.Container { return &b.deployment.Spec.Template.Spec.Containers[0] }

// checkRules: both webhooks see every workload resource on CREATE and UPDATE, and
// pods/ephemeralcontainers on UPDATE (kubectl debug), and no other subresource.
func checkRules(t *testing.T, b *bundle) {
	t.Helper()
	var all [][]admissionregistrationv1.RuleWithOperations
	for _, w := range b.mutating.Webhooks {
		all = append(all, w.Rules)
	}
	for _, w := range b.validating.Webhooks {
		all = append(all, w.Rules)
	}
	for i, rules := range all {
		ops := map[string][]admissionregistrationv1.OperationType{}
		for _, r := range rules {
			for _, res := range r.Resources {
				ops[res] = append(ops[res], r.Operations...)
			}
		}
		want := map[string][]admissionregistrationv1.OperationType{
			"pods/ephemeralcontainers": {admissionregistrationv1.Update},
		}
		for _, res := range []string{"pods", "deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs"} {
			want[res] = []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
		}
		for res, w := range want {
			if !slices.Equal(ops[res], w) {
				t.Errorf("webhook %d: %s operations %v, want %v", i, res, ops[res], w)
			}
		}
		for res := range ops {
			if _, ok := want[res]; !ok {
				t.Errorf("webhook %d registers %s, which loomguard does not evaluate", i, res)
			}
		}
	}
}

// clientConfigs are the clientConfigs of every webhook of both configurations.
func (b *bundle) clientConfigs() []admissionregistrationv1.WebhookClientConfig {
	var out []admissionregistrationv1.WebhookClientConfig
	for _, w := range b.mutating.Webhooks {
		out = append(out, w.ClientConfig)
	}
	for _, w := range b.validating.Webhooks {
		out = append(out, w.ClientConfig)
	}
	return out
}

// checkServiceWiring: every webhook calls the Service on 443, which reaches the
// container's --port, and --cert-dir is where the certs volume is mounted.
func checkServiceWiring(t *testing.T, b *bundle) {
	t.Helper()
	for _, cc := range b.clientConfigs() {
		s := cc.Service
		if s == nil || s.Name != b.service.Name || s.Namespace != b.service.Namespace || s.Port == nil || *s.Port != 443 {
			t.Errorf("webhook clientConfig %+v does not call Service %s/%s on 443", cc, b.service.Namespace, b.service.Name)
		}
	}
	var https *corev1.ServicePort
	for i := range b.service.Spec.Ports {
		if b.service.Spec.Ports[i].Port == 443 {
			https = &b.service.Spec.Ports[i]
		}
	}
	if https == nil {
		t.Fatal("the Service has no port 443")
	}
	port := flagValue(t, b.container().Args, "--port")
	var target *corev1.ContainerPort
	for i, p := range b.container().Ports {
		if p.Name == https.TargetPort.String() || (https.TargetPort.IntValue() != 0 && int(p.ContainerPort) == https.TargetPort.IntValue()) {
			target = &b.container().Ports[i]
		}
	}
	if target == nil || port != strconv.Itoa(int(target.ContainerPort)) {
		t.Errorf("Service port 443 targets %v, the container serves --port=%s", https.TargetPort, port)
	}
	if !selects(b.service.Spec.Selector, b.deployment.Spec.Template.Labels) {
		t.Errorf("Service selector %v does not select the pods %v", b.service.Spec.Selector, b.deployment.Spec.Template.Labels)
	}
	certDir := flagValue(t, b.container().Args, "--cert-dir")
	if m := volumeMount(t, &b.deployment, "certs"); m.MountPath != certDir {
		t.Errorf("certs volume mounted at %s, --cert-dir is %s", m.MountPath, certDir)
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// serviceDNSNames are the names the API server verifies when it calls the Service.
func serviceDNSNames(s corev1.Service) []string {
	return []string{s.Name + "." + s.Namespace + ".svc", s.Name + "." + s.Namespace + ".svc.cluster.local"}
}

// TestCertManagerWiring checks, with cert-manager's own API types, that the cert-manager
// installation fits together: the serving Certificate names the Service's DNS names, its
// Secret is what the Deployment mounts at --cert-dir, it is issued by a CA Issuer whose CA
// comes from a self-signed CA Certificate, and both webhook configurations ask the
// cainjector for its CA.
func TestCertManagerWiring(t *testing.T) {
	tests := []struct {
		name   string
		render func(t *testing.T) []byte
	}{
		{"kustomize overlays/cert-manager", func(t *testing.T) []byte { return kustomize(t, "manifests/overlays/cert-manager") }},
		{"helm certs.mode=cert-manager", func(t *testing.T) []byte { return helmTemplate(t, "--set", "certs.mode=cert-manager") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := decodeBundle(t, tt.render(t))
			checkServiceWiring(t, b)

			certificates := map[string]*cmv1.Certificate{}
			issuers := map[string]*cmv1.Issuer{}
			for _, o := range b.objs {
				switch o.GetKind() {
				case cmv1.CertificateKind:
					c := &cmv1.Certificate{}
					into(t, o, c)
					certificates[c.Name] = c
				case cmv1.IssuerKind:
					i := &cmv1.Issuer{}
					into(t, o, i)
					issuers[i.Name] = i
				case cmv1.ClusterIssuerKind:
					t.Errorf("unexpected ClusterIssuer %s: the issuers belong in loomguard's namespace", o.GetName())
				}
			}

			// The serving certificate is the one whose Secret the Deployment mounts.
			certsVolume := volume(t, &b.deployment, "certs")
			if certsVolume.Secret == nil {
				t.Fatalf("certs volume %+v is not a Secret", certsVolume.VolumeSource)
			}
			var serving *cmv1.Certificate
			for _, c := range certificates {
				if c.Spec.SecretName == certsVolume.Secret.SecretName {
					serving = c
				}
			}
			if serving == nil {
				t.Fatalf("no Certificate writes the mounted Secret %s", certsVolume.Secret.SecretName)
			}
			if serving.Namespace != b.deployment.Namespace {
				t.Errorf("Certificate %s is in %s, the Deployment in %s", serving.Name, serving.Namespace, b.deployment.Namespace)
			}
			if want := serviceDNSNames(b.service); !slices.Equal(serving.Spec.DNSNames, want) {
				t.Errorf("Certificate %s dnsNames %v, want the Service's %v", serving.Name, serving.Spec.DNSNames, want)
			}
			if serving.Spec.IsCA || !slices.Contains(serving.Spec.Usages, cmv1.UsageServerAuth) {
				t.Errorf("Certificate %s: isCA %v, usages %v; want a server auth leaf", serving.Name, serving.Spec.IsCA, serving.Spec.Usages)
			}
			if serving.Spec.RenewBefore == nil || serving.Spec.Duration == nil || serving.Spec.RenewBefore.Duration >= serving.Spec.Duration.Duration {
				t.Errorf("Certificate %s: renewBefore %v must be set and shorter than duration %v", serving.Name, serving.Spec.RenewBefore, serving.Spec.Duration)
			}

			// serving <- CA Issuer <- CA Certificate <- self-signed Issuer.
			caIssuer := issuers[serving.Spec.IssuerRef.Name]
			if serving.Spec.IssuerRef.Kind != cmv1.IssuerKind || caIssuer == nil || caIssuer.Spec.CA == nil {
				t.Fatalf("Certificate %s is issued by %+v, want a CA Issuer of this bundle", serving.Name, serving.Spec.IssuerRef)
			}
			var ca *cmv1.Certificate
			for _, c := range certificates {
				if c.Spec.SecretName == caIssuer.Spec.CA.SecretName {
					ca = c
				}
			}
			if ca == nil || !ca.Spec.IsCA {
				t.Fatalf("Issuer %s signs with Secret %s, which no CA Certificate writes", caIssuer.Name, caIssuer.Spec.CA.SecretName)
			}
			if root := issuers[ca.Spec.IssuerRef.Name]; root == nil || root.Spec.SelfSigned == nil {
				t.Errorf("CA Certificate %s is issued by %+v, want the self-signed Issuer", ca.Name, ca.Spec.IssuerRef)
			}

			want := serving.Namespace + "/" + serving.Name
			for _, o := range []*unstructured.Unstructured{
				find(t, b.objs, "MutatingWebhookConfiguration", b.mutating.Name),
				find(t, b.objs, "ValidatingWebhookConfiguration", b.validating.Name),
			} {
				if got := o.GetAnnotations()["cert-manager.io/inject-ca-from"]; got != want {
					t.Errorf("%s: cert-manager.io/inject-ca-from %q, want %q", key(o), got, want)
				}
			}
			if slices.ContainsFunc(b.container().Args, func(a string) bool { return strings.HasPrefix(a, "--cert-mode=") && a != "--cert-mode=files" }) {
				t.Errorf("args %v: cert-manager needs --cert-mode=files (the default)", b.container().Args)
			}
			for _, o := range b.objs {
				if o.GetKind() == "Role" || o.GetKind() == "ClusterRole" {
					if strings.Contains(toYAML(t, o.Object), "secrets") {
						t.Errorf("%s grants access to Secrets, which cert-manager mode does not need", key(o))
					}
				}
			}
		})
	}
}

// TestSelfManagedWiring checks that the self-managed installation names the objects
// loomguard's certs package manages by default, and that RBAC grants exactly those.
func TestSelfManagedWiring(t *testing.T) {
	tests := []struct {
		name   string
		render func(t *testing.T) []byte
	}{
		{"kustomize overlays/self-managed", func(t *testing.T) []byte { return kustomize(t, "manifests/overlays/self-managed") }},
		{"helm default", func(t *testing.T) []byte { return helmTemplate(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := decodeBundle(t, tt.render(t))
			checkServiceWiring(t, b)
			checkRules(t, b)
			c := b.container()
			if !slices.Contains(c.Args, "--cert-mode=self-managed") {
				t.Errorf("args %v lack --cert-mode=self-managed", c.Args)
			}
			for _, a := range c.Args {
				for _, f := range []string{"--cert-secret", "--cert-service", "--cert-namespace", "--mutating-webhook-configuration", "--validating-webhook-configuration", "--cert-mutating-webhook-configuration", "--cert-validating-webhook-configuration"} {
					if strings.HasPrefix(a, f+"=") {
						t.Errorf("arg %s: the manifests rely on the default, which this test checks against the objects", a)
					}
				}
			}
			if v := volume(t, &b.deployment, "certs"); v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
				t.Errorf("certs volume %+v: want an in-memory emptyDir that loomguard fills", v.VolumeSource)
			}
			if !hasFieldRefEnv(c, "POD_NAMESPACE", "metadata.namespace") {
				t.Error("POD_NAMESPACE (the default of --cert-namespace) is not set from the downward API")
			}
			if b.service.Name != certs.DefaultServiceName || b.service.Namespace != namespace {
				t.Errorf("Service %s/%s, --cert-service defaults to %s", b.service.Namespace, b.service.Name, certs.DefaultServiceName)
			}

			var secret corev1.Secret
			into(t, find(t, b.objs, "Secret", certs.DefaultSecretName), &secret)
			if secret.Namespace != namespace || len(secret.Data) != 0 || len(secret.StringData) != 0 || secret.Type != corev1.SecretTypeOpaque {
				t.Errorf("Secret %s/%s (type %s, %d keys): want an empty Opaque Secret in %s that apply never resets", secret.Namespace, secret.Name, secret.Type, len(secret.Data)+len(secret.StringData), namespace)
			}

			var role rbacv1.Role
			into(t, find(t, b.objs, "Role", "loomguard-certs"), &role)
			wantRole := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{certs.DefaultSecretName}, Verbs: []string{"get", "list", "watch", "update"}}}
			if !equalRules(role.Rules, wantRole) {
				t.Errorf("Role loomguard-certs rules %+v, want exactly %+v", role.Rules, wantRole)
			}
			// The webhook configurations' caBundle rides on the base's grant
			// (TestWebhookConfigurationsWiring); no second grant of the same objects.
			for _, o := range b.objs {
				if o.GetKind() == "ClusterRole" && o.GetName() == "loomguard-certs" {
					t.Errorf("%s: the webhook configurations are granted once, by ClusterRole %s", key(o), webhookConfigurationsRole)
				}
			}
			if b.mutating.Name != b.validating.Name || b.mutating.Name != certs.DefaultWebhookConfigurationName {
				t.Errorf("webhook configurations %q and %q, the --*-webhook-configuration defaults are %q", b.mutating.Name, b.validating.Name, certs.DefaultWebhookConfigurationName)
			}
			checkBinding(t, b, "RoleBinding", "loomguard-certs", "Role")
		})
	}
}

func hasFieldRefEnv(c *corev1.Container, name, path string) bool {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == path {
			return true
		}
	}
	return false
}

func equalRules(got, want []rbacv1.PolicyRule) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if !slices.Equal(g.APIGroups, w.APIGroups) || !slices.Equal(g.Resources, w.Resources) ||
			!slices.Equal(g.ResourceNames, w.ResourceNames) || !slices.Equal(g.Verbs, w.Verbs) || !slices.Equal(g.NonResourceURLs, w.NonResourceURLs) {
			return false
		}
	}
	return true
}

// checkBinding: the binding grants its role to the Deployment's ServiceAccount.
func checkBinding(t *testing.T, b *bundle, kind, name, roleKind string) {
	t.Helper()
	var roleRef rbacv1.RoleRef
	var subjects []rbacv1.Subject
	switch kind {
	case "RoleBinding":
		var rb rbacv1.RoleBinding
		into(t, find(t, b.objs, kind, name), &rb)
		roleRef, subjects = rb.RoleRef, rb.Subjects
	default:
		var crb rbacv1.ClusterRoleBinding
		into(t, find(t, b.objs, kind, name), &crb)
		roleRef, subjects = crb.RoleRef, crb.Subjects
	}
	want := rbacv1.Subject{Kind: "ServiceAccount", Name: b.deployment.Spec.Template.Spec.ServiceAccountName, Namespace: b.deployment.Namespace}
	if roleRef.Kind != roleKind || roleRef.Name != name || len(subjects) != 1 || subjects[0] != want {
		t.Errorf("%s %s: roleRef %+v, subjects %+v; want %s %s for %+v", kind, name, roleRef, subjects, roleKind, name, want)
	}
}
