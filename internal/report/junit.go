package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/loomguard/loomguard/policies"
)

// JUnit XML, as CI systems read it (the de-facto Ant/Surefire schema).
type junitTestsuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

// junitText is element text written as CDATA, so that quotes and line breaks stay readable.
type junitText struct {
	Text string `xml:",cdata"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// writeJUnit writes a testsuite per source file and a testcase per workload and policy,
// named "Kind namespace/name: policy-id" with the source as classname:
//
//   - violations of an enforced policy are a <failure> (the check fails, as admission would);
//   - violations of a warned or audited policy are printed in <system-out> of a passing
//     testcase: they do not block admission, so they must not fail the build;
//   - a policy that is off, or a workload in an exempt namespace, is <skipped>;
//   - an input error is an <error> testcase named after the document in its file.
func writeJUnit(w io.Writer, c *Result) error {
	suites := map[string]*junitSuite{}
	var order []string
	suite := func(source string) *junitSuite {
		s, ok := suites[source]
		if !ok {
			s = &junitSuite{Name: source, Cases: []junitCase{}}
			suites[source] = s
			order = append(order, source)
		}
		return s
	}
	for _, src := range c.Sources {
		suite(src)
	}
	for _, e := range c.Objects {
		if e.Workload == nil {
			continue
		}
		s := suite(e.Doc.Source)
		for _, p := range c.Engine.Policies() {
			s.Cases = append(s.Cases, junitPolicyCase(c.Engine, e, p.ID, p.CrossObject))
		}
	}
	for _, err := range c.Errors {
		s := suite(err.Source)
		name := "input"
		if err.Document >= 0 {
			name = fmt.Sprintf("document %d", err.Document)
			if err.Item >= 0 {
				name += fmt.Sprintf(" items[%d]", err.Item)
			}
		}
		s.Cases = append(s.Cases, junitCase{Name: name, Classname: err.Source,
			Error: &junitProblem{Message: err.Err.Error(), Type: "input", Text: err.Error()}})
	}

	out := junitTestsuites{Name: "loomguard"}
	for _, src := range order {
		s := suites[src]
		for _, tc := range s.Cases {
			s.Tests++
			switch {
			case tc.Failure != nil:
				s.Failures++
			case tc.Error != nil:
				s.Errors++
			case tc.Skipped != nil:
				s.Skipped++
			}
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, *s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// junitPolicyCase is the testcase of one policy on one workload. A cross-object policy
// that had no PodDisruptionBudgets and NetworkPolicies to check against is skipped.
func junitPolicyCase(engine *policies.Engine, e *Object, policyID string, crossObject bool) junitCase {
	tc := junitCase{Name: e.Describe() + ": " + policyID, Classname: e.Doc.Source}
	if e.Report.Exempt {
		tc.Skipped = &junitSkipped{Message: fmt.Sprintf("namespace %q is exempt", e.Namespace)}
		return tc
	}
	action := engine.Action(policyID, e.Namespace)
	if action == policies.ActionOff {
		tc.Skipped = &junitSkipped{Message: "policy is off"}
		return tc
	}
	if crossObject && !e.CrossObject {
		tc.Skipped = &junitSkipped{Message: "cross-object policy: no PodDisruptionBudgets and NetworkPolicies of the namespace to check against (see --cross-object)"}
		return tc
	}
	var msgs, lines []string
	for _, v := range e.Report.Violations {
		if v.Policy != policyID {
			continue
		}
		msgs = append(msgs, v.Message())
		lines = append(lines, fmt.Sprintf("%s (%s)", v.Message(), v.Action))
	}
	for _, wv := range e.Report.Waivers {
		if wv.Policy == policyID {
			lines = append(lines, fmt.Sprintf("[%s] waived by exception %q", policyID, wv.Exception))
		}
	}
	if len(msgs) > 0 && action == policies.ActionEnforce {
		tc.Failure = &junitProblem{Message: strings.Join(msgs, "; "), Type: string(action), Text: strings.Join(lines, "\n")}
		return tc
	}
	if len(lines) > 0 {
		tc.SystemOut = &junitText{Text: strings.Join(lines, "\n")}
	}
	return tc
}
