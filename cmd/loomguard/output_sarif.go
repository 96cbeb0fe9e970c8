package main

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

// The subset of SARIF 2.1.0 that loomguard writes.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	ShortDescription     sarifMessage       `json:"shortDescription"`
	HelpURI              string             `json:"helpUri"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysicalLocation  `json:"physicalLocation"`
	LogicalLocations []sarifLogicalLocation `json:"logicalLocations,omitempty"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           *sarifRegion          `json:"region,omitempty"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogicalLocation struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations,omitempty"`
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
func writeSARIF(w io.Writer, c *checkResult) error {
	driver := sarifDriver{
		Name:           "loomguard",
		Version:        currentBuild().Version,
		InformationURI: informationURI,
		Rules:          []sarifRule{},
	}
	ruleIndex := map[string]int{}
	for i, p := range c.engine.Policies() {
		ruleIndex[p.ID] = i
		desc := p.Description
		if desc == "" {
			desc = p.ID
		}
		driver.Rules = append(driver.Rules, sarifRule{
			ID:                   p.ID,
			ShortDescription:     sarifMessage{Text: desc},
			HelpURI:              policiesDocURI + "#" + p.ID,
			DefaultConfiguration: sarifConfiguration{Level: sarifLevel(c.engine.Action(p.ID, ""))},
		})
	}
	run := sarifRun{
		Tool:        sarifTool{Driver: driver},
		Invocations: []sarifInvocation{{ExecutionSuccessful: len(c.errors) == 0}},
		Results:     []sarifResult{},
	}
	for _, err := range c.errors {
		n := sarifNotification{Level: "error", Message: sarifMessage{Text: err.Error()}}
		loc := sarifLocation{PhysicalLocation: sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: sarifURI(err.Source)}}}
		if line := cmp.Or(err.At, err.Line); line > 0 {
			loc.PhysicalLocation.Region = &sarifRegion{StartLine: line}
		}
		n.Locations = []sarifLocation{loc}
		run.Invocations[0].ToolExecutionNotifications = append(run.Invocations[0].ToolExecutionNotifications, n)
	}
	for _, e := range c.entries {
		if e.workload == nil {
			continue
		}
		fqn := e.namespace + "/" + e.gvk.Kind + "/" + e.name
		for _, v := range e.report.Violations {
			run.Results = append(run.Results, sarifResult{
				RuleID:    v.Policy,
				RuleIndex: ruleIndex[v.Policy],
				Level:     sarifLevel(v.Action),
				Message:   sarifMessage{Text: v.Field + ": " + v.Detail},
				Locations: []sarifLocation{{
					PhysicalLocation: sarifPhysicalLocation{
						ArtifactLocation: sarifArtifactLocation{URI: sarifURI(e.doc.Source)},
						Region:           &sarifRegion{StartLine: max(e.doc.Line, 1)},
					},
					LogicalLocations: []sarifLogicalLocation{
						{Name: e.name, FullyQualifiedName: fqn, Kind: "resource"},
						{Name: v.Field, FullyQualifiedName: fqn + "/" + v.Field, Kind: "property"},
					},
				}},
			})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}
