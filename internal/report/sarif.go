package report

import (
	"cmp"
	"encoding/json"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/loomguard/loomguard/policies"
)

const (
	sarifSchema    = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion   = "2.1.0"
	informationURI = "https://github.com/loomguard/loomguard"
	policiesDocURI = informationURI + "/blob/main/docs/policies.md"
)

// SARIFLog is the subset of SARIF 2.1.0 that loomguard writes: one run with a rule per
// policy and a result per violation.
type SARIFLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []SARIFRun `json:"runs"`
}

type SARIFRun struct {
	Tool        SARIFTool         `json:"tool"`
	Invocations []SARIFInvocation `json:"invocations"`
	Results     []SARIFResult     `json:"results"`
}

type SARIFTool struct {
	Driver SARIFDriver `json:"driver"`
}

type SARIFDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version"`
	InformationURI string      `json:"informationUri"`
	Rules          []SARIFRule `json:"rules"`
}

type SARIFRule struct {
	ID                   string             `json:"id"`
	ShortDescription     SARIFMessage       `json:"shortDescription"`
	HelpURI              string             `json:"helpUri"`
	DefaultConfiguration SARIFConfiguration `json:"defaultConfiguration"`
}

type SARIFConfiguration struct {
	Level string `json:"level"`
}

type SARIFMessage struct {
	Text string `json:"text"`
}

type SARIFResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   SARIFMessage    `json:"message"`
	Locations []SARIFLocation `json:"locations"`
}

type SARIFLocation struct {
	PhysicalLocation SARIFPhysicalLocation  `json:"physicalLocation"`
	LogicalLocations []SARIFLogicalLocation `json:"logicalLocations,omitempty"`
}

type SARIFPhysicalLocation struct {
	ArtifactLocation SARIFArtifactLocation `json:"artifactLocation"`
	Region           *SARIFRegion          `json:"region,omitempty"`
}

type SARIFArtifactLocation struct {
	URI string `json:"uri"`
}

type SARIFRegion struct {
	StartLine int `json:"startLine"`
}

type SARIFLogicalLocation struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

type SARIFInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []SARIFNotification `json:"toolExecutionNotifications,omitempty"`
}

type SARIFNotification struct {
	Level     string          `json:"level"`
	Message   SARIFMessage    `json:"message"`
	Locations []SARIFLocation `json:"locations,omitempty"`
}

// sarifLevel maps an action to a SARIF level.
func sarifLevel(a policies.Action) string {
	switch a {
	case policies.ActionEnforce:
		return "error"
	case policies.ActionWarn:
		return "warning"
	case policies.ActionAudit:
		return "note"
	}
	return "none"
}

// sarifURI turns a source into a URI reference: a relative path stays relative (for
// code-scanning to resolve against the checkout), an absolute one becomes a file URI.
func sarifURI(source string) string {
	p := filepath.ToSlash(source)
	if filepath.IsAbs(source) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p // a Windows drive path
		}
		return (&url.URL{Scheme: "file", Path: p}).String()
	}
	return (&url.URL{Path: p}).String()
}

// writeSARIF writes one run with a rule per policy and a result per violation. Input
// errors are tool execution notifications of the invocation.
func writeSARIF(w io.Writer, c *Result) error {
	driver := SARIFDriver{
		Name:           "loomguard",
		Version:        c.ToolVersion,
		InformationURI: informationURI,
		Rules:          []SARIFRule{},
	}
	ruleIndex := map[string]int{}
	for i, p := range c.Engine.Policies() {
		ruleIndex[p.ID] = i
		desc := p.Description
		if desc == "" {
			desc = p.ID
		}
		driver.Rules = append(driver.Rules, SARIFRule{
			ID:                   p.ID,
			ShortDescription:     SARIFMessage{Text: desc},
			HelpURI:              policiesDocURI + "#" + p.ID,
			DefaultConfiguration: SARIFConfiguration{Level: sarifLevel(c.Engine.Action(p.ID, ""))},
		})
	}
	run := SARIFRun{
		Tool:        SARIFTool{Driver: driver},
		Invocations: []SARIFInvocation{{ExecutionSuccessful: len(c.Errors) == 0}},
		Results:     []SARIFResult{},
	}
	for _, err := range c.Errors {
		n := SARIFNotification{Level: "error", Message: SARIFMessage{Text: err.Error()}}
		loc := SARIFLocation{PhysicalLocation: SARIFPhysicalLocation{ArtifactLocation: SARIFArtifactLocation{URI: sarifURI(err.Source)}}}
		if line := cmp.Or(err.At, err.Line); line > 0 {
			loc.PhysicalLocation.Region = &SARIFRegion{StartLine: line}
		}
		n.Locations = []SARIFLocation{loc}
		run.Invocations[0].ToolExecutionNotifications = append(run.Invocations[0].ToolExecutionNotifications, n)
	}
	for _, e := range c.Objects {
		if e.Workload == nil {
			continue
		}
		fqn := e.Namespace + "/" + e.GVK.Kind + "/" + e.Name
		for _, v := range e.Report.Violations {
			run.Results = append(run.Results, SARIFResult{
				RuleID:    v.Policy,
				RuleIndex: ruleIndex[v.Policy],
				Level:     sarifLevel(v.Action),
				Message:   SARIFMessage{Text: v.Field + ": " + v.Detail},
				Locations: []SARIFLocation{{
					PhysicalLocation: SARIFPhysicalLocation{
						ArtifactLocation: SARIFArtifactLocation{URI: sarifURI(e.Doc.Source)},
						Region:           &SARIFRegion{StartLine: max(e.Doc.Line, 1)},
					},
					LogicalLocations: []SARIFLogicalLocation{
						{Name: e.Name, FullyQualifiedName: fqn, Kind: "resource"},
						{Name: v.Field, FullyQualifiedName: fqn + "/" + v.Field, Kind: "property"},
					},
				}},
			})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(SARIFLog{Schema: sarifSchema, Version: sarifVersion, Runs: []SARIFRun{run}})
}
