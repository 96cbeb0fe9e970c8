package webhook

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/semaphore"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/loomguard/loomguard/mutation"
	"github.com/loomguard/loomguard/policies"
)

// The endpoints and names of loomguard's admission webhooks. The webhook configurations
// (manifests/) must use these paths and names.
const (
	ValidatePath = "/validate"
	MutatePath   = "/mutate"

	ValidatingWebhookName = "validate.loomguard.io"
	MutatingWebhookName   = "mutate.loomguard.io"
)

// Keys of the audit annotations the webhooks return. The API server stores each under
// "<webhook name>/<key>", e.g. validate.loomguard.io/run-as-non-root; the other keys are the
// policy IDs of the violations recorded for audit.
const (
	// AuditWaived lists the policies that an exception waived: "policy=exception, ...".
	AuditWaived = "waived"
	// AuditRecordOnly says why enforced and warned violations were only recorded.
	AuditRecordOnly = "record-only"
	// AuditFixed lists, on the mutating webhook's response, the policies whose fixes it applied.
	AuditFixed = "fixed"
)

// Handlers answer admission reviews with the engine in force. They keep no per-request
// state and are safe for concurrent use.
type Handlers struct {
	engine   *atomic.Pointer[policies.Engine]
	decoder  *policies.Decoder
	metrics  *Metrics
	log      logr.Logger
	failures *failures
	bufs     *sync.Pool    // *bytes.Buffer, the request bodies
	inFlight chan struct{} // one token per review being worked on, both webhooks together
	// reviewers are MaxInFlight long-lived goroutines that do the work of the reviews
	// holding a token (reviewHandler.ServeHTTP). HTTP/2 serves every request on a goroutine
	// of its own, whose small stack the JSON decoding grows again and again: 14-16 % of
	// loomguard's CPU under the API server's load (BENCHMARKS.md). A reviewer's stack stays
	// grown from one review to the next.
	reviewers chan func()
	// bodyBytes weighs the large reviews being worked on by the size of their bodies.
	bodyBytes *semaphore.Weighted
	// buffered weighs the request bodies held, from their first byte read to their answer.
	buffered *semaphore.Weighted
}

// HandlerOptions bound the work of the handlers.
type HandlerOptions struct {
	// MaxInFlight is how many reviews, of both webhooks together, are worked on at once;
	// one more waits for a slot up to half its timeout, then is refused with a 429 and
	// Retry-After. DefaultMaxInFlight when zero.
	MaxInFlight int
}

// NewHandlers returns the validating and mutating handlers. engine holds the engine in
// force; the config reloader swaps it.
func NewHandlers(engine *atomic.Pointer[policies.Engine], m *Metrics, log logr.Logger, o HandlerOptions) *Handlers {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	h := &Handlers{
		engine:    engine,
		decoder:   policies.NewDecoder(),
		metrics:   m,
		log:       log,
		failures:  newFailures(m, log),
		bufs:      &sync.Pool{New: func() any { return new(bytes.Buffer) }},
		inFlight:  make(chan struct{}, o.MaxInFlight),
		reviewers: make(chan func()),
		bodyBytes: semaphore.NewWeighted(maxBodyBytesInFlight),
		buffered:  semaphore.NewWeighted(maxBodyBytesBuffered),
	}
	// As many reviewers as tokens: a review holding a token finds one idle at once. They
	// block on the channel while idle and live as long as the process.
	for range o.MaxInFlight {
		go func() {
			for review := range h.reviewers {
				review()
			}
		}()
	}
	return h
}

// ValidatingWebhook returns the validating webhook, to be served at ValidatePath: Validate
// in a controller-runtime admission.Webhook, behind an HTTP handler that takes
// AdmissionReview v1 only.
func (h *Handlers) ValidatingWebhook() http.Handler {
	return h.newReviewHandler(webhookValidate, h.webhook(webhookValidate, h.Validate))
}

// MutatingWebhook returns the mutating webhook, to be served at MutatePath: Mutate in a
// controller-runtime admission.Webhook, behind an HTTP handler that takes AdmissionReview
// v1 only.
func (h *Handlers) MutatingWebhook() http.Handler {
	return h.newReviewHandler(webhookMutate, h.webhook(webhookMutate, h.Mutate))
}

func (h *Handlers) webhook(name string, handle admission.HandlerFunc) *admission.Webhook {
	base := h.log.WithName(name)
	wh := &admission.Webhook{
		Handler: handle,
		// The handlers recover their own panics; this is the last line of defence, and it
		// answers with an error, which denies.
		RecoverPanic: new(true),
		// The handlers log with the request's details themselves; a per-request logger
		// would cost allocations on every review.
		LogConstructor: func(logr.Logger, *admission.Request) logr.Logger { return base },
	}
	// StandaloneWebhook gives the webhook its logger; without a metrics path it returns
	// the webhook itself and cannot fail.
	_, _ = admission.StandaloneWebhook(wh, admission.StandaloneOptions{Logger: base})
	return wh
}

// review is one admission request on its way through a handler.
type review struct {
	req       *admission.Request
	gvk       schema.GroupVersionKind
	operation string // metric label
	kind      string // metric label
	dryRun    bool
	namespace string
	name      string
	decision  string
	reason    string // metric label, for decision error
}

func newReview(req *admission.Request) *review {
	r := &review{
		req:       req,
		gvk:       schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind},
		dryRun:    req.DryRun != nil && *req.DryRun,
		namespace: req.Namespace,
		name:      req.Name,
		decision:  decisionError,
	}
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update, admissionv1.Delete, admissionv1.Connect:
		r.operation = string(req.Operation)
	default:
		r.operation = "unknown"
	}
	r.kind = kindOther
	if policies.IsWorkloadGroupKind(r.gvk.GroupKind()) {
		r.kind = r.gvk.Kind
	}
	return r
}

// object is how messages name the object: "Deployment loom/web". An object that only has
// a generateName is named by it ("Pod loom/web-6d4cf56db6-").
func (r *review) object() string {
	kind := r.gvk.Kind
	if kind == "" {
		kind = "object"
	}
	name := r.name
	if name == "" {
		name = "<unnamed>"
	}
	if r.namespace == "" {
		return kind + " " + name
	}
	return kind + " " + r.namespace + "/" + name
}

// named completes the review's namespace and name from the decoded object. The request's
// namespace is authoritative: it decides exemption, overrides and exceptions, whatever the
// object says (the API server sends it for every namespaced object, and a controller's pods
// may arrive without one of their own). The object's is used only where the request has
// none. The object's name wins for messages: a Pod created with generateName has none in
// the request.
func (r *review) named(w *policies.Workload) {
	if r.namespace == "" {
		r.namespace = w.Meta.Namespace
	}
	switch {
	case w.Meta.Name != "":
		r.name = w.Meta.Name
	case r.name == "" && w.Meta.GenerateName != "":
		r.name = w.Meta.GenerateName
	}
}

func (r *review) logValues(kv ...any) []any {
	return append([]any{
		"kind", r.gvk.Kind, "namespace", r.namespace, "name", r.name, "operation", r.req.Operation,
		"user", r.req.UserInfo.Username, "dryRun", r.dryRun, "uid", r.req.UID,
	}, kv...)
}

// check rejects a review that carries no usable request.
func (r *review) check() *admission.Response {
	switch {
	case r.req.UID == "":
		return r.fail(reasonBadRequest, http.StatusBadRequest, metav1.StatusReasonBadRequest, "the admission review has no request (or a request without a uid)")
	case r.req.Kind.Kind == "":
		return r.fail(reasonBadRequest, http.StatusBadRequest, metav1.StatusReasonBadRequest, "the admission request names no kind")
	}
	return nil
}

// fail records why the review is answered with an error and returns that answer.
func (r *review) fail(reason string, code int32, status metav1.StatusReason, msg string) *admission.Response {
	r.decision, r.reason = decisionError, reason
	return errored(code, status, msg)
}

// expired answers a review whose context ended (its timeout passed, or its client went
// away) before it was decided: the work stops there. It returns nil while ctx is live.
func (r *review) expired(ctx context.Context) *admission.Response {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	return r.fail(reasonTimeout, http.StatusGatewayTimeout, metav1.StatusReasonTimeout,
		fmt.Sprintf("loomguard stopped reviewing %s: %v", r.object(), context.Cause(ctx)))
}

// ephemeralContainers reports whether the request is an UPDATE of pods/ephemeralcontainers,
// the subresource through which `kubectl debug` adds an ephemeral container to a running
// Pod: its object is the whole Pod. It is the one subresource that can change what runs and
// as whom (docs/subresources.md), so it is evaluated.
func (r *review) ephemeralContainers() bool {
	return r.req.SubResource == "ephemeralcontainers" && r.req.Resource.Group == "" && r.req.Resource.Resource == "pods"
}

// skipReason says why a request is admitted without evaluation, or "" when it is evaluated.
func (r *review) skipReason() string {
	switch {
	case r.req.SubResource != "" && !r.ephemeralContainers():
		return "loomguard does not check the " + r.req.SubResource + " subresource"
	case r.req.Operation == admissionv1.Delete:
		return "loomguard never blocks a delete"
	case r.req.Operation == admissionv1.Connect:
		return "loomguard does not check connect requests"
	case !policies.IsWorkloadGroupKind(r.gvk.GroupKind()):
		return r.gvk.Kind + " is not a workload kind"
	}
	return ""
}

func errored(code int32, reason metav1.StatusReason, msg string) *admission.Response {
	return &admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg},
	}}
}

func allowed(msg string) admission.Response {
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: true,
		Result:  &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusOK, Message: msg},
	}}
}

// decode decodes the request's object (or old object) into its workload view.
func (h *Handlers) decode(r *review, ext *runtime.RawExtension) (*policies.Workload, error) {
	obj, err := decodeObject(h.decoder, ext, r.gvk)
	if err != nil {
		return nil, err
	}
	w, ok := policies.NewWorkload(obj)
	if !ok {
		return nil, fmt.Errorf("%s is not a workload", r.gvk)
	}
	return w, nil
}

// unchanged reports whether an UPDATE leaves the pod spec and the checked labels (the
// workload's and its pod template's) as they were: a controller scaling or annotating an
// object, which must never be blocked.
func (h *Handlers) unchanged(r *review, w *policies.Workload) bool {
	if r.req.Operation != admissionv1.Update {
		return false
	}
	old, err := h.decode(r, &r.req.OldObject)
	if err != nil {
		return false
	}
	return equality.Semantic.DeepEqual(old.Spec, w.Spec) &&
		equality.Semantic.DeepEqual(old.Meta.Labels, w.Meta.Labels) &&
		equality.Semantic.DeepEqual(old.Template.Labels, w.Template.Labels)
}

// begin takes a review as far as both webhooks go alike: it answers a malformed request, a
// request loomguard skips (subresources, DELETE, non-workload kinds) and one it cannot
// decode, and otherwise returns the engine in force and the decoded workload.
func (h *Handlers) begin(ctx context.Context, r *review) (*policies.Engine, *policies.Workload, *admission.Response) {
	if bad := r.check(); bad != nil {
		return nil, nil, bad
	}
	if reason := r.skipReason(); reason != "" {
		r.decision = decisionSkipped
		resp := allowed(reason)
		return nil, nil, &resp
	}
	engine := h.engine.Load()
	if engine == nil {
		return nil, nil, r.fail(reasonNoConfig, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "loomguard has no config loaded")
	}
	if late := r.expired(ctx); late != nil {
		return nil, nil, late
	}
	w, err := h.decode(r, &r.req.Object)
	if err != nil {
		return nil, nil, r.fail(reasonUndecodable, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("loomguard cannot decode %s: %v", r.object(), err))
	}
	r.named(w)
	if late := r.expired(ctx); late != nil {
		return nil, nil, late
	}
	return engine, w, nil
}

func (h *Handlers) done(webhook string, r *review, start time.Time, resp *admission.Response) {
	elapsed := time.Since(start)
	h.metrics.observeRequest(webhook, r.operation, r.kind, r.decision, r.reason, r.dryRun, elapsed.Seconds())
	if r.decision == decisionError && r.reason != reasonInternal { // internal errors are logged in full where they happen
		msg := ""
		if resp.Result != nil {
			msg = resp.Result.Message
		}
		h.failures.logf(r.reason, "admission review answered with an error", r.logValues("webhook", webhook, "message", msg)...)
	}
	if log := h.log.V(1); log.Enabled() {
		log.Info("reviewed", r.logValues("webhook", webhook, "decision", r.decision, "duration", elapsed)...)
	}
}

// Validate answers a validating admission review: enforce violations deny it with a 403,
// warn violations become warnings and audit violations audit annotations.
func (h *Handlers) Validate(ctx context.Context, req admission.Request) (resp admission.Response) {
	start := time.Now()
	r := newReview(&req)
	defer func() { h.done(webhookValidate, r, start, &resp) }()
	defer func() {
		if p := recover(); p != nil {
			r.decision, r.reason = decisionError, reasonInternal
			h.log.Error(fmt.Errorf("panic: %v", p), "validating webhook failed; denying the request", r.logValues("stack", string(debug.Stack()))...)
			resp = *errored(http.StatusInternalServerError, metav1.StatusReasonInternalError,
				fmt.Sprintf("loomguard could not evaluate %s (internal error); the request is denied", r.object()))
		}
	}()

	engine, w, early := h.begin(ctx, r)
	if early != nil {
		return *early
	}
	report := engine.Evaluate(w, r.namespace)
	if late := r.expired(ctx); late != nil {
		return *late
	}
	if r.ephemeralContainers() {
		h.onlyNew(r, engine, &report)
	}
	// Only a verdict that would deny or warn needs to know whether it may; most updates
	// (a compliant object, a controller scaling) never decode the old object.
	var recordOnly string
	if report.Count(policies.ActionEnforce)+report.Count(policies.ActionWarn) > 0 {
		switch {
		case kubeletMirror(r, w):
			recordOnly = "a mirror pod that its node's kubelet creates is never denied"
		case h.unchanged(r, w):
			recordOnly = "an update that leaves the pod spec and labels unchanged is never denied"
		}
	}
	return h.verdict(r, &report, recordOnly)
}

// nodeUserPrefix and nodesGroup make up a kubelet's identity, system:node:<nodeName> in the
// group system:nodes: the names the Node authorizer and the NodeRestriction admission plugin
// recognise (k8s.io/kubernetes pkg/auth/nodeidentifier).
const (
	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
)

// kubeletMirror reports whether the request creates or changes a static pod's mirror: a Pod
// with the kubernetes.io/config.mirror annotation (Workload.Mirror) that the kubelet of the
// node in its spec.nodeName sends. The annotation alone proves nothing, since anyone who may
// create Pods can set it; NodeRestriction lets a node create only mirror pods bound to itself
// (k8s.io/kubernetes plugin/pkg/admission/noderestriction), so the requester's identity is
// what makes the claim true. The pod's spec lives in a manifest file on that node, which an
// API-server denial cannot change: its violations are recorded, not denied.
func kubeletMirror(r *review, w *policies.Workload) bool {
	if !w.Mirror() || w.Spec.NodeName == "" {
		return false
	}
	u := r.req.UserInfo
	return u.Username == nodeUserPrefix+w.Spec.NodeName && slices.Contains(u.Groups, nodesGroup)
}

// onlyNew keeps, of an ephemeral-containers update's report, the violations that the running
// Pod (the old object) does not already have: the subresource changes nothing but
// spec.ephemeralContainers, so what it adds is the ephemeral containers' violations (a
// pod-level violation now naming a debug container among others included). The Pod's own
// violations were judged when it was admitted; `loomguard check` and the audit report them
// on the Pod as a whole. An undecodable old object leaves the report whole.
func (h *Handlers) onlyNew(r *review, engine *policies.Engine, report *policies.Report) {
	old, err := h.decode(r, &r.req.OldObject)
	if err != nil {
		return
	}
	before := engine.Evaluate(old, r.namespace)
	kept := report.Violations[:0]
	for _, v := range report.Violations {
		if !slices.ContainsFunc(before.Violations, func(o policies.Violation) bool {
			return o.Policy == v.Policy && o.Field == v.Field && o.Detail == v.Detail
		}) {
			kept = append(kept, v)
		}
	}
	report.Violations = kept
}

// verdict turns a report into the validating response.
func (h *Handlers) verdict(r *review, report *policies.Report, recordOnly string) admission.Response {
	var (
		enforced []policies.Violation
		warnings []string
		audit    map[string]*auditValue
		recorded bool
	)
	for _, v := range report.Violations {
		action := v.Action
		if recordOnly != "" && action != policies.ActionAudit {
			action = policies.ActionAudit
			recorded = true
		}
		if !r.dryRun {
			h.metrics.violation(v.Policy, action)
		}
		switch action {
		case policies.ActionEnforce:
			enforced = append(enforced, v)
		case policies.ActionWarn:
			warnings = append(warnings, v.Message())
		default:
			if audit == nil {
				audit = map[string]*auditValue{}
			}
			if audit[v.Policy] == nil {
				audit[v.Policy] = &auditValue{}
			}
			audit[v.Policy].add(v.Message())
		}
	}
	var annotations map[string]string
	if len(audit) > 0 || recorded || len(report.Waivers) > 0 {
		annotations = make(map[string]string, len(audit)+2)
	}
	for id, v := range audit {
		annotations[id] = v.String()
	}
	if recorded {
		annotations[AuditRecordOnly] = recordOnly
	}
	if len(report.Waivers) > 0 {
		annotations[AuditWaived] = waivers(report.Waivers)
	}

	var resp admission.Response
	if len(enforced) > 0 {
		r.decision = decisionDenied
		resp = h.deny(r, enforced)
	} else {
		r.decision = decisionAllowed
		if len(warnings) > 0 {
			r.decision = decisionWarned
		}
		resp = allowed("")
		if report.Exempt {
			resp.Result.Message = "namespace " + report.Namespace + " is exempt from loomguard"
		}
	}
	resp.Warnings = capWarnings(warnings)
	resp.AuditAnnotations = annotations
	return resp
}

// deny builds the 403 of a request with enforced violations, logging it.
func (h *Handlers) deny(r *review, enforced []policies.Violation) admission.Response {
	var ids []string
	causes := make([]metav1.StatusCause, 0, min(len(enforced), maxCauses+1))
	var msg strings.Builder
	for i, v := range enforced {
		if !slices.Contains(ids, v.Policy) { // at most one per policy
			ids = append(ids, v.Policy)
		}
		if i < maxCauses {
			causes = append(causes, metav1.StatusCause{
				Type:    metav1.CauseType(v.Type),
				Message: truncateRunes("["+v.Policy+"] "+v.Detail, maxWarningItemRunes),
				Field:   v.Field,
			})
		}
		if i < maxListed {
			if i > 0 {
				msg.WriteString("; ")
			}
			msg.WriteString(truncateRunes(v.Message(), maxWarningItemRunes))
		}
	}
	if n := len(enforced) - maxCauses; n > 0 {
		causes = append(causes, metav1.StatusCause{
			Type:    metav1.CauseType(field.ErrorTypeTooMany),
			Message: "and " + strconv.Itoa(n) + " more violations (run `loomguard check` on the object to see them all)",
		})
	}
	if n := len(enforced) - maxListed; n > 0 {
		msg.WriteString("; and " + strconv.Itoa(n) + " more (see the status causes)")
	}
	noun := "policies"
	if len(ids) == 1 {
		noun = "policy"
	}
	message := fmt.Sprintf("%s violates %d loomguard %s: %s", r.object(), len(ids), noun, msg.String())
	h.log.Info("denied", r.logValues("policies", ids)...)
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result: &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusForbidden,
			Reason:  metav1.StatusReasonForbidden,
			Message: message,
			Details: &metav1.StatusDetails{
				Name:   r.name,
				Group:  r.req.Resource.Group,
				Kind:   r.req.Resource.Resource,
				Causes: causes,
			},
		},
	}}
}

func waivers(ws []policies.Waiver) string {
	seen := make([]string, 0, len(ws))
	for _, w := range ws {
		s := w.Policy + "=" + w.Exception
		if !slices.Contains(seen, s) {
			seen = append(seen, s)
		}
	}
	return strings.Join(seen, ", ")
}

// Mutate answers a mutating admission review: it applies the engine's fixes through
// mutation.Apply, the function `loomguard fix` uses, and returns them as a JSON patch with a warning saying
// what changed. A request that needs no fix gets no patch.
//
// The mutating webhook fails open (its failurePolicy is Ignore): an internal error admits
// the object unchanged, with a warning, and leaves the verdict to the validating webhook.
// Bad input is still answered with an error.
func (h *Handlers) Mutate(ctx context.Context, req admission.Request) (resp admission.Response) {
	start := time.Now()
	r := newReview(&req)
	defer func() { h.done(webhookMutate, r, start, &resp) }()
	defer func() {
		if p := recover(); p != nil {
			r.decision, r.reason = decisionError, reasonInternal
			h.log.Error(fmt.Errorf("panic: %v", p), "mutating webhook failed; admitting the object unchanged", r.logValues("stack", string(debug.Stack()))...)
			resp = allowed("").WithWarnings(fmt.Sprintf("loomguard could not apply its fixes to %s (internal error); it is admitted unchanged", r.object()))
		}
	}()

	engine, w, early := h.begin(ctx, r)
	if early != nil {
		if r.reason == reasonTimeout {
			return h.outOfTime(r)
		}
		return *early
	}

	r.decision = decisionSkipped
	switch {
	case r.ephemeralContainers():
		// Through this subresource the API server keeps only spec.ephemeralContainers of
		// the object, so a pod-level fix would be dropped; and a debug container's settings
		// are chosen on purpose. The validating webhook decides (docs/subresources.md).
		return allowed("loomguard does not fix ephemeral containers; the validating webhook judges them")
	}
	if why := mutation.Unfixable(w); why != "" {
		return allowed(why)
	}

	m, err := mutation.Apply(engine, w, req.Object.Raw, r.namespace)
	if late := r.expired(ctx); late != nil {
		return h.outOfTime(r)
	}
	if err != nil {
		r.decision, r.reason = decisionError, reasonInternal
		h.log.Error(err, "computing the fix patch failed; admitting the object unchanged", r.logValues()...)
		return allowed("").WithWarnings(fmt.Sprintf("loomguard could not apply its fixes to %s (internal error); it is admitted unchanged", r.object()))
	}
	if len(m.Fixed) == 0 {
		r.decision = decisionAllowed
		return allowed("")
	}
	// Only an update that needs fixes decodes the old object: one that leaves the pod spec
	// and labels as they were (a controller scaling or annotating) is left alone. w holds
	// the fixed object now, so compare the old one with the request's object as decoded.
	if req.Operation == admissionv1.Update {
		if orig, ok := policies.NewWorkload(m.Original); ok && h.unchanged(r, orig) {
			r.decision = decisionSkipped
			return allowed("the update leaves the pod spec and labels unchanged")
		}
	}
	// Encoded here rather than by admission.Response.Complete from Patches: the same bytes,
	// at about half the cost on a big object's patch (mutation.EncodePatch).
	patch, err := mutation.EncodePatch(m.Patch)
	if err != nil {
		r.decision, r.reason = decisionError, reasonInternal
		h.log.Error(err, "encoding the fix patch failed; admitting the object unchanged", r.logValues()...)
		return allowed("").WithWarnings(fmt.Sprintf("loomguard could not apply its fixes to %s (internal error); it is admitted unchanged", r.object()))
	}
	r.decision = decisionPatched
	if !r.dryRun {
		for _, id := range m.Fixed {
			h.metrics.mutation(id)
		}
	}
	h.log.Info("mutated", r.logValues("policies", m.Fixed)...)
	resp = allowed("")
	resp.Patch = patch
	patchType := admissionv1.PatchTypeJSONPatch
	resp.PatchType = &patchType
	resp.Warnings = []string{"loomguard fixed: " + strings.Join(m.Fixed, ", ")}
	resp.AuditAnnotations = map[string]string{AuditFixed: strings.Join(m.Fixed, ",")}
	return resp
}

// outOfTime answers a mutating review whose context ended before its patch was ready: like
// an internal error, it admits the object unchanged (the mutating webhook fails open), and
// the validating webhook has the last word.
func (h *Handlers) outOfTime(r *review) admission.Response {
	return allowed("").WithWarnings(fmt.Sprintf("loomguard ran out of time fixing %s; it is admitted unchanged", r.object()))
}
