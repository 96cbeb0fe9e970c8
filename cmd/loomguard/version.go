package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Build information, set by the linker:
//
//	go build -ldflags "-X main.version=v0.1.0 -X main.commit=$(git rev-parse HEAD) -X main.date=$(date -u +%FT%TZ)"
//
// A binary installed with `go install …@version` without them still reports the module
// version and VCS revision that the toolchain recorded.
var (
	version = "dev"
	commit  = "dev"
	date    = "dev"
)

// The builds that `loomguard version` names (buildName is this one's).
const (
	fullBuild = "full"
	cliBuild  = "cli"
)

// cliVersionEnv is the environment variable in which the CLI build passes its version
// (buildVersion) to the full build it runs, which warns when its own differs.
const cliVersionEnv = "LOOMGUARD_CLI_BUILD_VERSION"

// buildVersion is the version and commit of b, as the two builds compare them.
func buildVersion(b buildInfo) string {
	return fmt.Sprintf("%s (commit %s)", b.Version, b.Commit)
}

// buildInfo is what `loomguard version -o json` prints.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	// Build is "full" (every command) or "cli" (check, fix and version; the CLI build runs
	// the full build for the others).
	Build string `json:"build"`
	// FullBuild is the path of the full build that the CLI build runs for audit, migrate,
	// policies and serve; empty in the full build, or when there is no usable one.
	FullBuild string `json:"fullBuild,omitempty"`
}

// currentBuild returns the linker's values, completed from the toolchain's build info
// where the linker set none.
func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Build: buildName}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && b.Commit == "dev":
			b.Commit = s.Value
		case s.Key == "vcs.time" && b.Date == "dev":
			b.Date = s.Value
		}
	}
	return b
}

func versionCommand(args []string, stdout, stderr io.Writer) int {
	output := newChoice("text", "text", "json")
	f := newFlags(commandHelp{
		name:  "version",
		usage: "version [-o text|json]",
		description: `Print loomguard's version, commit, build date and Go version, and which build this is:
the full build (every command), or the CLI build (check, fix and version), with the
loomguard-full it runs for audit, migrate, policies and serve, or why it cannot.`,
		exitCodes: `  0  printed
  2  usage error`,
		examples: `  loomguard version
  loomguard version -o json`,
	}, stderr)
	f.VarP(output, "output", "o", "output format: text or json")
	if code, done := f.parse(args, stdout, stderr); done {
		return code
	}
	b := currentBuild()
	full, fullErr := delegate()
	b.FullBuild = full
	if output.value == "json" {
		data, err := json.MarshalIndent(b, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "loomguard: encoding version: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stdout, "%s\n", data)
		return exitOK
	}
	title := "full build"
	if b.Build == cliBuild {
		title = "CLI build"
	}
	fmt.Fprintf(stdout, "loomguard %s (commit %s, built %s, %s, %s)\n", b.Version, b.Commit, b.Date, b.GoVersion, title)
	switch {
	case full != "":
		fmt.Fprintf(stdout, "audit, migrate, policies and serve run %s\n", full)
	case fullErr != nil:
		fmt.Fprintf(stdout, "audit, migrate, policies and serve are not available: %v\n", fullErr)
	}
	return exitOK
}
