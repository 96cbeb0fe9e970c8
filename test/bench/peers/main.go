// Command peers is `make bench-peers`: `loomguard check` against its peer, Gatekeeper's CLI
// `gator test`, on the same corpus of Pods, with ConstraintTemplates and Constraints that
// mirror loomguard's default config (test/peers/gatekeeper).
//
// It writes the corpus into a temporary directory with -corpus-script (the shared
// make-pod-corpus.py: 1,000 Loom Pods in one file, every odd one breaking one to three
// policies) and then:
//
//   - times -pairs interleaved pairs of runs, each tool once per pair, the order of the
//     two alternating from pair to pair so that drift on the shared machine hits both
//     alike (after one warm-up run of each, not counted): wall time, CPU time (user +
//     system) and peak resident memory (the child's rusage ru_maxrss), each tool with
//     its default text output, written to a file;
//   - runs each once more with -o json and compares their verdicts Pod by Pod: which
//     policies each enforces (denies) and warns about on each Pod. Every disagreement is
//     printed with both sides' messages, and the command exits 1 if there is any;
//   - prints the medians of each tool, the agreement, and last the ratios gator/loomguard.
//
// Run it with
//
//	make bench-peers    # builds bin/loomguard, and bin/gator once (test/peers/build.sh)
//	go run ./test/bench/peers -pairs 5 -corpus-script ../shared/bench/make-pod-corpus.py
//
// It starts only the two binaries, on local files, -pairs + 2 times each.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	pairs        int
	loomguard    string
	gator        string
	constraints  string
	corpusScript string
	keep         bool
}

func main() {
	var o options
	flag.IntVar(&o.pairs, "pairs", 5, "interleaved pairs of timed runs")
	flag.StringVar(&o.loomguard, "loomguard", "bin/loomguard", "the loomguard binary")
	flag.StringVar(&o.gator, "gator", "bin/gator", "the gator binary (test/peers/build.sh builds it)")
	flag.StringVar(&o.constraints, "constraints", "test/peers/gatekeeper", "directory of the ConstraintTemplates and Constraints gator tests with")
	flag.StringVar(&o.corpusScript, "corpus-script", "../shared/bench/make-pod-corpus.py", "the Python script that writes pods-1000.yaml into its working directory")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory with the corpus and the outputs")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-peers:", err)
		os.Exit(1)
	}
}

// sample is one timed run of a tool.
type sample struct {
	wall, cpu time.Duration
	maxRSS    int64 // bytes
}

// tool is a command line under test; a run exiting 0 or 1 (violations found) counts.
type tool struct {
	name string
	args func(out string) []string // the arguments; out is "text" or "json"
	bin  string
}

func run(o options) error {
	if o.pairs < 1 {
		return errors.New("-pairs must be at least 1")
	}
	for _, p := range []*string{&o.loomguard, &o.gator, &o.constraints, &o.corpusScript} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return err
		}
		*p = abs
	}
	dir, err := os.MkdirTemp("", "bench-peers-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	gen := exec.Command("python3", o.corpusScript)
	gen.Dir, gen.Stderr = dir, os.Stderr
	if err := gen.Run(); err != nil {
		return fmt.Errorf("writing the corpus with %s: %w", o.corpusScript, err)
	}
	corpus := filepath.Join(dir, "pods-1000.yaml")
	info, err := os.Stat(corpus)
	if err != nil {
		return fmt.Errorf("%s wrote no corpus: %w", o.corpusScript, err)
	}
	lg := tool{name: "loomguard check", bin: o.loomguard, args: func(out string) []string {
		return []string{"check", "-f", corpus, "-o", out}
	}}
	gk := tool{name: "gator test", bin: o.gator, args: func(out string) []string {
		a := []string{"test", "-f", o.constraints, "-f", corpus}
		if out == "json" {
			a = append(a, "-o", "json")
		}
		return a
	}}
	tools := []tool{lg, gk}
	fmt.Printf("corpus: %s (%d bytes), %d pairs\n", corpus, info.Size(), o.pairs)
	for _, t := range tools {
		fmt.Printf("  %-16s %s %s\n", t.name, t.bin, strings.Join(t.args("text"), " "))
	}

	out := filepath.Join(dir, "out.txt")
	for _, t := range tools { // warm-up: page cache, binaries
		if _, err := measure(t, "text", out); err != nil {
			return err
		}
	}
	samples := map[string][]sample{}
	for i := range o.pairs {
		order := tools
		if i%2 == 1 {
			order = []tool{gk, lg}
		}
		for _, t := range order {
			s, err := measure(t, "text", out)
			if err != nil {
				return err
			}
			samples[t.name] = append(samples[t.name], s)
			fmt.Printf("pair %d  %-16s wall %7.3fs  cpu %7.3fs  peak RSS %6.1f MiB\n", i+1, t.name, s.wall.Seconds(), s.cpu.Seconds(), mib(s.maxRSS))
		}
	}

	agreement, err := compareVerdicts(lg, gk, dir)
	if err != nil {
		return err
	}

	fmt.Printf("\nmedians over %d runs each\n", o.pairs)
	med := map[string]sample{}
	for _, t := range tools {
		m := median(samples[t.name])
		med[t.name] = m
		fmt.Printf("  %-16s wall %7.3fs  cpu %7.3fs  peak RSS %6.1f MiB\n", t.name, m.wall.Seconds(), m.cpu.Seconds(), mib(m.maxRSS))
	}
	fmt.Println()
	fmt.Println(agreement.summary)
	l, g := med[lg.name], med[gk.name]
	fmt.Printf("\nratios (gator test / loomguard check, medians): wall %.1f×  cpu %.1f×  peak RSS %.2f× (loomguard at %.0f%% of gator's)\n",
		g.wall.Seconds()/l.wall.Seconds(), g.cpu.Seconds()/l.cpu.Seconds(), float64(g.maxRSS)/float64(l.maxRSS), 100*float64(l.maxRSS)/float64(g.maxRSS))
	if agreement.disagree > 0 {
		return fmt.Errorf("the verdicts differ on %d Pods", agreement.disagree)
	}
	return nil
}

// measure runs a tool once, its output in a file, and returns its wall time, CPU time and
// peak RSS. Exit codes 0 and 1 (violations found) are success.
func measure(t tool, format, outPath string) (sample, error) {
	out, err := os.Create(outPath)
	if err != nil {
		return sample{}, err
	}
	defer out.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(t.bin, t.args(format)...)
	cmd.Stdout, cmd.Stderr = out, &stderr
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return sample{}, fmt.Errorf("%s: %w: %s", t.name, err, strings.TrimSpace(stderr.String()))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return sample{}, errors.New("no rusage for the child on this platform")
	}
	return sample{
		wall:   wall,
		cpu:    cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(),
		maxRSS: ru.Maxrss * 1024, // kilobytes on Linux
	}, nil
}

func median(s []sample) sample {
	pick := func(f func(sample) int64) int64 {
		v := make([]int64, len(s))
		for i, x := range s {
			v[i] = f(x)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return sample{
		wall:   time.Duration(pick(func(x sample) int64 { return int64(x.wall) })),
		cpu:    time.Duration(pick(func(x sample) int64 { return int64(x.cpu) })),
		maxRSS: pick(func(x sample) int64 { return x.maxRSS }),
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// finding is one policy's verdict on a Pod: the policy (loomguard's ID, which the
// Constraints are named after), its action and the messages.
type finding struct {
	policy, action string
}

// verdicts maps "namespace/name" to the findings on that Pod, with their messages.
type verdicts map[string]map[finding][]string

type agreement struct {
	summary  string
	disagree int
}

// compareVerdicts runs both tools with -o json and compares, Pod by Pod, the set of
// (policy, action) each reports.
func compareVerdicts(lg, gk tool, dir string) (agreement, error) {
	lgOut, gkOut := filepath.Join(dir, "loomguard.json"), filepath.Join(dir, "gator.json")
	for _, r := range []struct {
		t   tool
		out string
	}{{lg, lgOut}, {gk, gkOut}} {
		if _, err := measure(r.t, "json", r.out); err != nil {
			return agreement{}, err
		}
	}
	lv, err := loomguardVerdicts(lgOut)
	if err != nil {
		return agreement{}, err
	}
	gv, err := gatorVerdicts(gkOut)
	if err != nil {
		return agreement{}, err
	}
	var b strings.Builder
	flaggedBoth, flaggedNone, disagree, sameSets := 0, 0, 0, 0
	for _, pod := range slices.Sorted(maps.Keys(lv)) {
		l, g := lv[pod], gv[pod]
		lDeny, gDeny := denies(l), denies(g)
		switch {
		case lDeny && gDeny:
			flaggedBoth++
		case !lDeny && !gDeny:
			flaggedNone++
		}
		if lDeny != gDeny {
			disagree++
		}
		if slices.Equal(sortedFindings(l), sortedFindings(g)) {
			sameSets++
			continue
		}
		fmt.Fprintf(&b, "  %s: loomguard denies=%t, gator denies=%t\n", pod, lDeny, gDeny)
		for _, f := range sortedFindings(l) {
			if _, ok := g[f]; !ok {
				fmt.Fprintf(&b, "    only loomguard: [%s] (%s) %s\n", f.policy, f.action, strings.Join(l[f], "; "))
			}
		}
		for _, f := range sortedFindings(g) {
			if _, ok := l[f]; !ok {
				fmt.Fprintf(&b, "    only gator:     [%s] (%s) %s\n", f.policy, f.action, strings.Join(g[f], "; "))
			}
		}
	}
	for pod := range gv {
		if _, ok := lv[pod]; !ok {
			disagree++
			fmt.Fprintf(&b, "  %s: reported by gator only (loomguard has no such Pod)\n", pod)
		}
	}
	summary := fmt.Sprintf("verdicts on %d Pods: %d denied by both, %d allowed by both, %d disagree; the policies enforced and warned about are the same on %d Pods",
		len(lv), flaggedBoth, flaggedNone, disagree, sameSets)
	if b.Len() > 0 {
		summary += "\ndifferences:\n" + strings.TrimRight(b.String(), "\n")
	}
	return agreement{summary: summary, disagree: disagree}, nil
}

func denies(f map[finding][]string) bool {
	for k := range f {
		if k.action == "deny" {
			return true
		}
	}
	return false
}

func sortedFindings(f map[finding][]string) []finding {
	return slices.SortedFunc(maps.Keys(f), func(a, b finding) int {
		return strings.Compare(a.policy+" "+a.action, b.policy+" "+b.action)
	})
}

// loomguardVerdicts reads `loomguard check -o json`: every Pod, with its violations.
// loomguard's enforce is gator's deny; warn is warn.
func loomguardVerdicts(path string) (verdicts, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep struct {
		Results []struct {
			Kind, Namespace, Name string
			Violations            []struct {
				Policy, Action, Field, Message string
			}
		}
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("reading loomguard's report: %w", err)
	}
	v := verdicts{}
	for _, r := range rep.Results {
		pod := r.Namespace + "/" + r.Name
		v[pod] = map[finding][]string{}
		for _, x := range r.Violations {
			action := x.Action
			if action == "enforce" {
				action = "deny"
			}
			f := finding{policy: x.Policy, action: action}
			v[pod][f] = append(v[pod][f], x.Field+": "+x.Message)
		}
	}
	return v, nil
}

// gatorVerdicts reads `gator test -o json`: one result per violation, naming the
// Constraint (named after loomguard's policy) and the object.
func gatorVerdicts(path string) (verdicts, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var results []struct {
		Msg        string `json:"msg"`
		Constraint struct {
			Metadata struct{ Name string } `json:"metadata"`
		} `json:"constraint"`
		EnforcementAction string `json:"enforcementAction"`
		ViolatingObject   struct {
			Metadata struct{ Name, Namespace string } `json:"metadata"`
		} `json:"violatingObject"`
	}
	if err := json.Unmarshal(data, &results); err != nil {
		return nil, fmt.Errorf("reading gator's report: %w", err)
	}
	v := verdicts{}
	for _, r := range results {
		pod := r.ViolatingObject.Metadata.Namespace + "/" + r.ViolatingObject.Metadata.Name
		if v[pod] == nil {
			v[pod] = map[finding][]string{}
		}
		f := finding{policy: r.Constraint.Metadata.Name, action: r.EnforcementAction}
		v[pod][f] = append(v[pod][f], r.Msg)
	}
	return v, nil
}
