package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

const testNS = "loomguard-system"

func emptySecret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: DefaultSecretName, Namespace: testNS}, Type: corev1.SecretTypeOpaque}
}

func webhookConfigs() []runtime.Object {
	path := "/validate"
	svc := &admissionregistrationv1.ServiceReference{Namespace: testNS, Name: DefaultServiceName, Path: &path}
	return []runtime.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: DefaultWebhookConfigurationName},
			Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "mutate.loomguard.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: svc}}},
		},
		&admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: DefaultWebhookConfigurationName},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{
				{Name: "validate.loomguard.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: svc}},
				{Name: "validate2.loomguard.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: svc}},
			},
		},
	}
}

func newTestManager(t *testing.T, client *fake.Clientset, now func() time.Time) (*Manager, string) {
	t.Helper()
	dir := t.TempDir()
	m, err := New(Options{
		Client:                         client,
		Namespace:                      testNS,
		ExtraNames:                     []string{"127.0.0.1"},
		MutatingWebhookConfiguration:   DefaultWebhookConfigurationName,
		ValidatingWebhookConfiguration: DefaultWebhookConfigurationName,
		CertDir:                        dir,
		Validity:                       time.Hour,
		CAValidity:                     10 * time.Hour,
		Now:                            now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

func getSecret(t *testing.T, client *fake.Clientset) *corev1.Secret {
	t.Helper()
	s, err := client.CoreV1().Secrets(testNS).Get(context.Background(), DefaultSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkFiles asserts that dir holds the Secret's serving certificate and that it verifies
// against the Secret's CA for the Service's name.
func checkFiles(t *testing.T, dir string, secret *corev1.Secret) {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(dir, DefaultCertName))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, DefaultKeyName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certPEM, secret.Data[CertKey]) || !bytes.Equal(keyPEM, secret.Data[KeyKey]) {
		t.Fatal("the files differ from the secret's tls.crt and tls.key")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(secret.Data[CACertKey])
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: "loomguard.loomguard-system.svc", Roots: roots}); err != nil {
		t.Fatalf("serving certificate does not verify: %v", err)
	}
}

func countUpdates(client *fake.Clientset, resource string) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == "update" && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

func TestNewValidates(t *testing.T) {
	client := fake.NewClientset()
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no client", Options{CertDir: "/x"}, "no cluster client"},
		{"no dir", Options{Client: client}, "no certificate directory"},
		{"short validity", Options{Client: client, CertDir: "/x", Validity: time.Second}, "shorter than 10s"},
		{"renew before too long", Options{Client: client, CertDir: "/x", Validity: time.Hour, RenewBefore: 2 * time.Hour}, "renew-before 2h0m0s"},
		{"CA too short", Options{Client: client, CertDir: "/x", Validity: time.Hour, CAValidity: 2 * time.Hour}, "at least 3 times"},
		{"bad service", Options{Client: client, CertDir: "/x", ServiceName: "Bad_Name"}, `invalid service name "Bad_Name"`},
		{"bad extra name", Options{Client: client, CertDir: "/x", ExtraNames: []string{"not a name"}}, `invalid certificate name "not a name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestBootstrap(t *testing.T) {
	t.Run("missing secret fails at once", func(t *testing.T) {
		m, _ := newTestManager(t, fake.NewClientset(), nil)
		err := m.Bootstrap(context.Background())
		if err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "apply them") {
			t.Fatalf("Bootstrap: %v", err)
		}
	})
	t.Run("empty secret: issues and writes", func(t *testing.T) {
		client := fake.NewClientset(emptySecret())
		m, dir := newTestManager(t, client, nil)
		if err := m.Bootstrap(context.Background()); err != nil {
			t.Fatal(err)
		}
		secret := getSecret(t, client)
		for _, k := range []string{CACertKey, CAKeyKey, CertKey, KeyKey} {
			if len(secret.Data[k]) == 0 {
				t.Errorf("secret lacks %s", k)
			}
		}
		checkFiles(t, dir, secret)
	})
	t.Run("usable secret: read, not written", func(t *testing.T) {
		client := fake.NewClientset(emptySecret())
		first, _ := newTestManager(t, client, nil)
		if err := first.Bootstrap(context.Background()); err != nil {
			t.Fatal(err)
		}
		client.ClearActions()
		second, dir := newTestManager(t, client, nil)
		if err := second.Bootstrap(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := countUpdates(client, "secrets"); n != 0 {
			t.Errorf("%d secret updates, want none", n)
		}
		checkFiles(t, dir, getSecret(t, client))
	})
	t.Run("conflict: the other replica's certificate wins", func(t *testing.T) {
		client := fake.NewClientset(emptySecret())
		// What another replica writes between our read and our write.
		theirs, _, err := plan(&state{}, testPolicy(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		written := emptySecret()
		written.Data = theirs.data(nil)
		var once sync.Once
		client.PrependReactor("update", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
			handled := false
			once.Do(func() {
				if err := client.Tracker().Update(corev1.SchemeGroupVersion.WithResource("secrets"), written, testNS); err != nil {
					t.Error(err)
				}
				handled = true
			})
			if handled {
				return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, DefaultSecretName, nil)
			}
			return false, nil, nil
		})
		m, dir := newTestManager(t, client, nil)
		if err := m.Bootstrap(context.Background()); err != nil {
			t.Fatal(err)
		}
		secret := getSecret(t, client)
		if !bytes.Equal(secret.Data[CertKey], theirs.leaf.certPEM) {
			t.Fatal("the other replica's certificate was overwritten")
		}
		checkFiles(t, dir, secret)
	})
}

func TestRotatorReconcile(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	client := fake.NewClientset(append(webhookConfigs(), emptySecret())...)
	m, _ := newTestManager(t, client, clock)
	r := m.Rotator()
	ctx := context.Background()

	next, err := r.reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secret := getSecret(t, client)
	if want := parseState(secret.Data).leaf.cert.NotAfter.Add(-20 * time.Minute); !next.Equal(want) {
		t.Errorf("next event %s, want the renewal time %s", next, want)
	}
	bundle := secret.Data[CACertKey]
	mut, _ := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, DefaultWebhookConfigurationName, metav1.GetOptions{})
	val, _ := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, DefaultWebhookConfigurationName, metav1.GetOptions{})
	var got [][]byte
	for _, w := range mut.Webhooks {
		got = append(got, w.ClientConfig.CABundle)
	}
	for _, w := range val.Webhooks {
		got = append(got, w.ClientConfig.CABundle)
	}
	for i, b := range got {
		if !bytes.Equal(b, bundle) {
			t.Errorf("webhook %d: caBundle is not the secret's CA", i)
		}
	}

	// Nothing due: no write at all.
	client.ClearActions()
	if _, err := r.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, res := range []string{"secrets", "mutatingwebhookconfigurations", "validatingwebhookconfigurations"} {
		if n := countUpdates(client, res); n != 0 {
			t.Errorf("%d updates of %s when nothing was due", n, res)
		}
	}

	// Renewal due: a new serving certificate from the same CA; the caBundle stays.
	now = now.Add(45 * time.Minute)
	if _, err := r.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := getSecret(t, client)
	if bytes.Equal(renewed.Data[CertKey], secret.Data[CertKey]) {
		t.Error("the serving certificate was not renewed")
	}
	if !bytes.Equal(renewed.Data[CACertKey], bundle) {
		t.Error("the CA changed on a renewal")
	}
	if n := countUpdates(client, "validatingwebhookconfigurations"); n != 0 {
		t.Errorf("caBundle rewritten %d times on a renewal", n)
	}
}

func TestRotatorAndSyncerRun(t *testing.T) {
	client := fake.NewClientset(append(webhookConfigs(), emptySecret())...)
	m, dir := newTestManager(t, client, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range []interface{ Start(context.Context) error }{m.Rotator(), m.Syncer()} {
		wg.Go(func() {
			if err := r.Start(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		secret := getSecret(t, client)
		data, _ := os.ReadFile(filepath.Join(dir, DefaultCertName))
		if len(secret.Data[CertKey]) > 0 && bytes.Equal(data, secret.Data[CertKey]) {
			checkFiles(t, dir, secret)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the syncer did not write the rotator's certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if !m.Rotator().NeedLeaderElection() || m.Syncer().NeedLeaderElection() {
		t.Error("the rotator must need leader election and the syncer must not")
	}
}

// TestWriteFilesSwapsAtomically: the files are symlinks through ..data, replaced in one
// rename, old generations are removed, and controller-runtime's certificate watcher (what
// the webhook server uses) picks the new pair up.
func TestWriteFilesSwapsAtomically(t *testing.T) {
	m, dir := newTestManager(t, fake.NewClientset(), nil)
	first, _, err := plan(&state{}, m.p, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.writeFiles(first.leaf); err != nil {
		t.Fatal(err)
	}
	cw, err := certwatcher.New(filepath.Join(dir, DefaultCertName), filepath.Join(dir, DefaultKeyName))
	if err != nil {
		t.Fatal(err)
	}
	cw = cw.WithWatchInterval(time.Hour) // only the file watch may see the change
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cw.Start(ctx) }()

	second, _, err := plan(&state{ca: first.ca}, m.p, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.writeFiles(second.leaf); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{DefaultCertName, DefaultKeyName} {
		if target, err := os.Readlink(filepath.Join(dir, name)); err != nil || target != filepath.Join(dataDir, name) {
			t.Errorf("%s: link %q, %v; want a symlink to %s/%s", name, target, err, dataDir, name)
		}
	}
	gens, _ := filepath.Glob(filepath.Join(dir, dataDir+"-*"))
	if len(gens) != 1 {
		t.Errorf("generations %v, want only the current one", gens)
	}
	secret := emptySecret()
	secret.Data = second.data(nil)
	checkFiles(t, dir, secret)

	// The watcher adds its file watches asynchronously after Start, so a swap can land
	// before it watches: swap in a fresh certificate each second until one is seen. Only
	// the file watch can see them (the poll interval is an hour).
	want := second.leaf
	deadline := time.Now().Add(10 * time.Second)
	nextSwap := time.Now().Add(time.Second)
	for {
		c, err := cw.GetCertificate(nil)
		if err == nil && c.Leaf != nil && c.Leaf.SerialNumber.Cmp(want.cert.SerialNumber) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the certificate watcher did not load the new certificate")
		}
		if time.Now().After(nextSwap) {
			next, _, err := plan(&state{ca: first.ca}, m.p, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := m.writeFiles(next.leaf); err != nil {
				t.Fatal(err)
			}
			want, nextSwap = next.leaf, time.Now().Add(time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInjectRetriesConflicts: another writer of the webhook configurations (loomguard's
// match-condition syncer) updates them between the rotator's read and write; the rotator
// rereads and sets the caBundle on the other writer's version, keeping its change.
func TestInjectRetriesConflicts(t *testing.T) {
	client := fake.NewClientset(append(webhookConfigs(), emptySecret())...)
	conflicts := map[string]int{}
	other := []admissionregistrationv1.MatchCondition{{Name: "other-writer", Expression: "true"}}
	for _, res := range []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"} {
		client.PrependReactor("update", res, func(a k8stesting.Action) (bool, runtime.Object, error) {
			if conflicts[res] > 0 {
				return false, nil, nil
			}
			conflicts[res]++
			name := a.(k8stesting.UpdateAction).GetObject().(metav1.Object).GetName()
			cur, err := client.Tracker().Get(a.GetResource(), "", name)
			if err != nil {
				return true, nil, err
			}
			switch o := cur.DeepCopyObject().(type) {
			case *admissionregistrationv1.MutatingWebhookConfiguration:
				o.Webhooks[0].MatchConditions = other
				err = client.Tracker().Update(a.GetResource(), o, "")
			case *admissionregistrationv1.ValidatingWebhookConfiguration:
				o.Webhooks[0].MatchConditions = other
				err = client.Tracker().Update(a.GetResource(), o, "")
			}
			if err != nil {
				return true, nil, err
			}
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: admissionregistrationv1.GroupName, Resource: res}, name, errors.New("the object has been modified"))
		})
	}
	m, _ := newTestManager(t, client, nil)
	ctx := context.Background()
	if _, err := m.Rotator().reconcile(ctx); err != nil {
		t.Fatalf("reconcile() = %v, want the conflicts retried", err)
	}
	bundle := getSecret(t, client).Data[CACertKey]
	mut, _ := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, DefaultWebhookConfigurationName, metav1.GetOptions{})
	val, _ := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, DefaultWebhookConfigurationName, metav1.GetOptions{})
	if conflicts["mutatingwebhookconfigurations"] != 1 || conflicts["validatingwebhookconfigurations"] != 1 {
		t.Fatalf("conflicts %v, want one per configuration", conflicts)
	}
	for _, w := range mut.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
			t.Errorf("mutating webhook %s: caBundle not injected after the conflict", w.Name)
		}
	}
	for _, w := range val.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
			t.Errorf("validating webhook %s: caBundle not injected after the conflict", w.Name)
		}
	}
	if len(mut.Webhooks[0].MatchConditions) != 1 || len(val.Webhooks[0].MatchConditions) != 1 {
		t.Errorf("the other writer's matchConditions were undone: %v, %v", mut.Webhooks[0].MatchConditions, val.Webhooks[0].MatchConditions)
	}
}
