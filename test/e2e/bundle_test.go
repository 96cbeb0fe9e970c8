package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
	"github.com/loomguard/loomguard/test/cluster"
)

// TestLoomBundle applies the reference Loom bundle as its README says (namespace, the two
// Secrets, then `kubectl apply -k`): every object is admitted without a fix or a warning,
// and the workloads' controllers get their ReplicaSets and Pods through admission too.
func TestLoomBundle(t *testing.T) {
	c := testCluster
	s := &scenario{t: t, c: c, cs: c.Clientset(), ns: "loom"}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("component logs (last lines):\n%s", c.LogTails(25))
		}
	})
	bundle := c.RepoPath("manifests", "examples", "loom")

	// The bundle names its namespace: a repeated run (-count) on the same cluster starts
	// by deleting the previous one.
	if _, err := s.cs.CoreV1().Namespaces().Get(t.Context(), "loom", metav1.GetOptions{}); err == nil {
		mustSucceed(t, c.Kubectl("delete", "namespace", "loom", "--wait=false"))
		if err := poll(2*time.Minute, func(ctx context.Context) error {
			_, err := s.cs.CoreV1().Namespaces().Get(ctx, "loom", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("namespace loom still exists (%v)", err)
		}); err != nil {
			t.Fatal(err)
		}
	}

	mustSucceed(t, c.Kubectl("apply", "-f", bundle+"/00-namespace.yaml"))
	dbPassword := randomHex(t)
	mustSucceed(t, c.Kubectl("-n", "loom", "create", "secret", "generic", "loom-db-credentials",
		"--from-literal=username=loom",
		"--from-literal=password="+dbPassword,
		"--from-literal=url=postgres://loom:"+dbPassword+"@loom-db:5432/loom?sslmode=disable"))
	mustSucceed(t, c.Kubectl("-n", "loom", "create", "secret", "generic", "loom-secrets",
		"--from-literal=loom-password="+randomHex(t),
		"--from-literal=jwt-secret="+randomHex(t)))

	r := c.Kubectl("apply", "-k", bundle)
	mustSucceed(t, r)
	// No fix, no warning: not loomguard's, nor Pod Security's (the namespace enforces
	// "restricted").
	if w := warnings(r); len(w) > 0 {
		t.Fatalf("the bundle must apply without warnings, got %q\n%s", w, r)
	}
	mustContain(t, "kubectl apply -k output", r.Stdout,
		"deployment.apps/loom created", "deployment.apps/temporal created", "statefulset.apps/loom-db created")

	// loom: two replicas, so one ReplicaSet with two Pods, Pending without a kubelet.
	dep, rs, pods := s.waitForReplicaSetPods("loom")
	for _, p := range pods {
		if p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
			t.Errorf("Pod %s: phase %q on node %q, want Pending and unscheduled", p.Name, p.Status.Phase, p.Spec.NodeName)
		}
		if v, ok := p.Annotations[fixedAnnotation]; ok {
			t.Errorf("Pod %s was mutated: %s=%q", p.Name, fixedAnnotation, v)
		}
	}
	t.Logf("Deployment loom: ReplicaSet %s with Pods %s", rs.Name, podNames(pods))

	// Not changed by mutation: no annotation, and the stored pod template is the file's
	// template as the API server defaults it. The reference is a server-side dry run of the
	// file's Deployment in loomguard-system, where the webhooks are never called.
	if v, ok := dep.Annotations[fixedAnnotation]; ok {
		t.Errorf("Deployment loom was mutated: %s=%q", fixedAnnotation, v)
	}
	ref := referenceDeployment(t, c, bundle+"/70-deployment-loom.yaml")
	if !equality.Semantic.DeepEqual(dep.Spec.Template, ref.Spec.Template) {
		t.Errorf("the stored pod template of Deployment loom differs from the file's:\nstored:\n%s\nfile (defaulted):\n%s",
			toYAML(t, dep.Spec.Template), toYAML(t, ref.Spec.Template))
	}

	// temporal (one replica) and loom-db (a StatefulSet) get their Pods too.
	s.waitForReplicaSetPods("temporal")
	eventually(t, "Pod loom/loom-db-0 of StatefulSet loom-db", func(ctx context.Context) error {
		_, err := s.cs.CoreV1().Pods("loom").Get(ctx, "loom-db-0", metav1.GetOptions{})
		return err
	})

	// The controllers' Pods went through admission. loomguard keeps matchConditions on its
	// webhooks that let the API server skip the Pods that certainly pass and need no fix, so
	// a Pod either went through mutate.loomguard.io (the API server records every mutating
	// webhook it called in the audit log; Pods created with generateName have no name in
	// the audit event, so count them) or needed nothing from loomguard. Every Pod here is
	// one loomguard admits unchanged: no violation of any action, no fix.
	engine := baseEngine(t)
	eventually(t, "every Pod in loom through mutate.loomguard.io or needing nothing from it", func(ctx context.Context) error {
		list, err := s.cs.CoreV1().Pods("loom").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(list.Items) < 4 {
			return fmt.Errorf("%d Pods in loom, want loom's two, temporal's and loom-db-0", len(list.Items))
		}
		clean := 0
		for i := range list.Items {
			p := list.Items[i].DeepCopy()
			w, ok := policies.NewWorkload(p)
			if !ok {
				return fmt.Errorf("Pod %s is no workload to loomguard", p.Name)
			}
			report := engine.Evaluate(w, "loom")
			fixed := engine.Mutate(w, "loom")
			if len(report.Violations) == 0 && len(fixed) == 0 {
				clean++
			}
		}
		events, err := s.auditEvents(func(ev *auditEvent) bool {
			return ev.Verb == "create" && ev.ObjectRef.Resource == "pods" && ev.ObjectRef.Namespace == "loom" &&
				ev.ObjectRef.Subresource == "" && ev.ResponseStatus.Code == 201 &&
				strings.Contains(ev.Annotations["mutation.webhook.admission.k8s.io/round_0_index_0"], `"webhook":"mutate.loomguard.io"`)
		})
		if err != nil {
			return err
		}
		if clean != len(list.Items) {
			return fmt.Errorf("%d of %d Pods in loom have a violation or need a fix under the base config", len(list.Items)-clean, len(list.Items))
		}
		t.Logf("%d Pods in loom, all needing nothing from loomguard; %d audited creates through mutate.loomguard.io, the others cleared by its matchConditions", len(list.Items), len(events))
		return nil
	})
}

// baseEngine is loomguard's engine under the base config of the scenarios.
func baseEngine(t *testing.T) *policies.Engine {
	t.Helper()
	cfg, errs := policies.LoadConfig([]byte(baseConfig))
	if len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	e, err := policies.NewEngine(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("generating a secret: %v", err)
	}
	return hex.EncodeToString(b)
}

func podNames(pods []corev1.Pod) string {
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// referenceDeployment returns the Deployment of file as the API server stores it without
// any webhook: a server-side dry-run create in loomguard-system, which the webhook
// configurations' namespaceSelector excludes.
func referenceDeployment(t *testing.T, c *cluster.Cluster, file string) *appsv1.Deployment {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(data, &d); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
	d.Namespace = cluster.LoomguardNamespace
	out, err := c.Clientset().AppsV1().Deployments(d.Namespace).Create(t.Context(), &d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatalf("dry-run create of %s in %s: %v", file, d.Namespace, err)
	}
	if v, ok := out.Annotations[fixedAnnotation]; ok {
		t.Fatalf("the reference was mutated (%s=%q): the webhooks must not be called in %s", fixedAnnotation, v, d.Namespace)
	}
	return out
}
