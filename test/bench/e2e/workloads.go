package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// processes are the components whose CPU time is reported, in column order.
var processes = []string{"kube-apiserver", "loomguard", "etcd", "kube-controller-manager"}

// result is one workload run in one setup.
type result struct {
	workload, setup string
	round           int
	pods            int           // Pods created
	failed          int           // creates that failed
	fixed           int           // created Pods loomguard fixed (fix workload)
	wall            time.Duration // first create to last Pod created
	latencies       []time.Duration
	reviews         float64                  // loomguard admission requests during the run
	cpu             map[string]time.Duration // per process, during the run
}

func (r result) throughput() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.pods) / r.wall.Seconds()
}

func (r result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// cpuPerPod is a process's CPU time per created Pod, in milliseconds.
func (r result) cpuPerPod(proc string) float64 {
	if r.pods == 0 {
		return 0
	}
	return float64(r.cpu[proc]) / float64(time.Millisecond) / float64(r.pods)
}

func printHeader() {
	fmt.Printf("%-8s %-16s %5s %6s %8s %8s %8s %6s %6s %9s | CPU ms/Pod: %s\n",
		"workload", "setup", "round", "pods", "pods/s", "p50 ms", "p99 ms", "failed", "fixed", "reviews/Pod",
		strings.Join(processes, " "))
}

func (r result) print() {
	cpu := make([]string, len(processes))
	for i, p := range processes {
		cpu[i] = fmt.Sprintf("%.2f", r.cpuPerPod(p))
	}
	fmt.Printf("%-8s %-16s %5d %6d %8.0f %8s %8s %6d %6d %9.2f   | %s\n",
		r.workload, r.setup, r.round, r.pods, r.throughput(), ms(r.percentile(0.50)), ms(r.percentile(0.99)),
		r.failed, r.fixed, r.reviews/float64(max(r.pods, 1)), strings.Join(cpu, " "))
}

// runWorkload runs one workload in the setup in force and cleans up after it.
func (b *bench) runWorkload(ctx context.Context, workload, setup string, round int) (result, error) {
	r := result{workload: workload, setup: setup, round: round}
	waited, settled, busy, err := b.settle(ctx)
	if err != nil {
		return r, err
	}
	if !settled {
		b.logf("round %d, %s, %s: the machine is still busy after %.0f s (%.2f cores); measuring anyway", round, workload, setup, waited.Seconds(), busy)
	} else if waited > 2*settleWindow {
		b.logf("round %d, %s, %s: waited %.0f s for the machine to settle", round, workload, setup, waited.Seconds())
	}
	reviews0, err := b.reviews(ctx, setup)
	if err != nil {
		return r, err
	}
	cpu0 := b.cpuTimes()
	switch workload {
	case "pods", "fix":
		tmpl, check := b.compliant, func(*corev1.Pod) {}
		var fixed atomic.Int64
		if workload == "fix" {
			tmpl = b.fix
			check = func(p *corev1.Pod) {
				if _, ok := p.Annotations[fixedAnnotation]; ok && b.checkFixedPod(p) == nil {
					fixed.Add(1)
				}
			}
		}
		profiled := b.startProfile(ctx, fmt.Sprintf("cpu-%s-%s-%d.pprof", workload, setup, round))
		start := time.Now()
		lat, failed, err := b.createPods(ctx, tmpl, fmt.Sprintf("%s-%d", workload, round), b.o.pods, false, check)
		r.wall = time.Since(start)
		// The CPU of the run, before waiting for the profile (which may outlast it).
		r.cpu = b.cpuTimes()
		if err != nil {
			return r, err
		}
		if err := profiled(); err != nil {
			return r, err
		}
		r.latencies, r.pods, r.failed, r.fixed = lat, len(lat), failed, int(fixed.Load())
	case "rollout":
		profiled := b.startProfile(ctx, fmt.Sprintf("cpu-%s-%s-%d.pprof", workload, setup, round))
		if err := b.rollout(ctx, &r); err != nil {
			return r, err
		}
		r.cpu = b.cpuTimes()
		if err := profiled(); err != nil {
			return r, err
		}
	}
	for p, t := range r.cpu {
		r.cpu[p] = t - cpu0[p]
	}
	reviews1, err := b.reviews(ctx, setup)
	if err != nil {
		return r, err
	}
	r.reviews = reviews1 - reviews0
	// Failed creates and unfixed Pods are results, reported in their columns and at the
	// end; the benchmark carries on.
	if workload == "rollout" {
		return r, b.deleteDeployment(ctx, rolloutName(round))
	}
	return r, b.deletePods(ctx)
}

func rolloutName(round int) string { return fmt.Sprintf("rollout-%d", round) }

// rollout creates a Deployment of b.o.replicas compliant Pods and waits, on a watch, until
// the replicaset controller has created them all. Latencies are the API server's, from the
// audit log: requestReceivedTimestamp to stageTimestamp of each Pod create.
func (b *bench) rollout(ctx context.Context, r *result) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	name := rolloutName(r.round)
	labels := map[string]string{"app": name, "version": "0.9.3", "environment": "development"}
	tmpl := b.compliant.DeepCopy()
	tmpl.Labels = labels
	replicas := int32(b.o.replicas)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec},
		},
	}
	pods := b.c.Clientset().CoreV1().Pods(namespace)
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(list.Items) > 0 {
		return fmt.Errorf("%d Pods left from an earlier run", len(list.Items))
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	auditOffset, err := fileSize(b.c.AuditLogPath())
	if err != nil {
		return err
	}

	start := time.Now()
	if _, err := b.c.Clientset().AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Deployment %s: %w", name, err)
	}
	// The API server ends a watch whose reader falls behind (its buffer is bounded), which a
	// starved benchmark client does with thousands of Pods: the watch resumes from the last
	// event, a bounded number of times.
	seen, lastRV, resumes := 0, list.ResourceVersion, 0
	for seen < b.o.replicas {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				if resumes++; resumes > 10 {
					return fmt.Errorf("the Pod watch ended %d times, after %d of %d Pods", resumes, seen, b.o.replicas)
				}
				if w, err = pods.Watch(ctx, metav1.ListOptions{ResourceVersion: lastRV}); err != nil {
					return fmt.Errorf("resuming the Pod watch after %d of %d Pods: %w", seen, b.o.replicas, err)
				}
				defer w.Stop()
				continue
			}
			if p, ok := ev.Object.(*corev1.Pod); ok {
				lastRV = p.ResourceVersion
			}
			if ev.Type == watch.Added {
				seen++
			}
		case <-ctx.Done():
			return fmt.Errorf("%d of %d Pods created after 5 minutes", seen, b.o.replicas)
		}
	}
	r.wall = time.Since(start)
	r.pods = seen

	// The audit log's ResponseComplete events can trail the watch a little.
	deadline := time.Now().Add(10 * time.Second)
	for {
		lat, failed, err := podCreateLatencies(b.c.AuditLogPath(), auditOffset, namespace, "system:serviceaccount:kube-system:replicaset-controller")
		if err != nil {
			return err
		}
		if len(lat)+failed >= b.o.replicas || time.Now().After(deadline) {
			r.latencies, r.failed = lat, failed
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deleteDeployment deletes a Deployment in the foreground (its ReplicaSet and Pods first)
// and waits until its Pods are gone.
func (b *bench) deleteDeployment(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	fg := metav1.DeletePropagationForeground
	if err := b.c.Clientset().AppsV1().Deployments(namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		return fmt.Errorf("deleting Deployment %s: %w", name, err)
	}
	return b.waitNoPods(ctx)
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// auditEvent is the part of an audit.k8s.io/v1 Event the benchmark reads.
type auditEvent struct {
	Stage     string                    `json:"stage"`
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceived metav1.MicroTime `json:"requestReceivedTimestamp"`
	StageTimestamp  metav1.MicroTime `json:"stageTimestamp"`
}

// podCreateLatencies reads the API server's audit log from offset and returns the latency
// of each successful Pod create by user in namespace, and the number of failed ones.
func podCreateLatencies(path string, offset int64, namespace, user string) ([]time.Duration, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, 0, err
	}
	var lat []time.Duration
	failed := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), `"resource":"pods"`) {
			continue
		}
		var ev auditEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, 0, fmt.Errorf("decoding %s: %w", path, err)
		}
		if ev.Stage != "ResponseComplete" || ev.Verb != "create" || ev.User.Username != user ||
			ev.ObjectRef == nil || ev.ObjectRef.Namespace != namespace || ev.ObjectRef.Subresource != "" {
			continue
		}
		if ev.ResponseStatus == nil || ev.ResponseStatus.Code >= 300 {
			failed++
			continue
		}
		lat = append(lat, ev.StageTimestamp.Sub(ev.RequestReceived.Time))
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	return lat, failed, nil
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat and of the CPU
// times in /proc/stat: 100 on every Linux architecture Kubernetes runs on.
const clockTicks = 100

// cpuTimes reads utime+stime of every process of the control plane.
func (b *bench) cpuTimes() map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, pid := range b.c.PIDs() {
		if t, err := cpuTime(pid); err == nil {
			out[name] = t
		}
	}
	return out
}

// cpuTime is a process's user plus system CPU time from /proc/<pid>/stat (proc(5): fields
// 14 and 15, counted after the parenthesised command name).
func cpuTime(pid int) (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	t, err := parseStatCPU(string(data))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// parseStatCPU returns utime+stime of a /proc/<pid>/stat line. The command name, field 2,
// is in parentheses and may itself hold spaces and parentheses.
func parseStatCPU(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state): utime is field 14, stime field 15.
	if len(fields) < 13 {
		return 0, errors.New("too few fields")
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// printSummary prints, per workload and setup, the medians over the rounds and the median
// of the per-round ratios to no admission.
func printSummary(o options, setups, workloads []string, results []result) {
	fmt.Printf("\nSummary: medians of %d rounds; ratios to no admission in the same round, median over the rounds\n", o.rounds)
	fmt.Printf("(pods and fix: %d creates, %d concurrent; rollout: a Deployment of %d replicas)\n\n", o.pods, o.c, o.replicas)
	fmt.Printf("| workload | setup | Pods/s | p50 ms | p99 ms | throughput ratio | p50 ratio | p99 ratio | reviews/Pod | CPU ms/Pod %s |\n",
		strings.Join(processes, " | "))
	fmt.Printf("|---|---|---|---|---|---|---|---|---|%s\n", strings.Repeat("---|", len(processes)))
	find := func(w, s string, round int) (result, bool) {
		for _, r := range results {
			if r.workload == w && r.setup == s && r.round == round {
				return r, true
			}
		}
		return result{}, false
	}
	for _, w := range workloads {
		for _, s := range setups {
			var tput, p50, p99, rt, r50, r99, reviews []float64
			cpu := make([][]float64, len(processes))
			for round := 1; round <= o.rounds; round++ {
				r, ok := find(w, s, round)
				if !ok {
					continue
				}
				tput = append(tput, r.throughput())
				p50 = append(p50, msf(r.percentile(0.50)))
				p99 = append(p99, msf(r.percentile(0.99)))
				reviews = append(reviews, r.reviews/float64(max(r.pods, 1)))
				for i, p := range processes {
					cpu[i] = append(cpu[i], r.cpuPerPod(p))
				}
				if base, ok := find(w, "none", round); ok && base.throughput() > 0 {
					rt = append(rt, r.throughput()/base.throughput())
					r50 = append(r50, msf(r.percentile(0.50))/msf(base.percentile(0.50)))
					r99 = append(r99, msf(r.percentile(0.99))/msf(base.percentile(0.99)))
				}
			}
			if len(tput) == 0 {
				continue
			}
			cells := make([]string, len(processes))
			for i := range processes {
				cells[i] = fmt.Sprintf("%.2f", median(cpu[i]))
			}
			fmt.Printf("| %s | %s | %.0f | %.2f | %.2f | %.2f× | %.2f× | %.2f× | %.2f | %s |\n",
				w, s, median(tput), median(p50), median(p99), median(rt), median(r50), median(r99), median(reviews),
				strings.Join(cells, " | "))
		}
	}
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// startProfile starts fetching CPU profiles into -profile-dir when profiling is on: of
// kube-apiserver in every setup (kube-apiserver-<name>), of loomguard in its setups (<name>).
// The function it returns waits for them.
func (b *bench) startProfile(ctx context.Context, name string) func() error {
	if b.o.profileDir == "" {
		return func() error { return nil }
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(b.o.profileSecs)*time.Second+30*time.Second)
	secs := fmt.Sprint(b.o.profileSecs)
	var g errgroup.Group
	g.Go(func() error {
		data, err := b.c.Clientset().CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
			Param("seconds", secs).DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("profiling kube-apiserver: %w", err)
		}
		return os.WriteFile(filepath.Join(b.o.profileDir, "kube-apiserver-"+name), data, 0o644)
	})
	if b.pprofAddr != "" && b.c.LoomguardPID() != 0 && strings.Contains(name, "-loomguard") {
		g.Go(func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.pprofAddr+"/debug/pprof/profile?seconds="+secs, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("profiling loomguard: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("profiling loomguard: %s", resp.Status)
			}
			data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			if err != nil {
				return fmt.Errorf("profiling loomguard: %w", err)
			}
			return os.WriteFile(filepath.Join(b.o.profileDir, name), data, 0o644)
		})
	}
	return func() error {
		defer cancel()
		return g.Wait()
	}
}
