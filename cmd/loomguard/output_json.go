package main

import (
	"encoding/json"
	"io"
)

// The JSON report is a stable contract that other tools parse: field names and order
// must not change.
type jsonReport struct {
	Summary jsonSummary  `json:"summary"`
	Results []jsonResult `json:"results"`
}

type jsonSummary struct {
	Objects    int `json:"objects"`
	Workloads  int `json:"workloads"`
	Violations int `json:"violations"`
	Denied     int `json:"denied"`
}

type jsonResult struct {
	Source   string `json:"source"`
	Document int    `json:"document"`
	// Item is the index in a List's items, only for List items.
	Item       *int            `json:"item,omitempty"`
	Kind       string          `json:"kind"`
	Namespace  string          `json:"namespace"`
	Name       string          `json:"name"`
	Decision   string          `json:"decision"`
	Violations []jsonViolation `json:"violations"`
}

type jsonViolation struct {
	Policy  string `json:"policy"`
	Action  string `json:"action"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// writeJSON writes every workload, allowed ones included, with 2-space indentation.
func writeJSON(w io.Writer, c *checkResult) error {
	s := c.summary()
	out := jsonReport{
		Summary: jsonSummary{Objects: s.objects, Workloads: s.workloads, Violations: s.violations, Denied: s.denied},
		Results: []jsonResult{},
	}
	for _, e := range c.entries {
		if e.workload == nil {
			continue
		}
		res := jsonResult{
			Source:     e.doc.source,
			Document:   e.doc.index,
			Kind:       e.gvk.Kind,
			Namespace:  e.namespace,
			Name:       e.name,
			Decision:   string(e.report.Decision()),
			Violations: make([]jsonViolation, 0, len(e.report.Violations)),
		}
		if e.item >= 0 {
			res.Item = &e.item
		}
		for _, v := range e.report.Violations {
			res.Violations = append(res.Violations, jsonViolation{
				Policy: v.Policy, Action: string(v.Action), Field: v.Field, Message: v.Detail,
			})
		}
		out.Results = append(out.Results, res)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}
