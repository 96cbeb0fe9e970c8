//go:build !loomguard_cli

package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

// buildName is the build that `loomguard version` names.
const buildName = fullBuild

// delegate returns the binary this build runs for the commands it does not have: none,
// the full build has every command.
func delegate() (string, error) { return "", nil }

// fullCommand runs audit, migrate, policies and serve: the commands that link the
// webhook server and the cluster clients (controller-runtime, client-go, the API
// server's authentication filters). The CLI build (commands_cli.go) leaves them out
// and runs this, the full build, for them.
//
// Run by a CLI build (cliVersionEnv set), it warns on stderr when the two differ in
// version or commit, as after upgrading one of them only: check and fix would not apply
// the policies that audit, policies and serve list and apply. The variable is removed,
// so that nothing this process runs inherits it.
func fullCommand(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if cli, ok := os.LookupEnv(cliVersionEnv); ok {
		_ = os.Unsetenv(cliVersionEnv)
		if own := buildVersion(currentBuild()); cli != own {
			fmt.Fprintf(stderr, "loomguard: warning: the CLI build is %s and the full build it runs (loomguard-full) is %s: "+
				"install the two from one build\n", cli, own)
		}
	}
	switch name {
	case "audit":
		return auditCommand(ctx, args, stdout, stderr, connectCluster)
	case "migrate":
		return migrateCommand(ctx, args, stdin, stdout, stderr, connectGatekeeper)
	case "policies":
		return policiesCommand(args, stdout, stderr)
	default: // "serve"; run lists the names
		return serveCommand(ctx, args, stdout, stderr)
	}
}
