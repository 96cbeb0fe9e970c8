//go:build !loomguard_cli

package main

import (
	"context"
	"io"
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
func fullCommand(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
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
