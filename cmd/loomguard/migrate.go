//go:build !loomguard_cli

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/loomguard/loomguard/gatekeeper"
	"github.com/loomguard/loomguard/internal/manifest"
	"github.com/loomguard/loomguard/policies"
)

const migrateExitCodes = `  0  migrated (with --compare: no disagreement)
  1  with --compare: at least one object on which Gatekeeper and loomguard disagree
  2  usage or input error (unreadable path, invalid YAML, a malformed Constraint), or the
     cluster could not be read`

// migrateCommand runs `loomguard migrate gatekeeper`.
func migrateCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, connect gatekeeperConnectFunc) int {
	f := newFlags(commandHelp{
		name:  "migrate",
		usage: "migrate gatekeeper (-f PATH... | --from-cluster [--context NAME]) [--with-loom-profile] [--max-action A] [--config-out FILE] [-o text|json] [--compare]",
		description: `Turn OPA Gatekeeper Constraints into a loomguard config, and report what carries over.

It reads Constraints (constraints.gatekeeper.sh, every kind), Gatekeeper's Config
(config.gatekeeper.sh: excluded namespaces) and its Assign mutators (mutation.gatekeeper.sh)
from files, directories (recursively), stdin (-f -) or a cluster (--from-cluster), and
writes a loomguard config that enforces what the Constraints enforce and nothing more:
every loomguard policy that no Constraint maps to is off (the report lists them as worth
considering), and fixes run only where an Assign set the same field. Actions carry over
(deny -> enforce, warn -> warn, dryrun -> audit), scoped with per-namespace overrides
where match.namespaces and match.excludedNamespaces say so; where several Constraints
set one policy, the stricter action wins and the report says where.

The report says for each Constraint: mapped (loomguard enforces the same), partial (what
differs: a parameter or match clause loomguard cannot express, or a requirement it adds)
or unmapped (no equivalent, and what to do instead). docs/migrating-from-gatekeeper.md
has the full mapping table.

Output: without --config-out, the config goes to stdout and the text report to stderr;
with --config-out FILE, the config goes to FILE and the report to stdout. -o json prints
{"config":"<the YAML>","report":{...}} on stdout.

--compare also evaluates the workloads of the input (or of the cluster) with the
migrated config and lists the objects on which loomguard and Gatekeeper's audit (the
Constraints' status.violations) disagree, and why; its exit code is 1 when they do.`,
		exitCodes: migrateExitCodes,
		examples: `  loomguard migrate gatekeeper -f policies/gatekeeper/ --config-out loomguard.yaml
  loomguard migrate gatekeeper -f policies/gatekeeper/ --max-action audit > side-by-side.yaml
  kubectl get constraints -A -o yaml | loomguard migrate gatekeeper -f - > loomguard.yaml
  loomguard migrate gatekeeper --from-cluster --context prod -o json
  loomguard migrate gatekeeper --from-cluster --compare        # where would they decide differently?
  loomguard migrate gatekeeper -f constraints/ -f manifests/ --compare`,
	}, stderr)
	files := f.StringArrayP("filename", "f", nil, "`PATH` to read: a file, a directory, or - for stdin; repeatable")
	fromCluster := f.Bool("from-cluster", false, "read the Constraints, Config and Assigns (and with --compare, the workloads) from a cluster")
	kubeconfig := f.String("kubeconfig", "", "with --from-cluster: kubeconfig `FILE` (default: KUBECONFIG, ~/.kube/config, else in-cluster)")
	kubeContext := f.String("context", "", "with --from-cluster: kubeconfig context `NAME` (default: the current context)")
	timeout := f.Duration("request-timeout", 60*time.Second, "with --from-cluster: timeout of each API request (0: none)")
	withLoom := f.Bool("with-loom-profile", false, "keep loomguard's Loom profile on too; the stricter action and parameters win")
	maxAction := actionChoice{newChoice("enforce", "enforce", "warn", "audit")}
	f.Var(maxAction, "max-action", "cap every migrated action: audit runs loomguard next to Gatekeeper without blocking anything")
	configOut := f.String("config-out", "", "write the config to `FILE` (the report then goes to stdout)")
	output := newChoice("text", "text", "json")
	f.VarP(output, "output", "o", "report format: text or json")
	compare := f.Bool("compare", false, "list the objects on which Gatekeeper's audit and loomguard disagree")
	namespace := f.StringP("namespace", "n", "default", "with --compare: evaluate workloads that name no namespace in `NAMESPACE`")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if code, done := f.parse(args, stdout, stderr); done {
			return code
		}
		return f.usageError(stderr, "name the engine to migrate from: loomguard migrate gatekeeper")
	}
	if args[0] != "gatekeeper" {
		return f.usageError(stderr, fmt.Sprintf("unknown engine %q: loomguard migrates from gatekeeper", args[0]))
	}
	if code, done := f.parse(args[1:], stdout, stderr); done {
		return code
	}
	switch {
	case *fromCluster && len(*files) > 0:
		return f.usageError(stderr, "give -f PATH or --from-cluster, not both")
	case !*fromCluster && len(*files) == 0:
		return f.usageError(stderr, "no input: give -f PATH (- for stdin) or --from-cluster")
	case *timeout < 0:
		return f.usageError(stderr, fmt.Sprintf("--request-timeout %s must not be negative", *timeout))
	}

	var (
		objs     []gatekeeper.Object
		verdicts func(cfg *policies.Config) ([]gatekeeper.Verdict, gatekeeper.OwnerResolver, error)
	)
	if *fromCluster {
		gc, err := connect(*kubeconfig, *kubeContext, *timeout)
		if err != nil {
			fmt.Fprintf(stderr, "loomguard migrate: %v\n", err)
			return exitError
		}
		objs, err = gc.gatekeeperObjects(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "loomguard migrate: reading Gatekeeper's objects from %s: %v\n", gc.host, err)
			return exitError
		}
		verdicts = func(cfg *policies.Config) ([]gatekeeper.Verdict, gatekeeper.OwnerResolver, error) {
			return gc.verdicts(ctx, cfg)
		}
	} else {
		r := newReader(nil, *namespace)
		docs, _, errs := r.scan(ctx, *files, stdin)
		for _, err := range errs {
			fmt.Fprintf(stderr, "loomguard: %v\n", err)
		}
		if len(errs) > 0 {
			return exitError
		}
		var entries []*entry
		for _, pd := range docs {
			for _, e := range pd.entries {
				u := &unstructured.Unstructured{}
				if err := json.Unmarshal(e.raw, &u.Object); err != nil {
					fmt.Fprintf(stderr, "loomguard: %s: %v\n", e.Location(), err)
					return exitError
				}
				objs = append(objs, gatekeeper.Object{Source: e.Location(), Obj: u})
				entries = append(entries, e)
			}
		}
		verdicts = func(cfg *policies.Config) ([]gatekeeper.Verdict, gatekeeper.OwnerResolver, error) {
			return fileVerdicts(cfg, entries, *namespace)
		}
	}

	res, err := gatekeeper.Migrate(objs, gatekeeper.Options{WithLoomProfile: *withLoom, MaxAction: policies.Action(maxAction.value)})
	if err != nil {
		for _, e := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "loomguard: %s\n", e)
		}
		return exitError
	}
	if res.Report.Summary.Constraints == 0 {
		fmt.Fprintln(stderr, "loomguard migrate: no Gatekeeper Constraint found in the input")
		return exitError
	}
	header := fmt.Sprintf("loomguard config migrated from %d Gatekeeper Constraints by `loomguard migrate gatekeeper` (%s).\n"+
		"Mapped %d, partial %d, unmapped %d: see the migration report for what differs.",
		res.Report.Summary.Constraints, currentBuild().Version, res.Report.Summary.Mapped, res.Report.Summary.Partial, res.Report.Summary.Unmapped)
	if *withLoom {
		header += "\nThe Loom profile stays on (--with-loom-profile)."
	}
	if maxAction.value != "enforce" {
		header += "\nEvery action is capped at " + maxAction.value + " (--max-action)."
	}
	cfgYAML, err := gatekeeper.ConfigYAML(res.Config, header)
	if err != nil {
		fmt.Fprintf(stderr, "loomguard migrate: %v\n", err)
		return exitError
	}
	if *configOut != "" {
		if err := os.WriteFile(*configOut, cfgYAML, 0o644); err != nil {
			fmt.Fprintf(stderr, "loomguard migrate: writing the config: %v\n", manifest.UnwrapPath(err))
			return exitError
		}
	}

	var cmpRes *gatekeeper.Comparison
	if *compare {
		vs, resolve, err := verdicts(res.Config)
		if err != nil {
			fmt.Fprintf(stderr, "loomguard migrate: evaluating the workloads: %v\n", err)
			return exitError
		}
		cmpRes = gatekeeper.Compare(res, vs, resolve)
	}

	reportOut, configStream := stdout, stdout
	if *configOut == "" && output.value == "text" {
		reportOut = stderr
	}
	switch output.value {
	case "json":
		doc := struct {
			Config     string                 `json:"config"`
			Report     gatekeeper.Report      `json:"report"`
			Comparison *gatekeeper.Comparison `json:"comparison,omitempty"`
		}{string(cfgYAML), res.Report, cmpRes}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			fmt.Fprintf(stderr, "loomguard migrate: writing the report: %v\n", err)
			return exitError
		}
	default:
		if *configOut == "" {
			if _, err := configStream.Write(cfgYAML); err != nil {
				fmt.Fprintf(stderr, "loomguard migrate: writing the config: %v\n", err)
				return exitError
			}
		}
		if err := res.Report.WriteText(reportOut); err != nil {
			fmt.Fprintf(stderr, "loomguard migrate: writing the report: %v\n", err)
			return exitError
		}
		if cmpRes != nil {
			fmt.Fprintln(reportOut)
			if err := cmpRes.WriteText(reportOut); err != nil {
				fmt.Fprintf(stderr, "loomguard migrate: writing the comparison: %v\n", err)
				return exitError
			}
		}
	}
	if cmpRes != nil && cmpRes.Summary.Disagreements > 0 {
		return exitViolations
	}
	return exitOK
}

// fileVerdicts evaluates the workloads of the input with the migrated config.
func fileVerdicts(cfg *policies.Config, entries []*entry, namespace string) ([]gatekeeper.Verdict, gatekeeper.OwnerResolver, error) {
	engine, err := policies.NewEngine(cfg, time.Now)
	if err != nil {
		return nil, nil, fmt.Errorf("the migrated config: %w", err)
	}
	r := newReader(engine, namespace)
	var out []gatekeeper.Verdict
	for _, e := range entries {
		if e.Workload == nil {
			continue
		}
		r.evaluate(e)
		out = append(out, verdictOf(engine, e.GVK.Kind, e.Namespace, e.Name, &e.Report))
	}
	return out, nil, nil
}

func verdictOf(engine *policies.Engine, kind, namespace, name string, rep *policies.Report) gatekeeper.Verdict {
	v := gatekeeper.Verdict{Kind: kind, Namespace: namespace, Name: name, Exempt: rep.Exempt, Violations: rep.Violations,
		Actions: map[string]policies.Action{}}
	for _, p := range engine.Policies() {
		v.Actions[p.ID] = engine.Action(p.ID, namespace)
	}
	return v
}

// actionChoice is a choice flag whose values are actions.
type actionChoice struct{ *choice }

func (actionChoice) Type() string { return "action" }
