package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestClientCertificate: loomguard started with --client-ca-file set to the CA of the
// client certificate kube-apiserver presents (from its AdmissionConfiguration's
// kubeConfigFile) still gets the API server's reviews: a compliant Pod is admitted, one
// lacking allowPrivilegeEscalation is stored fixed (the mutating webhook), a violating one
// is denied with loomguard's own message (not the API server's "failed
// calling webhook" of a failed call). A client without a certificate, or with a
// certificate of another CA (the cluster admin's), is refused at the TLS handshake before
// any review is read.
func TestClientCertificate(t *testing.T) {
	s := newScenario(t, "e2e-clientcert")
	restartLoomguard(t, s.c, "--client-ca-file="+s.c.LoomguardClientCAFile())
	t.Cleanup(func() { restartLoomguard(t, s.c) })

	d := compliantDeployment("web", 1)
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: d.Spec.Template.Labels},
		Spec:       d.Spec.Template.Spec,
	}
	mustSucceed(t, s.apply(pod))
	if _, err := s.cs.CoreV1().Pods(s.ns).Get(t.Context(), "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("the compliant Pod was not stored: %v", err)
	}

	// The mutating webhook is called with the certificate too: a Pod that lacks
	// allowPrivilegeEscalation is stored fixed.
	fixable := pod.DeepCopy()
	fixable.Name = "fixable"
	fixable.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	mustSucceed(t, s.apply(fixable))
	stored, err := s.cs.CoreV1().Pods(s.ns).Get(t.Context(), "fixable", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the fixable Pod was not stored: %v", err)
	}
	if got := stored.Annotations[fixedAnnotation]; got != "no-privilege-escalation" {
		t.Errorf("annotation %s=%q, want no-privilege-escalation", fixedAnnotation, got)
	}
	if ape := stored.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation; ape == nil || *ape {
		t.Errorf("allowPrivilegeEscalation of the stored Pod: %v, want false", ape)
	}

	bad := pod.DeepCopy()
	bad.Name = "latest"
	bad.Spec.Containers[0].Image = "loom:latest"
	r := s.apply(bad)
	mustFail(t, r)
	mustContain(t, "kubectl apply stderr", r.Stderr,
		`admission webhook "validate.loomguard.io" denied the request`,
		"Pod "+s.ns+"/latest violates 1 loomguard policy",
		`[image-tag] spec.containers[0].image: container "app" image "loom:latest"`)

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.c.LoomguardCAPEM()) {
		t.Fatal("loomguard's serving CA is not PEM")
	}
	admin := s.c.RESTConfig()
	var adminCert tls.Certificate
	adminCert, err = tls.X509KeyPair(admin.CertData, admin.KeyData)
	if err != nil {
		t.Fatalf("loading the admin client certificate: %v", err)
	}
	review := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1"}}`)
	for name, certs := range map[string][]tls.Certificate{
		"no certificate":             nil,
		"another CA's (the admin's)": {adminCert},
	} {
		t.Run(name, func(t *testing.T) {
			client := &http.Client{
				Timeout: 5 * time.Second,
				Transport: &http.Transport{TLSClientConfig: &tls.Config{
					RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12, Certificates: certs,
				}},
			}
			defer client.CloseIdleConnections()
			resp, err := client.Post(s.c.LoomguardURL()+"/validate", "application/json", bytes.NewReader(review))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("loomguard answered %s; want the TLS handshake refused", resp.Status)
			}
			// Go's server sends "certificate required" (TLS 1.3) or "bad certificate".
			if msg := err.Error(); !strings.Contains(msg, "tls: certificate required") && !strings.Contains(msg, "tls: bad certificate") &&
				!strings.Contains(msg, "tls: unknown certificate authority") {
				t.Fatalf("want a TLS alert, got %v", err)
			}
		})
	}
}
