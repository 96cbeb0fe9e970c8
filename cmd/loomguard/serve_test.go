//go:build !loomguard_cli

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loomguard/loomguard/webhook"
)

func TestServeEnvOverrides(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(f serveFlags) bool
		wantErr string
	}{
		{name: "defaults", want: func(f serveFlags) bool {
			return f.config == "" && f.port == 9443 && f.metricsBindAddress == ":8080" && f.metricsSecure && f.healthProbeBindAddress == ":8081" &&
				f.logLevel == "info" && f.logFormat == "json" && f.tlsMinVersion == "1.2" && f.certDir == webhook.DefaultCertDir() &&
				f.enableHTTP2 && f.shutdownTimeout == 10*time.Second && f.pprofBindAddress == "0"
		}},
		{name: "env sets unset flags",
			env: map[string]string{"LOOMGUARD_CONFIG": "/etc/loomguard/config.yaml", "LOOMGUARD_PORT": "10250",
				"LOOMGUARD_METRICS_BIND_ADDRESS": ":9090", "LOOMGUARD_CERT_DIR": "/certs", "LOOMGUARD_ENABLE_HTTP2": "false"},
			want: func(f serveFlags) bool {
				return f.config == "/etc/loomguard/config.yaml" && f.port == 10250 && f.metricsBindAddress == ":9090" &&
					f.certDir == "/certs" && !f.enableHTTP2
			}},
		{name: "the command line wins", args: []string{"--config", "flag.yaml", "--port=8443"},
			env:  map[string]string{"LOOMGUARD_CONFIG": "env.yaml", "LOOMGUARD_PORT": "10250", "LOOMGUARD_LOG_LEVEL": "debug"},
			want: func(f serveFlags) bool { return f.config == "flag.yaml" && f.port == 8443 && f.logLevel == "debug" }},
		{name: "bad env value", env: map[string]string{"LOOMGUARD_PORT": "https"}, wantErr: `invalid LOOMGUARD_PORT="https"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f serveFlags
			fs := newServeFlagSet(&f, io.Discard)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := applyEnv(fs, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("applyEnv() = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(f) {
				t.Errorf("flags %+v", f)
			}
		})
	}
}

func TestServeUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"help", []string{"--help"}, nil, 0, "LOOMGUARD_"},
		{"unknown flag", []string{"--listen", ":1"}, nil, 2, "unknown flag: --listen"},
		{"argument", []string{"now"}, nil, 2, `unexpected arguments ["now"]`},
		{"log level", []string{"--log-level", "trace"}, nil, 2, `unsupported --log-level "trace"`},
		{"log format", []string{"--log-format", "xml"}, nil, 2, `unsupported --log-format "xml"`},
		{"tls version", []string{"--tls-min-version", "1.1"}, nil, 2, `unsupported --tls-min-version "1.1"`},
		{"tls version from env", nil, map[string]string{"LOOMGUARD_TLS_MIN_VERSION": "1.0"}, 2, `unsupported --tls-min-version "1.0"`},
		{"port", []string{"--port", "70000"}, nil, 2, "--port 70000 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := serveCommand(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String()+stderr.String(), tt.want) {
				t.Errorf("output does not contain %q:\n%s%s", tt.want, stdout.String(), stderr.String())
			}
		})
	}
}

// serveCerts writes a self-signed serving certificate for 127.0.0.1 into a new directory
// and returns the directory and a pool that trusts it.
func serveCerts(t testing.TB) (string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "loomguard"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return dir, pool
}

func servePort(t testing.TB) int {
	t.Helper()
	return servePorts(t, 1)[0]
}

// servePorts returns n distinct free loopback ports: their listeners are all open at once,
// so the kernel cannot hand the same port out twice.
func servePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// syncBuffer is a bytes.Buffer that the server's loggers may write concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveEndpoints are the loopback addresses of one serve run.
type serveEndpoints struct {
	port, probe, metrics int
	certDir              string
	pool                 *x509.CertPool
}

func newServeEndpoints(t testing.TB) serveEndpoints {
	dir, pool := serveCerts(t)
	p := servePorts(t, 3)
	return serveEndpoints{port: p[0], probe: p[1], metrics: p[2], certDir: dir, pool: pool}
}

func (e serveEndpoints) args(extra ...string) []string {
	return append([]string{
		"--bind-address", "127.0.0.1",
		"--port", fmt.Sprint(e.port),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", e.probe),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", e.metrics),
		"--metrics-secure=false",
		"--cert-dir", e.certDir,
	}, extra...)
}

// waitReady waits until serve answers its readiness probe; if serve exits first, or never
// becomes ready, it fails the test with serve's stderr so far.
func (e serveEndpoints) waitReady(t testing.TB, exited <-chan int, stderr fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-exited:
			t.Fatalf("serve exited with %d before it was ready; its stderr:\n%s", code, stderr)
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", e.probe))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("serve did not become ready; its stderr:\n%s", stderr)
}

// insecurePod is a Pod that breaks most policies.
const insecurePod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"loom","labels":{"app":"loom"}},
"spec":{"containers":[{"name":"loom","image":"loom:latest"}]}}`

// validate sends insecurePod to /validate and returns the response.
func (e serveEndpoints) validate(t testing.TB) *admissionv1.AdmissionResponse {
	t.Helper()
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "b1f0c3e4-0000-4000-8000-000000000001",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Name:      "web",
			Namespace: "loom",
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: []byte(insecurePod)},
		},
	}
	body, _ := json.Marshal(ar)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}}}
	resp, err := c.Post(fmt.Sprintf("https://127.0.0.1:%d%s", e.port, webhook.ValidatePath), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response == nil {
		t.Fatalf("decoding the review: %v", err)
	}
	return out.Response
}

func (e serveEndpoints) metricsText(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", e.metrics))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return string(text)
}

// noCluster makes sure no kubeconfig is found.
func noCluster(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", filepath.Join(home, "no-kubeconfig"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
}

// TestServe runs `loomguard serve` in process without a cluster: it becomes ready, denies
// an insecure Pod, serves metrics, and returns 0 when its context ends.
func TestServe(t *testing.T) {
	noCluster(t)
	e := newServeEndpoints(t)
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte("policies:\n  health-probes:\n    action: audit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	exited := make(chan int, 1)
	go func() { exited <- serveCommand(ctx, e.args("--config", config), io.Discard, &stderr) }()
	e.waitReady(t, exited, &stderr)

	resp := e.validate(t)
	if resp.Allowed || resp.Result.Code != http.StatusForbidden || !strings.HasPrefix(resp.Result.Message, "Pod loom/web violates ") {
		t.Errorf("insecure Pod: allowed %v, %+v", resp.Allowed, resp.Result)
	}
	if resp.AuditAnnotations["health-probes"] == "" {
		t.Errorf("audit annotations %q: the config's audit action is not in force", resp.AuditAnnotations)
	}
	text := e.metricsText(t)
	for _, want := range []string{
		`loomguard_admission_requests_total{decision="denied",dry_run="false",kind="Pod",operation="CREATE",reason="",webhook="validate"} `,
		`loomguard_policy_violations_total{action="audit",policy="health-probes",source="admission"}`,
		"go_goroutines", "process_resident_memory_bytes", "loomguard_certificate_expiry_timestamp_seconds",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d after shutdown, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	// JSON logs, one line per denial.
	var denials int
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("log line is not JSON: %s", line)
			continue
		}
		if entry["msg"] == "denied" {
			denials++
			if entry["name"] != "web" || entry["namespace"] != "loom" || entry["kind"] != "Pod" {
				t.Errorf("denial line %s", line)
			}
		}
	}
	if denials != 1 {
		t.Errorf("%d denial log lines, want 1", denials)
	}
	if n := strings.Count(stderr.String(), "matchConditions left alone: no cluster connection"); n != 1 {
		t.Errorf("%d log lines say the matchConditions are left alone without a cluster, want 1", n)
	}
}

// TestServeWithKubeconfig runs serve under the manager against an API server that does not
// answer; admission needs none.
func TestServeWithKubeconfig(t *testing.T) {
	noCluster(t)
	e := newServeEndpoints(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, servePort(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	exited := make(chan int, 1)
	go func() { exited <- serveCommand(ctx, e.args("--kubeconfig", kubeconfig), io.Discard, &stderr) }()
	e.waitReady(t, exited, &stderr)
	if resp := e.validate(t); resp.Allowed {
		t.Error("insecure Pod admitted")
	}
	cancel()
	if code := <-exited; code != 0 {
		t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr.String())
	}
}

func TestServeStartupErrors(t *testing.T) {
	noCluster(t)
	e := newServeEndpoints(t)
	badConfig := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(badConfig, []byte("defaultAction: block\npolicies:\n  image-tags: {}\n  resource-limits:\n    maxLimitRequestRatio: 0.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"invalid config", e.args("--config", badConfig), []string{"invalid config", "defaultAction", "image-tags", "maxLimitRequestRatio"}},
		{"missing config", e.args("--config", badConfig+".missing"), []string{"reading config"}},
		{"missing certificate", append(e.args(), "--cert-dir", t.TempDir()), []string{"loading the serving certificate"}},
		{"broken kubeconfig", e.args("--kubeconfig", badConfig+".missing"), []string{"loading --kubeconfig"}},
		{"secure metrics without a cluster", e.args("--metrics-secure"), []string{"secure metrics", "need cluster access", "plain metrics"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncBuffer
			code := serveCommand(context.Background(), tt.args, io.Discard, &stderr)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, want := range tt.want {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

// TestServeSIGTERM builds the real binary, serves, and stops it with SIGTERM: it exits 0.
func TestServeSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "loomguard")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	noCluster(t)
	e := newServeEndpoints(t)
	var stderr syncBuffer
	cmd := exec.Command(bin, append([]string{"serve"}, e.args("--log-format", "console")...)...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan int, 1)
	go func() {
		_ = cmd.Wait()
		exited <- cmd.ProcessState.ExitCode()
	}()
	e.waitReady(t, exited, &stderr)
	if resp := e.validate(t); resp.Allowed {
		t.Error("insecure Pod admitted")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("serve did not stop on SIGTERM")
	}
	if !strings.Contains(stderr.String(), "stopped") {
		t.Errorf("no shutdown line in the log:\n%s", stderr.String())
	}
}
