// Package report holds what `loomguard check` and `loomguard audit` found and writes it in
// the four report formats: text (kubectl-like), json (a stable contract other tools
// parse), sarif (SARIF 2.1.0, for code scanning) and junit (JUnit XML, for CI).
//
// The SARIF and JUnit documents are written from the small hand-kept types of sarif.go
// and junit.go (the subset loomguard emits), not from a library: a Go SARIF library such
// as github.com/owenrumney/go-sarif models the whole 2.1.0 schema behind a builder API, a
// dependency for what is fifteen plain structs here, whose output the golden files and
// TestSARIFStructure pin; JUnit XML has no schema of record to follow, only the de-facto
// layout CI tools read, which junit.go states.
package report

import (
	"io"
	"strconv"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/loomguard/loomguard/internal/manifest"
	"github.com/loomguard/loomguard/policies"
)

// Object is one object of the input, or of the cluster, as the reports show it.
type Object struct {
	// Doc is the document the object was read from.
	Doc *manifest.Document
	// Item is the object's index in a List's items; -1 otherwise.
	Item int
	GVK  schema.GroupVersionKind
	// Name is metadata.name, else metadata.generateName.
	Name string
	// Namespace is the namespace the object was evaluated in: its own; for a workload
	// without one, the AdmissionReview's namespace, else --namespace.
	Namespace string
	// Workload is the typed workload; nil for every other kind.
	Workload *policies.Workload
	// Report is the workload's evaluation.
	Report policies.Report
	// CrossObject says the workload was evaluated with a Related view: the cross-object
	// policies had something to check against.
	CrossObject bool
}

// Location is how the object is named in reports: source#document, plus .items[i]; a
// cluster object is named by its source alone.
func (e *Object) Location() string {
	if e.Doc.Live {
		return e.Doc.Source // a cluster object: no document, no item
	}
	s := e.Doc.Source + "#" + strconv.Itoa(e.Doc.Index)
	if e.Item >= 0 {
		s += ".items[" + strconv.Itoa(e.Item) + "]"
	}
	return s
}

// Describe is "Kind namespace/name", "Kind name" without a namespace, "Kind" without either.
func (e *Object) Describe() string {
	switch {
	case e.Namespace != "":
		return e.GVK.Kind + " " + e.Namespace + "/" + e.Name
	case e.Name != "":
		return e.GVK.Kind + " " + e.Name
	}
	return e.GVK.Kind
}

// Result is everything a check (or an audit) found.
type Result struct {
	// Engine is the engine the workloads were evaluated with: its policies are SARIF's rules.
	Engine *policies.Engine
	// ToolVersion is loomguard's version, for SARIF's tool driver.
	ToolVersion string
	Sources     []string  // the sources read, in order
	Objects     []*Object // every object, workloads evaluated
	Errors      []*manifest.Error
}

// Write writes the result in a format: json, sarif, junit, or else text (verbose: with
// allowed workloads, exemptions, waivers and skipped objects).
func (c *Result) Write(w io.Writer, format string, verbose bool) error {
	switch format {
	case "json":
		return writeJSON(w, c)
	case "sarif":
		return writeSARIF(w, c)
	case "junit":
		return writeJUnit(w, c)
	}
	return writeText(w, c, verbose)
}

// Summary counts the objects, workloads, decisions and violations.
type Summary struct {
	Objects, Workloads         int
	Denied, Warned, Allowed    int
	Violations                 int
	Enforced, Warnings, Audits int
}

// Summary counts the result.
func (c *Result) Summary() Summary {
	var s Summary
	for _, e := range c.Objects {
		s.Objects++
		if e.Workload == nil {
			continue
		}
		s.Workloads++
		switch e.Report.Decision() {
		case policies.Denied:
			s.Denied++
		case policies.Warned:
			s.Warned++
		default:
			s.Allowed++
		}
		s.Violations += len(e.Report.Violations)
		s.Enforced += e.Report.Count(policies.ActionEnforce)
		s.Warnings += e.Report.Count(policies.ActionWarn)
		s.Audits += e.Report.Count(policies.ActionAudit)
	}
	return s
}
