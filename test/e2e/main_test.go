// Package e2e runs loomguard end to end: the real `loomguard serve` binary registered as the
// admission webhook of a real local control plane (etcd, kube-apiserver,
// kube-controller-manager), driven with the real kubectl and client-go.
//
// All tests share one control plane, started once by TestMain; each scenario works in its
// own namespace, and a scenario that edits loomguard's config restores it when it ends.
// The tests run one after the other (the config file and loomguard's process are shared).
//
//	make e2e
//	LOOMGUARD_BIN=$PWD/bin go test -count=1 ./test/e2e/...
//
// Set LOOMGUARD_E2E_KEEP=1 to keep the control plane's directory (logs, audit log) after
// the run; its path is printed.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/loomguard/loomguard/test/cluster"
)

// testCluster is the control plane shared by every test of the package.
var testCluster *cluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	// An interrupt during start-up aborts it (Start cleans up); afterwards it stops the
	// cluster before the process exits, so no component and no temporary directory is left.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	begin := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
	}
	c, err := cluster.Start(ctx, cluster.Config{Logf: logf, KeepDir: os.Getenv("LOOMGUARD_E2E_KEEP") != ""})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: starting the control plane: %v\n", err)
		return 1
	}
	logf("control plane and loomguard ready in %s", time.Since(begin).Round(10*time.Millisecond))
	testCluster = c

	finished := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "e2e: interrupted: stopping the control plane")
			if err := c.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			}
			os.Exit(130)
		case <-finished:
		}
	}()

	code := m.Run()
	close(finished)
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stopping the control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
