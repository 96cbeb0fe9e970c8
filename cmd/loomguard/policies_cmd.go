//go:build !loomguard_cli

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
	"github.com/loomguard/loomguard/webhook"
)

func policiesCommand(args []string, stdout, stderr io.Writer) int {
	f := newFlags(commandHelp{
		name:  "policies",
		usage: "policies [-o text|wide|json|markdown|match-conditions] [--config FILE]",
		description: `List the policies in the order their fixes apply: ID, the action in force (from
--config, else the built-in Loom defaults), whether the policy fixes what it checks,
and its description. "wide" adds the fields each policy reads; "json" has everything;
"markdown" is the policy reference, docs/policies.md, which is generated with it.
"match-conditions" prints, as YAML, the matchConditions that loomguard serve keeps on
each of its webhooks under the config: the API server skips loomguard for the objects
they clear (docs/match-conditions.md); an empty list means every object is sent. Each
webhook normally gets one condition; stderr says when it gets one per workload kind (one
would be too long for the API server) or none, and why.`,
		exitCodes: `  0  listed
  2  usage or config error`,
		examples: `  loomguard policies
  loomguard policies -o wide --config loomguard.yaml
  loomguard policies -o markdown > docs/policies.md   # or: go generate ./cmd/loomguard
  loomguard policies -o match-conditions --config loomguard.yaml`,
	}, stderr)
	output := newChoice("text", "text", "wide", "json", "markdown", "match-conditions")
	f.VarP(output, "output", "o", "output format: text, wide, json, markdown or match-conditions")
	configPath := f.StringP("config", "c", "", "loomguard config `FILE` (default: the built-in Loom defaults)")
	if code, done := f.parse(args, stdout, stderr); done {
		return code
	}
	engine, ok := loadEngine(*configPath, stderr)
	if !ok {
		return exitError
	}
	list := describePolicies(engine)
	var err error
	switch output.value {
	case "match-conditions":
		err = writeMatchConditions(stdout, stderr, engine.Config())
	case "json":
		err = writePoliciesJSON(stdout, list)
	case "markdown":
		err = writePoliciesMarkdown(stdout, list, *configPath)
	default:
		err = writePoliciesTable(stdout, list, output.value == "wide")
	}
	if err != nil {
		fmt.Fprintf(stderr, "loomguard: writing policies: %v\n", err)
		return exitError
	}
	return exitOK
}

// policyInfo is what the policies command shows of a policy.
type policyInfo struct {
	ID            string   `json:"id"`
	Description   string   `json:"description"`
	Fields        []string `json:"fields"`
	Action        string   `json:"action"`
	DefaultAction string   `json:"defaultAction"`
	// Fixable says whether the policy has a fix; FixEnabled whether the config lets it run.
	Fixable    bool `json:"fixable"`
	FixEnabled bool `json:"fixEnabled"`
	// CrossObject says the policy needs the namespace's related objects (markdown only).
	CrossObject bool `json:"-"`
}

func (p policyInfo) fix() string {
	switch {
	case !p.Fixable:
		return "no"
	case !p.FixEnabled:
		return "disabled"
	}
	return "yes"
}

// describePolicies lists the engine's policies with the actions in force outside any
// namespace override.
func describePolicies(e *policies.Engine) []policyInfo {
	disabled := disabledFixes(e.Config())
	var list []policyInfo
	for _, p := range e.Policies() {
		fields := p.Fields
		if fields == nil {
			fields = []string{}
		}
		list = append(list, policyInfo{
			ID:            p.ID,
			Description:   p.Description,
			Fields:        fields,
			Action:        string(e.Action(p.ID, "")),
			DefaultAction: string(p.DefaultAction),
			Fixable:       p.Fix != nil,
			FixEnabled:    p.Fix != nil && !disabled[p.ID],
			CrossObject:   p.CrossObject,
		})
	}
	return list
}

// disabledFixes returns the IDs of the policies whose config says fix: false. The
// policies' configs are keyed by policy ID in the config's JSON form, which is how
// loomguard reads them without reaching into the engine.
func disabledFixes(cfg *policies.Config) map[string]bool {
	out := map[string]bool{}
	data, err := json.Marshal(cfg.Policies)
	if err != nil {
		return out
	}
	var settings map[string]struct {
		Fix *bool `json:"fix"`
	}
	if err := json.Unmarshal(data, &settings); err != nil {
		return out
	}
	for id, s := range settings {
		if s.Fix != nil && !*s.Fix {
			out[id] = true
		}
	}
	return out
}

func writePoliciesTable(w io.Writer, list []policyInfo, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if wide {
		fmt.Fprintln(tw, "ID\tACTION\tFIX\tFIELDS\tDESCRIPTION")
	} else {
		fmt.Fprintln(tw, "ID\tACTION\tFIX\tDESCRIPTION")
	}
	for _, p := range list {
		if wide {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Action, p.fix(), strings.Join(p.Fields, ","), p.Description)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, p.Action, p.fix(), p.Description)
		}
	}
	return tw.Flush()
}

func writePoliciesJSON(w io.Writer, list []policyInfo) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		Policies []policyInfo `json:"policies"`
	}{list})
}

const markdownIntro = `loomguard checks Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and
CronJobs (through ` + "`spec.jobTemplate.spec.template`" + `) against the policies below, with one
engine: in the admission webhook, in the background audit and in ` + "`loomguard check`" + `.
Every other kind is allowed untouched. The defaults follow Loom's Kubernetes best-practices
guide.

## Actions

Every policy has an action:

| Action | Admission | ` + "`loomguard check`" + ` |
|---|---|---|
| ` + "`enforce`" + ` | the request is denied, one cause per violation | denied, exit code 1 |
| ` + "`warn`" + ` | admitted with a warning per violation (kubectl prints them) | warned, exit code 0 |
| ` + "`audit`" + ` | admitted silently; recorded in audit annotations and metrics | listed, exit code 0 |
| ` + "`off`" + ` | not evaluated | not evaluated |

The action in force is the one the config sets for the policy (` + "`policies.<id>.action`" + `);
without one, it is the policy's default action capped by the config's ` + "`defaultAction`" + `:
` + "`enforce`" + ` (the default) keeps every default action, ` + "`warn`" + ` turns enforce into warn,
` + "`audit`" + ` turns enforce and warn into audit, and ` + "`off`" + ` turns every such policy off.
Per-namespace overrides (` + "`namespaces`" + `) change actions in matching namespaces, exempt
namespaces (` + "`exemptNamespaces`" + `) are never evaluated, and governed ` + "`exceptions`" + ` waive
policies for named workloads until they expire.

## Fixes

The mutating webhook and ` + "`loomguard fix`" + ` apply the safe defaults of the policies that are
enforced or warned, in the order of the table below; audited policies change nothing. A fix
never overrides an explicit value and never invents what only the author can know (label
values, image tags, probes), and it is idempotent. ` + "`fix: false`" + ` in a policy's config
switches its fix off.

## Cross-object policies

` + "`pod-disruption-budget`" + ` and ` + "`network-policy`" + ` check a workload against the
PodDisruptionBudgets and NetworkPolicies of its namespace. Admission sees one object at a
time, so they never deny, warn or audit there, whatever their action: the background audit
and ` + "`loomguard audit`" + ` check them against the cluster, and ` + "`loomguard check`" + `
against the PodDisruptionBudgets and NetworkPolicies of its input (` + "`--cross-object`" + `:
by default, in the namespaces where the input holds at least one of them).
`

func writePoliciesMarkdown(w io.Writer, list []policyInfo, configPath string) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("# loomguard policies\n\n")
	bw.WriteString("<!-- Generated by `go run ./cmd/loomguard policies -o markdown > docs/policies.md`\n")
	bw.WriteString("     (or `go generate ./cmd/loomguard`) from the policy catalog. DO NOT EDIT. -->\n\n")
	bw.WriteString(markdownIntro)
	bw.WriteString("\n## Policies\n\n")
	if configPath != "" {
		fmt.Fprintf(bw, "Actions are those in force under the config `%s`.", configPath)
	} else {
		bw.WriteString("Actions are those of the default config.")
	}
	bw.WriteString("\nThe fields a policy reads are paths in the pod spec (`spec` of a Pod, `spec.template.spec`\n" +
		"of most workloads, `spec.jobTemplate.spec.template.spec` of a CronJob), except those that\n" +
		"start with `metadata.` or `spec.`, which are paths in the object.\n\n")
	bw.WriteString("| Policy | Action | Fix | Description |\n|---|---|---|---|\n")
	for _, p := range list {
		fmt.Fprintf(bw, "| [`%s`](#%s) | %s | %s | %s |\n", p.ID, p.ID, p.Action, p.fix(), markdownCell(p.Description))
	}
	for _, p := range list {
		fmt.Fprintf(bw, "\n## `%s`\n\n", p.ID)
		if p.Description != "" {
			bw.WriteString(strings.TrimSpace(p.Description) + "\n\n")
		}
		action := p.Action
		if p.Action != p.DefaultAction {
			action += " (default: " + p.DefaultAction + ")"
		}
		fmt.Fprintf(bw, "- **Action:** %s\n", action)
		fmt.Fprintf(bw, "- **Fix:** %s\n", p.fix())
		if p.CrossObject {
			bw.WriteString("- **Where:** audit and CLI only (a [cross-object policy](#cross-object-policies))\n")
		}
		if len(p.Fields) == 0 {
			bw.WriteString("- **Fields:** —\n")
			continue
		}
		bw.WriteString("- **Fields:**\n")
		for _, fld := range p.Fields {
			fmt.Fprintf(bw, "  - `%s`\n", fld)
		}
	}
	return bw.Flush()
}

// markdownCell makes text safe for a table cell.
func markdownCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// writeMatchConditions writes, as YAML, the webhooks of loomguard's configurations with the
// matchConditions serve keeps on them under cfg (webhook.WantMatchConditions), and says on
// stderr which webhook gets none (and why) or one per workload kind.
func writeMatchConditions(w, stderr io.Writer, cfg *policies.Config) error {
	type hook struct {
		Name            string                                   `json:"name"`
		MatchConditions []admissionregistrationv1.MatchCondition `json:"matchConditions"`
	}
	var hooks []hook
	for _, name := range []string{webhook.MutatingWebhookName, webhook.ValidatingWebhookName} {
		conds := webhook.WantMatchConditions(name, cfg)
		switch {
		case len(conds) == 0:
			conds = []admissionregistrationv1.MatchCondition{}
			why := policies.WhyNoMatchConditions(cfg, name == webhook.MutatingWebhookName)
			fmt.Fprintf(stderr, "loomguard: %s gets no matchConditions (the API server sends it every object): %s\n", name, why)
		case len(conds) > 1:
			fmt.Fprintf(stderr, "loomguard: %s gets %d matchConditions, one per workload kind: as one they would be longer than the API server's CEL parses\n", name, len(conds))
		}
		hooks = append(hooks, hook{Name: name, MatchConditions: conds})
	}
	out, err := yaml.Marshal(map[string]any{"webhooks": hooks})
	if err != nil {
		return fmt.Errorf("encoding the matchConditions: %w", err)
	}
	_, err = w.Write(out)
	return err
}
