package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loomguard/loomguard/policies"
)

// DefaultPageSize is how many objects one List call asks for.
const DefaultPageSize = 500

// Options configure one audit run.
type Options struct {
	// Reader lists objects. It must read straight from the API server (the manager's
	// APIReader, or a client without a cache): Run pages through every list with
	// limit/continue and keeps no object beyond its page.
	Reader client.Reader
	// Engine is the engine to evaluate with, for the whole run.
	Engine *policies.Engine
	// Namespace limits the audit to one namespace; empty means every namespace.
	Namespace string
	// PageSize is the limit of each List call; DefaultPageSize when zero.
	PageSize int64
	// Progress, when set, is called after each page.
	Progress func(Progress)
	// Now is the clock of Result.Started and Result.Duration; time.Now when nil.
	Now func() time.Time
}

// Progress says how far a run got.
type Progress struct {
	// Kind is the kind being listed ("Deployment"); Step and Steps count the kinds.
	Kind        string
	Step, Steps int
	// Listed counts the objects of Kind listed so far; Remaining is the API server's
	// estimate of those still to come (-1 when it gave none).
	Listed    int
	Remaining int64
	// Evaluated counts the workloads evaluated so far in the run.
	Evaluated int
}

// Workload is one evaluated top-level workload: a reference to it (enough to name it
// and to record an Event on it) and its report. The object itself is not kept.
type Workload struct {
	Ref    corev1.ObjectReference
	Report policies.Report
}

// Result is a complete audit.
type Result struct {
	// Workloads are the evaluated workloads, sorted by namespace, kind (in the order of
	// Kinds) and name.
	Workloads []Workload
	// Kinds counts the evaluated workloads by kind; every audited kind is present.
	Kinds map[string]int
	// Owned counts the objects left out because an audited controller owns them.
	Owned int
	// Exempt counts the objects left out because their namespace is exempt.
	Exempt int
	// Related counts the PodDisruptionBudgets and NetworkPolicies read.
	Related int
	// Started is when the run began; Duration how long it took.
	Started  time.Time
	Duration time.Duration
}

// Finished is when the run ended.
func (r *Result) Finished() time.Time { return r.Started.Add(r.Duration) }

// Violations counts the violations by policy, control, action and namespace.
func (r *Result) Violations() map[ViolationKey]int {
	out := map[ViolationKey]int{}
	for i := range r.Workloads {
		w := &r.Workloads[i]
		for _, v := range w.Report.Violations {
			out[ViolationKey{Policy: v.Policy, Control: Control(v), Action: string(v.Action), Namespace: w.Ref.Namespace}]++
		}
	}
	return out
}

// ViolationKey is the label set of one loomguard_audit_violations series.
type ViolationKey struct {
	Policy, Control, Action, Namespace string
}

// Control returns the Pod Security Standards control (a PSA check ID, such as
// hostPathVolumes) of a pod-security violation, and "" for every other policy. The set is
// bounded by PSA's check list, so it may be a metric label.
func Control(v policies.Violation) string {
	if v.Policy != policies.PodSecurityID || v.Error == nil {
		return ""
	}
	return v.Origin
}

// Kinds lists the audited workload kinds in the order they are listed and reported:
// those of policies.WorkloadKinds.
func Kinds() []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, k := range policies.WorkloadKinds() {
		out = append(out, k.GroupVersionKind)
	}
	return out
}

// Run lists every workload kind and the PodDisruptionBudgets and NetworkPolicies, page by
// page, evaluates each top-level workload with the engine and returns the result. It
// fails as a whole: an error on any page (a connection, authorization or expired-continue
// error) returns no result.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Reader == nil || o.Engine == nil {
		return nil, errors.New("audit: a reader and an engine are required")
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &runner{
		o:     o,
		views: map[string]*policies.Related{},
		empty: policies.NewRelated(),
		res:   &Result{Kinds: map[string]int{}, Started: o.Now()},
	}
	kinds := Kinds()
	order := map[string]int{}
	for i, k := range kinds {
		r.res.Kinds[k.Kind] = 0
		order[k.Kind] = i
	}
	r.steps = len(kinds) + len(policies.RelatedKinds())

	// The related objects first: every workload is evaluated with its namespace's view.
	if err := listPages(ctx, r, "PodDisruptionBudget", func() *policyv1.PodDisruptionBudgetList { return &policyv1.PodDisruptionBudgetList{} },
		func(l *policyv1.PodDisruptionBudgetList) int {
			for i := range l.Items {
				r.addRelated(&l.Items[i])
			}
			return len(l.Items)
		}); err != nil {
		return nil, err
	}
	if err := listPages(ctx, r, "NetworkPolicy", func() *networkingv1.NetworkPolicyList { return &networkingv1.NetworkPolicyList{} },
		func(l *networkingv1.NetworkPolicyList) int {
			for i := range l.Items {
				r.addRelated(&l.Items[i])
			}
			return len(l.Items)
		}); err != nil {
		return nil, err
	}
	for _, k := range policies.WorkloadKinds() {
		if err := r.listKind(ctx, k); err != nil {
			return nil, err
		}
	}

	slices.SortFunc(r.res.Workloads, func(a, b Workload) int {
		return cmp.Or(
			cmp.Compare(a.Ref.Namespace, b.Ref.Namespace),
			cmp.Compare(order[a.Ref.Kind], order[b.Ref.Kind]),
			cmp.Compare(a.Ref.Name, b.Ref.Name),
		)
	})
	r.res.Duration = o.Now().Sub(r.res.Started)
	return r.res, nil
}

// runner is the state of one run.
type runner struct {
	o     Options
	steps int
	step  int
	// views holds the Related view of each namespace that has PodDisruptionBudgets or
	// NetworkPolicies; empty is the view of every other namespace: the cluster is the whole
	// truth, so a namespace without them is known to have none.
	views map[string]*policies.Related
	empty *policies.Related
	res   *Result
}

// listKind lists and evaluates one workload kind.
func (r *runner) listKind(ctx context.Context, k policies.WorkloadKind) error {
	return listPages(ctx, r, k.Kind, k.NewList, func(l policies.ObjectList) int {
		n := 0
		// Every item of a typed list is a pointer to a client.Object; EachListItem fails
		// only on a list without Items.
		_ = meta.EachListItem(l, func(obj runtime.Object) error {
			r.visit(k.GroupVersionKind, obj.(client.Object))
			n++
			return nil
		})
		return n
	})
}

// listPages lists one kind page by page, handing each page to each, which returns how
// many objects it held. Each page is a new list, so that nothing of the previous page
// stays reachable.
func listPages[L client.ObjectList](ctx context.Context, r *runner, kind string, newList func() L, each func(L) int) error {
	r.step++
	listed := 0
	cont := ""
	for {
		opts := []client.ListOption{client.Limit(r.o.PageSize)}
		if cont != "" {
			opts = append(opts, client.Continue(cont))
		}
		if r.o.Namespace != "" {
			opts = append(opts, client.InNamespace(r.o.Namespace))
		}
		list := newList()
		if err := r.o.Reader.List(ctx, list, opts...); err != nil {
			return fmt.Errorf("listing %s (after %d): %w", plural(kind), listed, err)
		}
		listed += each(list)
		if r.o.Progress != nil {
			remaining := int64(-1)
			if n := list.GetRemainingItemCount(); n != nil {
				remaining = *n
			}
			r.o.Progress(Progress{Kind: kind, Step: r.step, Steps: r.steps, Listed: listed, Remaining: remaining, Evaluated: len(r.res.Workloads)})
		}
		if cont = list.GetContinue(); cont == "" {
			return nil
		}
	}
}

// addRelated adds a PodDisruptionBudget or NetworkPolicy to its namespace's view.
func (r *runner) addRelated(obj client.Object) {
	ns := obj.GetNamespace()
	if r.o.Engine.Exempt(ns) {
		return
	}
	v := r.views[ns]
	if v == nil {
		v = policies.NewRelated()
		r.views[ns] = v
	}
	v.Add(obj)
	r.res.Related++
}

// visit evaluates one listed object, unless an audited controller owns it (the finding is
// counted at that controller) or its namespace is exempt.
func (r *runner) visit(gvk schema.GroupVersionKind, obj client.Object) {
	if ownedByAuditedKind(obj) {
		r.res.Owned++
		return
	}
	ns := obj.GetNamespace()
	if r.o.Engine.Exempt(ns) {
		r.res.Exempt++
		return
	}
	w, ok := policies.NewWorkload(obj)
	if !ok {
		return // every listed kind is a workload
	}
	w.Related = r.views[ns]
	if w.Related == nil {
		w.Related = r.empty
	}
	report := r.o.Engine.Evaluate(w, ns)
	r.res.Workloads = append(r.res.Workloads, Workload{
		Ref: corev1.ObjectReference{
			APIVersion:      gvk.GroupVersion().String(),
			Kind:            gvk.Kind,
			Namespace:       ns,
			Name:            obj.GetName(),
			UID:             obj.GetUID(),
			ResourceVersion: obj.GetResourceVersion(),
		},
		Report: report,
	})
	r.res.Kinds[gvk.Kind]++
}

// ownedByAuditedKind reports whether obj's controller is of a kind the audit lists: its
// findings are those of the controller's template, counted there. A Pod of a custom
// controller, or a bare ReplicaSet, is counted itself.
func ownedByAuditedKind(obj metav1.Object) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return false
	}
	return policies.IsWorkloadGroupKind(schema.GroupKind{Group: gv.Group, Kind: ref.Kind})
}

// Scheme returns a scheme with the kinds the audit reads (policies.AddToScheme), for the
// clients that read them.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	// AddToScheme only fails on conflicting registrations, which these groups do not have.
	_ = policies.AddToScheme(s)
	return s
}

// plural is the plural of a kind: Deployments, NetworkPolicies.
func plural(kind string) string {
	if base, ok := strings.CutSuffix(kind, "y"); ok {
		return base + "ies"
	}
	return kind + "s"
}
