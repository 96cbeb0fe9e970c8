package testsummary

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecordAppendsToTheSummaryFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "summary.txt")
	t.Setenv(EnvVar, path)
	Record(t, "%d of %d agree", 3, 4)
	Record(t, "second line")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "TestRecordAppendsToTheSummaryFile: 3 of 4 agree\nTestRecordAppendsToTheSummaryFile: second line\n"
	if string(got) != want {
		t.Errorf("summary file:\n%s\nwant:\n%s", got, want)
	}
}

func TestRecordWithoutTheVariableWritesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvVar, "")
	t.Chdir(dir)
	Record(t, "only logged")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("Record wrote %s without %s set", strings.Join(names, ", "), EnvVar)
	}
}
