package certs

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// Defaults of Options, shared with serve's flags and checked against the manifests by
// test/deploy.
const (
	DefaultNamespace                = "loomguard-system"
	DefaultSecretName               = "loomguard-tls"
	DefaultServiceName              = "loomguard"
	DefaultWebhookConfigurationName = "loomguard"
	DefaultValidity                 = 365 * 24 * time.Hour
	DefaultCAValidity               = 10 * 365 * 24 * time.Hour
	DefaultCertName                 = "tls.crt"
	DefaultKeyName                  = "tls.key"
	minValidity                     = 10 * time.Second
	defaultResync                   = 10 * time.Minute
	defaultRetry                    = time.Second
	maxRetry                        = 30 * time.Second
	defaultBootstrapTimeout         = 2 * time.Minute
	fieldManager                    = "loomguard"
	minCAValidityFactor             = 3 // the CA lives at least this many serving certificates
)

// Options configure self-managed certificates.
type Options struct {
	// Client reaches the API server.
	Client kubernetes.Interface
	// Namespace holds the Secret and the Service.
	Namespace string
	// SecretName is the Secret holding the CA and the serving certificate. It must exist:
	// the manifests ship it empty.
	SecretName string
	// ServiceName is the webhook Service: the certificate is valid for
	// <service>.<namespace>.svc and <service>.<namespace>.svc.cluster.local.
	ServiceName string
	// ExtraNames are more DNS names or IP addresses for the certificate.
	ExtraNames []string
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration are the webhook
	// configurations whose every webhook gets the caBundle. Empty skips one.
	MutatingWebhookConfiguration, ValidatingWebhookConfiguration string
	// CertDir receives CertName and KeyName, the serving certificate and key.
	CertDir, CertName, KeyName string
	// Validity is the serving certificate's lifetime; RenewBefore is how much of it is left
	// when it is renewed (Validity/3 when zero). CAValidity is the CA's lifetime; it must be
	// at least three times Validity.
	Validity, RenewBefore, CAValidity time.Duration
	// Logger logs every issue, rotation and injection.
	Logger logr.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Resync is how often the rotator checks everything even when nothing changed
	// (10 minutes when zero).
	Resync time.Duration
}

// setDefaults fills the zero fields.
func (o *Options) setDefaults() {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.SecretName == "" {
		o.SecretName = DefaultSecretName
	}
	if o.ServiceName == "" {
		o.ServiceName = DefaultServiceName
	}
	if o.CertName == "" {
		o.CertName = DefaultCertName
	}
	if o.KeyName == "" {
		o.KeyName = DefaultKeyName
	}
	if o.Validity == 0 {
		o.Validity = DefaultValidity
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = o.Validity / 3
	}
	if o.CAValidity == 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Resync == 0 {
		o.Resync = defaultResync
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
}

// validate checks the options and returns the certificate policy they describe.
func (o *Options) validate() (policy, error) {
	var errs []error
	if o.Client == nil {
		errs = append(errs, errors.New("no cluster client: self-managed certificates need cluster access (--kubeconfig or in-cluster config)"))
	}
	if o.CertDir == "" {
		errs = append(errs, errors.New("no certificate directory"))
	}
	for _, n := range []struct {
		what, value string
		check       func(string) []string
	}{
		{"namespace", o.Namespace, validation.IsDNS1123Label},
		{"service", o.ServiceName, validation.IsDNS1123Label},
		{"secret", o.SecretName, validation.IsDNS1123Subdomain},
	} {
		if msgs := n.check(n.value); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("invalid %s name %q: %s", n.what, n.value, msgs[0]))
		}
	}
	if o.Validity < minValidity {
		errs = append(errs, fmt.Errorf("certificate validity %s is shorter than %s", o.Validity, minValidity))
	}
	if o.RenewBefore <= 0 || o.RenewBefore >= o.Validity {
		errs = append(errs, fmt.Errorf("renew-before %s must be positive and shorter than the validity %s", o.RenewBefore, o.Validity))
	}
	if o.CAValidity < minCAValidityFactor*o.Validity {
		errs = append(errs, fmt.Errorf("CA validity %s must be at least %d times the certificate validity %s", o.CAValidity, minCAValidityFactor, o.Validity))
	}
	p := policy{
		dnsNames:    []string{o.ServiceName + "." + o.Namespace + ".svc", o.ServiceName + "." + o.Namespace + ".svc.cluster.local"},
		validity:    o.Validity,
		renewBefore: o.RenewBefore,
		caValidity:  o.CAValidity,
	}
	for _, n := range o.ExtraNames {
		if ip := net.ParseIP(n); ip != nil {
			p.ips = append(p.ips, ip)
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("invalid certificate name %q: %s", n, msgs[0]))
			continue
		}
		p.dnsNames = append(p.dnsNames, n)
	}
	return p, errors.Join(errs...)
}
