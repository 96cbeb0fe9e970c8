// Command devcluster is `make run`: a local Kubernetes control plane (etcd, kube-apiserver,
// kube-controller-manager from bin/) with the real `loomguard serve` as its admission
// webhook, the reference Loom bundle applied, and one manifest each that loomguard fixes
// and denies. It prints kubectl's own output for each, then how to use the cluster, and
// runs until Ctrl-C, which stops every process and removes every temporary file.
//
// It builds nothing: the Makefile builds bin/ first (make build tools). The binaries are
// taken from $LOOMGUARD_BIN, else the repository's bin/.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loomguard/loomguard/test/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, stop, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "devcluster: %v\n", err)
		os.Exit(1)
	}
}

// run starts the cluster, shows what loomguard admits, fixes and denies, and waits for ctx
// to end. stop releases the signal handler once the first Ctrl-C arrived, so that a second
// one kills the process at once.
func run(ctx context.Context, stop func(), out io.Writer) (err error) {
	fmt.Fprintln(out, "Starting etcd, kube-apiserver, kube-controller-manager and loomguard on 127.0.0.1 ...")
	c, err := cluster.Start(ctx, cluster.Config{
		Logf: func(format string, args ...any) { fmt.Fprintf(out, "  "+format+"\n", args...) },
	})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(out, "Interrupted; everything started so far is stopped and removed.")
			return nil
		}
		return fmt.Errorf("starting the cluster: %w", err)
	}
	defer func() {
		fmt.Fprintln(out, "\nStopping loomguard, kube-controller-manager, kube-apiserver and etcd ...")
		if stopErr := c.Stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("stopping the cluster: %w", stopErr)
			return
		}
		fmt.Fprintf(out, "Stopped; removed %s.\n", c.Dir())
	}()

	d := &demo{ctx: ctx, c: c, out: out}
	if err := d.show(); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted
		}
		return err
	}
	d.printUsage()

	<-ctx.Done()
	stop()
	return nil
}

// demo runs kubectl commands against the cluster and prints them with their output.
type demo struct {
	ctx context.Context
	c   *cluster.Cluster
	out io.Writer
}

// show applies the Loom bundle, a manifest loomguard fixes and one it denies.
func (d *demo) show() error {
	bundle := d.c.RepoPath("manifests", "examples", "loom")
	fixed := d.c.RepoPath("test", "cmd", "devcluster", "testdata", "fixed.yaml")
	denied := d.c.RepoPath("test", "cmd", "devcluster", "testdata", "denied.yaml")

	d.section("The reference Loom bundle: admitted as it is (no fix, no warning)")
	if err := d.kubectl(true, nil, "apply", "-f", filepath.Join(bundle, "00-namespace.yaml")); err != nil {
		return err
	}
	dbPassword, err := randomHex()
	if err != nil {
		return err
	}
	loomPassword, err := randomHex()
	if err != nil {
		return err
	}
	jwtSecret, err := randomHex()
	if err != nil {
		return err
	}
	// Random values, as the bundle's README creates them; the printed command hides them.
	hide := strings.NewReplacer(dbPassword, "<random>", loomPassword, "<random>", jwtSecret, "<random>")
	if err := d.kubectl(true, hide, "-n", "loom", "create", "secret", "generic", "loom-db-credentials",
		"--from-literal=username=loom",
		"--from-literal=password="+dbPassword,
		"--from-literal=url=postgres://loom:"+dbPassword+"@loom-db:5432/loom?sslmode=disable"); err != nil {
		return err
	}
	if err := d.kubectl(true, hide, "-n", "loom", "create", "secret", "generic", "loom-secrets",
		"--from-literal=loom-password="+loomPassword,
		"--from-literal=jwt-secret="+jwtSecret); err != nil {
		return err
	}
	if err := d.kubectl(true, nil, "apply", "-k", bundle); err != nil {
		return err
	}

	d.section("A Deployment without security settings: admitted with loomguard's fixes")
	if err := d.kubectl(true, nil, "create", "namespace", "demo"); err != nil {
		return err
	}
	if err := d.c.WaitForServiceAccount(d.ctx, "demo", "default"); err != nil {
		return err
	}
	if err := d.kubectl(true, nil, "apply", "-f", fixed); err != nil {
		return err
	}
	if err := d.kubectl(true, nil, "-n", "demo", "get", "deployment", "web",
		`-o=jsonpath={.metadata.annotations.loomguard\.io/fixed}{"\n"}{.spec.template.spec.securityContext}{"\n"}{.spec.template.spec.containers[0].securityContext}{"\n"}`); err != nil {
		return err
	}

	d.section("Loom as its own docs deploy it: denied")
	if err := d.kubectl(false, nil, "apply", "-f", denied); err != nil {
		return err
	}

	d.section("What runs: controllers created ReplicaSets and Pods through loomguard; without a kubelet the Pods stay Pending")
	d.waitForPods(map[string]int{"loom": 4, "demo": 1})
	return d.kubectl(true, nil, "get", "deployments,statefulsets,replicasets,pods", "-n", "loom")
}

func (d *demo) section(title string) {
	fmt.Fprintf(d.out, "\n== %s\n", title)
}

// kubectl prints the command (through hide, when set) and runs it, printing its output
// as is. A command that should succeed and fails is an error; one that should fail (a
// denial) is only shown.
func (d *demo) kubectl(wantOK bool, hide *strings.Replacer, args ...string) error {
	// kubectl runs in this working directory: relative paths read as kubectl echoes them.
	run := make([]string, len(args))
	shown := make([]string, len(args))
	for i, a := range args {
		a = d.relative(a)
		run[i] = a
		if hide != nil {
			a = hide.Replace(a)
		}
		if strings.ContainsAny(a, " {}\"'$?&") {
			a = "'" + a + "'"
		}
		shown[i] = a
	}
	fmt.Fprintf(d.out, "$ kubectl %s\n", strings.Join(shown, " "))
	r := d.c.KubectlContext(d.ctx, "", run...)
	fmt.Fprint(d.out, r.Stderr, r.Stdout)
	switch {
	case r.Err != nil:
		return r.Err
	case wantOK && r.ExitCode != 0:
		return fmt.Errorf("kubectl %s: exit status %d", strings.Join(shown, " "), r.ExitCode)
	case !wantOK && r.ExitCode == 0:
		return fmt.Errorf("kubectl %s: expected loomguard to deny it, but it was admitted", strings.Join(shown, " "))
	}
	return nil
}

// relative shortens paths inside the working directory to relative ones.
func (d *demo) relative(arg string) string {
	for _, prefix := range []string{"", "--filename=", "-f="} {
		path, ok := strings.CutPrefix(arg, prefix)
		if !ok || !filepath.IsAbs(path) {
			continue
		}
		wd, err := os.Getwd()
		if err != nil {
			return arg
		}
		rel, err := filepath.Rel(wd, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			return arg
		}
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			rel += string(filepath.Separator)
		}
		return prefix + rel
	}
	return arg
}

// waitForPods gives the controllers a bounded moment to create the Pods, so that the
// listing shows them; it never fails.
func (d *demo) waitForPods(want map[string]int) {
	ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		done := true
		for ns, n := range want {
			pods, err := d.c.Clientset().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil || len(pods.Items) < n {
				done = false
			}
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// printUsage says how to reach the cluster.
func (d *demo) printUsage() {
	bin := d.relative(filepath.Join(d.c.RepoRoot(), "bin"))
	if !filepath.IsAbs(bin) {
		bin = "$PWD/" + strings.TrimSuffix(bin, "/")
	}
	denied := d.relative(d.c.RepoPath("test", "cmd", "devcluster", "testdata", "denied.yaml"))
	bundle := d.relative(d.c.RepoPath("manifests", "examples", "loom"))
	fmt.Fprintf(d.out, `
== loomguard is running. Try it from another shell:

  export KUBECONFIG=%[1]s
  export PATH="%[2]s:$PATH"    # kubectl v1.37 and loomguard

  kubectl get pods -A
  # the same denial, nothing stored:
  kubectl apply --dry-run=server -f %[3]s
  # the bundle as loomguard sees it: no finding
  kubectl apply --dry-run=server -k %[4]s
  # what loomguard fixed
  kubectl -n demo get deployment web -o yaml
  kubectl -n demo create deployment nginx --image=nginx:latest
  # the CLI: same engine, same messages, before anything reaches a cluster
  loomguard check -f %[3]s

loomguard's config, reloaded when you save it: %[5]s
Component logs (loomguard.log, kube-apiserver.log, audit.log, ...): %[6]s

Press Ctrl-C to stop everything and remove %[7]s.
`, d.c.Kubeconfig(), bin, denied, bundle, d.c.LoomguardConfigPath(), d.c.LogDir(), d.c.Dir())
}

func randomHex() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
