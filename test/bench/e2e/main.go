// Command e2e is `make bench-e2e`: what admission costs the API server, measured on the
// real local control plane of test/cluster (etcd, kube-apiserver, kube-controller-manager
// and `loomguard serve` from bin/, all on 127.0.0.1).
//
// It compares admission setups in interleaved rounds, so that drift on the shared machine
// hits every setup alike:
//
//   - none: no admission webhook and no policy;
//   - vap: an in-tree ValidatingAdmissionPolicy whose CEL rules mirror loomguard's core pod
//     checks (vap.go), bound to the namespaces the webhooks govern;
//   - vap-conditions: an in-tree ValidatingAdmissionPolicy whose two validations are the
//     matchConditions loomguard generates for its two webhooks from its config (vap.go):
//     what loomguard's checks cost the API server as CEL, without any webhook;
//   - loomguard: loomguard's webhooks registered from manifests/base/webhook-configurations.yaml,
//     exactly as users apply them (only clientConfig points at the local process), with
//     loomguard's default flags (the harness's 2-second audit interval is set back to the
//     default for the whole benchmark), so with the matchConditions loomguard keeps on them
//     (docs/match-conditions.md): the setup is in force once the compliant Pod is no
//     longer sent to loomguard;
//   - loomguard-no-mc: the same with --match-conditions=false: every Pod is sent, as before
//     loomguard had matchConditions;
//   - loomguard-http1 and loomguard-http2: the same, loomguard restarted with
//     --enable-http2=false or --enable-http2=true (not in the default set);
//   - map: no loomguard, an in-tree MutatingAdmissionPolicy that applies loomguard's patch
//     for the fix Pod (map.go): the in-tree yardstick of the fix workload, which is the only
//     workload it runs;
//   - static-patch: no loomguard, only a mutating webhook served by the benchmark itself that
//     answers every Pod review with the patch loomguard computes for the fix Pod, computed
//     once (ceiling.go): the most a webhook returning that patch can reach on the fix
//     workload, on the cores it shares with the control plane; the only workload it runs.
//
// and three workloads, run in every round, each in the setups it applies to:
//
//   - pods: -pods compliant Loom Pods created by a client-go load generator, -c at a time;
//     latency is the client's;
//   - rollout: a Deployment of -replicas compliant Pods, created by the deployment and
//     replicaset controllers (kube-controller-manager runs with -kcm-qps, so that its own
//     client rate limit does not hide admission); throughput runs from the Deployment's
//     create to the last Pod's, latency is the API server's for each Pod create by the
//     replicaset controller (from its audit log);
//   - fix: -pods Pods that loomguard's mutating webhook must fix (no security context), in
//     every setup but vap (whose policy denies them); every created Pod is checked against
//     the fix Pod with loomguard's patch applied (checkFixedPod).
//
// With -profile-dir, loomguard serves Go's pprof endpoints on a loopback port, kube-apiserver
// runs with --profiling, and the benchmark writes CPU profiles of the first -profile-seconds
// of each run there: kube-apiserver's in every setup to
// kube-apiserver-cpu-<workload>-<setup>-<round>.pprof, loomguard's in its setups to
// cpu-<workload>-<setup>-<round>.pprof:
//
//	go tool pprof -top bin/loomguard-full /tmp/prof/cpu-pods-loomguard-1.pprof
//	go tool pprof -top bin/kube-apiserver /tmp/prof/kube-apiserver-cpu-pods-loomguard-1.pprof
//
// The CPU per Pod is taken when the run ends, not the profile; the profiling itself costs
// the processes a little CPU, so compare CPU figures from runs without -profile-dir.
//
// Before each measured run it waits, at most 30 s, until fewer than -settle-cores cores of
// the machine are busy (all processes, from /proc/stat), and says so when it waited longer
// than 2 s or gave up: what the last run left behind, or other work on the shared machine,
// is then not measured with the next run.
//
// For every run it prints throughput, p50 and p99, failed creates, loomguard reviews per Pod
// and the CPU time per created Pod of each process (kube-apiserver, loomguard, etcd,
// kube-controller-manager), from /proc/<pid>/stat utime+stime deltas. Last it prints, per
// workload and setup, the medians over the rounds and the median of the per-round ratios
// to no admission.
//
//	make build tools && go run ./test/bench/e2e
//
// It only ever talks to loopback addresses, creates at most rounds × setups × (2 × -pods
// + -replicas + -warmup) Pods, deletes them after each run, and stops after -duration-cap.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/loomguard/loomguard/test/cluster"
)

type options struct {
	rounds      int
	pods        int
	c           int
	replicas    int
	warmup      int
	setups      string
	workloads   string
	kcmQPS      int
	durationCap time.Duration
	keep        bool
	profileDir  string
	profileSecs int
	lgArgs      string
	settleCores float64
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 5, "interleaved rounds (each runs every workload in every setup it applies to)")
	flag.IntVar(&o.pods, "pods", 1000, "Pods the client creates per run of the pods and fix workloads")
	flag.IntVar(&o.c, "c", 50, "concurrent creates of the client")
	flag.IntVar(&o.replicas, "replicas", 2000, "replicas of the rollout workload's Deployment (the replicaset controller creates at most 500 per sync: 2,000 take several syncs, so that a round outlasts the controllers' slow start)")
	flag.IntVar(&o.warmup, "warmup", 100, "Pods created (and deleted) after each change of setup, not measured")
	flag.StringVar(&o.setups, "setups", "none,vap,vap-conditions,loomguard,loomguard-no-mc,map,static-patch", "comma-separated setups: none, vap, vap-conditions, loomguard, loomguard-no-mc, loomguard-http1, loomguard-http2, map, static-patch")
	flag.StringVar(&o.workloads, "workloads", "pods,rollout,fix", "comma-separated workloads: pods, rollout, fix")
	flag.IntVar(&o.kcmQPS, "kcm-qps", 1000, "kube-controller-manager's --kube-api-qps and --kube-api-burst")
	flag.DurationVar(&o.durationCap, "duration-cap", 40*time.Minute, "stop after this long, whatever is left")
	flag.BoolVar(&o.keep, "keep", false, "keep the control plane's directory (logs, audit log)")
	flag.StringVar(&o.lgArgs, "loomguard-args", "", "space-separated flags added to loomguard's command line in every loomguard setup (e.g. --max-in-flight=32)")
	flag.StringVar(&o.profileDir, "profile-dir", "", "write CPU profiles of loomguard (run with --pprof-bind-address on loopback) and of kube-apiserver (run with --profiling) for each run to this directory")
	flag.IntVar(&o.profileSecs, "profile-seconds", 3, "length of each CPU profile, from the start of the run")
	flag.Float64Var(&o.settleCores, "settle-cores", 0.25, "before each measured run, wait (at most 30 s) until fewer than this many cores of the machine are busy over a second; 0 does not wait")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.rounds < 1 || o.rounds > 20 || o.pods < 1 || o.pods > 10_000 || o.c < 1 || o.c > 500 ||
		o.replicas < 1 || o.replicas > 2_000 || o.warmup < 0 || o.warmup > 10_000 || o.profileSecs < 1 || o.profileSecs > 60 ||
		!(o.settleCores >= 0 && o.settleCores <= 64) {
		return fmt.Errorf("out of bounds: -rounds 1..20, -pods 1..10000, -c 1..500, -replicas 1..2000, -warmup 0..10000, -profile-seconds 1..60, -settle-cores 0..64")
	}
	setups, err := parseList(o.setups, setupNames())
	if err != nil {
		return fmt.Errorf("-setups: %w", err)
	}
	if setups[0] != "none" {
		return fmt.Errorf("-setups must start with none: the ratios are to it")
	}
	workloads, err := parseList(o.workloads, []string{"pods", "rollout", "fix"})
	if err != nil {
		return fmt.Errorf("-workloads: %w", err)
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return fmt.Errorf("-profile-dir: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.durationCap)
	defer cancel()

	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench-e2e: "+format+"\n", args...) }
	qps := fmt.Sprint(o.kcmQPS)
	c, err := cluster.Start(ctx, cluster.Config{
		Logf:                  logf,
		KeepDir:               o.keep,
		ControllerManagerArgs: []string{"--kube-api-qps=" + qps, "--kube-api-burst=" + qps},
		// The status controller of ValidatingAdmissionPolicies type-checks a policy for
		// warnings, which admission does not use. It cannot store the warnings of the
		// vap-conditions policy (a 2.5 MB status, over the 2 MiB that kube-apiserver's etcd
		// client sends) and type-checks it again and again, with growing backoff: 1.5 cores
		// during the measured runs that follow the policy's creation.
		DisabledControllers: []string{"validatingadmissionpolicy-status-controller"},
		APIServerArgs:       apiServerArgs(o),
	})
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() {
		if err := c.Stop(); err != nil {
			logf("stopping the control plane: %v", err)
		}
	}()

	b, err := newBench(ctx, c, o, setups, logf)
	if err != nil {
		return err
	}
	var results []result
	printHeader()
	for round := 1; round <= o.rounds; round++ {
		// Rotate the order of the setups from round to round.
		order := slices.Clone(setups)
		k := (round - 1) % len(order)
		order = append(order[k:], order[:k]...)
		for _, s := range order {
			if err := b.apply(ctx, s); err != nil {
				return fmt.Errorf("round %d: setting up %s: %w", round, s, err)
			}
			for _, w := range workloads {
				if w == "fix" && vapPolicyName(s) != "" {
					continue // the policy denies what loomguard would fix
				}
				if w != "fix" && (s == staticPatchSetup || s == mapSetup) {
					continue // they apply the fix Pod's patch
				}
				r, err := b.runWorkload(ctx, w, s, round)
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", round, w, s, err)
				}
				r.print()
				results = append(results, r)
			}
		}
	}
	printSummary(o, setups, workloads, results)
	var bad []string
	for _, r := range results {
		if r.failed > 0 {
			bad = append(bad, fmt.Sprintf("%s/%s round %d: %d creates failed", r.workload, r.setup, r.round, r.failed))
		}
		if r.workload == "fix" && r.setup != "none" && r.fixed != r.pods {
			bad = append(bad, fmt.Sprintf("fix/%s round %d: %d of %d Pods fixed", r.setup, r.round, r.fixed, r.pods))
		}
		if r.workload == "fix" && r.setup == "none" && r.fixed > 0 {
			bad = append(bad, fmt.Sprintf("fix/none round %d: %d Pods fixed without admission (a fixing setup was still in force)", r.round, r.fixed))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("admission failed during the benchmark:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

func parseList(s string, known []string) ([]string, error) {
	var out []string
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		if !slices.Contains(known, v) {
			return nil, fmt.Errorf("unknown %q (want one of %s)", v, strings.Join(known, ", "))
		}
		if slices.Contains(out, v) {
			return nil, fmt.Errorf("%q twice", v)
		}
		out = append(out, v)
	}
	return out, nil
}

// since formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// apiServerArgs turns kube-apiserver's profiling on when the benchmark profiles.
func apiServerArgs(o options) []string {
	if o.profileDir == "" {
		return nil
	}
	return []string{"--profiling=true"}
}
