package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// kubectlTimeout bounds one kubectl run of Kubectl and KubectlInput.
const kubectlTimeout = 2 * time.Minute

// Result is the outcome of one kubectl run.
type Result struct {
	Args     []string
	Stdout   string
	Stderr   string
	ExitCode int           // -1 when kubectl could not run or was killed
	Err      error         // set when kubectl could not run or did not finish in time
	Duration time.Duration // wall time of the run
}

// OK reports whether kubectl ran and exited 0.
func (r Result) OK() bool { return r.Err == nil && r.ExitCode == 0 }

// Output is stdout followed by stderr.
func (r Result) Output() string { return r.Stdout + r.Stderr }

// String describes the run for test failure messages.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kubectl %s: exit %d after %s", strings.Join(r.Args, " "), r.ExitCode, r.Duration.Round(time.Millisecond))
	if r.Err != nil {
		fmt.Fprintf(&b, " (%v)", r.Err)
	}
	fmt.Fprintf(&b, "\n--- stdout\n%s--- stderr\n%s", ensureNewline(r.Stdout), ensureNewline(r.Stderr))
	return b.String()
}

func ensureNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// Kubectl runs bin/kubectl against the cluster as admin and returns its output and exit
// code. It never fails a test by itself.
func (c *Cluster) Kubectl(args ...string) Result {
	return c.KubectlContext(context.Background(), "", args...)
}

// KubectlInput is Kubectl with stdin (for `apply -f -`).
func (c *Cluster) KubectlInput(stdin string, args ...string) Result {
	return c.KubectlContext(context.Background(), stdin, args...)
}

// KubectlContext runs kubectl with stdin until it exits, ctx ends or kubectlTimeout passes.
func (c *Cluster) KubectlContext(ctx context.Context, stdin string, args ...string) Result {
	ctx, cancel := context.WithTimeout(ctx, kubectlTimeout)
	defer cancel()
	full := append([]string{"--kubeconfig=" + c.kubeconfig, "--cache-dir=" + c.kubectlCache}, args...)
	cmd := exec.CommandContext(ctx, c.bin("kubectl"), full...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		r.ExitCode, r.Err = -1, fmt.Errorf("running kubectl: %w", ctx.Err())
	case errors.As(err, &exitErr):
		r.ExitCode = exitErr.ExitCode()
	default:
		r.ExitCode, r.Err = -1, fmt.Errorf("running kubectl: %w", err)
	}
	return r
}
