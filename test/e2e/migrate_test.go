package e2e

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/loomguard/loomguard/policies"
	"github.com/loomguard/loomguard/test/cluster"
)

// migrateOutput is `loomguard migrate gatekeeper -o json`.
type migrateOutput struct {
	Config string
	Report struct {
		Summary     struct{ Constraints, Mapped, Partial, Unmapped int }
		Constraints []struct{ Kind, Name, Status, Policy, Action string }
		Mutators    []struct{ Name, Policy, Note string }
	}
	Comparison *struct {
		Summary       struct{ Objects, Constraints, Disagreements int }
		Disagreements []struct {
			Kind, Namespace, Name, Policy, Side string
			Why                                 []string
		}
		Unknown []string
	}
}

// runMigrateCLI runs the real `loomguard migrate gatekeeper --from-cluster` with the
// harness's admin kubeconfig.
func runMigrateCLI(t *testing.T, c *cluster.Cluster, args ...string) (migrateOutput, int, string) {
	t.Helper()
	return runCLIJSON[migrateOutput](t, c, append([]string{"migrate", "gatekeeper", "--from-cluster", "--kubeconfig", c.Kubeconfig(), "-o", "json"}, args...)...)
}

// TestMigrateGatekeeperFromCluster: Gatekeeper's constraint CRDs (written for the test) are
// installed, Constraints with the status.violations Gatekeeper's audit would write are
// applied next to real Deployments, and the real binary migrates them from the cluster and
// compares: the Pods Gatekeeper reports are followed to their Deployments, where loomguard
// agrees, and the two objects on which the engines differ are listed with their reasons.
func TestMigrateGatekeeperFromCluster(t *testing.T) {
	s := newScenario(t, "e2e-migrate")
	// Admission audits only in the scenario's namespace: the workloads below predate the
	// switch, as they would in a cluster that Gatekeeper governs.
	s.setConfig("namespaces:\n  - names: [" + s.ns + "]\n    action: audit\n")

	// Without Gatekeeper's CRDs there is nothing to read, and the error says so.
	if _, code, stderr := runMigrateCLI(t, s.c); code != 2 || !strings.Contains(stderr, "constraint CRDs are not installed") {
		t.Errorf("without the CRDs: exit %d, stderr:\n%s", code, stderr)
	}
	crds := s.c.RepoPath("test", "e2e", "testdata", "gatekeeper", "crds.yaml")
	mustSucceed(t, s.c.Kubectl("apply", "-f", crds))
	t.Cleanup(func() {
		if r := s.c.Kubectl("delete", "-f", crds, "--timeout=60s"); !r.OK() {
			t.Errorf("deleting the CRDs: %s", r)
		}
	})
	mustSucceed(t, s.c.Kubectl("wait", "--for", "condition=Established", "--timeout", "30s", "-f", crds))

	// Before any Constraint exists, there is nothing to migrate.
	if _, code, stderr := runMigrateCLI(t, s.c); code != 2 || !strings.Contains(stderr, "no Gatekeeper Constraint found") {
		t.Errorf("without Constraints: exit %d, stderr:\n%s", code, stderr)
	}

	escalates := compliantDeployment("escalates", 1)
	escalates.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	escalates.Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
	escalates.Spec.Template.Spec.SecurityContext.RunAsUser = nil
	escalates.Spec.Template.Spec.Containers[0].SecurityContext.RunAsNonRoot = nil
	flagOnly := compliantDeployment("flag-only", 1)
	flagOnly.Spec.Template.Spec.SecurityContext.RunAsUser = nil
	many := compliantDeployment("many", 6)
	for _, d := range []any{escalates, flagOnly, many} {
		mustSucceed(t, s.apply(d))
	}
	_, _, pods := s.waitForReplicaSetPods("escalates")
	s.waitForReplicaSetPods("flag-only")
	s.waitForReplicaSetPods("many")

	podViolations := func(msg string, ps []corev1.Pod) string {
		var b strings.Builder
		for _, p := range ps {
			fmt.Fprintf(&b, "    - {enforcementAction: deny, group: \"\", version: v1, kind: Pod, namespace: %s, name: %s, message: %q}\n", p.Namespace, p.Name, msg)
		}
		return b.String()
	}
	match := "  match:\n    kinds: [{apiGroups: [\"\"], kinds: [Pod]}]\n    namespaces: [" + s.ns + "]\n"
	objs := "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sPSPAllowPrivilegeEscalationContainer\nmetadata: {name: " + s.ns + "-escalation}\nspec:\n" + match +
		"status:\n  totalViolations: 1\n  violations:\n" + podViolations("Privilege escalation container is not allowed: app", pods) +
		"---\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sPSPAllowedUsers\nmetadata: {name: " + s.ns + "-users}\nspec:\n" + match +
		"  parameters: {runAsUser: {rule: MustRunAsNonRoot}}\nstatus:\n  totalViolations: 1\n  violations:\n" + podViolations("Container app is attempting to run without a required securityContext/runAsNonRoot or securityContext/runAsUser != 0", pods) +
		"---\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sReplicaLimits\nmetadata: {name: " + s.ns + "-replicas}\nspec:\n" +
		"  match:\n    kinds: [{apiGroups: [apps], kinds: [Deployment]}]\n    namespaces: [" + s.ns + "]\n" +
		"  parameters: {ranges: [{min_replicas: 1, max_replicas: 5}]}\nstatus:\n  totalViolations: 1\n  violations:\n" +
		"    - {enforcementAction: deny, group: apps, version: v1, kind: Deployment, namespace: " + s.ns + ", name: many, message: \"The provided number of replicas is not allowed for deployment: many\"}\n" +
		"---\napiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata: {name: config, namespace: " + s.ns + "}\nspec:\n  match:\n    - {excludedNamespaces: [" + s.ns + "-skipped], processes: [\"*\"]}\n" +
		"---\napiVersion: mutation.gatekeeper.sh/v1\nkind: Assign\nmetadata: {name: " + s.ns + "-escalation}\nspec:\n" +
		"  applyTo: [{groups: [\"\"], kinds: [Pod], versions: [v1]}]\n  location: \"spec.containers[name:*].securityContext.allowPrivilegeEscalation\"\n  parameters: {assign: {value: false}}\n"
	mustSucceed(t, s.c.KubectlInput(objs, "apply", "-f", "-"))
	t.Cleanup(func() {
		if r := s.c.KubectlInput(objs, "delete", "-f", "-", "--ignore-not-found"); !r.OK() {
			t.Errorf("deleting the Gatekeeper objects: %s", r)
		}
	})

	// Migrate only: the report and the config.
	out, code, stderr := runMigrateCLI(t, s.c)
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s", code, stderr)
	}
	if got := out.Report.Summary; got.Constraints != 3 || got.Mapped != 1 || got.Partial != 1 || got.Unmapped != 1 {
		t.Errorf("summary %+v; constraints %+v", got, out.Report.Constraints)
	}
	cfg, errs := policies.LoadConfig([]byte(out.Config))
	if len(errs) > 0 {
		t.Fatalf("the migrated config does not load: %v\n%s", errs, out.Config)
	}
	engine, err := policies.NewEngine(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		policy, ns string
		want       policies.Action
	}{
		{"no-privilege-escalation", s.ns, policies.ActionEnforce},
		{"run-as-non-root", s.ns, policies.ActionEnforce},
		{"no-privilege-escalation", "elsewhere", policies.ActionOff},
		{"image-tag", s.ns, policies.ActionOff},
	} {
		if got := engine.Action(c.policy, c.ns); got != c.want {
			t.Errorf("%s in %s = %s, want %s", c.policy, c.ns, got, c.want)
		}
	}
	if !engine.Exempt(s.ns + "-skipped") {
		t.Errorf("the Config's excluded namespace is not exempt")
	}
	if f := cfg.Policies.NoPrivilegeEscalation.Fix; f == nil || !*f {
		t.Errorf("no-privilege-escalation fix = %v, want true (the Assign sets what it sets)", f)
	}

	// Compare: the Pods Gatekeeper reports are followed to their Deployment.
	out, code, stderr = runMigrateCLI(t, s.c, "--compare")
	if code != 1 || out.Comparison == nil {
		t.Fatalf("compare: exit %d (want 1)\n%s", code, stderr)
	}
	type key struct{ obj, policy, side, why string }
	want := []key{
		{"Deployment flag-only", "run-as-non-root", "loomguard", "requires both"},
		{"Deployment many", "", "gatekeeper", "no loomguard counterpart"},
	}
	var got []key
	for _, d := range out.Comparison.Disagreements {
		if d.Namespace != s.ns {
			continue
		}
		got = append(got, key{d.Kind + " " + d.Name, d.Policy, d.Side, strings.Join(d.Why, "\n")})
	}
	if len(got) != len(want) {
		t.Fatalf("disagreements in %s: %+v, want %+v", s.ns, got, want)
	}
	for i := range want {
		if got[i].obj != want[i].obj || got[i].policy != want[i].policy || got[i].side != want[i].side || !strings.Contains(got[i].why, want[i].why) {
			t.Errorf("disagreement %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, u := range out.Comparison.Unknown {
		if strings.Contains(u, s.ns) {
			t.Errorf("not compared: %s (the Pods should resolve to their Deployment)", u)
		}
	}
}
