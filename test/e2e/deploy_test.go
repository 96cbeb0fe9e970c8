package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/test/cluster"
)

const (
	// manifestNamespace is loomguard's namespace in the manifests; the test installs into
	// a namespace of its own instead, since the shared control plane's loomguard-system
	// belongs to the harness.
	manifestNamespace = "loomguard-system"
	// certValidity is the self-managed serving certificate's lifetime in this test:
	// renewed with a third left (every ~13 s), so a 30 s load sees at least two renewals.
	certValidity = 20 * time.Second
	// loadReviews admission reviews are sent over loadDuration while certificates rotate.
	loadReviews  = 200
	loadDuration = 30 * time.Second
)

// TestDeploySelfManaged installs the rendered base + self-managed overlay on the real
// control plane and runs the real loomguard binary in self-managed certificate mode
// against it, with the manifests' own RBAC:
//
//  1. `kubectl apply --server-side` of the rendered overlay succeeds; the Deployment's
//     pods are created (admitted by the harness's loomguard and Pod Security "restricted")
//     and stay Pending, as nothing schedules or runs them here.
//  2. loomguard, impersonating the manifests' ServiceAccount, fills the shipped Secret
//     with a CA and a serving certificate and injects the CA into the caBundle of the
//     manifests' webhook configurations; its background audit, with the same RBAC, runs
//     clean and finds nothing in loomguard's own objects.
//  3. The API server calls loomguard through those configurations and trusts it: a
//     denial comes back from the test's loomguard.
//  4. With a 20 s certificate, 200 reviews over 30 s all succeed while the certificate
//     is renewed at least twice and reloaded without a restart.
//
// Isolation: the shared control plane already runs loomguard's harness under the same
// names, so the test renames what it installs (namespace lg-deploy-<id>, cluster-scoped
// objects <name>-<id>), and points the webhook configurations at the test's loomguard
// (clientConfig.url, as the harness does) for one namespace of its own only.
func TestDeploySelfManaged(t *testing.T) {
	c := testCluster
	if c == nil {
		t.Fatal("the shared control plane is not running (TestMain did not start it)")
	}
	id := randomID(t)
	ns := "lg-deploy-" + id
	workNS := "lg-deploy-work-" + id
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("component logs (last lines):\n%s", c.LogTails(25))
		}
	})
	ports, err := cluster.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	lg := &localLoomguard{port: ports[0], metricsPort: ports[1], healthPort: ports[2]}

	// 1. Render, isolate, apply.
	r := c.Kubectl("kustomize", c.RepoPath("manifests", "overlays", "self-managed"))
	mustSucceed(t, r)
	objs := decodeObjects(t, r.Stdout)
	iso := isolation{ns: ns, id: id, url: "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(lg.port)), workNS: workNS}
	var manifest bytes.Buffer
	for _, o := range objs {
		iso.apply(t, o)
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		manifest.WriteString("---\n")
		manifest.Write(data)
	}
	mutatingName, validatingName := iso.rename("loomguard"), iso.rename("loomguard")
	t.Cleanup(func() { iso.cleanup(t, c, objs) })

	r = c.KubectlInput(manifest.String(), "apply", "--server-side", "--field-manager=loomguard-e2e", "-f", "-")
	mustSucceed(t, r)
	if got := strings.Count(r.Stdout, "serverside-applied"); got != len(objs) {
		t.Fatalf("%d of %d objects applied:\n%s", got, len(objs), r)
	}
	t.Logf("applied %d objects of overlays/self-managed into %s", len(objs), ns)

	cs := c.Clientset()
	ctx := t.Context()
	eventually(t, "the Deployment's two pods to be created and stay Pending", func(ctx context.Context) error {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=loomguard"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 2 {
			return fmt.Errorf("%d pods", len(pods.Items))
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodPending {
				return fmt.Errorf("pod %s is %s", p.Name, p.Status.Phase)
			}
			if fixed := p.Annotations[fixedAnnotation]; fixed != "" {
				t.Errorf("pod %s was mutated by loomguard (%s): its own manifests must need no fix", p.Name, fixed)
			}
		}
		return nil
	})
	if err := c.CreateNamespace(ctx, workNS); err != nil {
		t.Fatal(err)
	}

	// 2. The real loomguard, self-managed, as the manifests' ServiceAccount.
	kubeconfig := impersonatingKubeconfig(t, c.Kubeconfig(), ns, "loomguard")
	lg.start(t, c.BinPath("loomguard"),
		"--kubeconfig="+kubeconfig,
		"--leader-election-namespace="+ns,
		"--cert-mode=self-managed",
		"--cert-namespace="+ns,
		"--cert-service=loomguard",
		"--cert-dns-names=127.0.0.1",
		"--cert-validity="+certValidity.String(),
		// Their caBundle, and their matchConditions written next to it.
		"--mutating-webhook-configuration="+mutatingName,
		"--validating-webhook-configuration="+validatingName,
	)
	var bundle []byte
	eventually(t, "the Secret's CA in the caBundle of both webhook configurations", func(ctx context.Context) error {
		secret, err := cs.CoreV1().Secrets(ns).Get(ctx, "loomguard-tls", metav1.GetOptions{})
		if err != nil {
			return err
		}
		ca := secret.Data["ca.crt"]
		if len(ca) == 0 || len(secret.Data["tls.crt"]) == 0 {
			return errors.New("the Secret holds no certificate yet")
		}
		m, v, err := cluster.LiveWebhooks(ctx, cs, mutatingName, validatingName)
		if err != nil {
			return err
		}
		for _, w := range m {
			if !bytes.Equal(w.CABundle, ca) {
				return fmt.Errorf("mutating webhook %s: caBundle not injected", w.Name)
			}
		}
		for _, w := range v {
			if !bytes.Equal(w.CABundle, ca) {
				return fmt.Errorf("validating webhook %s: caBundle not injected", w.Name)
			}
		}
		bundle = ca
		return nil
	})
	// The match-condition syncer, with the same RBAC, on the same objects: each writer
	// keeps the other's field (the caBundle was checked above, after both started).
	wantConditions := generatedConditions(t, "")
	eventually(t, "the generated matchConditions in both webhook configurations", func(ctx context.Context) error {
		m, v, err := cluster.LiveWebhooks(ctx, cs, mutatingName, validatingName)
		if err != nil {
			return err
		}
		for _, w := range m {
			if !slices.Equal(w.MatchConditions, wantConditions.mutating) || !bytes.Equal(w.CABundle, bundle) {
				return fmt.Errorf("mutating webhook %s: matchConditions %v (want %v), caBundle kept %v", w.Name, w.MatchConditions, wantConditions.mutating, bytes.Equal(w.CABundle, bundle))
			}
		}
		for _, w := range v {
			if !slices.Equal(w.MatchConditions, wantConditions.validating) || !bytes.Equal(w.CABundle, bundle) {
				return fmt.Errorf("validating webhook %s: matchConditions %v (want %v), caBundle kept %v", w.Name, w.MatchConditions, wantConditions.validating, bytes.Equal(w.CABundle, bundle))
			}
		}
		return nil
	})
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		t.Fatal("the injected caBundle holds no certificate")
	}
	first, err := lg.servedCertificate(roots)
	if err != nil {
		t.Fatalf("loomguard's serving certificate does not verify against the injected caBundle: %v", err)
	}

	// The background audit ran as the manifests' ServiceAccount without an error (its RBAC
	// suffices), and loomguard's own objects have no finding, cross-object checks included.
	eventually(t, "a clean background audit run of the test's loomguard", func(ctx context.Context) error {
		lastRun, err := lg.metric(ctx, "loomguard_audit_last_run_timestamp_seconds")
		if err != nil {
			return err
		}
		if lastRun == 0 {
			return errors.New("no audit run finished yet")
		}
		if n, err := lg.metric(ctx, "loomguard_audit_errors_total"); err != nil || n != 0 {
			return fmt.Errorf("%v failed audit runs (%v): its log says why", n, err)
		}
		return nil
	})
	if n, err := lg.metric(ctx, "loomguard_audit_violations", `namespace="`+ns+`"`); err != nil || n != 0 {
		t.Errorf("the audit finds %v violations in loomguard's own namespace %s (%v), want none", n, ns, err)
	}

	// 3. The API server trusts it: a denial from the test's loomguard.
	denied := legacyDeployment("legacy", 1)
	var before float64
	eventually(t, "the API server to call the test's loomguard", func(ctx context.Context) error {
		n, err := lg.metric(ctx, "loomguard_admission_requests_total", `webhook="validate"`, `decision="denied"`)
		if err != nil {
			return err
		}
		r := c.KubectlInput(toYAML(t, denied), "-n", workNS, "apply", "--dry-run=server", "-f", "-")
		if r.OK() || !strings.Contains(r.Stderr, "validate.loomguard.io") {
			return fmt.Errorf("want a denial:\n%s", r)
		}
		after, err := lg.metric(ctx, "loomguard_admission_requests_total", `webhook="validate"`, `decision="denied"`)
		if err != nil {
			return err
		}
		if after <= n {
			return errors.New("the denial did not come through the test's loomguard (its denied counter did not move)")
		}
		return nil
	})
	before, err = lg.metric(ctx, "loomguard_admission_requests_total", `webhook="validate"`)
	if err != nil {
		t.Fatal(err)
	}
	errorsBefore, err := lg.metric(ctx, "loomguard_admission_requests_total", `decision="error"`)
	if err != nil {
		t.Fatal(err)
	}

	// 4. Rotation under load.
	serials := map[string]bool{first.SerialNumber.String(): true}
	var (
		mu       sync.Mutex
		failures []string
	)
	probeCtx, stopProbes := context.WithCancel(ctx)
	var probes sync.WaitGroup
	probes.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-probeCtx.Done():
				return
			case <-tick.C:
			}
			cert, err := lg.servedCertificate(roots)
			mu.Lock()
			if err != nil {
				failures = append(failures, "TLS probe: "+err.Error())
			} else {
				serials[cert.SerialNumber.String()] = true
			}
			mu.Unlock()
		}
	})
	deployments := cs.AppsV1().Deployments(workNS)
	tick := time.NewTicker(loadDuration / loadReviews)
	start := time.Now()
	for i := range loadReviews {
		<-tick.C
		// Without probes: admitted with a health-probes warning, so that no matchCondition
		// can spare loomguard the review.
		d := compliantDeployment(fmt.Sprintf("load-%d", i), 2)
		d.Spec.Template.Spec.Containers[0].LivenessProbe = nil
		d.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
		if _, err := deployments.Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			mu.Lock()
			failures = append(failures, fmt.Sprintf("review %d at %s: %v", i, time.Since(start).Round(time.Millisecond), err))
			mu.Unlock()
		}
	}
	tick.Stop()
	stopProbes()
	probes.Wait()
	elapsed := time.Since(start)

	after, err := lg.metric(ctx, "loomguard_admission_requests_total", `webhook="validate"`)
	if err != nil {
		t.Fatal(err)
	}
	errorsAfter, err := lg.metric(ctx, "loomguard_admission_requests_total", `decision="error"`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reviews in %s: %d through the test's validating webhook, %d distinct serving certificates, %d failures",
		loadReviews, elapsed.Round(time.Millisecond), int(after-before), len(serials), len(failures))
	if len(failures) > 0 {
		t.Errorf("%d failed requests during rotation, want none:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	if after-before < loadReviews {
		t.Errorf("only %v of %d reviews reached the test's loomguard", after-before, loadReviews)
	}
	if errorsAfter != errorsBefore {
		t.Errorf("%v reviews ended in decision=error", errorsAfter-errorsBefore)
	}
	if len(serials) < 3 {
		t.Errorf("%d serving certificates seen in %s, want at least 3 (two renewals of a %s certificate)", len(serials), elapsed, certValidity)
	}
	if err := lg.exited(); err != nil {
		t.Errorf("loomguard exited during rotation: %v", err)
	}
	logData, err := os.ReadFile(lg.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"error re-reading certificate", "certificate rotation failed", "writing the serving certificate"} {
		if strings.Contains(string(logData), bad) {
			t.Errorf("loomguard logged %q: a rotation must be clean", bad)
		}
	}
	if n := strings.Count(string(logData), "rotated certificates"); n < 2 {
		t.Errorf("the rotator logged %d renewals, want at least 2", n)
	}
	expiry, err := lg.metric(ctx, "loomguard_certificate_expiry_timestamp_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if float64(first.NotAfter.Unix()) >= expiry {
		t.Errorf("loomguard_certificate_expiry_timestamp_seconds %v: the reloaded certificate is not in force (first expired at %d)", expiry, first.NotAfter.Unix())
	}
}

// isolation rewrites the rendered overlay so that it can live next to the harness.
type isolation struct {
	ns, id, url, workNS string
}

func (iso isolation) rename(name string) string { return name + "-" + iso.id }

var clusterScoped = map[string]bool{
	"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true,
}

func (iso isolation) apply(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	kind := o.GetKind()
	switch {
	case kind == "Namespace":
		o.SetName(iso.ns)
	case clusterScoped[kind]:
		o.SetName(iso.rename(o.GetName()))
	case o.GetNamespace() == manifestNamespace:
		o.SetNamespace(iso.ns)
	case o.GetNamespace() != "":
		t.Fatalf("%s %s/%s: unexpected namespace", kind, o.GetNamespace(), o.GetName())
	default:
		t.Fatalf("%s %s has no namespace", kind, o.GetName())
	}
	switch kind {
	case "ClusterRole":
		// Names of renamed cluster-scoped objects (the webhook configurations).
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		for _, r := range rules {
			rule := r.(map[string]any)
			if names, ok := rule["resourceNames"].([]any); ok {
				for i, n := range names {
					names[i] = iso.rename(n.(string))
				}
			}
		}
		must(t, unstructured.SetNestedSlice(o.Object, rules, "rules"))
	case "ClusterRoleBinding", "RoleBinding":
		if kind == "ClusterRoleBinding" {
			must(t, unstructured.SetNestedField(o.Object, iso.rename(mustString(t, o, "roleRef", "name")), "roleRef", "name"))
		}
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		for _, s := range subjects {
			s.(map[string]any)["namespace"] = iso.ns
		}
		must(t, unstructured.SetNestedSlice(o.Object, subjects, "subjects"))
	case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
		webhooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
		for _, w := range webhooks {
			hook := w.(map[string]any)
			path, _, _ := unstructured.NestedString(hook, "clientConfig", "service", "path")
			hook["clientConfig"] = map[string]any{"url": iso.url + path}
			hook["namespaceSelector"] = map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": iso.workNS}}
		}
		must(t, unstructured.SetNestedSlice(o.Object, webhooks, "webhooks"))
	}
}

// cleanup removes what the test installed: the webhook configurations first, so that
// nothing is ever left calling a loomguard that is gone.
func (iso isolation) cleanup(t *testing.T, c *cluster.Cluster, objs []*unstructured.Unstructured) {
	var first, rest []string
	for _, o := range objs {
		if !clusterScoped[o.GetKind()] {
			continue
		}
		ref := strings.ToLower(o.GetKind()) + "/" + o.GetName()
		if strings.HasSuffix(o.GetKind(), "WebhookConfiguration") {
			first = append(first, ref)
		} else {
			rest = append(rest, ref)
		}
	}
	rest = append(rest, "namespace/"+iso.workNS)
	for _, refs := range [][]string{first, rest} {
		if r := c.Kubectl(append([]string{"delete", "--ignore-not-found", "--wait=false"}, refs...)...); !r.OK() {
			t.Errorf("cleaning up: %s", r)
		}
	}
}

// localLoomguard is `loomguard serve` started by the test on loopback.
type localLoomguard struct {
	port, metricsPort, healthPort int
	cmd                           *exec.Cmd
	logPath                       string
	done                          chan struct{}
	waitErr                       error
}

func (l *localLoomguard) start(t *testing.T, bin string, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{
		"serve",
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(l.port),
		"--metrics-bind-address=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(l.metricsPort)),
		// Scraped over plain HTTP by the test.
		"--metrics-secure=false",
		"--health-probe-bind-address=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(l.healthPort)),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--config=" + config,
		"--log-format=console",
	}, extra...)
	l.logPath = filepath.Join(dir, "loomguard.log")
	logFile, err := os.Create(l.logPath)
	if err != nil {
		t.Fatal(err)
	}
	l.cmd = exec.Command(bin, args...)
	l.cmd.Stdout, l.cmd.Stderr = logFile, logFile
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("starting loomguard: %v", err)
	}
	l.done = make(chan struct{})
	go func() {
		l.waitErr = l.cmd.Wait()
		logFile.Close()
		close(l.done)
	}()
	t.Cleanup(func() {
		l.stop()
		if t.Failed() {
			data, _ := os.ReadFile(l.logPath)
			t.Logf("the test's loomguard log:\n%s", lastLines(string(data), 60))
		}
	})
	readyz := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(l.healthPort)) + "/readyz"
	if err := poll(60*time.Second, func(ctx context.Context) error {
		if err := l.exited(); err != nil {
			return fmt.Errorf("loomguard exited: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyz, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	}); err != nil {
		data, _ := os.ReadFile(l.logPath)
		t.Fatalf("loomguard in self-managed mode did not become ready: %v\n%s", err, lastLines(string(data), 60))
	}
}

// exited is nil while the process runs.
func (l *localLoomguard) exited() error {
	select {
	case <-l.done:
		if l.waitErr == nil {
			return errors.New("exit status 0")
		}
		return l.waitErr
	default:
		return nil
	}
}

func (l *localLoomguard) stop() {
	if l.cmd == nil || l.cmd.Process == nil {
		return
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.done:
	case <-time.After(15 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.done
	}
}

// servedCertificate connects to the webhook port as the API server does (verifying the
// certificate against roots for 127.0.0.1) and returns the certificate served.
func (l *localLoomguard) servedCertificate(roots *x509.CertPool) (*x509.Certificate, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	conn, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// metric sums the samples of one metric whose label sets contain every filter.
func (l *localLoomguard) metric(ctx context.Context, name string, filters ...string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(l.metricsPort)) + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scraping the test's loomguard: %w", err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		for _, f := range filters {
			if !strings.Contains(rest, f) {
				continue lines
			}
		}
		fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// impersonatingKubeconfig writes a copy of the admin kubeconfig that acts as a
// ServiceAccount, so that a process using it has exactly that account's RBAC.
func impersonatingKubeconfig(t *testing.T, admin, namespace, serviceAccount string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = "system:serviceaccount:" + namespace + ":" + serviceAccount
		ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func decodeObjects(t *testing.T, data string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}

func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustString(t *testing.T, o *unstructured.Unstructured, fields ...string) string {
	t.Helper()
	s, ok, err := unstructured.NestedString(o.Object, fields...)
	if err != nil || !ok {
		t.Fatalf("%s %s: no %v", o.GetKind(), o.GetName(), fields)
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
