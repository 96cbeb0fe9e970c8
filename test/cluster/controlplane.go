package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// serviceCIDR is the cluster's service IP range; its first address is the kubernetes
	// Service's, which the API server certificate includes.
	serviceCIDR = "10.0.0.0/24"
	// serviceAccountIssuer is the "iss" of service account tokens.
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

	// Timeouts of the start-up steps. They are upper bounds for a loaded 2-core machine;
	// the usual times are logged through Config.Logf.
	etcdTimeout       = 30 * time.Second
	apiServerTimeout  = 60 * time.Second
	controllerTimeout = 60 * time.Second
	pollInterval      = 100 * time.Millisecond
)

// disabledControllers need nodes, a cloud or a kubelet, which this control plane has not.
// Everything else kube-controller-manager enables by default runs: deployment, replicaset,
// statefulset, daemonset, job, cronjob, garbage collector, namespace, serviceaccount and
// its token controller, root-ca-certificate-publisher, disruption, HPA, ...
func disabledControllers() []string {
	return []string{
		"node-ipam-controller",
		"node-lifecycle-controller",
		"persistentvolume-attach-detach-controller",
		"taint-eviction-controller",
		"device-taint-eviction-controller",
		"ttl-controller",
	}
}

// auditPolicy records creates and updates of the kinds loomguard governs, with their
// admission audit annotations (the Metadata level carries them).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch]
    resources:
      - group: ""
        resources: [pods]
      - group: apps
        resources: [deployments, statefulsets, daemonsets, replicasets]
      - group: batch
        resources: [jobs, cronjobs]
  - level: None
`

// pkiFiles are the paths of the control plane's certificates and keys.
type pkiFiles struct {
	caCert, caKey               string
	apiServerCert, apiServerKey string
	saKey, saPub                string
	kcmKubeconfig               string
	// webhookKubeconfig is the kubeConfigFile of the API server's admission webhooks: the
	// client certificate it presents to loomguard's webhook port.
	webhookKubeconfig string
}

// writePKI creates the cluster CA, the API server's serving certificate, the admin and
// kube-controller-manager client certificates and kubeconfigs, the service-account key
// pair, loomguard's CA and serving certificate, and the client certificate the API server
// presents to loomguard's webhook port with the CA that signed it.
func (c *Cluster) writePKI() (*pkiFiles, error) {
	ca, err := newAuthority("loomguard-e2e-cluster-ca")
	if err != nil {
		return nil, err
	}
	f := &pkiFiles{caCert: filepath.Join(c.pkiDir, "ca.crt"), caKey: filepath.Join(c.pkiDir, "ca.key")}
	if err := os.WriteFile(f.caCert, ca.certPEM, 0o600); err != nil {
		return nil, fmt.Errorf("writing cluster CA: %w", err)
	}
	if err := os.WriteFile(f.caKey, ca.keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("writing cluster CA key: %w", err)
	}

	serving, err := ca.issue(certRequest{
		commonName: "kube-apiserver",
		dnsNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		ips:    []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 0, 1)},
		server: true,
	})
	if err != nil {
		return nil, err
	}
	if f.apiServerCert, f.apiServerKey, err = serving.write(c.pkiDir, "apiserver"); err != nil {
		return nil, err
	}
	if f.saKey, f.saPub, err = serviceAccountKeys(c.pkiDir); err != nil {
		return nil, err
	}

	admin, err := ca.issue(certRequest{commonName: "loomguard-e2e-admin", organization: []string{"system:masters"}, client: true})
	if err != nil {
		return nil, err
	}
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	if err := c.writeKubeconfig(c.kubeconfig, "admin", ca.certPEM, admin); err != nil {
		return nil, err
	}
	kcm, err := ca.issue(certRequest{commonName: "system:kube-controller-manager", client: true})
	if err != nil {
		return nil, err
	}
	f.kcmKubeconfig = filepath.Join(c.pkiDir, "kube-controller-manager.kubeconfig")
	if err := c.writeKubeconfig(f.kcmKubeconfig, "kube-controller-manager", ca.certPEM, kcm); err != nil {
		return nil, err
	}

	lgCA, err := newAuthority("loomguard-e2e-webhook-ca")
	if err != nil {
		return nil, err
	}
	lgServing, err := lgCA.issue(certRequest{
		commonName: "loomguard.loomguard-system.svc",
		dnsNames:   []string{"localhost", "loomguard.loomguard-system.svc", "loomguard.loomguard-system.svc.cluster.local"},
		ips:        []net.IP{net.IPv4(127, 0, 0, 1)},
		server:     true,
	})
	if err != nil {
		return nil, err
	}
	c.lg.caPEM = lgCA.certPEM
	c.lg.certDir = filepath.Join(c.dir, "loomguard", "certs")
	if err := os.MkdirAll(c.lg.certDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating loomguard cert dir: %w", err)
	}
	for name, data := range map[string][]byte{"tls.crt": lgServing.certPEM, "tls.key": lgServing.keyPEM, "ca.crt": lgCA.certPEM} {
		if err := os.WriteFile(filepath.Join(c.lg.certDir, name), data, 0o600); err != nil {
			return nil, fmt.Errorf("writing loomguard %s: %w", name, err)
		}
	}
	if f.webhookKubeconfig, err = c.writeWebhookClient(); err != nil {
		return nil, err
	}
	return f, nil
}

// writeWebhookClient creates a third CA and the client certificate kube-apiserver presents
// when it calls loomguard, writes the CA as c.lg.clientCAFile (what loomguard's
// --client-ca-file takes) and returns the path of the kubeconfig kube-apiserver finds the
// certificate in. Its one user is named after the host:port of the webhooks' URL, which is
// how the API server picks the credentials of a URL webhook (k8s.io/apiserver
// pkg/util/webhook/authentication.go); the extra loomguards on other ports get none.
func (c *Cluster) writeWebhookClient() (string, error) {
	ca, err := newAuthority("loomguard-e2e-webhook-client-ca")
	if err != nil {
		return "", err
	}
	client, err := ca.issue(certRequest{commonName: "kube-apiserver-webhook-client", client: true})
	if err != nil {
		return "", err
	}
	pair, err := tls.X509KeyPair(client.certPEM, client.keyPEM)
	if err != nil {
		return "", fmt.Errorf("loading the API server's webhook client certificate: %w", err)
	}
	c.lg.clientCert = pair
	c.lg.clientCAFile = filepath.Join(c.pkiDir, "webhook-client-ca.crt")
	if err := os.WriteFile(c.lg.clientCAFile, ca.certPEM, 0o600); err != nil {
		return "", fmt.Errorf("writing the webhook client CA: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.AuthInfos[hostPort(c.lg.port)] = &clientcmdapi.AuthInfo{ClientCertificateData: client.certPEM, ClientKeyData: client.keyPEM}
	path := filepath.Join(c.pkiDir, "webhook-client.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return path, nil
}

// admissionConfiguration gives both webhook admission plugins of kube-apiserver the
// kubeconfig with their client certificate (--admission-control-config-file).
func admissionConfiguration(webhookKubeconfig string) string {
	var b strings.Builder
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n")
	for _, plugin := range []string{"ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"} {
		fmt.Fprintf(&b, "  - name: %s\n    configuration:\n      apiVersion: apiserver.config.k8s.io/v1\n      kind: WebhookAdmissionConfiguration\n      kubeConfigFile: %q\n", plugin, webhookKubeconfig)
	}
	return b.String()
}

// writeKubeconfig writes a self-contained kubeconfig (certificates embedded) for the API
// server on loopback.
func (c *Cluster) writeKubeconfig(path, user string, caPEM []byte, pair *keyPair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["loomguard-e2e"] = &clientcmdapi.Cluster{
		Server:                   "https://" + hostPort(c.apiServerPort),
		CertificateAuthorityData: caPEM,
	}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: pair.certPEM, ClientKeyData: pair.keyPEM}
	cfg.Contexts["loomguard-e2e"] = &clientcmdapi.Context{Cluster: "loomguard-e2e", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "loomguard-e2e"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// startEtcd starts a single-member etcd on loopback and waits for its /health.
func (c *Cluster) startEtcd(ctx context.Context, clientPort, peerPort int) error {
	client := "http://" + hostPort(clientPort)
	peer := "http://" + hostPort(peerPort)
	args := []string{
		"--name=default",
		"--data-dir=" + filepath.Join(c.dir, "etcd-data"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=default=" + peer,
		"--initial-cluster-state=new",
		// A throw-away cluster: no fsync, small logs.
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	}
	p, err := startProcess("etcd", c.logDir, c.bin("etcd"), args)
	if err != nil {
		return err
	}
	c.etcd = p
	httpClient := &http.Client{Timeout: 2 * time.Second}
	return c.poll(ctx, etcdTimeout, "etcd /health", []*process{p}, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, client+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var health struct {
			Health string `json:"health"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
			return fmt.Errorf("decoding /health: %w", err)
		}
		if health.Health != "true" {
			return fmt.Errorf("etcd reports health %q", health.Health)
		}
		return nil
	})
}

// startAPIServer starts kube-apiserver against etcd.
func (c *Cluster) startAPIServer(etcdPort int, pki *pkiFiles) error {
	policy := filepath.Join(c.dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return fmt.Errorf("writing audit policy: %w", err)
	}
	admission := filepath.Join(c.dir, "admission-configuration.yaml")
	if err := os.WriteFile(admission, []byte(admissionConfiguration(pki.webhookKubeconfig)), 0o600); err != nil {
		return fmt.Errorf("writing admission configuration: %w", err)
	}
	c.auditLog = filepath.Join(c.logDir, "audit.log")
	args := []string{
		"--etcd-servers=http://" + hostPort(etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.apiServerPort),
		"--tls-cert-file=" + pki.apiServerCert,
		"--tls-private-key-file=" + pki.apiServerKey,
		"--cert-dir=" + filepath.Join(c.dir, "apiserver"),
		// Admin and controller-manager authenticate with client certificates of the CA.
		"--client-ca-file=" + pki.caCert,
		"--authorization-mode=RBAC",
		// Service account tokens (TokenRequest) signed with a key the harness generated.
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + pki.saPub,
		"--service-account-signing-key-file=" + pki.saKey,
		"--service-cluster-ip-range=" + serviceCIDR,
		// No kubelet runs here, and the kubernetes Service endpoints would point at loopback.
		"--endpoint-reconciler-type=none",
		// As in a real cluster, loomguard, not the API server, is what refuses privileged pods.
		"--allow-privileged=true",
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + c.auditLog,
		"--audit-log-mode=blocking",
		// The webhooks present a client certificate to loomguard, which checks it when
		// started with --client-ca-file (LoomguardClientCAFile).
		"--admission-control-config-file=" + admission,
		"--profiling=false",
	}
	args = append(args, c.cfg.APIServerArgs...)
	p, err := startProcess("kube-apiserver", c.logDir, c.bin("kube-apiserver"), args)
	if err != nil {
		return err
	}
	c.apiserver = p
	return nil
}

// waitAPIServer waits for /readyz and builds the admin clients.
func (c *Cluster) waitAPIServer(ctx context.Context) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading admin kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = "loomguard-e2e-harness"
	// Warnings (loomguard's among them) are for the tests to look at through kubectl.
	cfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating clientset: %w", err)
	}
	c.restConfig, c.clientset = cfg, cs
	return c.poll(ctx, apiServerTimeout, "kube-apiserver /readyz", []*process{c.etcd, c.apiserver}, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(body)))
		}
		return nil
	})
}

// startControllerManager starts kube-controller-manager with its own kubeconfig.
func (c *Cluster) startControllerManager(pki *pkiFiles) error {
	controllers := "*"
	for _, name := range append(disabledControllers(), c.cfg.DisabledControllers...) {
		controllers += ",-" + name
	}
	args := []string{
		"--kubeconfig=" + pki.kcmKubeconfig,
		"--leader-elect=false",
		"--controllers=" + controllers,
		// Each controller acts as its own service account (kube-system/<controller>), as in
		// kubeadm clusters, so RBAC is exercised as it would be.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + pki.saKey,
		// Published as kube-root-ca.crt in every namespace.
		"--root-ca-file=" + pki.caCert,
		"--cluster-signing-cert-file=" + pki.caCert,
		"--cluster-signing-key-file=" + pki.caKey,
		"--service-cluster-ip-range=" + serviceCIDR,
		// No HTTPS endpoint: readiness is observed through the objects it creates.
		"--secure-port=0",
		"--profiling=false",
	}
	args = append(args, c.cfg.ControllerManagerArgs...)
	p, err := startProcess("kube-controller-manager", c.logDir, c.bin("kube-controller-manager"), args)
	if err != nil {
		return err
	}
	c.kcm = p
	return nil
}

// waitControllerManager waits for what a working control plane has before any test runs:
// the default namespace (API server), its kube-root-ca.crt ConfigMap
// (root-ca-certificate-publisher) and its default ServiceAccount (serviceaccount controller).
func (c *Cluster) waitControllerManager(ctx context.Context) error {
	procs := []*process{c.etcd, c.apiserver, c.kcm}
	if err := c.poll(ctx, controllerTimeout, "namespace default", procs, func(ctx context.Context) error {
		_, err := c.clientset.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := c.poll(ctx, controllerTimeout, "ConfigMap default/kube-root-ca.crt", procs, func(ctx context.Context) error {
		_, err := c.clientset.CoreV1().ConfigMaps(metav1.NamespaceDefault).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	return c.WaitForServiceAccount(ctx, metav1.NamespaceDefault, "default")
}

// CreateNamespace creates a namespace (an existing one is fine) and waits for its default
// ServiceAccount, without which the API server refuses pods.
func (c *Cluster) CreateNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return c.WaitForServiceAccount(ctx, name, "default")
}

// WaitForServiceAccount waits until the ServiceAccount namespace/name exists.
func (c *Cluster) WaitForServiceAccount(ctx context.Context, namespace, name string) error {
	return c.poll(ctx, controllerTimeout, "ServiceAccount "+namespace+"/"+name, []*process{c.apiserver, c.kcm}, func(ctx context.Context) error {
		_, err := c.clientset.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
}

// Poll calls check every pollInterval until it returns nil, timeout passes or ctx ends,
// and stops at once when kube-apiserver or loomguard exits. Its error says what it waited
// for and, after a timeout, what check last returned.
func (c *Cluster) Poll(ctx context.Context, timeout time.Duration, what string, check func(context.Context) error) error {
	return c.poll(ctx, timeout, what, []*process{c.apiserver, c.loomguardProcess()}, check)
}

// poll calls check every pollInterval until it returns nil, timeout passes, ctx ends or
// one of procs exits.
func (c *Cluster) poll(ctx context.Context, timeout time.Duration, what string, procs []*process, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var last error
	for {
		for _, p := range procs {
			if p == nil {
				continue
			}
			if err := p.exited(); err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("waiting for %s: timed out after %s: %w", what, timeout, last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-ticker.C:
		}
	}
}

// drain reads and closes a response body so the connection can be reused.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, body)
	body.Close()
}
