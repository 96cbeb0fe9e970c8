//go:build loomguard_cli

package main

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// fullBinary is the file name of the full build, which the CLI build runs for audit,
// migrate, policies and serve; it is looked up beside the CLI build's own executable.
const fullBinary = "loomguard-full"

// cliBuildTag is the build tag of the CLI build.
const cliBuildTag = "loomguard_cli"

// buildName is the build that `loomguard version` names.
const buildName = cliBuild

// delegate returns the full build that this build runs for audit, migrate, policies and
// serve, or why there is no usable one (fullBinaryPath).
func delegate() (string, error) { return fullBinaryPath() }

// fullCommand runs a command that only the full build has (commands_full.go): audit,
// migrate, policies and serve. The CLI build (go build -tags loomguard_cli) links only
// what check, fix and version need: the engine, the decoders and the reports, about a
// sixth of the full build's size, which is what an offline `loomguard check` pays for in
// start-up time and memory. Everything else it hands to the full build beside it, with
// the same arguments, streams and environment, plus cliVersionEnv, its version, which the
// full build compares with its own: on Unix by replacing this process (execve(2), so
// signals, the exit code and the process ID are the full build's own), elsewhere as a
// child process. Without a usable full build beside it (see fullBinaryPath), it says
// where it looked and exits 2; run with cliVersionEnv set, it was run by a CLI build as
// the full build (through a wrapper) and exits 2 instead of running itself for ever.
func fullCommand(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	path, err := fullBinaryPath()
	if v, ok := os.LookupEnv(cliVersionEnv); ok && err == nil {
		err = fmt.Errorf("%s: runs a CLI build (%s set to %q), not the full build", path, cliVersionEnv, v)
	}
	if err != nil {
		fmt.Fprintf(stderr, "loomguard: %s is not in this build (the CLI build has check, fix and version): %v\n"+
			"Install %s beside loomguard (make build writes both), or run the full build.\n", name, err, fullBinary)
		return exitError
	}
	argv := append([]string{path, name}, args...)
	env := append(os.Environ(), cliVersionEnv+"="+buildVersion(currentBuild()))
	if runtime.GOOS != "windows" {
		// main's handlers for SIGINT and SIGTERM would swallow one that arrives now: give
		// them back their default action, and stop if one came since main began.
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "loomguard: %s: interrupted before it started\n", name)
			return exitError
		}
		err := syscall.Exec(path, argv, env) // returns only on failure
		fmt.Fprintf(stderr, "loomguard: running %s: %v\n", path, err)
		return exitError
	}
	// Not exec.CommandContext: main's context ends on Ctrl+C, which the console sends to
	// the child too, and killing the child then would cut off serve's graceful shutdown.
	// The child decides when to stop; this process waits for it and returns its exit code.
	cmd := exec.Command(path, argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = stdin, stdout, stderr, env
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(stderr, "loomguard: running %s: %v\n", path, err)
		return exitError
	}
	return exitOK
}

// fullBinaryPath returns the full build's path: fullBinary in the directory of this
// executable, symbolic links resolved. Errors: the executable cannot be located, or the
// full build there is missing, is not a regular file, is not executable (Unix), or is a
// CLI build itself (a copy of, or link to, this binary), which would run itself for ever.
func fullBinaryPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locating this executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	name := fullBinary
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	path := filepath.Join(filepath.Dir(self), name)
	info, err := os.Stat(path)
	if err != nil {
		var pathErr *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("%s: no such file", path)
		case errors.As(err, &pathErr): // "<path>: <error>", like the others
			return "", fmt.Errorf("%s: %w", path, pathErr.Err)
		}
		return "", err
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s: not executable", path)
	}
	if isCLIBuild(path) {
		return "", fmt.Errorf("%s: a CLI build (-tags %s), not the full build", path, cliBuildTag)
	}
	return path, nil
}

// isCLIBuild reports whether the Go executable at path was built with the CLI build's
// tag, from the build settings the Go toolchain records in every executable (as
// `go version -m` prints them). A file without them (not a Go executable, a script) is
// not a CLI build.
func isCLIBuild(path string) bool {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-tags" {
			for _, tag := range strings.Split(s.Value, ",") {
				if tag == cliBuildTag {
					return true
				}
			}
		}
	}
	return false
}
