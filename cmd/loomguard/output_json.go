package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
)

// The JSON report is a stable contract that other tools parse: field names and order
// must not change. writeJSON streams it, one result at a time.
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

// writeJSON writes every workload, allowed ones included, with 2-space indentation: the
// layout of encoding/json's indented encoder over the whole report, written one result at
// a time so that a large report (a cluster audit) is never held in memory twice.
func writeJSON(w io.Writer, c *checkResult) error {
	s := c.summary()
	bw := bufio.NewWriter(w)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// encode writes v as an element nested at depth levels of indentation.
	encode := func(v any, prefix string) error {
		buf.Reset()
		enc.SetIndent(prefix, "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
		_, err := bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		return err
	}
	bw.WriteString("{\n  \"summary\": ")
	if err := encode(jsonSummary{Objects: s.objects, Workloads: s.workloads, Violations: s.violations, Denied: s.denied}, "  "); err != nil {
		return err
	}
	bw.WriteString(",\n  \"results\": [")
	n := 0
	for _, e := range c.entries {
		if e.workload == nil {
			continue
		}
		res := jsonResult{
			Source:     e.doc.Source,
			Document:   e.doc.Index,
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
		if n > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n    ")
		if err := encode(res, "    "); err != nil {
			return err
		}
		n++
	}
	if n > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("]\n}\n")
	return bw.Flush()
}
