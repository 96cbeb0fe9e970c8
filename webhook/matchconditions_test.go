package webhook

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/loomguard/loomguard/policies"
)

const testConfigurationName = "loomguard"

var (
	testCABundle = []byte("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n")
	stranger     = admissionregistrationv1.MatchCondition{Name: "someone-elses", Expression: "true"}
)

// liveConfigurations are the two configurations as a cluster holds them: loomguard's
// webhook next to someone else's, a caBundle, and conditions on the other webhook.
func liveConfigurations() []runtime.Object {
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: testCABundle}
	return []runtime.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: testConfigurationName, ResourceVersion: "1"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{
				{Name: "other.example.com", ClientConfig: cc, MatchConditions: []admissionregistrationv1.MatchCondition{stranger}},
				{Name: MutatingWebhookName, ClientConfig: cc},
			},
		},
		&admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: testConfigurationName, ResourceVersion: "1"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{
				{Name: ValidatingWebhookName, ClientConfig: cc},
				{Name: "other.example.com", ClientConfig: cc, MatchConditions: []admissionregistrationv1.MatchCondition{stranger}},
			},
		},
	}
}

// liveConditions returns the matchConditions of loomguard's webhooks and checks that
// nothing else in the configurations changed.
func liveConditions(t testing.TB, client *fake.Clientset) (mutating, validating []admissionregistrationv1.MatchCondition) {
	t.Helper()
	ctx := context.Background()
	m, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, testConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, testConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range m.Webhooks {
		checkUntouched(t, "mutating "+w.Name, w.Name, w.ClientConfig, w.MatchConditions)
		if w.Name == MutatingWebhookName {
			mutating = w.MatchConditions
		}
	}
	for _, w := range v.Webhooks {
		checkUntouched(t, "validating "+w.Name, w.Name, w.ClientConfig, w.MatchConditions)
		if w.Name == ValidatingWebhookName {
			validating = w.MatchConditions
		}
	}
	return mutating, validating
}

func checkUntouched(t testing.TB, what, name string, cc admissionregistrationv1.WebhookClientConfig, conds []admissionregistrationv1.MatchCondition) {
	t.Helper()
	if string(cc.CABundle) != string(testCABundle) {
		t.Errorf("%s: caBundle changed to %q", what, cc.CABundle)
	}
	if name == "other.example.com" && !slices.Equal(conds, []admissionregistrationv1.MatchCondition{stranger}) {
		t.Errorf("%s: someone else's matchConditions changed to %v", what, conds)
	}
}

func countConfigUpdates(client *fake.Clientset) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == "update" && a.GetResource().Group == admissionregistrationv1.GroupName {
			n++
		}
	}
	return n
}

// testEngines are two engines whose configs have different matchConditions.
func testEngines(t testing.TB) (first, second *policies.Engine) {
	t.Helper()
	compile := func(config string) *policies.Engine {
		e, err := CompileConfig("test", []byte(config), testClock)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	first = compile("")
	second = compile("namespaces:\n  - names: [legacy-*]\n    action: warn\n")
	if slices.Equal(want(first), want(second)) {
		t.Fatalf("the test configs have the same matchConditions %v: pick configs that differ", want(first))
	}
	return first, second
}

// want and wantMut are what the syncer must write for e on the validating and the mutating
// webhook.
func want(e *policies.Engine) []admissionregistrationv1.MatchCondition {
	return WantMatchConditions(ValidatingWebhookName, e.Config())
}

func wantMut(e *policies.Engine) []admissionregistrationv1.MatchCondition {
	return WantMatchConditions(MutatingWebhookName, e.Config())
}

func newTestSyncer(t testing.TB, client *fake.Clientset, engine *atomic.Pointer[policies.Engine], changed <-chan struct{}) (*MatchConditionsSyncer, *Metrics) {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry(), engine.Load)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewMatchConditionsSyncer(MatchConditionsOptions{
		Client:                         client,
		MutatingWebhookConfiguration:   testConfigurationName,
		ValidatingWebhookConfiguration: testConfigurationName,
		Engine:                         engine.Load,
		Changed:                        changed,
		Metrics:                        m,
		Logger:                         quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

func TestNewMatchConditionsSyncerValidates(t *testing.T) {
	client := fake.NewClientset()
	engine := func() *policies.Engine { return nil }
	for name, o := range map[string]MatchConditionsOptions{
		"no client":        {Engine: engine, MutatingWebhookConfiguration: "x"},
		"no engine":        {Client: client, MutatingWebhookConfiguration: "x"},
		"no configuration": {Client: client, Engine: engine},
	} {
		if _, err := NewMatchConditionsSyncer(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestMatchConditionsSync: Sync writes the engine's conditions into loomguard's webhooks
// only, writes nothing when they are in place, follows a new engine, and counts.
func TestMatchConditionsSync(t *testing.T) {
	first, second := testEngines(t)
	client := fake.NewClientset(liveConfigurations()...)
	var engine atomic.Pointer[policies.Engine]
	engine.Store(first)
	s, m := newTestSyncer(t, client, &engine, nil)
	ctx := context.Background()

	// A config the generator has no conditions for: every object is sent.
	none, err := CompileConfig("test", []byte(`exceptions:
  - name: everything
    policies: [image-tag]
    namespace: "*"
    workload: "*"
    owner: e2e@loomguard.io
    reason: covers every namespace
    expires: 2030-01-01T00:00:00Z
`), testClock)
	if err != nil {
		t.Fatal(err)
	}
	if len(want(none)) != 0 {
		t.Fatalf("the generator has conditions %v for an exception in every namespace; pick a config without", want(none))
	}
	for step, e := range []*policies.Engine{first, first, second, none, first} {
		engine.Store(e)
		before := countConfigUpdates(client)
		if err := s.Sync(ctx); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		mut, val := liveConditions(t, client)
		if !slices.Equal(mut, wantMut(e)) || !slices.Equal(val, want(e)) {
			t.Errorf("step %d: live conditions mutating %v validating %v, want %v and %v", step, mut, val, wantMut(e), want(e))
		}
		wantUpdates := 2
		if step == 1 {
			wantUpdates = 0 // in place already
		}
		if got := countConfigUpdates(client) - before; got != wantUpdates {
			t.Errorf("step %d: %d updates, want %d", step, got, wantUpdates)
		}
	}
	for _, hook := range []string{webhookMutate, webhookValidate} {
		if got := testutil.ToFloat64(m.matchConditionUpdates.WithLabelValues(hook, matchUpdateSuccess)); got != 4 {
			t.Errorf("%s: %v successful updates counted, want 4", hook, got)
		}
		if got := testutil.ToFloat64(m.matchConditions.WithLabelValues(hook)); got != float64(len(want(first))) {
			t.Errorf("%s: gauge %v, want %d", hook, got, len(want(first)))
		}
	}
}

// TestMatchConditionsSyncConflict: a conflicting write (the certificate rotator injecting
// the caBundle meanwhile) is reread and retried, keeping the other writer's change.
func TestMatchConditionsSyncConflict(t *testing.T) {
	first, _ := testEngines(t)
	client := fake.NewClientset(liveConfigurations()...)
	conflicts := 0
	client.PrependReactor("update", "validatingwebhookconfigurations", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			return false, nil, nil
		}
		conflicts++
		// Someone else's write lands first: a new caBundle.
		cfg := a.(k8stesting.UpdateAction).GetObject().(*admissionregistrationv1.ValidatingWebhookConfiguration)
		other, err := client.Tracker().Get(a.GetResource(), "", cfg.Name)
		if err != nil {
			return true, nil, err
		}
		o := other.(*admissionregistrationv1.ValidatingWebhookConfiguration).DeepCopy()
		for i := range o.Webhooks {
			o.Webhooks[i].ClientConfig.CABundle = append([]byte(nil), testCABundle...)
			o.Webhooks[i].ClientConfig.CABundle[0] = 'X'
		}
		if err := client.Tracker().Update(a.GetResource(), o, ""); err != nil {
			return true, nil, err
		}
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations"}, cfg.Name, fmt.Errorf("the object has been modified"))
	})
	var engine atomic.Pointer[policies.Engine]
	engine.Store(first)
	s, _ := newTestSyncer(t, client, &engine, nil)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if conflicts != 1 {
		t.Fatalf("%d conflicts, want 1", conflicts)
	}
	v, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), testConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range v.Webhooks {
		if w.ClientConfig.CABundle[0] != 'X' {
			t.Errorf("%s: the other writer's caBundle was undone", w.Name)
		}
		if w.Name == ValidatingWebhookName && !slices.Equal(w.MatchConditions, want(first)) {
			t.Errorf("conditions %v after the conflict, want %v", w.MatchConditions, want(first))
		}
	}
}

// TestMatchConditionsSyncRejected: conditions the API server refuses are replaced by none.
func TestMatchConditionsSyncRejected(t *testing.T) {
	first, _ := testEngines(t)
	if len(want(first)) == 0 {
		t.Fatal("the default config has no matchConditions: nothing to reject")
	}
	live := liveConfigurations()
	// Stale conditions of an earlier config, which must not stay.
	stale := []admissionregistrationv1.MatchCondition{{Name: "stale", Expression: "false"}}
	live[0].(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks[1].MatchConditions = stale
	client := fake.NewClientset(live...)
	client.PrependReactor("update", "mutatingwebhookconfigurations", func(a k8stesting.Action) (bool, runtime.Object, error) {
		cfg := a.(k8stesting.UpdateAction).GetObject().(*admissionregistrationv1.MutatingWebhookConfiguration)
		if len(cfg.Webhooks[1].MatchConditions) == 0 {
			return false, nil, nil
		}
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}, cfg.Name,
			field.ErrorList{field.Invalid(field.NewPath("webhooks").Index(1).Child("matchConditions").Index(0).Child("expression"), "…", "estimated cost exceeds budget")})
	})
	var engine atomic.Pointer[policies.Engine]
	engine.Store(first)
	s, m := newTestSyncer(t, client, &engine, nil)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	mut, val := liveConditions(t, client)
	if len(mut) != 0 {
		t.Errorf("mutating conditions %v after a rejection, want none", mut)
	}
	if !slices.Equal(val, want(first)) {
		t.Errorf("validating conditions %v, want %v", val, want(first))
	}
	if got := testutil.ToFloat64(m.matchConditionUpdates.WithLabelValues(webhookMutate, matchUpdateRejected)); got != 1 {
		t.Errorf("%v rejections counted, want 1", got)
	}
	if got := testutil.ToFloat64(m.matchConditions.WithLabelValues(webhookMutate)); got != 0 {
		t.Errorf("mutating gauge %v, want 0", got)
	}
}

// TestMatchConditionsSyncAbsent: a configuration that does not exist, or lacks loomguard's
// webhook, is no error to retry and is not written.
func TestMatchConditionsSyncAbsent(t *testing.T) {
	first, _ := testEngines(t)
	live := liveConfigurations()
	v := live[1].(*admissionregistrationv1.ValidatingWebhookConfiguration)
	v.Webhooks = v.Webhooks[1:] // only someone else's
	client := fake.NewClientset(v)
	var engine atomic.Pointer[policies.Engine]
	engine.Store(first)
	s, _ := newTestSyncer(t, client, &engine, nil)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatalf("Sync() = %v, want nil", err)
	}
	if n := countConfigUpdates(client); n != 0 {
		t.Errorf("%d updates, want 0", n)
	}
	// A real error is returned, wrapped with the object.
	client.PrependReactor("get", "validatingwebhookconfigurations", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("etcd is down")
	})
	err := s.Sync(context.Background())
	if err == nil || !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("Sync() = %v, want the API server's error", err)
	}
	if want := "setting the matchConditions of webhook " + ValidatingWebhookName + " in ValidatingWebhookConfiguration " + testConfigurationName; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// TestMatchConditionsSyncerRun: the running syncer sets the conditions at start, follows a
// config change it is told of, and repairs an external reset.
func TestMatchConditionsSyncerRun(t *testing.T) {
	first, second := testEngines(t)
	client := fake.NewClientset(liveConfigurations()...)
	var engine atomic.Pointer[policies.Engine]
	engine.Store(first)
	changed := make(chan struct{}, 1)
	s, _ := newTestSyncer(t, client, &engine, changed)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start() = %v", err)
		}
	}()
	in := func(e *policies.Engine) func() bool {
		return func() bool {
			mut, val := liveConditions(t, client)
			return slices.Equal(mut, wantMut(e)) && slices.Equal(val, want(e))
		}
	}
	waitFor(t, "the conditions at start", in(first))

	engine.Store(second)
	changed <- struct{}{}
	waitFor(t, "the new config's conditions", in(second))

	// kubectl apply of the manifests: no conditions.
	api := client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	v, err := api.Get(ctx, testConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v.Webhooks[0].MatchConditions = nil
	if _, err := api.Update(ctx, v, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the repair of an external reset", in(second))

	// Deleted and created again.
	if err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, testConfigurationName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, liveConfigurations()[0].(*admissionregistrationv1.MutatingWebhookConfiguration), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the conditions of a created configuration", in(second))
}

// TestMatchConditionsSyncRemove: a removing syncer (--match-conditions=false, or no leader
// election) takes away the conditions an earlier loomguard left, needs no Lease, and puts
// nothing back.
func TestMatchConditionsSyncRemove(t *testing.T) {
	first, _ := testEngines(t)
	client := fake.NewClientset(liveConfigurations()...)
	var engine atomic.Pointer[policies.Engine]
	engine.Store(first)
	keeper, _ := newTestSyncer(t, client, &engine, nil)
	if err := keeper.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mut, val := liveConditions(t, client); len(mut) == 0 || len(val) == 0 {
		t.Fatalf("the keeping syncer set no conditions: %v, %v", mut, val)
	}
	if !keeper.NeedLeaderElection() {
		t.Error("the keeping syncer runs without the Lease")
	}

	remover, err := NewMatchConditionsSyncer(MatchConditionsOptions{
		Client:                         client,
		MutatingWebhookConfiguration:   testConfigurationName,
		ValidatingWebhookConfiguration: testConfigurationName,
		Engine:                         engine.Load,
		Logger:                         quiet(),
		Remove:                         true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if remover.NeedLeaderElection() {
		t.Error("the removing syncer waits for the Lease; every replica may remove")
	}
	for range 2 {
		if err := remover.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if mut, val := liveConditions(t, client); len(mut) != 0 || len(val) != 0 {
			t.Errorf("conditions left after removal: %v, %v", mut, val)
		}
	}
}
