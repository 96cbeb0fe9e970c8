package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/loomguard/loomguard/test/cluster"
)

// TestMetricsAuth: a loomguard with --metrics-secure, running with only the shipped
// ClusterRole loomguard-metrics-auth, serves /metrics over HTTPS only to
// bearer tokens the API server authenticates and authorizes for get on the nonResourceURL
// /metrics. A ServiceAccount bound to the shipped loomguard-metrics-reader scrapes the metrics; no token, a token
// the API server does not know (401), or a ServiceAccount without the role (403) are
// refused, and plain HTTP gets no metrics.
func TestMetricsAuth(t *testing.T) {
	s := newScenario(t, "e2e-metricsauth")
	ctx := t.Context()

	// The shipped ClusterRoles, renamed for this namespace: loomguard-metrics-auth for the
	// loomguard (which runs as a ServiceAccount with no other permission, its audit off),
	// loomguard-metrics-reader for the scraper. This proves their rules sufficient.
	roles := shippedClusterRoles(t, s.c.RepoPath("manifests", "base", "rbac.yaml"), "loomguard-metrics-auth", "loomguard-metrics-reader")
	loomguardUser := "system:serviceaccount:" + s.ns + ":loomguard"
	bind := func(role *rbacv1.ClusterRole, subject rbacv1.Subject) {
		t.Helper()
		role = role.DeepCopy()
		role.Name += "-" + s.ns
		if _, err := s.cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = s.cs.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
		})
		binding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{subject},
		}
		if _, err := s.cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = s.cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
		})
	}
	bind(roles["loomguard-metrics-auth"], rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: loomguardUser})
	bind(roles["loomguard-metrics-reader"], rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: s.ns, Name: "scraper"})

	kubeconfig := filepath.Join(t.TempDir(), "loomguard.kubeconfig")
	if err := s.c.WriteKubeconfigAs(kubeconfig, loomguardUser, "system:serviceaccounts", "system:serviceaccounts:"+s.ns, "system:authenticated"); err != nil {
		t.Fatal(err)
	}
	lg, err := s.c.StartExtraLoomguard(ctx, cluster.ExtraLoomguardOptions{
		Name: "loomguard-metrics-secure", Kubeconfig: kubeconfig, Args: []string{"--metrics-secure", "--audit=false"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("loomguard-metrics-secure log (last lines):\n%s", lg.LogTail(40))
		}
		if err := lg.Stop(); err != nil {
			t.Error(err)
		}
	})

	token := func(sa string) string {
		t.Helper()
		if _, err := s.cs.CoreV1().ServiceAccounts(s.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := s.cs.CoreV1().ServiceAccounts(s.ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("requesting a token for %s: %v", sa, err)
		}
		return tr.Status.Token
	}
	scraper, stranger := token("scraper"), token("stranger")

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.c.LoomguardCAPEM()) {
		t.Fatal("loomguard's serving CA is not PEM")
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}},
	}
	defer client.CloseIdleConnections()
	get := func(url, bearer string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	https := "https://" + lg.MetricsAddress() + "/metrics"

	// The ClusterRoleBinding reaches the authorizer's cache at once in a single API server,
	// but allow for the first TokenReview and SubjectAccessReview to settle.
	eventually(t, "the scraper's token to be served", func(ctx context.Context) error {
		code, body := get(https, scraper)
		if code != http.StatusOK {
			return fmt.Errorf("%d: %s", code, body)
		}
		if !strings.Contains(body, "\nloomguard_admission_in_flight ") {
			return fmt.Errorf("200 without loomguard's metrics:\n%.500s", body)
		}
		return nil
	})

	for _, tt := range []struct {
		name, token string
		want        []int
	}{
		{"no token", "", []int{http.StatusUnauthorized}},
		// The TokenReview says "not authenticated"; k8s.io/apiserver's bearer-token
		// authenticator reports that as an error, which controller-runtime's filter (v0.25)
		// answers with 500 "Authentication failed" rather than 401.
		{"a token the API server does not know", "not-a-token", []int{http.StatusUnauthorized, http.StatusInternalServerError}},
		{"a ServiceAccount without the role", stranger, []int{http.StatusForbidden}},
	} {
		if code, body := get(https, tt.token); !slices.Contains(tt.want, code) {
			t.Errorf("%s: got %d, want %v: %.300s", tt.name, code, tt.want, body)
		} else if strings.Contains(body, "loomguard_") {
			t.Errorf("%s: the refusal carries metrics:\n%.300s", tt.name, body)
		}
	}

	// Plain HTTP to the TLS port: the handshake fails, nothing is served.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+lg.MetricsAddress()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+scraper)
	if resp, err := client.Do(req); err == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "loomguard_") {
			t.Errorf("plain HTTP to the secure metrics port: got %s with metrics:\n%.300s", resp.Status, body)
		}
	}
}

// shippedClusterRoles reads the ClusterRoles named from a manifest file of several YAML
// documents, by name; a name it lacks fails the test.
func shippedClusterRoles(t *testing.T, path string, names ...string) map[string]*rbacv1.ClusterRole {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*rbacv1.ClusterRole{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var role rbacv1.ClusterRole
		if err := dec.Decode(&role); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding %s: %v", path, err)
		}
		if role.Kind == "ClusterRole" && slices.Contains(names, role.Name) {
			out[role.Name] = &role
		}
	}
	for _, name := range names {
		if out[name] == nil {
			t.Fatalf("%s has no ClusterRole %s", path, name)
		}
	}
	return out
}
