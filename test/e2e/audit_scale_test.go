package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/loomguard/loomguard/test/cluster"
)

// scaleEnv opts in to TestAuditScale and sets the number of top-level workloads.
const scaleEnv = "LOOMGUARD_AUDIT_SCALE"

// TestAuditScale measures the audit of a cluster running N top-level workloads. It is
// opt-in (minutes, not seconds) and asserts nothing about time: it reports.
//
//	make build tools
//	LOOMGUARD_AUDIT_SCALE=10000 LOOMGUARD_BIN=$PWD/bin go test ./test/e2e -run TestAuditScale -count=1 -v -timeout 30m
//
// The cluster gets N workloads in N/200 namespaces, in the proportions of a typical
// cluster: 40% Deployments, 15% StatefulSets, 5% DaemonSets, 20% bare Pods, 10% Jobs and
// 10% CronJobs. Creation time stays bounded because nothing multiplies: no kubelet or
// scheduler runs, StatefulSets have 0 replicas, Jobs and CronJobs are suspended,
// DaemonSets have no node, and only one Deployment in ten runs replicas (2, production);
// the controller-manager still gives every Deployment its ReplicaSet, so the audit lists
// ~0.4 N ReplicaSets and ~0.08 N controlled Pods on top and skips them. One workload in
// ten is a legacy one (latest tag, no probes); half the namespaces have a default-deny
// NetworkPolicy and budgets for their production Deployments. The namespaces are in audit
// mode, so that admission lets everything in. On 2 cores the run takes ~10 minutes, most
// of it the controller-manager creating the ReplicaSets (at its default 20 requests/s).
//
// It measures the one-shot `loomguard audit -o json` (the real binary, three runs: wall
// time, and peak RSS from /usr/bin/time -v's %M, as `/usr/bin/time -v bin/loomguard audit
// --kubeconfig ... -o json >/dev/null` reports it) and the background audit (its
// loomguard_audit_duration_seconds, and the server's peak RSS, VmHWM, over three runs
// after a restart).
func TestAuditScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(scaleEnv))
	if n <= 0 {
		t.Skipf("opt-in: set %s=10000 (see the test's doc comment)", scaleEnv)
	}
	s := newScenario(t, "e2e-audit-scale")
	s.setConfig("namespaces:\n  - names: [\"scale-*\"]\n    action: audit\n")
	// While the cluster fills up, loomguard only admits: a background audit every 2s of a
	// growing cluster would compete with the controller-manager for the 2 cores.
	restartLoomguard(t, s.c, "--audit=false")
	t.Cleanup(func() { restartLoomguard(t, s.c) })

	cfg := s.c.RESTConfig()
	cfg.QPS, cfg.Burst = 2000, 4000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	counts := populate(t, cs, n)
	t.Logf("created %d workloads in %d namespaces in %s: %v", n, counts.namespaces, time.Since(begin).Round(time.Second), counts.kinds)

	// Wait for the controller-manager: a ReplicaSet per Deployment, 2 Pods per running one.
	if err := poll(20*time.Minute, func(ctx context.Context) error {
		rs, err := countAll(ctx, func(ctx context.Context, opts metav1.ListOptions) (int, string, error) {
			l, err := cs.AppsV1().ReplicaSets("").List(ctx, opts)
			if err != nil {
				return 0, "", err
			}
			return len(l.Items), l.Continue, nil
		})
		if err != nil {
			return err
		}
		pods, err := countAll(ctx, func(ctx context.Context, opts metav1.ListOptions) (int, string, error) {
			l, err := cs.CoreV1().Pods("").List(ctx, opts)
			if err != nil {
				return 0, "", err
			}
			return len(l.Items), l.Continue, nil
		})
		if err != nil {
			return err
		}
		if rs < counts.kinds["Deployment"] || pods < counts.kinds["Pod"]+2*counts.running {
			return fmt.Errorf("%d ReplicaSets and %d Pods so far", rs, pods)
		}
		return nil
	}); err != nil {
		t.Fatalf("waiting for the ReplicaSets and Pods of the scale Deployments: %v", err)
	}
	t.Logf("controllers settled %s after the start", time.Since(begin).Round(time.Second))

	// The one-shot audit: the real binary, three times.
	var walls []time.Duration
	var rss []int64
	for run := 1; run <= 3; run++ {
		wall, maxRSS, workloads, violations := timeAuditCLI(t, s)
		walls, rss = append(walls, wall), append(rss, maxRSS)
		t.Logf("loomguard audit -o json, run %d: %s wall, %.1f MiB peak RSS; %d workloads, %d violations",
			run, wall.Round(time.Millisecond), float64(maxRSS)/1024, workloads, violations)
		if workloads < n {
			t.Errorf("the audit saw %d workloads, want at least %d", workloads, n)
		}
	}
	slices.Sort(walls)
	slices.Sort(rss)
	t.Logf("RESULT cli: median %s wall (target < 10s), max %.1f MiB peak RSS (target < 150 MiB)",
		walls[1].Round(time.Millisecond), float64(rss[2])/1024)

	// The background audit, after a restart so that the peak RSS is the audit's, not the
	// population's admission traffic.
	restartLoomguard(t, s.c, "--audit-interval=5s", "--audit-events=false")
	restarted := time.Now()
	var durations []float64
	for len(durations) < 3 {
		v := waitForAuditRun(t, "a background audit run", s.c.LoomguardMetrics, restarted)
		restarted = v.lastRun.Add(time.Millisecond)
		durations = append(durations, v.lastRun.Sub(v.started).Seconds())
	}
	hwm, vmrss := procMemory(t, s.c.LoomguardPID())
	t.Logf("RESULT server: background audit runs took %.2fs, %.2fs, %.2fs; loomguard serve peak RSS (VmHWM) %.1f MiB, now %.1f MiB",
		durations[0], durations[1], durations[2], float64(hwm)/1024, float64(vmrss)/1024)
}

// scaleCounts is what populate created.
type scaleCounts struct {
	namespaces int
	kinds      map[string]int
	running    int // Deployments with 2 replicas
}

// populate creates n workloads (and their namespaces, NetworkPolicies and budgets) with
// 32 parallel clients.
func populate(t *testing.T, cs kubernetes.Interface, n int) scaleCounts {
	t.Helper()
	const perNamespace = 200
	counts := scaleCounts{namespaces: (n + perNamespace - 1) / perNamespace, kinds: map[string]int{}}
	type create func(ctx context.Context) error
	var work []create
	for ns := range counts.namespaces {
		name := fmt.Sprintf("scale-%03d", ns)
		if err := testCluster.CreateNamespace(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		protected := ns%2 == 0
		if protected {
			work = append(work, func(ctx context.Context) error {
				_, err := cs.NetworkingV1().NetworkPolicies(name).Create(ctx, &networkingv1.NetworkPolicy{
					ObjectMeta: metav1.ObjectMeta{Name: "default-deny"},
					Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}},
				}, metav1.CreateOptions{})
				return err
			})
		}
		for i := range min(perNamespace, n-ns*perNamespace) {
			w := scaleWorkload(name, i)
			counts.kinds[w.kind]++
			if w.running {
				counts.running++
				if protected {
					app := w.name
					work = append(work, func(ctx context.Context) error {
						_, err := cs.PolicyV1().PodDisruptionBudgets(name).Create(ctx, &policyv1.PodDisruptionBudget{
							ObjectMeta: metav1.ObjectMeta{Name: app},
							Spec: policyv1.PodDisruptionBudgetSpec{
								MinAvailable: new(intstr.FromInt32(1)),
								Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
							},
						}, metav1.CreateOptions{})
						return err
					})
				}
			}
			work = append(work, func(ctx context.Context) error { return w.create(ctx, cs) })
		}
	}
	var (
		next     atomic.Int64
		done     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(work) || ctx.Err() != nil {
					return
				}
				err := work[i](ctx)
				if err != nil && !apierrors.IsAlreadyExists(err) {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				if d := done.Add(1); d%2000 == 0 {
					t.Logf("created %d of %d objects", d, len(work))
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("populating the cluster: %v", firstErr)
	}
	return counts
}

// scaleObject is one workload to create.
type scaleObject struct {
	kind, name string
	running    bool
	create     func(ctx context.Context, cs kubernetes.Interface) error
}

// scaleWorkload returns the i-th workload of a namespace, following a 20-slot pattern:
// 8 Deployments, 3 StatefulSets, 1 DaemonSet, 4 Pods, 2 Jobs, 2 CronJobs.
func scaleWorkload(ns string, i int) scaleObject {
	name := fmt.Sprintf("w%03d", i)
	d := compliantDeployment(name, 0)
	tmpl := d.Spec.Template
	if i%10 == 3 { // legacy
		c := &tmpl.Spec.Containers[0]
		c.Image = "ghcr.io/loomguard/e2e-app:latest"
		c.LivenessProbe, c.ReadinessProbe = nil, nil
	}
	d.Spec.Template = tmpl
	meta := metav1.ObjectMeta{Name: name, Labels: d.Labels}
	switch slot := i % 20; {
	case slot < 8:
		o := scaleObject{kind: "Deployment", name: name}
		if i%20 == 0 { // one Deployment in ten runs 2 production replicas
			o.running = true
			d.Spec.Replicas = new(int32(2))
			for _, l := range []map[string]string{d.Labels, d.Spec.Template.Labels} {
				l["environment"] = "production"
			}
		}
		o.create = func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
			return err
		}
		return o
	case slot < 11:
		return scaleObject{kind: "StatefulSet", name: name, create: func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: meta,
				Spec: appsv1.StatefulSetSpec{Replicas: new(int32(0)), Selector: d.Spec.Selector, Template: tmpl}}, metav1.CreateOptions{})
			return err
		}}
	case slot < 12:
		return scaleObject{kind: "DaemonSet", name: name, create: func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: meta,
				Spec: appsv1.DaemonSetSpec{Selector: d.Spec.Selector, Template: tmpl}}, metav1.CreateOptions{})
			return err
		}}
	case slot < 16:
		return scaleObject{kind: "Pod", name: name, create: func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: tmpl.Labels}, Spec: tmpl.Spec}, metav1.CreateOptions{})
			return err
		}}
	}
	job := tmpl.DeepCopy()
	job.Spec.RestartPolicy = corev1.RestartPolicyNever
	job.Spec.Containers[0].LivenessProbe, job.Spec.Containers[0].ReadinessProbe = nil, nil
	jobSpec := batchv1.JobSpec{Suspend: new(true), Template: *job}
	if i%20 < 18 {
		return scaleObject{kind: "Job", name: name, create: func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{ObjectMeta: meta, Spec: jobSpec}, metav1.CreateOptions{})
			return err
		}}
	}
	return scaleObject{kind: "CronJob", name: name, create: func(ctx context.Context, cs kubernetes.Interface) error {
		_, err := cs.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{ObjectMeta: meta, Spec: batchv1.CronJobSpec{
			Schedule: "0 3 * * *", Suspend: new(true), JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: *job}},
		}}, metav1.CreateOptions{})
		return err
	}}
}

// countAll counts the objects of a paginated list.
func countAll(ctx context.Context, list func(context.Context, metav1.ListOptions) (int, string, error)) (int, error) {
	total, cont := 0, ""
	for {
		n, next, err := list(ctx, metav1.ListOptions{Limit: 500, Continue: cont})
		if err != nil {
			return 0, err
		}
		total += n
		if cont = next; cont == "" {
			return total, nil
		}
	}
}

// timeAuditCLI runs `loomguard audit -o json` once, under /usr/bin/time -v when the
// machine has it, and returns its wall time, its peak RSS in KiB, and the workloads and
// violations it reported. The child's own rusage is no measure here: Go starts children
// with CLONE_VM, so ru_maxrss counts the test process's memory until the exec. Without
// /usr/bin/time the peak comes from polling /proc/<pid>/status (VmHWM).
func timeAuditCLI(t *testing.T, s *scenario) (time.Duration, int64, int, int) {
	t.Helper()
	args := []string{s.c.BinPath("loomguard"), "audit", "--kubeconfig", s.c.Kubeconfig(), "-o", "json"}
	timeBin, timeErr := exec.LookPath("/usr/bin/time")
	if timeErr == nil {
		args = append([]string{timeBin, "-f", "maxrss_kib=%M"}, args...)
	}
	cmd := exec.CommandContext(t.Context(), args[0], args[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var polled atomic.Int64
	stopPolling := make(chan struct{})
	if timeErr != nil {
		go func() {
			for {
				select {
				case <-stopPolling:
					return
				case <-time.After(2 * time.Millisecond):
				}
				if hwm, _, err := readProcMemory(cmd.Process.Pid); err == nil && hwm > polled.Load() {
					polled.Store(hwm)
				}
			}
		}()
	}
	var report cliReport
	decodeErr := json.NewDecoder(bufio.NewReader(stdout)).Decode(&report)
	_, _ = io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	wall := time.Since(begin)
	close(stopPolling)
	if code := cmd.ProcessState.ExitCode(); code > 1 || decodeErr != nil {
		t.Fatalf("loomguard audit: exit %d (%v), decoding: %v\n%s", code, err, decodeErr, stderr.String())
	}
	maxRSS := polled.Load()
	if timeErr == nil {
		_, after, ok := strings.Cut(stderr.String(), "maxrss_kib=")
		if !ok {
			t.Fatalf("no maxrss_kib in /usr/bin/time's output:\n%s", stderr.String())
		}
		maxRSS, _ = strconv.ParseInt(strings.TrimSpace(after), 10, 64)
	}
	return wall, maxRSS, report.Summary.Workloads, report.Summary.Violations
}

// procMemory reads a process's peak and current resident set (VmHWM, VmRSS) in KiB.
func procMemory(t *testing.T, pid int) (hwm, rss int64) {
	t.Helper()
	hwm, rss, err := readProcMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	return hwm, rss
}

func readProcMemory(pid int) (hwm, rss int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmHWM:":
			hwm = v
		case "VmRSS:":
			rss = v
		}
	}
	return hwm, rss, nil
}

// restartLoomguard restarts the harness's loomguard with extra flags (none: its own).
func restartLoomguard(t *testing.T, c *cluster.Cluster, args ...string) {
	t.Helper()
	if err := c.StopLoomguard(); err != nil {
		t.Fatal(err)
	}
	c.SetLoomguardArgs(args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.StartLoomguard(ctx); err != nil {
		t.Fatal(err)
	}
}
