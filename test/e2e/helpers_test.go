package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/test/cluster"
)

const (
	// baseConfig is loomguard's config between scenarios: the empty file, i.e. the built-in
	// Loom profile.
	baseConfig = ""

	// waitTimeout bounds every wait for controllers and for loomguard to change its verdict.
	waitTimeout = 30 * time.Second
	// pollEvery is the interval of every poll.
	pollEvery = 100 * time.Millisecond

	// fixedAnnotation is what the mutating webhook writes on an object it fixed.
	fixedAnnotation = "loomguard.io/fixed"
	// auditKeyPrefix prefixes the audit annotations of the validating webhook in the API
	// server's audit log.
	auditKeyPrefix = "validate.loomguard.io/"
)

// scenario is one test's view of the shared cluster: its namespace and its helpers.
type scenario struct {
	t  *testing.T
	c  *cluster.Cluster
	cs *kubernetes.Clientset
	ns string

	configChanged bool
}

// newScenario creates a namespace for the test, named prefix and a random suffix (so that
// -count=N works on the one cluster) and, should the test fail, logs the tails of the
// component logs.
func newScenario(t *testing.T, prefix string) *scenario {
	t.Helper()
	if testCluster == nil {
		t.Fatal("the shared control plane is not running (TestMain did not start it)")
	}
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatalf("naming the namespace: %v", err)
	}
	ns := prefix + "-" + hex.EncodeToString(suffix)
	s := &scenario{t: t, c: testCluster, cs: testCluster.Clientset(), ns: ns}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("component logs (last lines):\n%s", s.c.LogTails(25))
		}
	})
	if err := s.c.CreateNamespace(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return s
}

// setConfig replaces loomguard's config and waits until loomguard has reloaded it; the
// base config comes back when the test ends.
func (s *scenario) setConfig(content string) {
	s.t.Helper()
	if err := s.c.SetLoomguardConfig(context.Background(), content); err != nil {
		s.t.Fatalf("setting loomguard config: %v\n%s", err, content)
	}
	if !s.configChanged {
		s.configChanged = true
		s.t.Cleanup(func() {
			if err := s.c.SetLoomguardConfig(context.Background(), baseConfig); err != nil {
				s.t.Errorf("restoring loomguard config: %v", err)
			}
		})
	}
}

// kubectl runs kubectl in the scenario's namespace.
func (s *scenario) kubectl(args ...string) cluster.Result {
	return s.c.Kubectl(append([]string{"-n", s.ns}, args...)...)
}

// apply runs `kubectl apply -f -` with obj (extra args such as --dry-run=server after it).
func (s *scenario) apply(obj any, extra ...string) cluster.Result {
	s.t.Helper()
	return s.c.KubectlInput(toYAML(s.t, obj), append([]string{"-n", s.ns, "apply", "-f", "-"}, extra...)...)
}

// mustSucceed fails the test unless kubectl exited 0.
func mustSucceed(t *testing.T, r cluster.Result) {
	t.Helper()
	if !r.OK() {
		t.Fatalf("expected kubectl to succeed:\n%s", r)
	}
}

// mustFail fails the test unless kubectl ran and exited non-zero.
func mustFail(t *testing.T, r cluster.Result) {
	t.Helper()
	if r.Err != nil || r.ExitCode == 0 {
		t.Fatalf("expected kubectl to exit non-zero:\n%s", r)
	}
}

// mustContain fails the test unless text contains every want.
func mustContain(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Fatalf("%s does not contain %q:\n%s", what, w, text)
		}
	}
}

// mustNotContain fails the test if text contains any of bad.
func mustNotContain(t *testing.T, what, text string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(text, b) {
			t.Fatalf("%s contains %q:\n%s", what, b, text)
		}
	}
}

// warnings returns the "Warning: " lines kubectl printed on stderr.
func warnings(r cluster.Result) []string {
	var out []string
	for line := range strings.Lines(r.Stderr) {
		if strings.HasPrefix(line, "Warning: ") {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return out
}

// eventually calls check every pollEvery until it returns nil, failing the test with the
// last error after waitTimeout.
func eventually(t *testing.T, what string, check func(ctx context.Context) error) {
	t.Helper()
	if err := poll(waitTimeout, check); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func poll(timeout time.Duration, check func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s: %w", timeout, err)
		case <-ticker.C:
		}
	}
}

func toYAML(t *testing.T, obj any) string {
	t.Helper()
	data, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatalf("encoding manifest: %v", err)
	}
	return string(data)
}

// compliantDeployment is a Deployment that passes every default policy with no finding at
// all: no fix to apply, no warning, no audit annotation.
func compliantDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name, "version": "1.0.0", "environment": "staging"}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: new(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   new(true),
						RunAsUser:      new(int64(1000)),
						RunAsGroup:     new(int64(1000)),
						FSGroup:        new(int64(1000)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "app",
						Image: "ghcr.io/loomguard/e2e-app:1.0.0",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
						},
						LivenessProbe:  httpProbe("/health/live"),
						ReadinessProbe: httpProbe("/health/ready"),
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             new(true),
							AllowPrivilegeEscalation: new(false),
							ReadOnlyRootFilesystem:   new(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
					}},
					Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
}

func httpProbe(path string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}}}
}

// legacyDeployment violates enforced policies in nearly every way loomguard checks: the
// "latest" tag, no security context, no resources, no probes, a writable root.
func legacyDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name, "version": "1.0.0", "environment": "staging"}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "app", Image: "loom:latest"}},
				},
			},
		},
	}
}

// replicaSetsOf lists the ReplicaSets a Deployment controls.
func (s *scenario) replicaSetsOf(ctx context.Context, d *appsv1.Deployment) ([]appsv1.ReplicaSet, error) {
	list, err := s.cs.AppsV1().ReplicaSets(s.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing ReplicaSets: %w", err)
	}
	var out []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.Kind == "Deployment" && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	return out, nil
}

// podsOf lists the live (not deleted) Pods an object with uid controls.
func (s *scenario) podsOf(ctx context.Context, ns string, uid types.UID) ([]corev1.Pod, error) {
	list, err := s.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Pods: %w", err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == uid && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// waitForReplicaSetPods waits until the Deployment has exactly one ReplicaSet, scaled to
// the Deployment's replicas, with as many Pods: both created by controllers through
// admission. Without a kubelet the Pods stay Pending; that is as far as a rollout goes
// unless the test plays the kubelet (markPodsReady).
func (s *scenario) waitForReplicaSetPods(name string) (*appsv1.Deployment, *appsv1.ReplicaSet, []corev1.Pod) {
	s.t.Helper()
	var (
		dep  *appsv1.Deployment
		rs   *appsv1.ReplicaSet
		pods []corev1.Pod
	)
	eventually(s.t, "the ReplicaSet and Pods of Deployment "+s.ns+"/"+name, func(ctx context.Context) error {
		d, err := s.cs.AppsV1().Deployments(s.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		sets, err := s.replicaSetsOf(ctx, d)
		if err != nil {
			return err
		}
		if len(sets) != 1 {
			return fmt.Errorf("%d ReplicaSets", len(sets))
		}
		want := *d.Spec.Replicas
		if got := *sets[0].Spec.Replicas; got != want {
			return fmt.Errorf("ReplicaSet %s wants %d replicas, not %d", sets[0].Name, got, want)
		}
		ps, err := s.podsOf(ctx, s.ns, sets[0].UID)
		if err != nil {
			return err
		}
		if int32(len(ps)) != want {
			return fmt.Errorf("ReplicaSet %s has %d Pods, want %d", sets[0].Name, len(ps), want)
		}
		dep, rs, pods = d, &sets[0], ps
		return nil
	})
	return dep, rs, pods
}

// markPodsReady plays the kubelet for the scenario's Pods: every live Pod that is not
// Ready yet is reported Running and Ready, so that Deployment rollouts can progress.
func (s *scenario) markPodsReady(ctx context.Context) error {
	list, err := s.cs.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing Pods: %w", err)
	}
	now := metav1.Now()
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp != nil || podReady(p) {
			continue
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.StartTime = &now
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
		if _, err := s.cs.CoreV1().Pods(s.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("marking Pod %s ready: %w", p.Name, err)
		}
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// auditEvent is the part of an API server audit event the tests read.
type auditEvent struct {
	Verb      string `json:"verb"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	Annotations map[string]string `json:"annotations"`
}

// auditEvents returns the audit events that match.
func (s *scenario) auditEvents(match func(*auditEvent) bool) ([]auditEvent, error) {
	f, err := os.Open(s.c.AuditLogPath())
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	defer f.Close()
	var out []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("decoding audit event: %w", err)
		}
		if match(&ev) {
			out = append(out, ev)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	return out, nil
}

// waitForAuditAnnotation waits for an audit event of verb on resource s.ns/name whose
// annotation key holds want, and returns the annotation's value.
func (s *scenario) waitForAuditAnnotation(verb, resource, name, key, want string) string {
	s.t.Helper()
	var value string
	eventually(s.t, fmt.Sprintf("audit annotation %s on %s %s %s/%s", key, verb, resource, s.ns, name), func(context.Context) error {
		events, err := s.auditEvents(func(ev *auditEvent) bool {
			return ev.Verb == verb && ev.ObjectRef.Resource == resource && ev.ObjectRef.Namespace == s.ns &&
				ev.ObjectRef.Name == name && ev.ObjectRef.Subresource == ""
		})
		if err != nil {
			return err
		}
		var seen []string
		for _, ev := range events {
			if v, ok := ev.Annotations[key]; ok && strings.Contains(v, want) {
				value = v
				return nil
			}
			for k := range ev.Annotations {
				seen = append(seen, k)
			}
		}
		slices.Sort(seen)
		return fmt.Errorf("%d matching events; annotations seen: %v", len(events), slices.Compact(seen))
	})
	return value
}

// statusCauses returns the causes of a denial that client-go returned.
func statusCauses(err error) []metav1.StatusCause {
	var status interface{ Status() metav1.Status }
	if !errors.As(err, &status) {
		return nil
	}
	if d := status.Status().Details; d != nil {
		return d.Causes
	}
	return nil
}
