package main

import (
	"encoding/json"
	"regexp"
	"runtime"
	"testing"
)

func TestVersion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want *regexp.Regexp
	}{
		{"text", []string{"version"}, regexp.MustCompile(`^loomguard \S+ \(commit \S+, built \S+, ` + regexp.QuoteMeta(runtime.Version()) + `, full build\)\n$`)},
		{"json", []string{"version", "-o", "json"}, regexp.MustCompile(`(?s)^\{\n  "version": ".+",\n  "commit": ".+",\n  "date": ".+",\n  "goVersion": "` + regexp.QuoteMeta(runtime.Version()) + `",\n  "build": "full"\n\}\n$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, "", tt.args...)
			if res.code != exitOK || res.stderr != "" {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			if !tt.want.MatchString(res.stdout) {
				t.Errorf("output %q does not match %s", res.stdout, tt.want)
			}
		})
	}
	var b buildInfo
	if err := json.Unmarshal([]byte(runCLI(t, "", "version", "-o", "json").stdout), &b); err != nil || b.Version == "" {
		t.Errorf("version -o json does not decode: %v %+v", err, b)
	}
	if res := runCLI(t, "", "version", "-o", "yaml"); res.code != exitError {
		t.Errorf("version -o yaml: exit %d, want %d", res.code, exitError)
	}
}
