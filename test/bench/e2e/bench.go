package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/audit"
	"github.com/loomguard/loomguard/policies"
	"github.com/loomguard/loomguard/test/cluster"
)

// namespace is where every workload runs: governed by the webhooks and the policy.
const namespace = "bench"

// fixedAnnotation is what loomguard's mutating webhook sets on an object it fixed.
const fixedAnnotation = "loomguard.io/fixed"

// compliantPodYAML is a Pod that passes every policy of the default config: the pod
// template of policies/testdata/base/deployment.yaml, without its PersistentVolumeClaim.
const compliantPodYAML = `
apiVersion: v1
kind: Pod
metadata:
  labels: {app: bench, version: "0.9.3", environment: development}
spec:
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    runAsGroup: 1000
    fsGroup: 1000
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: loom
      image: ghcr.io/jordanhubbard/loom:0.9.3
      ports: [{name: http, containerPort: 8081}]
      env:
        - {name: TEMPORAL_HOST, value: "temporal:7233"}
        - name: LOOM_PASSWORD
          valueFrom: {secretKeyRef: {name: loom-secrets, key: loom-password}}
      resources:
        requests: {cpu: 100m, memory: 256Mi}
        limits: {cpu: 500m, memory: 512Mi}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
      livenessProbe: {httpGet: {path: /health/live, port: http}}
      readinessProbe: {httpGet: {path: /health/ready, port: http}}
      volumeMounts: [{name: tmp, mountPath: /tmp}]
  volumes:
    - name: tmp
      emptyDir: {sizeLimit: 256Mi}
`

// fixPodYAML is a Pod that forgets every security setting loomguard fixes (as
// test/cmd/devcluster/testdata/fixed.yaml): admitted with them injected.
const fixPodYAML = `
apiVersion: v1
kind: Pod
metadata:
  labels: {app: bench-fix, version: "1.27.3", environment: development}
spec:
  containers:
    - name: web
      image: nginxinc/nginx-unprivileged:1.27.3
      ports: [{name: http, containerPort: 8080}]
      resources:
        requests: {cpu: 100m, memory: 128Mi}
        limits: {cpu: 500m, memory: 256Mi}
      livenessProbe: {httpGet: {path: /, port: http}}
      readinessProbe: {httpGet: {path: /, port: http}}
`

// deniedPodYAML breaks several enforced policies that no fix can repair (image tag, host
// network): every admission setup but none denies it.
const deniedPodYAML = `
apiVersion: v1
kind: Pod
metadata:
  name: bench-denied
  labels: {app: bench-denied, version: "1", environment: development}
spec:
  hostNetwork: true
  containers:
    - name: c
      image: busybox:latest
`

type bench struct {
	c      *cluster.Cluster
	o      options
	logf   func(string, ...any)
	client kubernetes.Interface // the load generator's: no client-side rate limit

	compliant, fix, denied *corev1.Pod
	fixedPod               *corev1.Pod // fix with loomguard's patch applied

	loomguardArgs []string // the flags loomguard runs with now
	pprofAddr     string   // loomguard's --pprof-bind-address with -profile-dir, else ""

	lgConfig    *policies.Config // loomguard's config, for the vap-conditions setup
	staticPatch *staticPatch     // the static-patch setup's webhook, when it is one of the setups
	setup       string           // the setup in force, "" while switching
}

func newBench(ctx context.Context, c *cluster.Cluster, o options, setups []string, logf func(string, ...any)) (*bench, error) {
	cfg := c.RESTConfig()
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.UserAgent = "loomguard-bench-e2e"
	cfg.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the load generator's client: %w", err)
	}
	b := &bench{c: c, o: o, logf: logf, client: client}
	for _, p := range []struct {
		dst  **corev1.Pod
		yaml string
	}{{&b.compliant, compliantPodYAML}, {&b.fix, fixPodYAML}, {&b.denied, deniedPodYAML}} {
		var pod corev1.Pod
		if err := yaml.UnmarshalStrict([]byte(p.yaml), &pod); err != nil {
			return nil, fmt.Errorf("decoding a bench Pod: %w", err)
		}
		*p.dst = &pod
	}
	if err := c.CreateNamespace(ctx, namespace); err != nil {
		return nil, err
	}
	raw, err := podJSON(b.fix)
	if err != nil {
		return nil, err
	}
	patch, err := fixPatch(raw)
	if err != nil {
		return nil, fmt.Errorf("the fix Pod: %w", err)
	}
	if b.fixedPod, err = patchedPod(b.fix, patch); err != nil {
		return nil, err
	}
	if slices.Contains(setups, staticPatchSetup) {
		if b.staticPatch, err = startStaticPatch(ctx, c); err != nil {
			return nil, err
		}
	}
	// The harness audits every 2 s with Events, for its tests; measure loomguard as shipped.
	if err := b.restartLoomguard(ctx, nil); err != nil {
		return nil, err
	}
	if b.lgConfig, err = c.LoomguardPolicies(); err != nil {
		return nil, err
	}
	return b, nil
}

// shippedAuditArgs are the audit flags of `loomguard serve` as the manifests run it (its
// defaults), overriding the harness's.
func shippedAuditArgs() []string {
	return []string{"--audit-interval=" + audit.DefaultInterval.String(), "--audit-events=false"}
}

// restartLoomguard restarts loomguard with its shipped audit flags and args.
func (b *bench) restartLoomguard(ctx context.Context, args []string) error {
	if err := b.c.StopLoomguard(); err != nil {
		return err
	}
	all := shippedAuditArgs()
	if b.o.profileDir != "" {
		ports, err := cluster.FreePorts(1)
		if err != nil {
			return err
		}
		b.pprofAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
		all = append(all, "--pprof-bind-address="+b.pprofAddr)
	}
	all = append(all, strings.Fields(b.o.lgArgs)...)
	b.c.SetLoomguardArgs(append(all, args...)...)
	if err := b.c.StartLoomguard(ctx); err != nil {
		return err
	}
	b.loomguardArgs = args
	return nil
}

// vapPolicyName is the name of the ValidatingAdmissionPolicy, and of its binding, that is a
// setup's only admission; "" for the setups that have none.
func vapPolicyName(setup string) string {
	switch setup {
	case "vap":
		return vapName
	case conditionsVAPSetup:
		return conditionsVAPName
	}
	return ""
}

func setupNames() []string {
	return []string{"none", "vap", conditionsVAPSetup, "loomguard", "loomguard-no-mc", "loomguard-http1", "loomguard-http2", mapSetup, staticPatchSetup}
}

// isFixer says whether a setup fixes the fix Pod without loomguard.
func isFixer(setup string) bool { return setup == mapSetup || setup == staticPatchSetup }

// waitsForNothingFixing says whether switching from setup prev ("" when unknown) to next
// must wait, once the setups not wanted are removed, until nothing fixes the fix Pod: the
// API server drops admission configuration asynchronously, so before a fixing setup, and
// after one, the last one could still apply its fixes (loomguard's webhooks are not
// registered then in either case). A setup that stays (the last of a round and the first
// of the next) is kept as it is, so there is nothing to wait for.
func waitsForNothingFixing(prev, next string) bool {
	return (isFixer(prev) || isFixer(next)) && prev != next
}

// apply switches the control plane to a setup and checks that it is in force: loomguard's
// webhooks called or not, the policy denying or not.
func (b *bench) apply(ctx context.Context, setup string) error {
	ar := b.c.Clientset().AdmissionregistrationV1()
	wantLoomguard := strings.HasPrefix(setup, "loomguard")
	for _, s := range []string{"vap", conditionsVAPSetup} {
		if s == setup {
			continue
		}
		name := vapPolicyName(s)
		if err := ar.ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err := ar.ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if !wantLoomguard {
		if err := b.c.UnregisterWebhooks(ctx); err != nil {
			return err
		}
	}
	if setup != mapSetup {
		if err := b.applyMAP(ctx, false); err != nil {
			return err
		}
	}
	if setup != staticPatchSetup {
		if err := b.unregisterStaticPatch(ctx); err != nil {
			return err
		}
	}
	if waitsForNothingFixing(b.setup, setup) {
		if err := b.waitNothingFixes(ctx); err != nil {
			return err
		}
	}
	if old := vapPolicyName(b.setup); old != "" && b.setup != setup {
		// The API server names only one of the policies that deny a request: the next
		// setup's denial would not show that this one is still in force.
		if err := b.waitPolicyGone(ctx, old); err != nil {
			return err
		}
	}
	b.setup = ""
	if isFixer(setup) {
		if setup == mapSetup {
			if err := b.applyMAP(ctx, true); err != nil {
				return err
			}
		} else if err := b.staticPatch.register(ctx, b); err != nil {
			return err
		}
	}
	if vapPolicyName(setup) != "" {
		var p *admissionregistrationv1.ValidatingAdmissionPolicy
		var bind *admissionregistrationv1.ValidatingAdmissionPolicyBinding
		var err error
		switch setup {
		case conditionsVAPSetup:
			p, bind, err = conditionsVAP(b.lgConfig)
		default:
			p, bind, err = decodeVAP()
		}
		if err != nil {
			return err
		}
		if _, err := ar.ValidatingAdmissionPolicies().Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		if _, err := ar.ValidatingAdmissionPolicyBindings().Create(ctx, bind, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	if wantLoomguard {
		var args []string
		switch setup {
		case "loomguard-http1":
			args = []string{"--enable-http2=false"}
		case "loomguard-http2":
			args = []string{"--enable-http2=true"}
		case "loomguard-no-mc":
			args = []string{"--match-conditions=false"}
		}
		if !slices.Equal(args, b.loomguardArgs) {
			if err := b.restartLoomguard(ctx, args); err != nil {
				return err
			}
		}
		if err := b.c.RegisterWebhooks(ctx); err != nil {
			return err
		}
	}
	if err := b.waitInForce(ctx, setup); err != nil {
		return err
	}
	b.setup = setup
	return b.warmUp(ctx)
}

// waitInForce dry-runs the denied Pod until the answer is the setup's: allowed with no
// loomguard review (none), denied by the setup's policy with no loomguard review (vap,
// vap-conditions), denied by loomguard (loomguard*). The API server loads admission
// configuration asynchronously.
func (b *bench) waitInForce(ctx context.Context, setup string) error {
	return b.c.Poll(ctx, time.Minute, "setup "+setup+" to be in force", func(ctx context.Context) error {
		before, err := b.loomguardReviews(ctx)
		if err != nil {
			return err
		}
		_, createErr := b.client.CoreV1().Pods(namespace).Create(ctx, b.denied, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		after, err := b.loomguardReviews(ctx)
		if err != nil {
			return err
		}
		reviewed := after > before
		msg := fmt.Sprint(createErr)
		if isFixer(setup) {
			fixErr, err := b.fixInForce(ctx)
			if err != nil {
				return err
			}
			if fixErr == nil && createErr == nil && !reviewed {
				return nil
			}
			return fmt.Errorf("dry run of the denied Pod: %s; loomguard reviewed it: %t; the fix Pod: %v", msg, reviewed, fixErr)
		}
		// With its matchConditions in force (every loomguard setup but loomguard-no-mc),
		// the API server no longer sends loomguard the compliant Pod.
		compliantReviewed, err := b.reviewsOf(ctx, b.compliant)
		if err != nil {
			return err
		}
		wantCompliantReviewed := setup == "loomguard-no-mc"
		switch {
		case setup == "none" && createErr == nil && !reviewed,
			vapPolicyName(setup) != "" && strings.Contains(msg, vapPolicyName(setup)) && !reviewed,
			strings.HasPrefix(setup, "loomguard") && strings.Contains(msg, `admission webhook "validate.loomguard.io" denied`) && reviewed &&
				compliantReviewed == wantCompliantReviewed:
			return nil
		}
		return fmt.Errorf("dry run: %s; loomguard reviewed it: %t; reviewed the compliant Pod: %t", msg, reviewed, compliantReviewed)
	})
}

// waitPolicyGone dry-runs the denied Pod until no ValidatingAdmissionPolicy of the given
// name denies it: the API server drops a deleted policy asynchronously.
func (b *bench) waitPolicyGone(ctx context.Context, name string) error {
	return b.c.Poll(ctx, time.Minute, "ValidatingAdmissionPolicy "+name+" to stop denying after its deletion", func(ctx context.Context) error {
		_, err := b.client.CoreV1().Pods(namespace).Create(ctx, b.denied, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+name+"'") {
			return err
		}
		return nil
	})
}

// waitNothingFixes dry-run creates the fix Pod until it comes back without the fixed
// annotation: the API server drops admission configuration asynchronously.
func (b *bench) waitNothingFixes(ctx context.Context) error {
	return b.c.Poll(ctx, time.Minute, "nothing to fix the fix Pod once every fixing setup was removed", func(ctx context.Context) error {
		created, err := b.dryRunFixPod(ctx)
		if err != nil {
			return err
		}
		if _, fixed := created.Annotations[fixedAnnotation]; fixed {
			return errors.New("the fix Pod is still fixed")
		}
		return nil
	})
}

// fixInForce dry-run creates the fix Pod and returns how it differs from loomguard's fix of
// it (checkFixedPod), nil when it does not.
func (b *bench) fixInForce(ctx context.Context) (mismatch, err error) {
	created, err := b.dryRunFixPod(ctx)
	if err != nil {
		return nil, err
	}
	return b.checkFixedPod(created), nil
}

// dryRunFixPod dry-run creates the fix Pod and returns it as the API server would store it.
func (b *bench) dryRunFixPod(ctx context.Context) (*corev1.Pod, error) {
	p := b.fix.DeepCopy()
	p.Name = "bench-in-force"
	created, err := b.client.CoreV1().Pods(namespace).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, fmt.Errorf("dry-run creating the fix Pod: %w", err)
	}
	return created, nil
}

// reviewsOf dry-run creates a Pod and reports whether loomguard was sent a review of it.
func (b *bench) reviewsOf(ctx context.Context, pod *corev1.Pod) (bool, error) {
	before, err := b.loomguardReviews(ctx)
	if err != nil {
		return false, err
	}
	p := pod.DeepCopy()
	p.Name = "bench-in-force"
	if _, err := b.client.CoreV1().Pods(namespace).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		return false, fmt.Errorf("dry-run creating the compliant Pod: %w", err)
	}
	after, err := b.loomguardReviews(ctx)
	return after > before, err
}

// reviews is the count of admission reviews the setup's webhooks got: the static-patch
// webhook's own in that setup, else loomguard's (zero without it).
func (b *bench) reviews(ctx context.Context, setup string) (float64, error) {
	if setup == staticPatchSetup {
		return float64(b.staticPatch.reviews.Load()), nil
	}
	return b.loomguardReviews(ctx)
}

// loomguardReviews is loomguard's count of admission requests, both webhooks.
func (b *bench) loomguardReviews(ctx context.Context) (float64, error) {
	samples, err := b.c.LoomguardMetric(ctx, "loomguard_admission_requests_total")
	if err != nil {
		return 0, err
	}
	var n float64
	for _, v := range samples {
		n += v
	}
	return n, nil
}

// warmUp creates and deletes b.o.warmup compliant Pods, so that connections and caches
// are in place before measuring.
func (b *bench) warmUp(ctx context.Context) error {
	if b.o.warmup == 0 {
		return nil
	}
	_, failed, err := b.createPods(ctx, b.compliant, "warmup", b.o.warmup, false, nil)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("warm-up: %d of %d creates failed", failed, b.o.warmup)
	}
	return b.deletePods(ctx)
}

// createPods creates n copies of tmpl named <prefix>-<i>, b.o.c at a time, and returns each
// successful create's latency and the number of failures; the first failure is logged.
// check, if set, is called with every created Pod.
func (b *bench) createPods(ctx context.Context, tmpl *corev1.Pod, prefix string, n int, dryRun bool, check func(*corev1.Pod)) ([]time.Duration, int, error) {
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var next, failed atomic.Int64
	var firstErr sync.Once
	lat := make([][]time.Duration, b.o.c)
	var wg sync.WaitGroup
	for w := range b.o.c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				pod := tmpl.DeepCopy()
				pod.Name = fmt.Sprintf("%s-%d", prefix, i)
				start := time.Now()
				created, err := b.client.CoreV1().Pods(namespace).Create(ctx, pod, opts)
				d := time.Since(start)
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { b.logf("create %s failed: %v", pod.Name, err) })
					continue
				}
				lat[w] = append(lat[w], d)
				if check != nil {
					check(created)
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return slices.Concat(lat...), int(failed.Load()), nil
}

// deletePods deletes every Pod of the namespace and waits until they are gone. Pods that
// no node runs are deleted at once.
func (b *bench) deletePods(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	zero := int64(0)
	pods := b.c.Clientset().CoreV1().Pods(namespace)
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("deleting the Pods: %w", err)
	}
	return b.waitNoPods(ctx)
}

func (b *bench) waitNoPods(ctx context.Context) error {
	pods := b.c.Clientset().CoreV1().Pods(namespace)
	return b.c.Poll(ctx, 3*time.Minute, "the Pods of the last run to be gone", func(ctx context.Context) error {
		list, err := pods.List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return fmt.Errorf("listing the Pods: %w", err)
		}
		if len(list.Items) > 0 {
			return errors.New("Pods left")
		}
		return nil
	})
}
