package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/loomguard/loomguard/policies"
)

// Defaults of MatchConditionsOptions.
const (
	defaultMatchResync = 10 * time.Minute
	matchRetry         = time.Second
	matchMaxRetry      = 30 * time.Second
	// matchFieldManager owns the matchConditions loomguard writes (the managedFields entry).
	matchFieldManager = "loomguard"
)

// MatchConditionsOptions configure a MatchConditionsSyncer.
type MatchConditionsOptions struct {
	// Client reaches the API server: it needs get, list, watch and update on the two
	// configurations (by resourceNames).
	Client kubernetes.Interface
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration are the names of the
	// configurations holding the webhooks MutatingWebhookName and ValidatingWebhookName.
	// Empty leaves that configuration alone; at least one must be set.
	MutatingWebhookConfiguration, ValidatingWebhookConfiguration string
	// Engine returns the engine in force (Server.Engine).
	Engine func() *policies.Engine
	// Changed receives a value whenever the engine in force changes
	// (ConfigReloader.Subscribe).
	Changed <-chan struct{}
	// Metrics receives loomguard_webhook_match_conditions and
	// loomguard_webhook_match_condition_updates_total; nil records none.
	Metrics *Metrics
	// Logger logs every change of the conditions.
	Logger logr.Logger
	// Resync is how often everything is checked even when nothing changed (10 minutes when
	// zero).
	Resync time.Duration
	// Remove keeps no conditions at all instead of the generated ones: whatever conditions
	// loomguard's webhooks carry (an earlier loomguard's, for another config) are removed,
	// and the webhooks are called for every object their rules match. Any number of
	// replicas may remove at once: they all write the same thing.
	Remove bool
}

// MatchConditionsSyncer keeps the matchConditions of loomguard's two webhooks in the live
// webhook configurations equal to WantMatchConditions of the config in force, so that
// the API server calls loomguard only for objects that may need it. It sets them at start,
// after every change of the config in force (a reload on file change or SIGHUP), and
// whenever someone else changes the configurations (a `kubectl apply`, `kubectl replace` or
// `helm upgrade` that resets them), and removes them when the generator returns none (the
// webhooks are then called for every object their rules match).
//
// It writes only the matchConditions of the one webhook it keeps in each configuration:
// rules, selectors, other webhooks and the caBundle (which the self-managed certificate
// rotator writes into the same objects) stay as they are read. Each write is an update of
// the object just read (optimistic concurrency); a conflict rereads and retries, so two
// writers of different fields never undo each other. Conditions the API server refuses
// (Invalid) are replaced by none, which is always sound: the webhooks are then called for
// every object, as without conditions.
//
// Single writer: it is a controller-runtime Runnable that needs leader election. `loomguard
// serve` runs it only under the manager's Lease (--leader-elect, the default), so that of
// several replicas only the Lease holder writes; during a rollout of a new config the other
// replicas serve with their own copy of the config until the kubelet updates it. Between a
// reload and the update (milliseconds) the API server still applies the previous
// conditions. With Remove it needs no election: every replica removes the conditions, since
// conditions that no writer keeps in step with the config would go stale.
type MatchConditionsSyncer struct {
	o       MatchConditionsOptions
	targets []matchTarget
}

// NewMatchConditionsSyncer validates o and returns a syncer.
func NewMatchConditionsSyncer(o MatchConditionsOptions) (*MatchConditionsSyncer, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("match conditions: no client")
	case o.Engine == nil:
		return nil, errors.New("match conditions: no engine")
	case o.MutatingWebhookConfiguration == "" && o.ValidatingWebhookConfiguration == "":
		return nil, errors.New("match conditions: no webhook configuration to keep")
	}
	if o.Resync == 0 {
		o.Resync = defaultMatchResync
	}
	s := &MatchConditionsSyncer{o: o}
	ar := o.Client.AdmissionregistrationV1()
	if n := o.MutatingWebhookConfiguration; n != "" {
		api := ar.MutatingWebhookConfigurations()
		s.targets = append(s.targets, &target[*admissionregistrationv1.MutatingWebhookConfiguration]{
			kind: "MutatingWebhookConfiguration", key: "mutatingWebhookConfiguration", name: n, webhook: MutatingWebhookName, label: webhookMutate,
			get: api.Get, update: api.Update,
			conditions: func(c *admissionregistrationv1.MutatingWebhookConfiguration) *[]admissionregistrationv1.MatchCondition {
				return conditionsOf(len(c.Webhooks), MutatingWebhookName, func(i int) (string, *[]admissionregistrationv1.MatchCondition) {
					return c.Webhooks[i].Name, &c.Webhooks[i].MatchConditions
				})
			},
			informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Admissionregistration().V1().MutatingWebhookConfigurations().Informer()
			},
		})
	}
	if n := o.ValidatingWebhookConfiguration; n != "" {
		api := ar.ValidatingWebhookConfigurations()
		s.targets = append(s.targets, &target[*admissionregistrationv1.ValidatingWebhookConfiguration]{
			kind: "ValidatingWebhookConfiguration", key: "validatingWebhookConfiguration", name: n, webhook: ValidatingWebhookName, label: webhookValidate,
			get: api.Get, update: api.Update,
			conditions: func(c *admissionregistrationv1.ValidatingWebhookConfiguration) *[]admissionregistrationv1.MatchCondition {
				return conditionsOf(len(c.Webhooks), ValidatingWebhookName, func(i int) (string, *[]admissionregistrationv1.MatchCondition) {
					return c.Webhooks[i].Name, &c.Webhooks[i].MatchConditions
				})
			},
			informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Admissionregistration().V1().ValidatingWebhookConfigurations().Informer()
			},
		})
	}
	return s, nil
}

// NeedLeaderElection is true: only the Lease holder writes the generated conditions. A
// syncer that removes them (Remove) runs on every replica.
func (s *MatchConditionsSyncer) NeedLeaderElection() bool { return !s.o.Remove }

// Start syncs until ctx ends: at start, after every change of the engine in force, whenever
// a kept configuration changes, and at least every Resync. Failed syncs are retried with a
// backoff from 1 to 30 seconds; a configuration that does not exist, or lacks loomguard's
// webhook, is logged and synced again when it changes.
func (s *MatchConditionsSyncer) Start(ctx context.Context) error {
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	for _, t := range s.targets {
		// One informer per configuration, on its name only: RBAC then authorizes list and
		// watch against resourceNames.
		sel := fields.OneTermEqualSelector("metadata.name", t.objectName()).String()
		f := informers.NewSharedInformerFactoryWithOptions(s.o.Client, s.o.Resync,
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = sel }))
		if _, err := t.newInformer(f).AddEventHandler(handler); err != nil {
			return fmt.Errorf("watching %s: %w", t.String(), err)
		}
		f.Start(ctx.Done())
		defer f.Shutdown()
	}
	s.o.Logger.Info("match-condition syncer started", "remove", s.o.Remove,
		"mutatingWebhookConfiguration", s.o.MutatingWebhookConfiguration,
		"validatingWebhookConfiguration", s.o.ValidatingWebhookConfiguration)

	timer := time.NewTimer(0)
	defer timer.Stop()
	retryIn := matchRetry
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.o.Changed: // nil when not given: never ready
		case <-kick:
		case <-timer.C:
		}
		wait := s.o.Resync
		if err := s.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.o.Logger.Error(err, "syncing the webhooks' matchConditions failed; retrying", "retryIn", retryIn)
			wait, retryIn = retryIn, min(2*retryIn, matchMaxRetry)
		} else {
			retryIn = matchRetry
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

// Sync sets the matchConditions of the kept webhooks to those of the engine in force once
// (none with Remove).
// It returns the errors worth retrying: a configuration that does not exist or lacks
// loomguard's webhook is only logged.
func (s *MatchConditionsSyncer) Sync(ctx context.Context) error {
	e := s.o.Engine()
	if e == nil {
		return errors.New("no config in force")
	}
	cfg := e.Config()
	digest := ConfigDigest(cfg)
	var errs []error
	for _, t := range s.targets {
		var want []admissionregistrationv1.MatchCondition
		if !s.o.Remove {
			want = WantMatchConditions(t.webhookName(), cfg)
		}
		errs = append(errs, s.syncTarget(ctx, t, want, digest))
	}
	return errors.Join(errs...)
}

func (s *MatchConditionsSyncer) syncTarget(ctx context.Context, t matchTarget, want []admissionregistrationv1.MatchCondition, digest string) error {
	log := s.o.Logger.WithValues(t.logKey(), t.objectName(), "webhook", t.webhookName(), "config", digest)
	changed, err := t.sync(ctx, want)
	if apierrors.IsInvalid(err) && len(want) > 0 {
		// The API server refuses these conditions (a CEL expression it cannot compile, over
		// its cost or count limits): no conditions are sound, the webhook is then called for
		// every object.
		s.count(t, matchUpdateRejected)
		log.Error(err, "the API server refused the generated matchConditions; removing them instead (the webhook is called for every object)", "conditions", len(want))
		want = nil
		changed, err = t.sync(ctx, want)
	}
	var missing *missingWebhookError
	switch {
	case apierrors.IsNotFound(err):
		log.Info("webhook configuration not found; its matchConditions are set when it is created")
		return nil
	case errors.As(err, &missing):
		log.Error(err, "cannot set the matchConditions")
		return nil
	case err != nil:
		s.count(t, matchUpdateError)
		return err
	}
	if s.o.Metrics != nil {
		s.o.Metrics.matchConditions.WithLabelValues(t.metricLabel()).Set(float64(len(want)))
	}
	if changed {
		s.count(t, matchUpdateSuccess)
		names := make([]string, len(want))
		for i, c := range want {
			names[i] = c.Name
		}
		kv := []any{"conditions", names}
		if len(want) == 0 && !s.o.Remove {
			if e := s.o.Engine(); e != nil {
				kv = append(kv, "why", policies.WhyNoMatchConditions(e.Config(), t.webhookName() == MutatingWebhookName))
			}
		}
		log.Info("set the webhook's matchConditions", kv...)
	}
	return nil
}

func (s *MatchConditionsSyncer) count(t matchTarget, result string) {
	if s.o.Metrics != nil {
		s.o.Metrics.matchConditionUpdates.WithLabelValues(t.metricLabel(), result).Inc()
	}
}

// WantMatchConditions are the matchConditions that the webhook of the given name
// (MutatingWebhookName or ValidatingWebhookName) must carry under cfg:
// policies.MutatingMatchConditions for the mutating webhook, which only fixes, and
// policies.MatchConditions for the validating one. None is nil.
func WantMatchConditions(webhook string, cfg *policies.Config) []admissionregistrationv1.MatchCondition {
	if webhook == MutatingWebhookName {
		return toAPIConditions(policies.MutatingMatchConditions(cfg))
	}
	return toAPIConditions(policies.MatchConditions(cfg))
}

// toAPIConditions converts the generator's conditions; none is nil.
func toAPIConditions(in []policies.MatchCondition) []admissionregistrationv1.MatchCondition {
	if len(in) == 0 {
		return nil
	}
	out := make([]admissionregistrationv1.MatchCondition, len(in))
	for i, c := range in {
		out[i] = admissionregistrationv1.MatchCondition{Name: c.Name, Expression: c.Expression}
	}
	return out
}

// missingWebhookError: the configuration exists but holds no webhook of loomguard's name.
type missingWebhookError struct{ kind, name, webhook string }

func (e *missingWebhookError) Error() string {
	return fmt.Sprintf("%s %s has no webhook named %s", e.kind, e.name, e.webhook)
}

// matchTarget is one kept webhook configuration, of either kind.
type matchTarget interface {
	// sync sets the webhook's matchConditions to want, rereading on conflict, and reports
	// whether it wrote.
	sync(ctx context.Context, want []admissionregistrationv1.MatchCondition) (changed bool, err error)
	newInformer(informers.SharedInformerFactory) cache.SharedIndexInformer
	logKey() string
	objectName() string
	webhookName() string
	metricLabel() string
	String() string
}

// target is a matchTarget over the typed client of configuration kind C.
// conditionsOf points at the matchConditions of the webhook called name among n webhooks, nil
// when there is none of that name.
func conditionsOf(n int, name string, at func(int) (string, *[]admissionregistrationv1.MatchCondition)) *[]admissionregistrationv1.MatchCondition {
	for i := range n {
		if got, conds := at(i); got == name {
			return conds
		}
	}
	return nil
}

type target[C any] struct {
	kind, name, webhook string
	key, label          string // log key of the name, webhook label of the metrics
	get                 func(ctx context.Context, name string, o metav1.GetOptions) (C, error)
	update              func(ctx context.Context, obj C, o metav1.UpdateOptions) (C, error)
	// conditions points at the matchConditions of the webhook in the configuration, nil
	// when it has none of that name.
	conditions func(C) *[]admissionregistrationv1.MatchCondition
	informer   func(informers.SharedInformerFactory) cache.SharedIndexInformer
}

func (t *target[C]) sync(ctx context.Context, want []admissionregistrationv1.MatchCondition) (bool, error) {
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cfg, err := t.get(ctx, t.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p := t.conditions(cfg)
		if p == nil {
			return &missingWebhookError{kind: t.kind, name: t.name, webhook: t.webhook}
		}
		if slices.Equal(*p, want) {
			return nil
		}
		*p = want
		if _, err := t.update(ctx, cfg, metav1.UpdateOptions{FieldManager: matchFieldManager}); err != nil {
			return err
		}
		changed = true
		return nil
	})
	var missing *missingWebhookError
	if err != nil && !apierrors.IsNotFound(err) && !errors.As(err, &missing) {
		return false, fmt.Errorf("setting the matchConditions of webhook %s in %s: %w", t.webhook, t.String(), err)
	}
	return changed, err
}

func (t *target[C]) newInformer(f informers.SharedInformerFactory) cache.SharedIndexInformer {
	return t.informer(f)
}
func (t *target[C]) logKey() string      { return t.key }
func (t *target[C]) objectName() string  { return t.name }
func (t *target[C]) webhookName() string { return t.webhook }
func (t *target[C]) metricLabel() string { return t.label }
func (t *target[C]) String() string      { return t.kind + " " + t.name }
