package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/loomguard/loomguard/internal/manifest"
	"github.com/loomguard/loomguard/internal/report"
	"github.com/loomguard/loomguard/policies"
)

const inputHelp = `Inputs (-f, repeatable): files, directories and "-" for stdin. A directory is
read recursively: every .yaml, .yml and .json file below it, in lexical order, except
hidden files and directories (.git, .github, ...). A named file is read whatever its
extension. A YAML file may hold several documents separated by "---"; a JSON file holds
one object or a stream of objects. A v1 List is read item by item, and an
admission.k8s.io/v1 AdmissionReview stands for its request.object (in request.namespace
when the object names none). Documents with only comments are not evaluated.

Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs are decoded
strictly (an unknown or duplicate field is an input error) and evaluated in their own
namespace, else in --namespace. Every other kind is counted and skipped.`

const checkExitCodes = `  0  no violation of an enforced policy
  1  at least one violation of an enforced policy
  2  usage, config or input error (unreadable path, invalid YAML, unknown field, ...);
     the report still covers every document that could be evaluated`

func checkCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f := newFlags(commandHelp{
		name:  "check",
		usage: "check -f PATH [-f PATH]... [--config FILE] [-o text|json|sarif|junit] [-n NAMESPACE] [-v] [--cross-object auto|on|off]",
		description: `Evaluate manifests against loomguard's policies, with the same engine, config and
messages as the admission webhook: what check denies, the cluster denies.

` + inputHelp + `

` + crossObjectHelp + `

Output formats (-o):
  text   (default) each workload with violations, as kubectl shows a denial:
           deploy.yaml#0 Deployment loom/web: denied
             [image-tag] spec.template.spec.containers[0].image: ... (enforce)
         then a summary line; -v also lists allowed workloads, exemptions, waivers
         and skipped objects. "#0" is the 0-based index of the document in its
         file, not counting documents that hold only comments; ".items[1]" names
         an item of a List.
  json   {"summary":{...},"results":[...]}: every workload, allowed ones included
  sarif  SARIF 2.1.0, one rule per policy (for code-scanning uploads)
  junit  JUnit XML: a testsuite per file, a testcase per workload and policy; enforced
         violations fail, warn and audit violations are printed in system-out

Input errors are printed on stderr, one line each, naming the file, the document and
its line: loomguard: bad.yaml: document 2 (line 14): <error>.`,
		exitCodes: checkExitCodes,
		examples: `  loomguard check -f manifests/
  loomguard check -f deploy.yaml -f service.yaml --config loomguard.yaml
  kustomize build overlays/prod | loomguard check -f - -n loom
  loomguard check -f manifests/ -o sarif > loomguard.sarif
  loomguard check -f manifests/ -o junit > loomguard-junit.xml`,
	}, stderr)
	files := f.StringArrayP("filename", "f", nil, "`PATH` to check: a file, a directory, or - for stdin; repeatable")
	configPath := f.StringP("config", "c", "", "loomguard config `FILE` (default: the built-in Loom defaults)")
	output := newChoice("text", "text", "json", "sarif", "junit")
	f.VarP(output, "output", "o", "output format: text, json, sarif or junit")
	namespace := f.StringP("namespace", "n", "default", "evaluate workloads that name no namespace in `NAMESPACE`")
	verbose := f.BoolP("verbose", "v", false, "text output: also list allowed workloads, waivers and skipped objects")
	crossObject := modeChoice{newChoice(crossObjectAuto, crossObjectAuto, crossObjectOn, crossObjectOff)}
	f.Var(crossObject, "cross-object", "where the input's PodDisruptionBudgets and NetworkPolicies are the whole truth: auto, on or off")
	if code, done := f.parse(args, stdout, stderr); done {
		return code
	}
	r, code := f.newInputReader(*files, *namespace, *configPath, stderr)
	if r == nil {
		return code
	}
	engine := r.engine
	// With --cross-object=on every namespace has a view: nothing to gain from evaluating
	// early, which would only evaluate every workload twice.
	r.evaluateEarly = crossObject.value != crossObjectOn
	docs, sources, errs := r.scan(ctx, *files, stdin)
	r.related = crossObjectView(docs, crossObject.value)
	if err := r.finishEvaluation(docs); err != nil {
		fmt.Fprintf(stderr, "loomguard: %v\n", err)
		return exitError
	}
	res := &report.Result{Engine: engine, ToolVersion: currentBuild().Version, Sources: sources, Errors: errs}
	for _, pd := range docs {
		for _, e := range pd.entries {
			res.Objects = append(res.Objects, &e.Object)
		}
	}
	for _, err := range errs {
		fmt.Fprintf(stderr, "loomguard: %v\n", err)
	}
	if len(res.Objects) == 0 && len(errs) == 0 {
		fmt.Fprintf(stderr, "loomguard: no objects found in %s\n", strings.Join(*files, ", "))
		res.Errors = append(res.Errors, manifest.FileError(strings.Join(*files, ", "), errors.New("no objects found")))
	}
	if err := res.Write(stdout, output.value, *verbose); err != nil {
		fmt.Fprintf(stderr, "loomguard: writing %s report: %v\n", output.value, err)
		return exitError
	}
	return exitCode(res)
}

func exitCode(c *report.Result) int {
	if len(c.Errors) > 0 {
		return exitError
	}
	for _, e := range c.Objects {
		if e.Workload != nil && e.Report.Decision() == policies.Denied {
			return exitViolations
		}
	}
	return exitOK
}
