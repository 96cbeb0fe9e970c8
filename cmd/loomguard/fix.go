package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	jsonpatch5 "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/internal/manifest"
	"github.com/loomguard/loomguard/internal/report"
	"github.com/loomguard/loomguard/mutation"
)

func fixCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f := newFlags(commandHelp{
		name:  "fix",
		usage: "fix -f PATH [-f PATH]... [--config FILE] [-n NAMESPACE] [--check-after]",
		description: `Print every input document on stdout, separated by "---", with the safe defaults
that the mutating webhook would apply: the same fixes, computed as the same JSON patch.
A fixed workload is printed as YAML converted from its patched JSON (keys sorted,
comments dropped) and gains the loomguard.io/fixed annotation listing the fixes.
Every other document (workloads with nothing to fix, other kinds, documents with
only comments) is printed byte for byte as it was read. Items of a List and the
object of an AdmissionReview are fixed in place and the whole document is printed.

Fixes never invent values the policies cannot know (label values, image tags,
probes): what they cannot fix is left for check to report. A fix is idempotent:
fixing fix's output changes nothing. On stderr, one line per fixed object lists the
policies whose fixes changed it.

` + inputHelp,
		exitCodes: `  0  done (without --check-after, whatever violations remain)
  1  --check-after: a fixed document still violates an enforced policy
  2  usage, config or input error; every document is still printed, the bad
     ones unchanged`,
		examples: `  loomguard fix -f deploy.yaml > deploy.fixed.yaml
  loomguard fix -f manifests/ --check-after > fixed.yaml
  kustomize build overlays/prod | loomguard fix -f - | kubectl apply -f -`,
	}, stderr)
	files := f.StringArrayP("filename", "f", nil, "`PATH` to fix: a file, a directory, or - for stdin; repeatable")
	configPath := f.StringP("config", "c", "", "loomguard config `FILE` (default: the built-in Loom defaults)")
	namespace := f.StringP("namespace", "n", "default", "evaluate workloads that name no namespace in `NAMESPACE`")
	checkAfter := f.Bool("check-after", false, "evaluate the fixed documents, print what remains on stderr and exit like check")
	if code, done := f.parse(args, stdout, stderr); done {
		return code
	}
	r, code := f.newInputReader(*files, *namespace, *configPath, stderr)
	if r == nil {
		return code
	}
	engine := r.engine
	docs, sources, errs := r.scan(ctx, *files, stdin)
	// --check-after sees the input's PodDisruptionBudgets and NetworkPolicies as check
	// does by default (fix never changes them).
	r.related = crossObjectView(docs, crossObjectAuto)
	after := &report.Result{Engine: engine, ToolVersion: currentBuild().Version, Sources: sources}
	out := bufio.NewWriter(stdout)
	objects := 0
	for i, pd := range docs {
		objects += len(pd.entries)
		if i > 0 {
			out.WriteString("---\n")
		}
		text, fixed, err := r.fix(pd)
		if err != nil {
			errs = append(errs, err)
		}
		reparse := len(fixed) > 0 || err != nil
		out.Write(text)
		if len(text) > 0 && text[len(text)-1] != '\n' {
			out.WriteByte('\n')
		}
		for _, e := range fixed {
			fmt.Fprintf(stderr, "%s %s: fixed %s\n", e.Location(), e.Describe(), strings.Join(e.fixed, ", "))
		}
		if *checkAfter {
			entries, evalErrs := r.recheck(pd, text, reparse)
			errs = append(errs, evalErrs...)
			for _, e := range entries {
				after.Objects = append(after.Objects, &e.Object)
			}
		}
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "loomguard: writing output: %v\n", err)
		return exitError
	}
	for _, err := range errs {
		fmt.Fprintf(stderr, "loomguard: %v\n", err)
	}
	after.Errors = errs
	if objects == 0 && len(errs) == 0 {
		fmt.Fprintf(stderr, "loomguard: no objects found in %s\n", strings.Join(*files, ", "))
		return exitError
	}
	if *checkAfter {
		if err := after.Write(stderr, "text", false); err != nil {
			return exitError
		}
		return exitCode(after)
	}
	if len(errs) > 0 {
		return exitError
	}
	return exitOK
}

// fixedEntry is an object that fix changed, with the policies whose fixes changed it.
type fixedEntry struct {
	*entry
	fixed []string
}

// fix applies the fixes to the workloads of a document and returns the document's new
// text: its original text when nothing changed, else the patched JSON as YAML.
func (r *reader) fix(pd parsedDoc) ([]byte, []fixedEntry, *manifest.Error) {
	fail := func(err error) ([]byte, []fixedEntry, *manifest.Error) {
		return pd.doc.Raw, nil, &manifest.Error{Source: pd.doc.Source, Document: pd.doc.Index, Item: -1, Line: pd.doc.Line, Err: err}
	}
	var (
		ops   []jsonpatch.Operation
		fixed []fixedEntry
	)
	for _, e := range pd.entries {
		if e.Workload == nil || mutation.Unfixable(e.Workload) != "" {
			continue // as the mutating webhook leaves it
		}
		m, err := mutation.Apply(r.engine, e.Workload, e.raw, e.Namespace)
		if err != nil {
			return fail(fmt.Errorf("fixing %s: %w", e.Describe(), err))
		}
		if len(m.Fixed) == 0 {
			continue
		}
		fixed = append(fixed, fixedEntry{entry: e, fixed: m.Fixed})
		for _, op := range m.Patch {
			op.Path = e.pointer + op.Path // inside a List or an AdmissionReview
			ops = append(ops, op)
		}
	}
	if len(ops) == 0 {
		return pd.doc.Raw, fixed, nil
	}
	data, err := json.Marshal(ops)
	if err != nil {
		return fail(fmt.Errorf("encoding patch: %w", err))
	}
	patch, err := jsonpatch5.DecodePatch(data)
	if err != nil {
		return fail(fmt.Errorf("decoding patch: %w", err))
	}
	patched, err := patch.Apply(pd.json)
	if err != nil {
		return fail(fmt.Errorf("applying patch: %w", err))
	}
	text, err := yaml.JSONToYAML(patched)
	if err != nil {
		return fail(fmt.Errorf("converting fixed document to YAML: %w", err))
	}
	return text, fixed, nil
}

// recheck evaluates the objects of a document after fix. When fix touched its objects,
// the printed text is parsed again, so that what is checked is exactly what was printed.
func (r *reader) recheck(pd parsedDoc, text []byte, reparse bool) ([]*entry, []*manifest.Error) {
	entries := pd.entries
	var errs []*manifest.Error
	if reparse {
		doc := *pd.doc
		if !bytes.Equal(text, doc.Raw) {
			doc.Raw, doc.IsJSON = text, false
		}
		var npd parsedDoc
		npd, errs = r.parse(&doc)
		entries = npd.entries
	}
	for _, e := range entries {
		if e.Workload != nil {
			r.evaluate(e)
		}
	}
	return entries, errs
}
