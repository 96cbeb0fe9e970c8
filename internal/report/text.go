package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// writeText writes the kubectl-like report: one header line per workload with
// violations ("deploy.yaml#0 Deployment loom/web: denied"), its violations indented as
// "[policy-id] field.path: detail (action)", then the summary line. verbose also lists
// allowed workloads, exempt namespaces, waivers and the objects that are not workloads.
func writeText(w io.Writer, c *Result, verbose bool) error {
	bw := bufio.NewWriter(w)
	writeTextEntries(bw, c.Objects, verbose)
	s := c.Summary()
	fmt.Fprintf(bw, "%s, %s: %d denied, %d warned, %d allowed; %s (%d enforce, %d warn, %d audit)\n",
		count(s.Objects, "object"), count(s.Workloads, "workload"), s.Denied, s.Warned, s.Allowed,
		count(s.Violations, "violation"), s.Enforced, s.Warnings, s.Audits)
	return bw.Flush()
}

func writeTextEntries(w io.Writer, entries []*Object, verbose bool) {
	for _, e := range entries {
		if e.Workload == nil {
			if verbose {
				fmt.Fprintf(w, "%s %s: skipped (not a workload)\n", e.Location(), e.Describe())
			}
			continue
		}
		r := &e.Report
		if len(r.Violations) == 0 && !verbose {
			continue
		}
		decision := string(r.Decision())
		if r.Exempt {
			decision += " (namespace " + strconv.Quote(r.Namespace) + " is exempt)"
		}
		fmt.Fprintf(w, "%s %s: %s\n", e.Location(), e.Describe(), decision)
		for _, v := range r.Violations {
			fmt.Fprintf(w, "  %s (%s)\n", v.Message(), v.Action)
		}
		if verbose {
			for _, wv := range r.Waivers {
				fmt.Fprintf(w, "  [%s] waived by exception %q\n", wv.Policy, wv.Exception)
			}
		}
	}
}

// count is "1 object", "2 objects".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
