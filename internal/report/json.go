package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
)

// JSONReport is the JSON report, a stable contract that other tools parse: field names and
// order must not change. writeJSON streams it, one result at a time.
type JSONReport struct {
	Summary JSONSummary  `json:"summary"`
	Results []JSONResult `json:"results"`
}

// JSONSummary counts the objects, workloads, violations and denied workloads.
type JSONSummary struct {
	Objects    int `json:"objects"`
	Workloads  int `json:"workloads"`
	Violations int `json:"violations"`
	Denied     int `json:"denied"`
}

// JSONResult is one workload, allowed ones included.
type JSONResult struct {
	Source   string `json:"source"`
	Document int    `json:"document"`
	// Item is the index in a List's items, only for List items.
	Item       *int            `json:"item,omitempty"`
	Kind       string          `json:"kind"`
	Namespace  string          `json:"namespace"`
	Name       string          `json:"name"`
	Decision   string          `json:"decision"`
	Violations []JSONViolation `json:"violations"`
}

// JSONViolation is one violation; Message is its detail.
type JSONViolation struct {
	Policy  string `json:"policy"`
	Action  string `json:"action"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// writeJSON writes every workload, allowed ones included, with 2-space indentation: the
// layout of encoding/json's indented encoder over the whole report, written one result at
// a time so that a large report (a cluster audit) is never held in memory twice.
func writeJSON(w io.Writer, c *Result) error {
	s := c.Summary()
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
	if err := encode(JSONSummary{Objects: s.Objects, Workloads: s.Workloads, Violations: s.Violations, Denied: s.Denied}, "  "); err != nil {
		return err
	}
	bw.WriteString(",\n  \"results\": [")
	n := 0
	for _, e := range c.Objects {
		if e.Workload == nil {
			continue
		}
		res := JSONResult{
			Source:     e.Doc.Source,
			Document:   e.Doc.Index,
			Kind:       e.GVK.Kind,
			Namespace:  e.Namespace,
			Name:       e.Name,
			Decision:   string(e.Report.Decision()),
			Violations: make([]JSONViolation, 0, len(e.Report.Violations)),
		}
		if e.Item >= 0 {
			res.Item = &e.Item
		}
		for _, v := range e.Report.Violations {
			res.Violations = append(res.Violations, JSONViolation{
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
