package gatekeeper

import (
	"os"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
)

// objects decodes a multi-document YAML of Gatekeeper objects.
func objects(t *testing.T, docs string) []Object {
	t.Helper()
	var out []Object
	for i, d := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(d) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		out = append(out, Object{Source: "test.yaml#" + string(rune('0'+i)), Obj: u})
	}
	return out
}

// constraint writes a Pod-kind Constraint with parameters and extra spec lines.
func constraint(kind, params string, spec ...string) string {
	s := "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: " + kind + "\nmetadata: {name: c}\nspec:\n" +
		"  match:\n    kinds: [{apiGroups: [\"\"], kinds: [Pod]}]\n"
	for _, l := range spec {
		s += "  " + l + "\n"
	}
	if params != "" {
		s += "  parameters: " + params + "\n"
	}
	return s
}

// migrate runs Migrate and checks that the config renders, loads back and builds an engine.
func migrate(t *testing.T, docs string, opts Options) (*Result, *policies.Engine) {
	t.Helper()
	res, err := Migrate(objects(t, docs), opts)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	y, err := ConfigYAML(res.Config, "test")
	if err != nil {
		t.Fatalf("ConfigYAML: %v", err)
	}
	if _, errs := policies.LoadConfig(y); len(errs) > 0 {
		t.Fatalf("the config does not load: %v\n%s", errs, y)
	}
	e, err := policies.NewEngine(res.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res, e
}

func containsAll(t *testing.T, what string, got []string, want []string) {
	t.Helper()
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
			t.Errorf("%s: none of %q contains %q", what, got, w)
		}
	}
}

// TestKinds maps one Constraint of each supported kind and parameter, and of each partial
// and unmapped case.
func TestKinds(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		status  Status
		policy  string
		check   func(*policies.PolicyConfigs) bool
		lost    []string
		instead string
	}{{
		name:   "required labels with an alternation of values",
		doc:    strings.Replace(constraint("K8sRequiredLabels", `{labels: [{key: owner, allowedRegex: "^(team-a|team-b)$"}, {key: app}]}`), "kinds: [Pod]", "kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob]", 1),
		status: Mapped, policy: "required-labels",
		check: func(pc *policies.PolicyConfigs) bool {
			return slices.Equal(pc.RequiredLabels.Labels, []string{"owner", "app"}) &&
				slices.Equal(pc.RequiredLabels.AllowedValues["owner"], []string{"team-a", "team-b"}) && len(pc.RequiredLabels.AllowedValues) == 1
		},
	}, {
		name:   "required labels with a pattern",
		doc:    constraint("K8sRequiredLabels", `{labels: [{key: owner, allowedRegex: "^team-.*$"}]}`),
		status: Partial, policy: "required-labels",
		check: func(pc *policies.PolicyConfigs) bool { return len(pc.RequiredLabels.AllowedValues) == 0 },
		lost:  []string{`allowedRegex "^team-.*$"`, "every workload kind, not only Pod"},
	}, {
		name:    "required labels on Namespaces",
		doc:     strings.Replace(constraint("K8sRequiredLabels", `{labels: [{key: owner}]}`), "kinds: [Pod]", "kinds: [Namespace]", 1),
		status:  Unmapped,
		instead: "matches Namespace, which loomguard does not govern",
	}, {
		name:   "required labels on Namespaces and Deployments",
		doc:    strings.Replace(constraint("K8sRequiredLabels", `{labels: [{key: owner}]}`), "kinds: [Pod]", "kinds: [Namespace, Deployment]", 1),
		status: Partial, policy: "required-labels",
		lost: []string{"labels of Namespace are not checked", "not only Deployment"},
	}, {
		name:   "container limits with maxima",
		doc:    constraint("K8sContainerLimits", `{cpu: "2", memory: 1Gi}`),
		status: Partial, policy: "resource-limits",
		check: func(pc *policies.PolicyConfigs) bool { return pc.ResourceLimits.MaxLimitRequestRatio == 0 },
		lost:  []string{"maximum cpu limit of 2", "maximum memory limit of 1Gi", "also requires a cpu request, a memory request"},
	}, {
		name:   "container requests",
		doc:    constraint("K8sContainerRequests", `{cpu: 500m}`),
		status: Partial, policy: "resource-limits",
		lost: []string{"maximum cpu request of 500m", "also requires a cpu limit, a memory limit"},
	}, {
		name:   "required resources, all four",
		doc:    constraint("K8sRequiredResources", `{limits: [cpu, memory], requests: [cpu, memory]}`),
		status: Mapped, policy: "resource-limits",
	}, {
		name:   "required resources, cpu limit only",
		doc:    constraint("K8sRequiredResources", `{limits: [cpu]}`),
		status: Partial, policy: "resource-limits",
		lost: []string{"also requires a cpu request, a memory request, a memory limit"},
	}, {
		name:   "ratio",
		doc:    constraint("K8sContainerRatios", `{ratio: "2"}`),
		status: Partial, policy: "resource-limits",
		check: func(pc *policies.PolicyConfigs) bool { return pc.ResourceLimits.MaxLimitRequestRatio == 2 },
	}, {
		name:   "ratio and a smaller cpu ratio",
		doc:    constraint("K8sContainerRatios", `{ratio: 3, cpuRatio: "1.5"}`),
		status: Partial, policy: "resource-limits",
		check: func(pc *policies.PolicyConfigs) bool { return pc.ResourceLimits.MaxLimitRequestRatio == 1.5 },
		lost:  []string{"cpuRatio 1.5 next to ratio 3"},
	}, {
		name:   "ratio below one",
		doc:    constraint("K8sContainerRatios", `{ratio: "0.5"}`),
		status: Partial, policy: "resource-limits",
		check: func(pc *policies.PolicyConfigs) bool { return pc.ResourceLimits.MaxLimitRequestRatio == 1 },
		lost:  []string{"ratio 0.5 is below 1"},
	}, {
		name:   "disallowed tags",
		doc:    constraint("K8sDisallowedTags", `{tags: [latest, dev]}`),
		status: Partial, policy: "image-tag",
		check: func(pc *policies.PolicyConfigs) bool {
			return slices.Equal(pc.ImageTag.ForbiddenTags, []string{"latest", "dev"}) && len(pc.ImageTag.AllowedRegistries) == 0
		},
		lost: []string{"registry port but no tag"},
	}, {
		name:   "exempt images",
		doc:    constraint("K8sDisallowedTags", `{tags: [latest], exemptImages: ["ghcr.io/acme/debug:*"]}`),
		status: Partial, policy: "image-tag",
		lost: []string{"exemptImages ghcr.io/acme/debug:*: loomguard waives by workload"},
	}, {
		name:   "required labels with a message",
		doc:    strings.Replace(constraint("K8sRequiredLabels", `{message: "label it", labels: [{key: owner}]}`), "kinds: [Pod]", "kinds: [Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob]", 1),
		status: Mapped, policy: "required-labels",
	}, {
		name:   "image digests",
		doc:    constraint("K8sImageDigests", ""),
		status: Mapped, policy: "image-tag",
		check: func(pc *policies.PolicyConfigs) bool {
			return pc.ImageTag.RequireDigest && len(pc.ImageTag.ForbiddenTags) == 0
		},
	}, {
		name:   "allowed repos",
		doc:    constraint("K8sAllowedRepos", `{repos: ["ghcr.io/acme/", openpolicyagent, "quay.io/x:1"]}`),
		status: Partial, policy: "image-tag",
		check: func(pc *policies.PolicyConfigs) bool {
			return slices.Equal(pc.ImageTag.AllowedRegistries, []string{"ghcr.io/acme", "docker.io/openpolicyagent", "docker.io/library/openpolicyagent"})
		},
		lost: []string{`repo "quay.io/x:1" names part of a tag`, "plain string prefixes", "also requires an explicit tag or digest"},
	}, {
		name:   "required probes, liveness only, with types",
		doc:    constraint("K8sRequiredProbes", `{probes: [livenessProbe], probeTypes: [httpGet]}`),
		status: Partial, policy: "health-probes",
		lost: []string{"probeTypes httpGet", "Jobs, CronJobs", "also requires a readinessProbe"},
	}, {
		name:    "replica limits",
		doc:     constraint("K8sReplicaLimits", `{ranges: [{min_replicas: 2, max_replicas: 5}]}`),
		status:  Unmapped,
		instead: "ValidatingAdmissionPolicy on spec.replicas",
	}, {
		name:   "privileged alone",
		doc:    constraint("K8sPSPPrivilegedContainer", ""),
		status: Partial, policy: "no-privilege-escalation",
		lost: []string{"also requires allowPrivilegeEscalation: false"},
	}, {
		name:   "privilege escalation",
		doc:    constraint("K8sPSPAllowPrivilegeEscalationContainer", ""),
		status: Mapped, policy: "no-privilege-escalation",
	}, {
		name:   "capabilities: drop ALL, allow two",
		doc:    constraint("K8sPSPCapabilities", `{requiredDropCapabilities: [all], allowedCapabilities: [NET_BIND_SERVICE, cap_chown]}`),
		status: Partial, policy: "drop-all-capabilities",
		check: func(pc *policies.PolicyConfigs) bool {
			return slices.Equal(pc.DropAllCapabilities.AllowedAdd, []string{"NET_BIND_SERVICE", "CHOWN"})
		},
		lost: []string{"containerPort below 1024"},
	}, {
		name:   "capabilities: drop one, allow any",
		doc:    constraint("K8sPSPCapabilities", `{requiredDropCapabilities: [NET_RAW], allowedCapabilities: ["*"]}`),
		status: Partial, policy: "drop-all-capabilities",
		check: func(pc *policies.PolicyConfigs) bool { return len(pc.DropAllCapabilities.AllowedAdd) == 0 },
		lost:  []string{"requiredDropCapabilities NET_RAW", `allowedCapabilities "*"`, "also requires capabilities.add only from allowedAdd"},
	}, {
		name:   "capabilities: nothing to drop",
		doc:    constraint("K8sPSPCapabilities", `{allowedCapabilities: [CHOWN]}`),
		status: Partial, policy: "drop-all-capabilities",
		lost: []string{`also requires capabilities.drop including "ALL"`},
	}, {
		name:   "read-only root",
		doc:    constraint("K8sPSPReadOnlyRootFilesystem", ""),
		status: Mapped, policy: "read-only-root-filesystem",
	}, {
		name:   "host namespaces alone",
		doc:    constraint("K8sPSPHostNamespace", ""),
		status: Partial, policy: "host-isolation",
		lost: []string{"also requires no hostNetwork, no hostPath volume, no hostPort"},
	}, {
		name:   "host network allowed, ports in a range",
		doc:    constraint("K8sPSPHostNetworkingPorts", `{hostNetwork: true, min: 80, max: 9000}`),
		status: Partial, policy: "host-isolation",
		lost: []string{"hostNetwork: true allows", "from 80 to 9000 are allowed"},
	}, {
		name:   "host paths allowed under a prefix",
		doc:    constraint("K8sPSPHostFilesystem", `{allowedHostPaths: [{pathPrefix: /var/log, readOnly: true}]}`),
		status: Partial, policy: "host-isolation",
		lost: []string{`under "/var/log" are allowed`},
	}, {
		name:   "seccomp runtime default",
		doc:    constraint("K8sPSPSeccomp", `{allowedProfiles: [runtime/default, docker/default]}`),
		status: Mapped, policy: "seccomp-profile",
		check: func(pc *policies.PolicyConfigs) bool {
			return slices.Equal(pc.SeccompProfile.AllowedTypes, []string{"RuntimeDefault"})
		},
	}, {
		name:   "seccomp localhost files",
		doc:    constraint("K8sPSPSeccomp", `{allowedProfiles: [Localhost], allowedLocalhostFiles: [profiles/a.json]}`),
		status: Partial, policy: "seccomp-profile",
		check: func(pc *policies.PolicyConfigs) bool {
			return slices.Equal(pc.SeccompProfile.AllowedTypes, []string{"Localhost"})
		},
		lost: []string{"any Localhost profile"},
	}, {
		name:   "seccomp unconfined",
		doc:    constraint("K8sPSPSeccomp", `{allowedProfiles: [unconfined]}`),
		status: Partial, policy: "seccomp-profile",
		check: func(pc *policies.PolicyConfigs) bool {
			return slices.Equal(pc.SeccompProfile.AllowedTypes, []string{"RuntimeDefault"})
		},
		lost: []string{"Unconfined is allowed by Gatekeeper"},
	}, {
		name:    "seccomp anything",
		doc:     constraint("K8sPSPSeccomp", `{allowedProfiles: ["*"]}`),
		status:  Unmapped,
		instead: "nothing to enforce",
	}, {
		name:   "users must run as non-root",
		doc:    constraint("K8sPSPAllowedUsers", `{runAsUser: {rule: MustRunAsNonRoot}}`),
		status: Partial, policy: "run-as-non-root",
		lost: []string{"requires both"},
	}, {
		name:   "users in a range, with groups",
		doc:    constraint("K8sPSPAllowedUsers", `{runAsUser: {rule: MustRunAs, ranges: [{min: 0, max: 200}]}, fsGroup: {rule: MustRunAs, ranges: [{min: 1, max: 9}]}}`),
		status: Partial, policy: "run-as-non-root",
		lost: []string{"UID ranges 0-200", "includes UID 0", "fsGroup MustRunAs"},
	}, {
		name:    "groups only",
		doc:     constraint("K8sPSPAllowedUsers", `{runAsUser: {rule: RunAsAny}, runAsGroup: {rule: MustRunAs, ranges: [{min: 1, max: 9}]}}`),
		status:  Unmapped,
		instead: "does not restrict group IDs; keep a ValidatingAdmissionPolicy",
	}, {
		name:   "volume types without hostPath",
		doc:    constraint("K8sPSPVolumeTypes", `{volumes: [configMap, secret]}`),
		status: Partial, policy: "host-isolation",
		lost: []string{"no allow-list of volume types (configMap, secret)", "also requires no hostNetwork"},
	}, {
		name:    "volume types with hostPath",
		doc:     constraint("K8sPSPVolumeTypes", `{volumes: [configMap, hostPath]}`),
		status:  Unmapped,
		instead: "restrictedVolumes control",
	}, {
		name:    "every volume type",
		doc:     constraint("K8sPSPVolumeTypes", `{volumes: ["*"]}`),
		status:  Unmapped,
		instead: "nothing to enforce",
	}, {
		name:    "a Pod Security Standards kind",
		doc:     constraint("K8sPSPAppArmor", `{allowedProfiles: [runtime/default]}`),
		status:  Unmapped,
		instead: "appArmorProfile control of the Pod Security Standards, but only as part of a whole level: set policies.pod-security.level to baseline",
	}, {
		name:    "a kind loomguard does not know",
		doc:     constraint("K8sSomethingElse", ""),
		status:  Unmapped,
		instead: "no policy for this constraint kind",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, e := migrate(t, tt.doc, Options{})
			if len(res.Report.Constraints) != 1 {
				t.Fatalf("report: %+v", res.Report)
			}
			got := res.Report.Constraints[0]
			if got.Status != tt.status || got.Policy != tt.policy {
				t.Errorf("status %s, policy %q; want %s, %q\n%+v", got.Status, got.Policy, tt.status, tt.policy, got)
			}
			if tt.check != nil && !tt.check(&res.Config.Policies) {
				t.Errorf("parameters: %+v", res.Config.Policies)
			}
			containsAll(t, "lost", got.Lost, tt.lost)
			if !strings.Contains(got.Instead, tt.instead) {
				t.Errorf("instead = %q, want it to contain %q", got.Instead, tt.instead)
			}
			for _, p := range e.Policies() {
				want := policies.ActionOff
				if p.ID == tt.policy {
					want = policies.ActionEnforce
				}
				if a := e.Action(p.ID, "any"); a != want {
					t.Errorf("%s: action %s, want %s", p.ID, a, want)
				}
			}
			for _, r := range policies.Registry() {
				if s := r.Config(&res.Config.Policies).Common(); s.Fix == nil || *s.Fix {
					t.Errorf("%s: fix %v, want false: no Assign asked for it", r.ID, s.Fix)
				}
			}
		})
	}
}

// TestCoverage: Constraints that together require everything a policy checks are mapped.
func TestCoverage(t *testing.T) {
	res, _ := migrate(t, constraint("K8sPSPHostNamespace", "")+"---\n"+
		strings.Replace(constraint("K8sPSPHostNetworkingPorts", `{hostNetwork: false, min: 0, max: 0}`), "name: c", "name: ports", 1)+"---\n"+
		strings.Replace(constraint("K8sPSPHostFilesystem", `{allowedHostPaths: []}`), "name: c", "name: paths", 1), Options{})
	for _, e := range res.Report.Constraints {
		if e.Status != Mapped {
			t.Errorf("%s/%s: %s %v", e.Kind, e.Name, e.Status, e.Lost)
		}
	}
}

// TestCoverageByScope: a Constraint covers another's missing requirements only where it
// applies too.
func TestCoverageByScope(t *testing.T) {
	doc := strings.Replace(constraint("K8sPSPPrivilegedContainer", ""), "kinds: [Pod]}]", "kinds: [Pod]}]\n    namespaces: [a]", 1) + "---\n" +
		strings.Replace(strings.Replace(constraint("K8sPSPAllowPrivilegeEscalationContainer", ""), "kinds: [Pod]}]", "kinds: [Pod]}]\n    namespaces: [b]", 1), "name: c", "name: d", 1)
	res, _ := migrate(t, doc, Options{})
	got := map[string]Status{}
	for _, e := range res.Report.Constraints {
		got[e.Kind] = e.Status
	}
	if got["K8sPSPPrivilegedContainer"] != Partial || got["K8sPSPAllowPrivilegeEscalationContainer"] != Mapped {
		t.Errorf("statuses %v: in namespace a loomguard also requires allowPrivilegeEscalation: false", got)
	}
	res, _ = migrate(t, strings.Replace(doc, "namespaces: [b]", "namespaces: [a, b]", 1), Options{})
	for _, e := range res.Report.Constraints {
		if e.Status != Mapped {
			t.Errorf("%s: %s %v, want mapped: the other Constraint applies wherever it does", e.Kind, e.Status, e.Lost)
		}
	}
}

// TestScopes carries enforcement actions and namespace matches over.
func TestScopes(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		policy string
		want   map[string]policies.Action // namespace -> action
		lost   []string
		notes  []string
	}{{
		name:   "warn in two namespaces",
		doc:    constraint("K8sPSPAllowPrivilegeEscalationContainer", "", "enforcementAction: warn", "match: {kinds: [{apiGroups: [\"\"], kinds: [Pod]}], namespaces: [a, b]}"),
		policy: "no-privilege-escalation",
		want:   map[string]policies.Action{"a": policies.ActionWarn, "b": policies.ActionWarn, "c": policies.ActionOff},
		notes:  []string{"matches Pods"},
	}, {
		name:   "dryrun except one namespace",
		doc:    constraint("K8sPSPAllowPrivilegeEscalationContainer", "", "enforcementAction: dryrun", "match: {excludedNamespaces: [x]}"),
		policy: "no-privilege-escalation",
		want:   map[string]policies.Action{"x": policies.ActionOff, "y": policies.ActionAudit},
	}, {
		name:   "a glob minus a name",
		doc:    constraint("K8sPSPAllowPrivilegeEscalationContainer", "", "match: {namespaces: [\"team-*\"], excludedNamespaces: [team-x]}"),
		policy: "no-privilege-escalation",
		want:   map[string]policies.Action{"team-x": policies.ActionOff, "team-y": policies.ActionEnforce, "other": policies.ActionOff},
	}, {
		name:   "selectors and a name",
		doc:    constraint("K8sPSPAllowPrivilegeEscalationContainer", "", "match: {labelSelector: {matchLabels: {a: b}}, namespaceSelector: {matchLabels: {c: d}}, name: web}"),
		policy: "no-privilege-escalation",
		want:   map[string]policies.Action{"any": policies.ActionEnforce},
		lost:   []string{"match.labelSelector", "match.namespaceSelector", `match.name "web"`},
	}, {
		name:   "Deployments only",
		doc:    constraint("K8sPSPAllowPrivilegeEscalationContainer", "", "match: {kinds: [{apiGroups: [apps], kinds: [Deployment]}]}"),
		policy: "no-privilege-escalation",
		want:   map[string]policies.Action{"any": policies.ActionEnforce},
		lost:   []string{"matches Deployment only"},
	}, {
		name:   "cluster scope",
		doc:    constraint("K8sPSPAllowPrivilegeEscalationContainer", "", "match: {scope: Cluster}"),
		policy: "no-privilege-escalation",
		want:   map[string]policies.Action{"any": policies.ActionEnforce},
		lost:   []string{"match.scope Cluster"},
	}, {
		name: "scoped enforcement actions",
		doc: constraint("K8sPSPAllowPrivilegeEscalationContainer", "", "enforcementAction: scoped",
			"scopedEnforcementActions: [{action: warn, enforcementPoints: [{name: validation.gatekeeper.sh}]}, {action: deny, enforcementPoints: [{name: audit.gatekeeper.sh}]}]"),
		policy: "no-privilege-escalation",
		want:   map[string]policies.Action{"any": policies.ActionWarn},
		lost:   []string{"enforcementAction scoped"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// the match given replaces constraint()'s default one
			doc := tt.doc
			if strings.Count(doc, "match:") > 1 {
				doc = strings.Replace(doc, "  match:\n    kinds: [{apiGroups: [\"\"], kinds: [Pod]}]\n", "", 1)
			}
			res, e := migrate(t, doc, Options{})
			for ns, want := range tt.want {
				if got := e.Action(tt.policy, ns); got != want {
					t.Errorf("%s in %s = %s, want %s\n%+v", tt.policy, ns, got, want, res.Config.Namespaces)
				}
			}
			entry := res.Report.Constraints[0]
			containsAll(t, "lost", entry.Lost, tt.lost)
			containsAll(t, "notes", entry.Notes, tt.notes)
		})
	}
}

// TestConflicts resolves several Constraints on one policy to the stricter action, and
// reports where.
func TestConflicts(t *testing.T) {
	doc := constraint("K8sPSPAllowPrivilegeEscalationContainer", "", "enforcementAction: warn") + "---\n" +
		strings.Replace(constraint("K8sPSPPrivilegedContainer", "", "enforcementAction: deny"), "kinds: [Pod]}]", "kinds: [Pod]}]\n    namespaces: [prod]", 1)
	res, e := migrate(t, doc, Options{})
	if a := e.Action("no-privilege-escalation", "prod"); a != policies.ActionEnforce {
		t.Errorf("prod: %s, want enforce", a)
	}
	if a := e.Action("no-privilege-escalation", "dev"); a != policies.ActionWarn {
		t.Errorf("dev: %s, want warn", a)
	}
	if len(res.Report.Conflicts) != 1 || res.Report.Conflicts[0].Where != "prod" || res.Report.Conflicts[0].Resolved != policies.ActionEnforce {
		t.Errorf("conflicts: %+v", res.Report.Conflicts)
	}
}

// TestMergedParameters: loomguard has one set of parameters per policy.
func TestMergedParameters(t *testing.T) {
	doc := constraint("K8sContainerRatios", `{ratio: "3"}`) + "---\n" +
		strings.Replace(constraint("K8sContainerRatios", `{ratio: "2"}`), "name: c", "name: d", 1)
	res, _ := migrate(t, doc, Options{})
	if r := res.Config.Policies.ResourceLimits.MaxLimitRequestRatio; r != 2 {
		t.Errorf("ratio %g, want the smaller, 2", r)
	}
	for _, e := range res.Report.Constraints {
		containsAll(t, e.Name, e.Lost, []string{"one set of resource-limits parameters"})
	}
}

// TestExemptions carries Gatekeeper's Config over.
func TestExemptions(t *testing.T) {
	doc := constraint("K8sPSPReadOnlyRootFilesystem", "") + `---
apiVersion: config.gatekeeper.sh/v1alpha1
kind: Config
metadata: {name: config, namespace: gatekeeper-system}
spec:
  match:
  - excludedNamespaces: [ops, "tmp-*"]
    processes: ["*"]
  - excludedNamespaces: [hooks]
    processes: [webhook]
  - excludedNamespaces: [reports]
    processes: [audit]
`
	res, e := migrate(t, doc, Options{})
	for ns, exempt := range map[string]bool{"ops": true, "hooks": true, "reports": false} {
		if e.Exempt(ns) != exempt {
			t.Errorf("%s exempt = %v, want %v", ns, e.Exempt(ns), exempt)
		}
	}
	if a := e.Action("read-only-root-filesystem", "tmp-1"); a != policies.ActionOff {
		t.Errorf("tmp-1: %s, want off (exempt by glob)", a)
	}
	if a := e.Action("read-only-root-filesystem", "reports"); a != policies.ActionEnforce {
		t.Errorf("reports: %s, want enforce", a)
	}
	if len(res.Report.Exemptions) != 4 {
		t.Errorf("exemptions: %+v", res.Report.Exemptions)
	}
}

// TestMutators turns a fix on only where an Assign did the same and the policy runs.
func TestMutators(t *testing.T) {
	assign := func(name, loc, value string) string {
		return "apiVersion: mutation.gatekeeper.sh/v1\nkind: Assign\nmetadata: {name: " + name + "}\nspec:\n  location: \"" + loc +
			"\"\n  parameters: {assign: {value: " + value + "}}\n"
	}
	doc := constraint("K8sPSPAllowPrivilegeEscalationContainer", "") + "---\n" +
		strings.Replace(constraint("K8sPSPAllowedUsers", `{runAsUser: {rule: MustRunAsNonRoot}}`), "name: c", "name: users", 1) + "---\n" +
		assign("ape", "spec.containers[name:*].securityContext.allowPrivilegeEscalation", "false") + "  match: {namespaces: [web]}\n---\n" +
		assign("uid", "spec.template.spec.securityContext.runAsUser", "2000") + "---\n" +
		assign("ro", "spec.containers[name:*].securityContext.readOnlyRootFilesystem", "true") + "---\n" +
		assign("other", "spec.dnsPolicy", "Default") + "---\n" +
		"apiVersion: mutation.gatekeeper.sh/v1\nkind: AssignMetadata\nmetadata: {name: meta}\nspec: {location: metadata.labels.owner}\n"
	res, _ := migrate(t, doc, Options{})
	pc := &res.Config.Policies
	if f := pc.NoPrivilegeEscalation.Fix; f == nil || !*f {
		t.Errorf("no-privilege-escalation fix %v, want true", f)
	}
	if f := pc.RunAsNonRoot.Fix; f == nil || !*f || pc.RunAsNonRoot.RunAsUser != 2000 {
		t.Errorf("run-as-non-root fix %v, runAsUser %d; want true, 2000", f, pc.RunAsNonRoot.RunAsUser)
	}
	if f := pc.ReadOnlyRootFilesystem.Fix; f == nil || *f {
		t.Errorf("read-only-root-filesystem fix %v, want false: no Constraint enforces it", f)
	}
	notes := map[string]string{}
	for _, m := range res.Report.Mutators {
		notes[m.Name] = m.Note
	}
	for name, want := range map[string]string{"ape": "its match.namespaces is not", "uid": "carried over", "ro": "no Constraint enforces",
		"other": "no loomguard fix sets", "meta": "never invent"} {
		if !strings.Contains(notes[name], want) {
			t.Errorf("%s: %q, want it to contain %q", name, notes[name], want)
		}
	}
}

// TestWithLoomProfile keeps the Loom profile on: the stricter action and parameters win.
func TestWithLoomProfile(t *testing.T) {
	doc := constraint("K8sContainerRatios", `{ratio: "8"}`, "enforcementAction: dryrun") + "---\n" +
		strings.Replace(constraint("K8sPSPSeccomp", `{allowedProfiles: [RuntimeDefault]}`, "enforcementAction: warn"), "name: c", "name: s", 1)
	res, e := migrate(t, doc, Options{WithLoomProfile: true})
	if r := res.Config.Policies.ResourceLimits.MaxLimitRequestRatio; r != 5 {
		t.Errorf("ratio %g, want Loom's 5 (the stricter)", r)
	}
	for id, want := range map[string]policies.Action{"resource-limits": policies.ActionEnforce, "seccomp-profile": policies.ActionEnforce,
		"health-probes": policies.ActionWarn, "high-availability": policies.ActionAudit, "secret-env": policies.ActionEnforce} {
		if a := e.Action(id, "any"); a != want {
			t.Errorf("%s: %s, want %s", id, a, want)
		}
	}
	if len(res.Report.Consider) != 0 {
		t.Errorf("consider: %+v, want none with the profile on", res.Report.Consider)
	}
	if got := res.Config.Policies.RequiredLabels.Labels; len(got) != 3 {
		t.Errorf("labels %v, want Loom's", got)
	}
}

// TestFaithfulDefault: without the profile every policy without a Constraint is off and listed.
func TestFaithfulDefault(t *testing.T) {
	res, _ := migrate(t, constraint("K8sPSPReadOnlyRootFilesystem", ""), Options{})
	var ids []string
	for _, c := range res.Report.Consider {
		ids = append(ids, c.Policy)
	}
	if slices.Contains(ids, "read-only-root-filesystem") || !slices.Contains(ids, "secret-env") || len(ids) != len(policies.Registry())-1 {
		t.Errorf("consider: %v", ids)
	}
}

// TestInputErrors names the object and the field of every problem.
func TestInputErrors(t *testing.T) {
	doc := constraint("K8sRequiredLabels", `{labels: [{allowedRegex: x}]}`, "enforcementAction: nope") + "---\n" +
		strings.Replace(constraint("K8sContainerRatios", `{ratio: many}`), "name: c", "name: r", 1) + "---\n" +
		"apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata: {name: config}\nspec: {match: [{excludedNamespaces: ns}]}\n"
	_, err := Migrate(objects(t, doc), Options{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`K8sRequiredLabels "c": spec.enforcementAction: Unsupported value: "nope"`,
		`K8sRequiredLabels "c": spec.parameters.labels[0].key: Required value`,
		`K8sContainerRatios "r": spec.parameters.ratio: Invalid value: "many"`,
		`Config "config": spec.match[0].excludedNamespaces: Invalid value`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error:\n%v\nwant it to contain %q", err, want)
		}
	}
}

func TestLiteralAlternatives(t *testing.T) {
	tests := []struct {
		re   string
		want []string
	}{
		{"^(a|b)$", []string{"a", "b"}},
		{"^(?:prod|staging)$", []string{"prod", "staging"}},
		{"^team-a$", []string{"team-a"}},
		{`^v1\.2$`, []string{"v1.2"}},
		{"^a|b$", nil},
		{"(a|b)", nil},
		{"^v1.2$", nil},
		{"^team-.*$", nil},
		{"^(a|)$", nil},
		{"^([a-z]+)$", nil},
	}
	for _, tt := range tests {
		got, ok := literalAlternatives(tt.re)
		if ok != (tt.want != nil) || !slices.Equal(got, tt.want) {
			t.Errorf("literalAlternatives(%q) = %v, %v; want %v", tt.re, got, ok, tt.want)
		}
	}
}

func TestRegistryPrefixes(t *testing.T) {
	tests := []struct {
		repo string
		want []string
		lost bool
	}{
		{"ghcr.io/acme/", []string{"ghcr.io/acme"}, false},
		{"localhost:5000", []string{"localhost:5000"}, false},
		{"docker.io", []string{"docker.io"}, false},
		{"nginx", []string{"docker.io/nginx", "docker.io/library/nginx"}, false},
		{"acme/app", []string{"docker.io/acme/app"}, false},
		{"nginx:1.", nil, true},
		{"", nil, true},
	}
	for _, tt := range tests {
		got, lost := registryPrefixes(tt.repo)
		if !slices.Equal(got, tt.want) || (lost != "") != tt.lost {
			t.Errorf("registryPrefixes(%q) = %v, %q", tt.repo, got, lost)
		}
	}
}

// TestCompareResolvesOwners: Gatekeeper reports the Pods of a Deployment, loomguard the
// Deployment; the resolver brings both to the Deployment, where they agree.
func TestCompareResolvesOwners(t *testing.T) {
	doc := constraint("K8sPSPReadOnlyRootFilesystem", "") + `status:
  totalViolations: 2
  violations:
  - {kind: Pod, namespace: ns, name: web-5d4f-abcde, message: "only a read-only root file system is allowed"}
  - {kind: Pod, namespace: ns, name: orphan, message: "only a read-only root file system is allowed"}
`
	res, _ := migrate(t, doc, Options{})
	verdicts := []Verdict{
		{Kind: "Deployment", Namespace: "ns", Name: "web", Violations: []policies.Violation{{Policy: "read-only-root-filesystem", Action: policies.ActionEnforce,
			Error: fieldErr("spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem")}}},
		{Kind: "Deployment", Namespace: "ns", Name: "api", Violations: []policies.Violation{{Policy: "read-only-root-filesystem", Action: policies.ActionEnforce,
			Error: fieldErr("spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem")}}},
	}
	resolve := func(k ObjectKey) (ObjectKey, bool) {
		if k.Name == "web-5d4f-abcde" {
			return ObjectKey{"Deployment", "ns", "web"}, true
		}
		return k, false
	}
	c := Compare(res, verdicts, resolve)
	if c.Summary.Disagreements != 1 || c.Disagreements[0].Name != "api" || c.Disagreements[0].Side != "loomguard" {
		t.Errorf("disagreements: %+v", c.Disagreements)
	}
	containsAll(t, "why", c.Disagreements[0].Why, []string{"matches Pods: Gatekeeper would report the Pods the Deployment creates"})
	containsAll(t, "unknown", c.Unknown, []string{"Pod ns/orphan, which is not in the input"})
}

func fieldErr(path string) *field.Error {
	return field.Required(field.NewPath(path), "must be true")
}

// TestMaxAction caps every migrated action, namespace overrides included.
func TestMaxAction(t *testing.T) {
	doc := strings.Replace(constraint("K8sPSPAllowPrivilegeEscalationContainer", "", "enforcementAction: warn"), "kinds: [Pod]}]", "kinds: [Pod]}]\n    namespaces: [a]", 1) + "---\n" +
		strings.Replace(constraint("K8sPSPReadOnlyRootFilesystem", ""), "name: c", "name: ro", 1)
	_, e := migrate(t, doc, Options{MaxAction: policies.ActionAudit})
	for _, c := range []struct {
		policy, ns string
		want       policies.Action
	}{
		{"no-privilege-escalation", "a", policies.ActionAudit},
		{"no-privilege-escalation", "b", policies.ActionOff},
		{"read-only-root-filesystem", "b", policies.ActionAudit},
	} {
		if got := e.Action(c.policy, c.ns); got != c.want {
			t.Errorf("%s in %s = %s, want %s", c.policy, c.ns, got, c.want)
		}
	}
}

// TestDocsNameEveryKind keeps docs/migrating-from-gatekeeper.md in step with the mapping.
func TestDocsNameEveryKind(t *testing.T) {
	doc, err := os.ReadFile("../docs/migrating-from-gatekeeper.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]bool{keys(kinds), keys(unmappedKinds)} {
		for k := range m {
			if !strings.Contains(string(doc), "`"+k+"`") {
				t.Errorf("docs/migrating-from-gatekeeper.md does not name %s", k)
			}
		}
	}
}

func keys[V any](m map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}
