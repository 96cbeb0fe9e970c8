// Package testsummary lets a test put a line in the summary that `make test` prints at its
// end: the counts a reader of the run should see (fixtures compared with the API server,
// oracle agreement), which `go test` hides for a passing package unless run with -v.
package testsummary

import (
	"fmt"
	"os"
	"testing"
)

// EnvVar names the file the summary lines are appended to; unset, Record only logs.
const EnvVar = "LOOMGUARD_TEST_SUMMARY"

// Record logs the line with t.Logf and appends it, with the test's name, to the file named
// by $LOOMGUARD_TEST_SUMMARY when that is set. A failure to write the file fails the test:
// the summary is part of what the run promises to show.
func Record(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	path := os.Getenv(EnvVar)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("opening the test summary: %v", err)
		return
	}
	if _, err := fmt.Fprintf(f, "%s: %s\n", t.Name(), line); err != nil {
		t.Errorf("writing the test summary: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("closing the test summary: %v", err)
	}
}
