// Command loomguard enforces Loom's deployment policies: as an admission webhook
// (serve, with its background audit), on what runs in a cluster (audit) and offline, on
// manifest files in CI (check, fix, policies).
//
// main only builds the context and calls run, which takes its arguments and streams
// explicitly so that tests drive the whole CLI in memory.
//
// The package has two builds. The full build has every command. The CLI build
// (go build -tags loomguard_cli) has check, fix and version, links none of the server's
// dependencies, and runs the full build, installed beside it as loomguard-full, for the
// other commands (commands_cli.go).
package main

//go:generate sh -c "go run . policies -o markdown > ../../docs/policies.md"

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes shared by every offline command.
const (
	// exitOK: no enforced violation.
	exitOK = 0
	// exitViolations: at least one violation of an enforced policy.
	exitViolations = 1
	// exitError: a usage, input or config error.
	exitError = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `loomguard enforces Loom's deployment policies: in the cluster as an admission
webhook, and offline on manifest files, with the same engine, config and messages.

Usage:
  loomguard <command> [flags]

Commands:
  check     evaluate manifests against the policies (exit 1 on an enforced violation)
  audit     evaluate what runs in a cluster, like check (exit 1 on an enforced violation)
  fix       print manifests with the safe defaults the mutating webhook applies
  migrate   turn OPA Gatekeeper Constraints into a loomguard config (migrate gatekeeper)
  policies  list the policies, their actions and fixes
  serve     run the admission webhook
  version   print the version, and which build this is (full, or CLI)
  help      show the help of a command

Exit codes of check, audit, fix and policies:
  0  no enforced violation
  1  at least one violation of an enforced policy
  2  usage, input or config error

Run 'loomguard <command> --help' for the flags of a command.
`

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError
	}
	name, rest := args[0], args[1:]
	switch name {
	case "check":
		return checkCommand(ctx, rest, stdin, stdout, stderr)
	case "fix":
		return fixCommand(ctx, rest, stdin, stdout, stderr)
	case "version":
		return versionCommand(rest, stdout, stderr)
	case "audit", "migrate", "policies", "serve":
		return fullCommand(ctx, name, rest, stdin, stdout, stderr)
	case "help", "-h", "--help":
		if len(rest) == 0 || name != "help" {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		if rest[0] == "help" {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		return run(ctx, []string{rest[0], "--help"}, stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "loomguard: unknown command %q\nRun 'loomguard --help' for usage.\n", name)
	return exitError
}
