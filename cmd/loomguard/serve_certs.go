//go:build !loomguard_cli

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/loomguard/loomguard/certs"
)

// Certificate modes of serve.
const (
	// certModeFiles: the certificate is a file pair in --cert-dir that someone else
	// provides (cert-manager through a mounted Secret, or you).
	certModeFiles = "files"
	// certModeSelfManaged: loomguard issues, rotates and distributes its certificate.
	certModeSelfManaged = "self-managed"
)

// podNamespaceEnv is set from the downward API in the manifests.
const podNamespaceEnv = "POD_NAMESPACE"

// certFlags are serve's --cert-* flags (beyond --cert-dir).
type certFlags struct {
	mode        string
	secret      string
	namespace   string
	service     string
	names       []string
	validity    time.Duration
	renewBefore time.Duration
	caValidity  time.Duration
}

// addCertFlags registers the certificate flags on serve's flag set.
func addCertFlags(fs *pflag.FlagSet, f *certFlags) {
	fs.StringVar(&f.mode, "cert-mode", certModeFiles, `where the serving certificate comes from: "files" (tls.crt and tls.key in --cert-dir, provided by cert-manager or you) or "self-managed" (loomguard issues and rotates it in --cert-secret and injects its CA into the webhook configurations)`)
	fs.StringVar(&f.secret, "cert-secret", certs.DefaultSecretName, "self-managed: the Secret holding the CA and the serving certificate (it must exist)")
	fs.StringVar(&f.namespace, "cert-namespace", "", "self-managed: namespace of --cert-secret and --cert-service (default: $"+podNamespaceEnv+", else "+certs.DefaultNamespace+")")
	fs.StringVar(&f.service, "cert-service", certs.DefaultServiceName, "self-managed: the webhook Service; the certificate is valid for <service>.<namespace>.svc and <service>.<namespace>.svc.cluster.local")
	fs.StringSliceVar(&f.names, "cert-dns-names", nil, "self-managed: more DNS names or IP addresses for the certificate (comma-separated)")
	fs.DurationVar(&f.validity, "cert-validity", certs.DefaultValidity, "self-managed: lifetime of the serving certificate")
	fs.DurationVar(&f.renewBefore, "cert-refresh", 0, "self-managed: renew the serving certificate when this much of its validity is left (default: a third of --cert-validity)")
	fs.DurationVar(&f.caValidity, "cert-ca-validity", certs.DefaultCAValidity, "self-managed: lifetime of the CA; at least 3 times --cert-validity (its successor is published in the caBundle a certificate's lifetime before it takes over)")
}

// validate checks what can be checked without a cluster.
func (f *certFlags) validate() error {
	switch f.mode {
	case certModeFiles, certModeSelfManaged:
		return nil
	}
	return fmt.Errorf("unsupported --cert-mode %q (want %s or %s)", f.mode, certModeFiles, certModeSelfManaged)
}

// setupCertificates prepares the serving certificate before the webhook server loads it.
// In self-managed mode it bootstraps the certificate into certDir and returns the
// rotator (leader only) and the syncer (every replica) to run with the server; in files
// mode there is nothing to do.
func setupCertificates(ctx context.Context, f *certFlags, webhooks webhookConfigurationFlags, restConfig *rest.Config, certDir string, log logr.Logger) ([]manager.Runnable, error) {
	if f.mode != certModeSelfManaged {
		return nil, nil
	}
	if restConfig == nil {
		return nil, fmt.Errorf("--cert-mode=%s needs cluster access: no --kubeconfig, in-cluster config or KUBECONFIG found", certModeSelfManaged)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("creating the certificate client: %w", err)
	}
	namespace := f.namespace
	if namespace == "" {
		namespace = os.Getenv(podNamespaceEnv)
	}
	m, err := certs.New(certs.Options{
		Client:                         client,
		Namespace:                      namespace,
		SecretName:                     f.secret,
		ServiceName:                    f.service,
		ExtraNames:                     f.names,
		MutatingWebhookConfiguration:   webhooks.mutating,
		ValidatingWebhookConfiguration: webhooks.validating,
		CertDir:                        certDir,
		Validity:                       f.validity,
		RenewBefore:                    f.renewBefore,
		CAValidity:                     f.caValidity,
		Logger:                         log.WithName("certs"),
	})
	if err != nil {
		return nil, err
	}
	if err := m.Bootstrap(ctx); err != nil {
		return nil, err
	}
	return []manager.Runnable{m.Rotator(), m.Syncer()}, nil
}
