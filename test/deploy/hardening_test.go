package deploy

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// TestHighAvailabilityAndHardening pins what makes the installation highly available and
// least-privileged, in every render that holds the Deployment. The policies check much of
// the pod spec already (TestOwnManifestsPassOwnPolicies); these are the rest.
func TestHighAvailabilityAndHardening(t *testing.T) {
	for _, r := range renders() {
		if r.workloads == 0 {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			b := decodeBundle(t, r.render(t))
			d := &b.deployment
			pod := &d.Spec.Template.Spec
			c := b.container()
			fail := t.Errorf

			if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
				fail("replicas %v, want at least 2", d.Spec.Replicas)
			}
			if pod.PriorityClassName != "system-cluster-critical" {
				fail("priorityClassName %q", pod.PriorityClassName)
			}
			var keys []string
			for _, tsc := range pod.TopologySpreadConstraints {
				keys = append(keys, tsc.TopologyKey)
			}
			if !slices.Contains(keys, "kubernetes.io/hostname") || !slices.Contains(keys, "topology.kubernetes.io/zone") {
				fail("topology spread over %v, want nodes and zones", keys)
			}
			sc := pod.SecurityContext
			if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
				sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				fail("pod securityContext %+v: want runAsNonRoot, runAsUser 65532 (the image's nonroot user), RuntimeDefault seccomp", sc)
			}
			csc := c.SecurityContext
			if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
				csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
				csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0 {
				fail("container securityContext %+v", csc)
			}
			if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
				fail("the pod must mount its token explicitly: audit, leader election and self-managed certificates use the API")
			}
			var sa corev1.ServiceAccount
			into(t, find(t, b.objs, "ServiceAccount", pod.ServiceAccountName), &sa)
			if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
				fail("ServiceAccount %s must not mount tokens by default", sa.Name)
			}
			if !strings.Contains(c.Image, ":v") || strings.HasSuffix(c.Image, ":latest") {
				fail("image %q is not pinned to a version", c.Image)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
				fail("resources %+v", c.Resources)
			}
			probe := func(p *corev1.Probe, path string) bool {
				return p != nil && p.HTTPGet != nil && p.HTTPGet.Path == path && p.HTTPGet.Port.String() == "health"
			}
			if !probe(c.LivenessProbe, "/healthz") || !probe(c.ReadinessProbe, "/readyz") || !probe(c.StartupProbe, "/healthz") {
				fail("probes: liveness %+v readiness %+v startup %+v; want /healthz, /readyz, /healthz on the health port", c.LivenessProbe, c.ReadinessProbe, c.StartupProbe)
			}
			if health := flagValue(t, c.Args, "--health-probe-bind-address"); !hasPort(c, "health", health) {
				fail("--health-probe-bind-address=%s is not the health port", health)
			}
			if metrics := flagValue(t, c.Args, "--metrics-bind-address"); !hasPort(c, "metrics", metrics) {
				fail("--metrics-bind-address=%s is not the metrics port", metrics)
			}
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 3 {
				fail("preStop %+v: want a sleep of a few seconds so that endpoints drain before the listener closes", c.Lifecycle)
			} else if grace := pod.TerminationGracePeriodSeconds; grace == nil || *grace < c.Lifecycle.PreStop.Sleep.Seconds+10 {
				fail("terminationGracePeriodSeconds %v leaves no time for the shutdown after the preStop sleep", grace)
			}
			for _, m := range c.VolumeMounts {
				if m.SubPath != "" {
					fail("volumeMount %s uses subPath: updates would never reach it", m.Name)
				}
			}
			for _, l := range []string{"app", "version", "environment"} {
				if d.Labels[l] == "" || d.Spec.Template.Labels[l] == "" {
					fail("label %q missing on the Deployment or its pods", l)
				}
			}

			var pdb policyv1.PodDisruptionBudget
			into(t, find(t, b.objs, "PodDisruptionBudget", "loomguard"), &pdb)
			if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				fail("PodDisruptionBudget %+v: want minAvailable 1 over the pods", pdb.Spec)
			}
			var hpa autoscalingv2.HorizontalPodAutoscaler
			into(t, find(t, b.objs, "HorizontalPodAutoscaler", "loomguard"), &hpa)
			if hpa.Spec.ScaleTargetRef.Name != d.Name || hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 ||
				len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
				fail("HorizontalPodAutoscaler %+v: want CPU scaling of the Deployment from at least 2", hpa.Spec)
			}
			var quota corev1.ResourceQuota
			into(t, find(t, b.objs, "ResourceQuota", "loomguard-critical-pods"), &quota)
			if quota.Spec.ScopeSelector == nil || !slices.Contains(quota.Spec.ScopeSelector.MatchExpressions[0].Values, pod.PriorityClassName) {
				fail("ResourceQuota %+v does not admit the priority class %s", quota.Spec, pod.PriorityClassName)
			}
			checkNetworkPolicy(t, b)
			checkBaseRBAC(t, b)
		})
	}
}

func hasPort(c *corev1.Container, name, bind string) bool {
	for _, p := range c.Ports {
		if p.Name == name && strings.HasSuffix(bind, ":"+strconv.Itoa(int(p.ContainerPort))) {
			return true
		}
	}
	return false
}

// checkNetworkPolicy: webhook port open (the API server's address varies), metrics only
// from the monitoring namespace, egress only to the API server and DNS.
func checkNetworkPolicy(t *testing.T, b *bundle) {
	t.Helper()
	var np networkingv1.NetworkPolicy
	into(t, find(t, b.objs, "NetworkPolicy", "loomguard"), &np)
	if !selects(np.Spec.PodSelector.MatchLabels, b.deployment.Spec.Template.Labels) ||
		!slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("NetworkPolicy selects %v with types %v", np.Spec.PodSelector, np.Spec.PolicyTypes)
	}
	ports := func(ps []networkingv1.NetworkPolicyPort) []string {
		var out []string
		for _, p := range ps {
			out = append(out, string(*p.Protocol)+"/"+p.Port.String())
		}
		return out
	}
	type rule struct {
		from  string
		ports []string
	}
	var ingress []rule
	for _, r := range np.Spec.Ingress {
		from := "anywhere"
		if len(r.From) == 1 && r.From[0].NamespaceSelector != nil {
			from = "namespaces " + r.From[0].NamespaceSelector.String()
		} else if len(r.From) > 0 {
			from = "other"
		}
		ingress = append(ingress, rule{from, ports(r.Ports)})
	}
	if len(ingress) != 2 || ingress[0].from != "anywhere" || !slices.Equal(ingress[0].ports, []string{"TCP/9443"}) ||
		!strings.HasPrefix(ingress[1].from, "namespaces ") || !slices.Equal(ingress[1].ports, []string{"TCP/8080"}) {
		t.Errorf("NetworkPolicy ingress %+v: want 9443 from anywhere and 8080 from the monitoring namespace", ingress)
	}
	var egress [][]string
	for _, r := range np.Spec.Egress {
		if len(r.To) > 0 {
			t.Errorf("egress rule %+v: unexpected destination restriction", r)
		}
		egress = append(egress, ports(r.Ports))
	}
	if len(egress) != 2 || !slices.Equal(egress[0], []string{"TCP/443", "TCP/6443"}) || !slices.Equal(egress[1], []string{"UDP/53", "TCP/53"}) {
		t.Errorf("NetworkPolicy egress %v: want the API server (443, 6443) and DNS only", egress)
	}
}

// checkBaseRBAC: the audit reads exactly its kinds, cluster-wide, and writes nothing;
// leader election gets one namespace's Leases.
func checkBaseRBAC(t *testing.T, b *bundle) {
	t.Helper()
	read := []string{"get", "list", "watch"}
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: read},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}, Verbs: read},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs", "cronjobs"}, Verbs: read},
		{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}, Verbs: read},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: read},
	}
	var cr rbacv1.ClusterRole
	into(t, find(t, b.objs, "ClusterRole", "loomguard"), &cr)
	if !equalRules(cr.Rules, want) {
		t.Errorf("ClusterRole loomguard rules %+v, want exactly %+v", cr.Rules, want)
	}
	var le rbacv1.Role
	into(t, find(t, b.objs, "Role", "loomguard-leader-election"), &le)
	wantLE := []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}}}
	if le.Namespace != b.deployment.Namespace || !equalRules(le.Rules, wantLE) {
		t.Errorf("Role loomguard-leader-election in %s: %+v, want %+v", le.Namespace, le.Rules, wantLE)
	}
	checkBinding(t, b, "ClusterRoleBinding", "loomguard", "ClusterRole")
	checkBinding(t, b, "RoleBinding", "loomguard-leader-election", "Role")

	// --metrics-secure: TokenReviews and SubjectAccessReviews for loomguard, get on
	// /metrics for whoever the reader role is bound to.
	var auth rbacv1.ClusterRole
	into(t, find(t, b.objs, "ClusterRole", "loomguard-metrics-auth"), &auth)
	wantAuth := []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}
	if !equalRules(auth.Rules, wantAuth) {
		t.Errorf("ClusterRole loomguard-metrics-auth rules %+v, want exactly %+v", auth.Rules, wantAuth)
	}
	checkBinding(t, b, "ClusterRoleBinding", "loomguard-metrics-auth", "ClusterRole")
	var reader rbacv1.ClusterRole
	into(t, find(t, b.objs, "ClusterRole", "loomguard-metrics-reader"), &reader)
	wantReader := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}
	if !equalRules(reader.Rules, wantReader) {
		t.Errorf("ClusterRole loomguard-metrics-reader rules %+v, want exactly %+v", reader.Rules, wantReader)
	}
	for _, c := range b.deployment.Spec.Template.Spec.Containers {
		if c.Name == "loomguard" && flagValue(t, c.Args, "--metrics-secure") != "true" {
			t.Errorf("container loomguard: --metrics-secure=%q, want true (authenticated HTTPS metrics)", flagValue(t, c.Args, "--metrics-secure"))
		}
	}
	for _, o := range b.objs {
		if o.GetKind() == "ClusterRole" || o.GetKind() == "Role" {
			s := toYAML(t, o.Object)
			if strings.Contains(s, "'*'") || strings.Contains(s, "- delete") || strings.Contains(s, "- escalate") || strings.Contains(s, "- bind") {
				t.Errorf("%s grants a wildcard, delete, escalate or bind", key(o))
			}
		}
	}
}

// TestAuditEventsComponent: the optional component grants creating and patching Events,
// core and events.k8s.io, to loomguard's ServiceAccount, and nothing else.
func TestAuditEventsComponent(t *testing.T) {
	b := decodeBundle(t, kustomizeWith(t, []string{"manifests/overlays/self-managed"}, []string{"manifests/components/audit-events"}))
	var cr rbacv1.ClusterRole
	into(t, find(t, b.objs, "ClusterRole", "loomguard-audit-events"), &cr)
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if !equalRules(cr.Rules, want) {
		t.Errorf("ClusterRole loomguard-audit-events rules %+v, want exactly %+v", cr.Rules, want)
	}
	checkBinding(t, b, "ClusterRoleBinding", "loomguard-audit-events", "ClusterRole")
	// Without the component, nothing grants Events.
	for _, r := range renders() {
		if strings.Contains(r.name, "audit-events") {
			continue
		}
		for _, o := range decode(t, r.render(t)) {
			if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
				continue
			}
			var role rbacv1.ClusterRole
			into(t, o, &role)
			for _, rule := range role.Rules {
				if slices.Contains(rule.Resources, "events") {
					t.Errorf("%s: %s grants Events without the audit-events component", r.name, key(o))
				}
			}
		}
	}
}
