package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loomguard/loomguard/policies"
	"github.com/loomguard/loomguard/test/cluster"
)

// failClosedWithin bounds how long a create may take to fail while loomguard is down: the
// webhooks' timeoutSeconds (3) plus kubectl and API server overhead on a loaded machine.
const failClosedWithin = 10 * time.Second

// TestLoomguardStoppedFailsClosed: with loomguard down, workloads in governed namespaces
// cannot be created (the validating webhook fails closed, quickly) unless the webhooks'
// matchConditions clear them: a compliant Deployment is still admitted and rolled out, its
// ReplicaSet and Pods created by the controllers, and the API server counts the skipped
// calls. Other objects, kube-system and loomguard-system stay writable; after a restart
// admission resumes.
func TestLoomguardStoppedFailsClosed(t *testing.T) {
	s := newScenario(t, "e2e-outage")
	c := s.c
	waitForMatchConditions(t, s, policies.MatchConditions(policies.DefaultConfig()))
	excludedBefore := matchConditionExclusions(t, s)
	begin := time.Now()
	if err := c.StopLoomguard(); err != nil {
		t.Fatal(err)
	}
	t.Logf("loomguard stopped in %s", time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		// Leave loomguard running for the next test whatever happened here.
		if c.LoomguardPID() != 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.StartLoomguard(ctx); err != nil {
			t.Errorf("restarting loomguard: %v", err)
		}
	})

	r := s.kubectl("create", "deployment", "web", "--image=ghcr.io/loomguard/e2e-app:1.0.0")
	mustFail(t, r)
	mustContain(t, "kubectl create stderr", r.Stderr, `failed calling webhook "validate.loomguard.io"`)
	if r.Duration > failClosedWithin {
		t.Errorf("kubectl create failed after %s, want within %s", r.Duration, failClosedWithin)
	}
	t.Logf("failed closed in %s: %s", r.Duration.Round(time.Millisecond), r.Stderr)
	// Only workloads are governed.
	mustSucceed(t, s.kubectl("create", "configmap", "still-writable", "--from-literal=a=b"))

	// What the matchConditions clear needs no loomguard: a compliant Deployment, its
	// ReplicaSet and its Pods are all admitted while loomguard is down.
	begin = time.Now()
	mustSucceed(t, s.apply(compliantDeployment("cleared", 2)))
	_, _, pods := s.waitForReplicaSetPods("cleared")
	t.Logf("with loomguard down, a compliant Deployment and its %d Pods were admitted in %s", len(pods), time.Since(begin).Round(time.Millisecond))
	if excluded := matchConditionExclusions(t, s) - excludedBefore; excluded < 4 {
		t.Errorf("the API server counted %v calls to loomguard's webhooks skipped by their matchConditions, want at least 4 (Deployment, ReplicaSet, Pods)", excluded)
	}

	// The control plane's and loomguard's own namespaces are never sent to loomguard.
	for _, ns := range []string{"kube-system", cluster.LoomguardNamespace} {
		name := s.ns
		mustSucceed(t, c.Kubectl("-n", ns, "create", "configmap", name, "--from-literal=a=b"))
		mustSucceed(t, c.Kubectl("-n", ns, "run", name, "--image=busybox:1.36.1", "--restart=Never", "--", "sleep", "3600"))
		t.Cleanup(func() {
			c.Kubectl("-n", ns, "delete", "pod,configmap", name, "--wait=false")
		})
	}

	begin = time.Now()
	if err := c.StartLoomguard(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("loomguard restarted and ready in %s", time.Since(begin).Round(time.Millisecond))
	mustSucceed(t, s.apply(compliantDeployment("web", 1)))
	r = s.apply(legacyDeployment("legacy", 1))
	mustFail(t, r)
	mustContain(t, "kubectl apply stderr", r.Stderr, `admission webhook "validate.loomguard.io" denied the request`, imageTagDenial)
}

// waitForMatchConditions waits until both of loomguard's live webhook configurations carry
// want, which loomguard's syncer writes after it starts.
func waitForMatchConditions(t *testing.T, s *scenario, want []policies.MatchCondition) {
	t.Helper()
	ar := s.cs.AdmissionregistrationV1()
	eventually(t, "loomguard's webhooks carry the config's matchConditions", func(ctx context.Context) error {
		m, err := ar.MutatingWebhookConfigurations().Get(ctx, "loomguard", metav1.GetOptions{})
		if err != nil {
			return err
		}
		v, err := ar.ValidatingWebhookConfigurations().Get(ctx, "loomguard", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, got := range [][]admissionregistrationv1.MatchCondition{m.Webhooks[0].MatchConditions, v.Webhooks[0].MatchConditions} {
			if len(got) != len(want) {
				return fmt.Errorf("%d matchConditions, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].Name != want[i].Name || got[i].Expression != want[i].Expression {
					return fmt.Errorf("matchCondition %s differs from the config's", got[i].Name)
				}
			}
		}
		return nil
	})
}

// matchConditionExclusions sums the API server's apiserver_admission_match_condition_exclusions_total
// for loomguard's two webhooks: the calls their matchConditions skipped.
func matchConditionExclusions(t *testing.T, s *scenario) float64 {
	t.Helper()
	raw, err := s.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Fatalf("reading the API server's metrics: %v", err)
	}
	var n float64
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_admission_match_condition_exclusions_total{") ||
			(!strings.Contains(line, `name="validate.loomguard.io"`) && !strings.Contains(line, `name="mutate.loomguard.io"`)) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("parsing %q: %v", line, err)
		}
		n += v
	}
	return n
}
