package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// Manager issues, rotates and distributes loomguard's serving certificate. Build it with
// New; call Bootstrap before the webhook server loads the certificate, then run Rotator
// (leader only) and Syncer (every replica) with the server.
type Manager struct {
	o   Options
	p   policy
	log logr.Logger

	// mu serializes writes of the certificate files.
	mu sync.Mutex
}

// New validates o and returns a Manager.
func New(o Options) (*Manager, error) {
	o.setDefaults()
	p, err := o.validate()
	if err != nil {
		return nil, fmt.Errorf("self-managed certificates: %w", err)
	}
	return &Manager{o: o, p: p, log: o.Logger}, nil
}

// DNSNames are the names the serving certificate is valid for.
func (m *Manager) DNSNames() []string { return append([]string(nil), m.p.dnsNames...) }

// Bootstrap makes sure the Secret holds a serving certificate that can be served now and
// writes it to the certificate directory. It issues one only when the Secret has none (a
// fresh install, or one that expired while loomguard was down), with an optimistic-
// concurrency update: of several replicas starting at once, one writes and the others read
// its certificate. It retries transient errors until ctx ends or two minutes pass; a
// missing Secret or a forbidden request fails at once.
func (m *Manager) Bootstrap(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, defaultBootstrapTimeout)
	defer cancel()
	retry := defaultRetry
	for {
		done, err := m.bootstrapOnce(ctx)
		if done {
			return err
		}
		m.log.Info("waiting to bootstrap the serving certificate", "secret", m.secretRef(), "error", err.Error(), "retryIn", retry)
		select {
		case <-ctx.Done():
			return fmt.Errorf("bootstrapping the serving certificate from secret %s: %w (last error: %w)", m.secretRef(), ctx.Err(), err)
		case <-time.After(retry):
		}
		retry = min(2*retry, maxRetry)
	}
}

// bootstrapOnce makes one attempt; done reports whether to stop (with err as the result).
func (m *Manager) bootstrapOnce(ctx context.Context) (done bool, err error) {
	secrets := m.o.Client.CoreV1().Secrets(m.o.Namespace)
	secret, err := secrets.Get(ctx, m.o.SecretName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return true, fmt.Errorf("secret %s not found: it is part of loomguard's manifests (overlays/self-managed), which loomguard does not create; apply them", m.secretRef())
	case apierrors.IsForbidden(err):
		return true, fmt.Errorf("reading secret %s: %w", m.secretRef(), err)
	case err != nil:
		return false, fmt.Errorf("reading secret %s: %w", m.secretRef(), err)
	}
	now := m.o.Now()
	st := parseState(secret.Data)
	if st.serves(m.p, now) {
		if err := m.writeFiles(st.leaf); err != nil {
			return true, err
		}
		m.log.Info("serving certificate loaded from the secret", "secret", m.secretRef(), "notAfter", st.leaf.cert.NotAfter)
		return true, nil
	}
	next, ch, err := plan(st, m.p, now)
	if err != nil {
		return true, err
	}
	secret.Data = next.data(secret.Data)
	if _, err := secrets.Update(ctx, secret, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		if apierrors.IsConflict(err) {
			// Another replica wrote first: read its certificate.
			return m.bootstrapOnce(ctx)
		}
		if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
			return true, fmt.Errorf("writing secret %s: %w", m.secretRef(), err)
		}
		return false, fmt.Errorf("writing secret %s: %w", m.secretRef(), err)
	}
	m.log.Info("bootstrapped the serving certificate", "secret", m.secretRef(), "change", ch.String(), "notAfter", next.leaf.cert.NotAfter)
	if err := m.writeFiles(next.leaf); err != nil {
		return true, err
	}
	return true, nil
}

func (m *Manager) secretRef() string { return m.o.Namespace + "/" + m.o.SecretName }

// Rotator is the leader's part: renewal, CA rotation and caBundle injection. It is a
// controller-runtime Runnable that needs leader election.
func (m *Manager) Rotator() *Rotator { return &Rotator{m: m} }

// Syncer is every replica's part: it copies the Secret's serving certificate into the
// certificate directory. It is a controller-runtime Runnable that runs on every replica.
func (m *Manager) Syncer() *Syncer { return &Syncer{m: m} }

// Rotator renews the serving certificate and the CA and keeps the webhook configurations'
// caBundle current.
type Rotator struct{ m *Manager }

// NeedLeaderElection is true: only the leader writes.
func (r *Rotator) NeedLeaderElection() bool { return true }

// Start reconciles until ctx ends: at start, whenever the Secret or a webhook
// configuration changes, when the next renewal is due and at least every Resync.
func (r *Rotator) Start(ctx context.Context) error {
	m := r.m
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	informers := []cache.SharedIndexInformer{m.secretInformer()}
	if n := m.o.MutatingWebhookConfiguration; n != "" {
		informers = append(informers, m.mutatingInformer(n))
	}
	if n := m.o.ValidatingWebhookConfiguration; n != "" {
		informers = append(informers, m.validatingInformer(n))
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	for _, inf := range informers {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("watching certificate objects: %w", err)
		}
		go inf.RunWithContext(ctx)
	}
	m.log.Info("certificate rotator started", "secret", m.secretRef(),
		"mutatingWebhookConfiguration", m.o.MutatingWebhookConfiguration,
		"validatingWebhookConfiguration", m.o.ValidatingWebhookConfiguration)

	timer := time.NewTimer(0)
	defer timer.Stop()
	retry := defaultRetry
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-timer.C:
		}
		next, err := r.reconcile(ctx)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			m.log.Error(err, "certificate rotation failed; retrying", "retryIn", retry)
			wait, retry = retry, min(2*retry, maxRetry)
		} else {
			retry = defaultRetry
			wait = min(max(next.Sub(m.o.Now()), 50*time.Millisecond), m.o.Resync)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// reconcile renews what is due, injects the caBundle and returns when it is next due.
func (r *Rotator) reconcile(ctx context.Context) (time.Time, error) {
	m := r.m
	secrets := m.o.Client.CoreV1().Secrets(m.o.Namespace)
	secret, err := secrets.Get(ctx, m.o.SecretName, metav1.GetOptions{})
	if err != nil {
		return time.Time{}, fmt.Errorf("reading secret %s: %w", m.secretRef(), err)
	}
	now := m.o.Now()
	st, ch, err := plan(parseState(secret.Data), m.p, now)
	if err != nil {
		return time.Time{}, err
	}
	if ch.any() {
		secret.Data = st.data(secret.Data)
		if _, err := secrets.Update(ctx, secret, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
			return time.Time{}, fmt.Errorf("writing secret %s: %w", m.secretRef(), err)
		}
		m.log.Info("rotated certificates", "secret", m.secretRef(), "change", ch.String(),
			"notAfter", st.leaf.cert.NotAfter, "caNotAfter", st.ca.cert.NotAfter)
	}
	bundle := st.bundle(now)
	var errs []error
	if n := m.o.MutatingWebhookConfiguration; n != "" {
		errs = append(errs, m.injectMutating(ctx, n, bundle))
	}
	if n := m.o.ValidatingWebhookConfiguration; n != "" {
		errs = append(errs, m.injectValidating(ctx, n, bundle))
	}
	return st.nextEvent(m.p), errors.Join(errs...)
}

func (m *Manager) injectMutating(ctx context.Context, name string, bundle []byte) error {
	api := m.o.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	return inject(ctx, m, "MutatingWebhookConfiguration", "mutatingWebhookConfiguration", name, bundle, api.Get, api.Update,
		func(cfg *admissionregistrationv1.MutatingWebhookConfiguration) (int, func(int) *admissionregistrationv1.WebhookClientConfig) {
			return len(cfg.Webhooks), func(i int) *admissionregistrationv1.WebhookClientConfig { return &cfg.Webhooks[i].ClientConfig }
		})
}

func (m *Manager) injectValidating(ctx context.Context, name string, bundle []byte) error {
	api := m.o.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	return inject(ctx, m, "ValidatingWebhookConfiguration", "validatingWebhookConfiguration", name, bundle, api.Get, api.Update,
		func(cfg *admissionregistrationv1.ValidatingWebhookConfiguration) (int, func(int) *admissionregistrationv1.WebhookClientConfig) {
			return len(cfg.Webhooks), func(i int) *admissionregistrationv1.WebhookClientConfig { return &cfg.Webhooks[i].ClientConfig }
		})
}

// inject sets bundle as the caBundle of every webhook of the configuration name, of the
// given kind (logged under key). Other writers of the same object (loomguard's
// match-condition syncer, an apply) win a conflict: it rereads and sets the caBundle on their
// version.
func inject[T any](ctx context.Context, m *Manager, kind, key, name string, bundle []byte,
	get func(context.Context, string, metav1.GetOptions) (T, error),
	update func(context.Context, T, metav1.UpdateOptions) (T, error),
	clientConfigs func(T) (int, func(int) *admissionregistrationv1.WebhookClientConfig),
) error {
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cfg, err := get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if n, cc := clientConfigs(cfg); !setBundle(n, cc, bundle) {
			return nil
		}
		_, err = update(ctx, cfg, metav1.UpdateOptions{FieldManager: fieldManager})
		changed = err == nil
		return err
	})
	switch {
	case apierrors.IsNotFound(err):
		m.log.Info(kind+" not found; its caBundle is set when it is created", "name", name)
		return nil
	case err != nil:
		return fmt.Errorf("injecting the caBundle into %s %s: %w", kind, name, err)
	case changed:
		m.log.Info("injected the caBundle", key, name)
	}
	return nil
}

// setBundle sets the caBundle of n client configs and reports whether any changed.
func setBundle(n int, clientConfig func(int) *admissionregistrationv1.WebhookClientConfig, bundle []byte) bool {
	changed := false
	for i := range n {
		cc := clientConfig(i)
		if !bytes.Equal(cc.CABundle, bundle) {
			cc.CABundle = bundle
			changed = true
		}
	}
	return changed
}

// Syncer writes the Secret's serving certificate to the certificate directory.
type Syncer struct{ m *Manager }

// NeedLeaderElection is false: every replica serves, so every replica needs the files.
func (s *Syncer) NeedLeaderElection() bool { return false }

// Start watches the Secret until ctx ends and writes tls.crt and tls.key whenever they
// change.
func (s *Syncer) Start(ctx context.Context) error {
	m := s.m
	inf := m.secretInformer()
	sync := func(obj any) {
		secret, ok := obj.(*corev1.Secret)
		if !ok {
			return
		}
		st := parseState(secret.Data)
		if st.leaf == nil {
			m.log.Info("secret holds no serving certificate yet", "secret", m.secretRef())
			return
		}
		if err := m.writeFiles(st.leaf); err != nil {
			m.log.Error(err, "writing the serving certificate")
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    sync,
		UpdateFunc: func(_, obj any) { sync(obj) },
	}); err != nil {
		return fmt.Errorf("watching secret %s: %w", m.secretRef(), err)
	}
	inf.RunWithContext(ctx)
	return nil
}

// dataDir is the symlink in the certificate directory that points at the current
// generation of the files; tls.crt and tls.key are symlinks through it. Swapping it
// replaces the certificate and the key in one atomic rename, so that the certificate
// watcher never reads a certificate with the other generation's key (the kubelet updates
// Secret volumes the same way).
const dataDir = "..data"

// writeFiles writes the certificate and key into the certificate directory unless they
// are there already.
func (m *Manager) writeFiles(l *leaf) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir := m.o.CertDir
	oldCert, _ := os.ReadFile(filepath.Join(dir, m.o.CertName))
	oldKey, _ := os.ReadFile(filepath.Join(dir, m.o.KeyName))
	if bytes.Equal(oldCert, l.certPEM) && bytes.Equal(oldKey, l.keyPEM) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating certificate directory: %w", err)
	}
	gen, err := os.MkdirTemp(dir, dataDir+"-")
	if err != nil {
		return fmt.Errorf("writing the serving certificate: %w", err)
	}
	for name, data := range map[string][]byte{m.o.CertName: l.certPEM, m.o.KeyName: l.keyPEM} {
		if err := os.WriteFile(filepath.Join(gen, name), data, 0o600); err != nil {
			os.RemoveAll(gen)
			return fmt.Errorf("writing the serving certificate: %w", err)
		}
	}
	if err := swapSymlink(filepath.Join(dir, dataDir), filepath.Base(gen)); err != nil {
		os.RemoveAll(gen)
		return err
	}
	for _, name := range []string{m.o.CertName, m.o.KeyName} {
		target := filepath.Join(dataDir, name)
		if cur, err := os.Readlink(filepath.Join(dir, name)); err == nil && cur == target {
			continue
		}
		if err := swapSymlink(filepath.Join(dir, name), target); err != nil {
			return err
		}
	}
	old, _ := filepath.Glob(filepath.Join(dir, dataDir+"-*"))
	for _, o := range old {
		if o != gen {
			os.RemoveAll(o)
		}
	}
	m.log.Info("wrote the serving certificate", "dir", dir, "notAfter", l.cert.NotAfter, "serial", l.cert.SerialNumber.Text(16))
	return nil
}

// swapSymlink points path at target, replacing whatever path was in one rename.
func swapSymlink(path, target string) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("linking %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("linking %s: %w", path, err)
	}
	return nil
}

// The informers each watch one object, by a metadata.name field selector: RBAC then
// authorizes list and watch against resourceNames.

func (m *Manager) secretInformer() cache.SharedIndexInformer {
	return namedInformer(m, &corev1.Secret{}, m.o.SecretName, m.o.Client.CoreV1().Secrets(m.o.Namespace))
}

func (m *Manager) mutatingInformer(name string) cache.SharedIndexInformer {
	return namedInformer(m, &admissionregistrationv1.MutatingWebhookConfiguration{}, name,
		m.o.Client.AdmissionregistrationV1().MutatingWebhookConfigurations())
}

func (m *Manager) validatingInformer(name string) cache.SharedIndexInformer {
	return namedInformer(m, &admissionregistrationv1.ValidatingWebhookConfiguration{}, name,
		m.o.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations())
}

// listWatcher is the List and Watch of a typed client-go resource interface.
type listWatcher[L runtime.Object] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// namedInformer watches the one object called name through api.
func namedInformer[L runtime.Object](m *Manager, example runtime.Object, name string, api listWatcher[L]) cache.SharedIndexInformer {
	sel := nameSelector(name)
	return m.newInformer(example,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return api.List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return api.Watch(ctx, o)
		})
}

func nameSelector(name string) string {
	return fields.OneTermEqualSelector("metadata.name", name).String()
}

// newInformer builds an informer over one object. The ListerWatcher tells the reflector
// whether the client can stream the initial list (the fake clientset of tests cannot).
func (m *Manager) newInformer(example runtime.Object, list cache.ListWithContextFunc, watchFn cache.WatchFuncWithContext) cache.SharedIndexInformer {
	lw := &cache.ListWatch{ListWithContextFunc: list, WatchFuncWithContext: watchFn}
	return cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, m.o.Client), example, m.o.Resync, cache.Indexers{})
}
