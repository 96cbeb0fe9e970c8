package policies

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/internal/psafixtures"
	"github.com/loomguard/loomguard/internal/testsummary"
)

// celJudge evaluates matchConditions as kube-apiserver does: its webhook accessor compiles
// them with the API server's CEL environment (k8s.io/apiserver, the version kube-apiserver
// v1.37 is built from) and its matcher evaluates them on the request's attributes. The e2e
// test TestMatchConditionsSoundOnAPIServer checks the same on the real API server.
//
// calls judges every object in both forms an API server hands CEL: typed, read by
// reflection (kube-apiserver 1.37 and later: k8s.io/apiserver's SchemalessTypedToVal), and
// converted to unstructured (1.30 to 1.36: runtime.DefaultUnstructuredConverter, in
// k8s.io/apiserver v0.36's objectToResolveVal), and fails the test where they differ, so the
// soundness proved on the one holds on the other.
type celJudge struct {
	matcher matchconditions.Matcher
}

func newCELJudge(t testing.TB, conds []MatchCondition) *celJudge {
	t.Helper()
	fail := admissionregistrationv1.Fail
	hook := &admissionregistrationv1.ValidatingWebhook{Name: "validate.loomguard.io", FailurePolicy: &fail}
	for _, c := range conds {
		hook.MatchConditions = append(hook.MatchConditions, admissionregistrationv1.MatchCondition{Name: c.Name, Expression: c.Expression})
	}
	compiler := cel.NewConditionCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	return &celJudge{matcher: webhook.NewValidatingWebhookAccessor("uid", "loomguard", hook).GetCompiledMatcher(compiler)}
}

// calls reports whether the API server would call the webhook for a CREATE (or UPDATE) of
// obj in namespace; an evaluation error fails the test: under failurePolicy Fail it would
// deny the request.
func (j *celJudge) calls(t testing.TB, obj runtime.Object, gvk schema.GroupVersionKind, namespace string, op admission.Operation, subresource string) bool {
	t.Helper()
	name := ""
	if m, err := meta.Accessor(obj); err == nil {
		name = m.GetName()
	}
	calls, err := j.match(t, obj, gvk, namespace, op, subresource)
	if err != nil {
		t.Fatalf("matchConditions fail on %s %s/%s: %v", gvk.Kind, namespace, name, err)
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatalf("%s %s/%s to unstructured: %v", gvk.Kind, namespace, name, err)
	}
	ucalls, err := j.match(t, &unstructured.Unstructured{Object: u}, gvk, namespace, op, subresource)
	if err != nil {
		t.Fatalf("matchConditions fail on %s %s/%s as unstructured (kube-apiserver 1.30-1.36): %v", gvk.Kind, namespace, name, err)
	}
	if calls != ucalls {
		t.Fatalf("matchConditions on %s %s/%s: the webhook is called %v on the typed object (kube-apiserver 1.37+) but %v on the unstructured one (1.30-1.36)", gvk.Kind, namespace, name, calls, ucalls)
	}
	return calls
}

// match is calls without failing the test, on one form of the object (typed, or
// *unstructured.Unstructured): whether the API server would call the webhook, and the error
// its conditions fail with (a condition its CEL cannot compile is one).
func (j *celJudge) match(t testing.TB, obj runtime.Object, gvk schema.GroupVersionKind, namespace string, op admission.Operation, subresource string) (bool, error) {
	t.Helper()
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	obj.GetObjectKind().SetGroupVersionKind(gvk) // already in the webhook's version: no conversion
	name := ""
	if m, err := meta.Accessor(obj); err == nil {
		name = m.GetName()
	}
	var old runtime.Object
	if op == admission.Update {
		old = obj
	}
	attr := admission.NewAttributesRecord(obj, old, gvk, namespace, name, gvr, subresource, op, nil, false, &user.DefaultInfo{Name: "tester"})
	va, err := admission.NewVersionedAttributes(attr, gvk, nil)
	if err != nil {
		t.Fatalf("versioned attributes: %v", err)
	}
	r := j.matcher.Match(context.Background(), va, nil, nil)
	return r.Matches, r.Error
}

// testConfigs are the configs the conditions are proved sound under: the Loom profile and
// variants that change what each kind of condition reads.
func testConfigs(t testing.TB) map[string]*Config {
	t.Helper()
	out := map[string]*Config{"loom-profile": DefaultConfig()}
	for name, doc := range map[string]string{
		"restricted-registries-digests": `
policies:
  pod-security: {level: restricted}
  image-tag: {allowedRegistries: [ghcr.io/loom, docker.io, registry.example.com:5000], requireDigest: true, forbiddenTags: [latest, stable]}
  resource-limits: {maxLimitRequestRatio: 2, defaults: {requests: {cpu: 250m, memory: 256Mi}, limits: {cpu: 500m, memory: 512Mi}}}
  writable-paths: {paths: [/tmp, /var/cache/loom]}
  seccomp-profile: {allowedTypes: [Localhost]}
  required-labels: {labels: [app, team], allowedValues: {team: [a, b]}}
  secret-env: {secretNames: [PASSWORD, api-key, ſession], forbiddenNames: [GITHUB_TOKEN, slack.webhook], weakValues: [changeme, Kelvin]}
  high-availability: {minReplicas: 3, spreadFromReplicas: 0}
`,
		"everything-audit": `
defaultAction: audit
policies:
  health-probes: {action: off}
  resource-limits: {maxLimitRequestRatio: 0}
`,
		"overrides": `
namespaces:
  - names: [team-b, "legacy-*"]
    action: warn
exceptions:
  - {name: x, policies: [image-tag], namespace: "sandbox-?", workload: "*", owner: me, reason: test, expires: "2099-01-01"}
`,
	} {
		cfg, errs := LoadConfig([]byte(doc))
		if len(errs) > 0 {
			t.Fatalf("config %s: %v", name, errs.ToAggregate())
		}
		out[name] = cfg
	}
	// Each policy alone: its conditions must be sound by themselves, not only where another
	// policy's happen to cover them.
	for _, r := range Registry() {
		cfg := DefaultConfig()
		for _, o := range Registry() {
			if o.ID != r.ID {
				s := o.Config(&cfg.Policies)
				setAction(s, ActionOff)
			}
		}
		out[onlyPrefix+r.ID] = cfg
		if r.ID == PodSecurityID {
			restricted := *cfg
			restricted.Policies.PodSecurity.Level = "restricted"
			out[onlyPrefix+r.ID+"-restricted"] = &restricted
		}
	}
	return out
}

// onlyPrefix names the test configs with a single policy on.
const onlyPrefix = "only-"

// setAction sets a policy config's action through its embedded Settings.
func setAction(pc PolicyConfig, a Action) {
	v := reflect.ValueOf(pc).Elem()
	if v.Type() == reflect.TypeOf(Settings{}) {
		v.Addr().Interface().(*Settings).Action = a
		return
	}
	v.FieldByName("Settings").Addr().Interface().(*Settings).Action = a
}

// compliantSeeds are merge patches of the base Deployment that make it pass a test config
// whose demands no fixture meets, so that its variants are tried too.
var compliantSeeds = map[string]string{
	"restricted-registries-digests": `{"metadata":{"labels":{"team":"a"}},"spec":{"replicas":3,"template":{"metadata":{"labels":{"team":"a"}},"spec":{
		"securityContext":{"seccompProfile":{"type":"Localhost","localhostProfile":"profiles/loom.json"}},
		"containers":[{"name":"loom","image":"ghcr.io/loom/loom:0.9.3@sha256:` + strings.Repeat("ab", 32) + `",
			"env":[{"name":"TEMPORAL_HOST","value":"temporal:7233"}],
			"resources":{"requests":{"cpu":"250m","memory":"256Mi"},"limits":{"cpu":"500m","memory":"512Mi"}},
			"securityContext":{"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}},
			"livenessProbe":{"httpGet":{"path":"/health/live","port":8081}},"readinessProbe":{"httpGet":{"path":"/health/ready","port":8081}},
			"volumeMounts":[{"name":"tmp","mountPath":"/tmp"},{"name":"cache","mountPath":"/var/cache/loom"}]}],
		"volumes":[{"name":"tmp","emptyDir":{}},{"name":"cache","emptyDir":{}}]}}}}`,
}

func fixtureByName(t testing.TB, objs []fixtureObject, source string) fixtureObject {
	t.Helper()
	for _, o := range objs {
		if o.source == source {
			return o
		}
	}
	t.Fatalf("no fixture %s", source)
	return fixtureObject{}
}

// fixtureObject is one workload object read from the project's fixtures.
type fixtureObject struct {
	source string
	gvk    schema.GroupVersionKind
	json   []byte
}

// fixtureObjects reads every workload document of the project's fixtures and examples:
// the policies' pass, fail and fixed fixtures, the CLI's and the e2e tests' test data, the
// example Loom bundle and the shared cases.
func fixtureObjects(t testing.TB) []fixtureObject {
	t.Helper()
	var files []string
	for _, root := range []string{"testdata", "../cmd/loomguard/testdata", "../test/e2e/testdata", "../manifests/examples", "../webhook/testdata", "../../shared/cases"} {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".json")) && !strings.Contains(p, "fuzz") {
				files = append(files, p)
			}
			return nil
		})
	}
	var out []fixtureObject
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitFixture(data) {
			gvk, err := PeekKind(doc)
			if err != nil || !IsWorkloadGroupKind(gvk.GroupKind()) {
				continue
			}
			js, err := yaml.YAMLToJSON(doc)
			if err != nil {
				continue
			}
			out = append(out, fixtureObject{source: fmt.Sprintf("%s#%d", f, i), gvk: gvk, json: js})
		}
	}
	return out
}

// clearedButFlagged returns why the engine would act on an object the conditions clear: a
// violation of any action, or a fix. "" when it would do nothing.
func clearedButFlagged(e *Engine, dec *Decoder, js []byte, gvk schema.GroupVersionKind, namespace string) (string, bool) {
	obj, err := dec.Decode(js, gvk, false)
	if err != nil {
		return "", false // not an object the API server would have decoded either
	}
	w, _ := NewWorkload(obj)
	if r := e.Evaluate(w, namespace); len(r.Violations) > 0 || len(r.Waivers) > 0 {
		var msgs []string
		for _, v := range r.Violations {
			msgs = append(msgs, v.Message())
		}
		for _, wv := range r.Waivers {
			msgs = append(msgs, "waived "+wv.Policy+" by "+wv.Exception)
		}
		return strings.Join(msgs, "; "), true
	}
	if fixed := e.Mutate(w, namespace); len(fixed) > 0 {
		return "fixed by " + strings.Join(fixed, ", "), true
	}
	return "", true
}

// maxVariedObjects bounds how many cleared objects of each config get variants, which keeps
// the test within seconds.
const maxVariedObjects = 12

// TestMatchConditionsSound proves, on every fixture object of the project and on thousands
// of variants of the cleared ones (each field removed, flipped or set to a telling value, and
// risky fields added), that whenever the API server would skip loomguard's webhooks, the
// engine would have reported nothing and fixed nothing, under each test config and in each
// kind of namespace. It also shows the conditions are worth having: the Loom profile clears
// the compliant fixtures, among them the example Loom bundle's workloads.
func TestMatchConditionsSound(t *testing.T) {
	objs := fixtureObjects(t)
	if len(objs) < 100 {
		t.Fatalf("read only %d fixture objects", len(objs))
	}
	dec := NewDecoder()
	var totalCleared, totalVariants int
	configs := testConfigs(t)
	defer func() {
		if !t.Failed() {
			testsummary.Record(t, "matchConditions with the API server's CEL: %d configs, %d fixture objects and %d variants judged, %d cleared; every cleared object passes and needs no fix",
				len(configs), len(objs), totalVariants, totalCleared)
		}
	}()
	for _, name := range sortedKeys(configs) {
		cfg := configs[name]
		t.Run(name, func(t *testing.T) {
			conds := MatchConditions(cfg)
			if conds == nil {
				t.Fatal("no matchConditions: the config should be expressible")
			}
			e, err := NewEngine(cfg, fixtureClock)
			if err != nil {
				t.Fatal(err)
			}
			j := newCELJudge(t, conds)
			mconds := MutatingMatchConditions(cfg)
			if mconds == nil {
				t.Fatal("no mutating matchConditions")
			}
			jm := newCELJudge(t, mconds)
			objs := objs
			if seed, ok := compliantSeeds[name]; ok {
				base := fixtureByName(t, objs, "testdata/base/deployment.yaml#0")
				objs = append(slices.Clone(objs), fixtureObject{source: "seed", gvk: base.gvk, json: mergePatch(t, base.json, seed)})
			}
			var cleared, variants, clearedVariants, unsound int
			var clearedSources []string
			check := func(source string, js []byte, gvk schema.GroupVersionKind, ns string) bool {
				obj, err := dec.Decode(js, gvk, false)
				if err != nil {
					return false
				}
				// The mutating webhook's conditions: cleared means no fix.
				if !jm.calls(t, obj, gvk, ns, admission.Create, "") {
					o, _ := dec.Decode(js, gvk, false)
					w, _ := NewWorkload(o)
					if fixed := e.Mutate(w, ns); len(fixed) > 0 {
						if unsound++; unsound <= 5 {
							t.Errorf("%s in %s: the mutating webhook's conditions skip it, yet loomguard would fix %v\n%s", source, ns, fixed, js)
						}
					}
				} else if !j.calls(t, obj, gvk, ns, admission.Create, "") {
					t.Errorf("%s in %s: the validating webhook's conditions clear it, the mutating webhook's do not", source, ns)
				}
				if j.calls(t, obj, gvk, ns, admission.Create, "") {
					return false
				}
				why, ok := clearedButFlagged(e, dec, js, gvk, ns)
				if ok && why != "" {
					if unsound++; unsound <= 5 { // the first few say enough
						t.Errorf("%s in %s: the conditions skip it, yet loomguard would act: %s\n%s", source, ns, why, js)
					}
				}
				return true
			}
			namespaces, varied := []string{"team-a", "team-b", "legacy-x", "sandbox-1"}, maxVariedObjects
			if strings.HasPrefix(name, onlyPrefix) {
				namespaces, varied = namespaces[:1], maxVariedObjects/4
			}
			for _, o := range objs {
				for _, ns := range namespaces {
					if check(o.source, o.json, o.gvk, ns) {
						cleared++
						if ns == "team-a" {
							clearedSources = append(clearedSources, o.source)
							if len(clearedSources) > varied {
								continue
							}
							for _, v := range variantsOf(t, o.json) {
								variants++
								if check(o.source+" variant "+v.what, v.json, o.gvk, ns) {
									clearedVariants++
								}
							}
						}
					}
				}
			}
			totalCleared += cleared + clearedVariants
			totalVariants += variants
			if unsound > 5 {
				t.Errorf("... and %d more cleared objects loomguard would act on", unsound-5)
			}
			t.Logf("%s: %d fixture objects, cleared %d (object × namespace); %d variants of the cleared, %d of them cleared", name, len(objs), cleared, variants, clearedVariants)
			if _, ok := compliantSeeds[name]; ok && !slices.Contains(clearedSources, "seed") {
				t.Errorf("the seed object compliant with %s is not cleared", name)
			}
			if name == "loom-profile" {
				for _, want := range []string{"testdata/base/deployment.yaml#0", "../manifests/examples/loom/70-deployment-loom.yaml#0"} {
					if !slices.Contains(clearedSources, want) {
						t.Errorf("%s is compliant and needs no fix, but the conditions do not clear it (cleared: %v)", want, clearedSources)
					}
				}
			}
		})
	}
}

// TestMutatingMatchConditionsLeaveExplicitValues shows what the mutating webhook's cheaper
// conditions (Policy.NoFix) buy: an object with an explicit but wrong value for a fixing
// policy is not sent to the mutating webhook, since the fix never overrides an explicit
// value, while the validating webhook still gets it and the policy reports it.
func TestMutatingMatchConditionsLeaveExplicitValues(t *testing.T) {
	objs := fixtureObjects(t)
	base := fixtureByName(t, objs, "testdata/base/deployment.yaml#0")
	cfg := DefaultConfig()
	e, err := NewEngine(cfg, fixtureClock)
	if err != nil {
		t.Fatal(err)
	}
	jv, jm := newCELJudge(t, MatchConditions(cfg)), newCELJudge(t, MutatingMatchConditions(cfg))
	dec := NewDecoder()
	type object = map[string]any
	for _, tc := range []struct {
		name   string
		edit   func(spec, c object) // the pod spec and its first container
		policy string
	}{
		{"privilege escalation allowed", func(_, c object) { c["securityContext"].(object)["allowPrivilegeEscalation"] = true }, "no-privilege-escalation"},
		{"writable root filesystem", func(_, c object) { c["securityContext"].(object)["readOnlyRootFilesystem"] = false }, "read-only-root-filesystem"},
		{"root allowed for the pod", func(spec, _ object) { spec["securityContext"].(object)["runAsNonRoot"] = false }, "run-as-non-root"},
		{"unconfined seccomp for the pod", func(spec, _ object) {
			spec["securityContext"].(object)["seccompProfile"] = object{"type": "Unconfined"}
		}, "seccomp-profile"},
		{"limit far above the request", func(_, c object) { c["resources"].(object)["limits"].(object)["cpu"] = "8" }, "resource-limits"},
		{"capability added next to ALL dropped", func(_, c object) {
			c["securityContext"].(object)["capabilities"].(object)["add"] = []any{"NET_ADMIN"}
		}, "drop-all-capabilities"},
		{"/tmp from a config map", func(spec, _ object) {
			spec["volumes"].([]any)[0] = object{"name": "tmp", "configMap": object{"name": "scratch"}}
		}, "writable-paths"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d object
			if err := json.Unmarshal(base.json, &d); err != nil {
				t.Fatal(err)
			}
			spec := d["spec"].(object)["template"].(object)["spec"].(object)
			tc.edit(spec, spec["containers"].([]any)[0].(object))
			js, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			decode := func() *Workload {
				obj, err := dec.Decode(js, base.gvk, false)
				if err != nil {
					t.Fatal(err)
				}
				w, _ := NewWorkload(obj)
				return w
			}
			if jm.calls(t, decode().Object, base.gvk, "team-a", admission.Create, "") {
				t.Errorf("the mutating webhook's conditions send it, though no fix applies\n%s", js)
			}
			if !jv.calls(t, decode().Object, base.gvk, "team-a", admission.Create, "") {
				t.Errorf("the validating webhook's conditions clear it\n%s", js)
			}
			if fixed := e.Mutate(decode(), "team-a"); len(fixed) > 0 {
				t.Errorf("loomguard fixes %v", fixed)
			}
			var got []string
			for _, v := range e.Evaluate(decode(), "team-a").Violations {
				got = append(got, v.Policy)
			}
			if !slices.Contains(got, tc.policy) {
				t.Errorf("violations %v, want one of %s", got, tc.policy)
			}
		})
	}
}

// TestMatchConditionsNeverClear lists requests the conditions must always send, whatever
// the object: a subresource, a namespace that the config singles out, a Windows pod, an
// object beyond the limits, and a policy the conditions cannot express.
func TestMatchConditionsNeverClear(t *testing.T) {
	deploy := fixtureByName(t, fixtureObjects(t), "testdata/base/deployment.yaml#0")
	dec := NewDecoder()
	cfgs := testConfigs(t)
	j := newCELJudge(t, MatchConditions(cfgs["overrides"]))
	obj, _ := dec.Decode(deploy.json, deploy.gvk, false)
	if j.calls(t, obj, deploy.gvk, "team-a", admission.Create, "") {
		t.Fatal("the base deployment is not cleared in an ordinary namespace: the cases below prove nothing")
	}
	if !j.calls(t, obj, deploy.gvk, "team-a", admission.Update, "status") {
		t.Error("a subresource request is cleared")
	}
	for _, ns := range []string{"team-b", "legacy-anything", "sandbox-7"} {
		if !j.calls(t, obj, deploy.gvk, ns, admission.Create, "") {
			t.Errorf("namespace %s has an override or an exception, yet the conditions clear objects there", ns)
		}
	}
	edits := map[string]string{
		"windows pod":    `{"spec":{"template":{"spec":{"os":{"name":"windows"}}}}}`,
		"9 containers":   `{"spec":{"template":{"spec":{"initContainers":` + repeatJSON(`{"name":"i%d","image":"ghcr.io/loom/x:1"}`, celMaxContainers) + `}}}}`,
		"33 env entries": `{"spec":{"template":{"spec":{"containers":[{"name":"loom","env":` + repeatJSON(`{"name":"V%d","value":"x"}`, celMaxEnv+1) + `}]}}}}`,
	}
	for what, patch := range edits {
		js := mergePatch(t, deploy.json, patch)
		o, err := dec.Decode(js, deploy.gvk, false)
		if err != nil {
			t.Fatal(err)
		}
		if !j.calls(t, o, deploy.gvk, "team-a", admission.Create, "") {
			t.Errorf("%s: cleared", what)
		}
	}
	cfg := DefaultConfig()
	cfg.Policies.PodSecurity.Version = "v1.24"
	if MatchConditions(cfg) != nil {
		t.Error("pod-security pinned to v1.24 (annotation-based checks) is expressed as conditions")
	}
}

func repeatJSON(format string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(format, i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// mergePatch applies a JSON merge patch (RFC 7386) to a JSON document.
func mergePatch(t testing.TB, doc []byte, patch string) []byte {
	t.Helper()
	var d, p any
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(patch), &p); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(mergeValue(d, p))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mergeValue(d, p any) any {
	pm, ok := p.(map[string]any)
	if !ok {
		return p
	}
	dm, ok := d.(map[string]any)
	if !ok {
		dm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(dm, k)
			continue
		}
		dm[k] = mergeValue(dm[k], v)
	}
	return dm
}

// variant is an object with one change.
type variant struct {
	what string
	json []byte
}

// variantsOf returns variants of a JSON object: each leaf removed, a boolean flipped, a
// number set to 0, 1 and 65535, a string set to telling values; and, in each container and
// in the pod spec, risky fields added.
func variantsOf(t testing.TB, js []byte) []variant {
	t.Helper()
	var root any
	if err := json.Unmarshal(js, &root); err != nil {
		t.Fatal(err)
	}
	var out []variant
	emit := func(what string, edit func(any) any) {
		var copyRoot any
		_ = json.Unmarshal(js, &copyRoot)
		b, err := json.Marshal(edit(copyRoot))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, variant{what: what, json: b})
	}
	var walk func(path []any, v any)
	walk = func(path []any, v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := append(slices.Clone(path), k)
				if len(path) > 0 || (k != "apiVersion" && k != "kind") {
					emit(fmt.Sprint("remove ", p), func(r any) any { return setPath(r, p, nil, true) })
				}
				walk(p, x[k])
			}
		case []any:
			for i, e := range x {
				p := append(slices.Clone(path), i)
				emit(fmt.Sprint("remove ", p), func(r any) any { return setPath(r, p, nil, true) })
				walk(p, e)
			}
		case bool:
			emit(fmt.Sprint("flip ", path), func(r any) any { return setPath(r, path, !x, false) })
		case float64:
			for _, n := range []float64{0, 65535} {
				emit(fmt.Sprint("set ", path, " ", n), func(r any) any { return setPath(r, path, n, false) })
			}
		case string:
			for _, s := range []string{"", "latest", "Unconfined", "/tmp/", "changeme", "windows", "nginx", "DB_PASSWORD", "0.1m"} {
				emit(fmt.Sprintf("set %v %q", path, s), func(r any) any { return setPath(r, path, s, false) })
			}
			if strings.Contains(x, ":") {
				emit(fmt.Sprintf("upper %v", path), func(r any) any { return setPath(r, path, strings.ToUpper(x), false) })
			}
		}
	}
	walk(nil, root)
	// Risky additions, in each container and in the pod spec.
	risky := map[string]string{
		"privileged":        `{"securityContext":{"privileged":true}}`,
		"add capability":    `{"securityContext":{"capabilities":{"add":["NET_BIND_SERVICE"]}}}`,
		"procMount":         `{"securityContext":{"procMount":"Unmasked"}}`,
		"seLinux":           `{"securityContext":{"seLinuxOptions":{"type":"spc_t"}}}`,
		"apparmor":          `{"securityContext":{"appArmorProfile":{"type":"Unconfined"}}}`,
		"hostPort":          `{"ports":[{"containerPort":80,"hostPort":80}]}`,
		"probe host":        `{"readinessProbe":{"httpGet":{"host":"10.0.0.1","port":80}}}`,
		"secret literal":    `{"env":[{"name":"DB_PASSWORD","value":"x"}]}`,
		"camel secret":      `{"env":[{"name":"dbPassword","value":"x"}]}`,
		"forbidden name":    `{"env":[{"name":"githubToken","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]}`,
		"weak value":        `{"env":[{"name":"X","value":" ChangeMe "}]}`,
		"weak arg":          `{"args":["--password=changeme"]}`,
		"folded weak value": `{"env":[{"name":"X","value":"loom-default-paſſword"}]}`,
		"configmap secret":  `{"env":[{"name":"API_KEY","valueFrom":{"configMapKeyRef":{"name":"c","key":"k"}}}]}`,
		"latest image":      `{"image":"ghcr.io/loom/loom:LATEST"}`,
		"untagged image":    `{"image":"ghcr.io/loom/loom"}`,
		"read-only tmp":     `{"volumeMounts":[{"name":"tmp","mountPath":"/tmp","readOnly":true}]}`,
		"unclean tmp":       `{"volumeMounts":[{"name":"cfg","mountPath":"/tmp/"}]}`,
	}
	var spec []any
	switch {
	case hasPath(root, "spec", "jobTemplate"):
		spec = []any{"spec", "jobTemplate", "spec", "template", "spec"}
	case hasPath(root, "spec", "template"):
		spec = []any{"spec", "template", "spec"}
	default:
		spec = []any{"spec"}
	}
	for _, list := range []string{"containers", "initContainers"} {
		cs, _ := getPath(root, append(slices.Clone(spec), list)...).([]any)
		for i := range cs {
			for _, what := range sortedKeys(risky) {
				p := append(slices.Clone(spec), list, i)
				patch := risky[what]
				emit(fmt.Sprint(what, " in ", p), func(r any) any {
					var add any
					_ = json.Unmarshal([]byte(patch), &add)
					c := getPath(r, p...)
					merged := mergeValue(c, add)
					return setPath(r, p, merged, false)
				})
			}
		}
	}
	for what, patch := range map[string]string{
		"hostNetwork":      `{"hostNetwork":true}`,
		"hostPath":         `{"volumes":[{"name":"h","hostPath":{"path":"/"}}]}`,
		"sysctl":           `{"securityContext":{"sysctls":[{"name":"kernel.shm_rmid_forced","value":"1"}]}}`,
		"pod root":         `{"securityContext":{"runAsUser":0}}`,
		"pod unconfined":   `{"securityContext":{"seccompProfile":{"type":"Unconfined"}}}`,
		"tmp not emptyDir": `{"volumes":[{"name":"tmp","configMap":{"name":"c"}}]}`,
	} {
		emit(what+" in pod spec", func(r any) any {
			var add any
			_ = json.Unmarshal([]byte(patch), &add)
			return setPath(r, spec, mergeValue(getPath(r, spec...), add), false)
		})
	}
	return out
}

func hasPath(v any, keys ...string) bool {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[k]; !ok {
			return false
		}
	}
	return true
}

func getPath(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// setPath sets (or with remove, deletes) the value at path in root and returns root.
func setPath(root any, path []any, val any, remove bool) any {
	if len(path) == 0 {
		return val
	}
	parent := getPath(root, path[:len(path)-1]...)
	switch k := path[len(path)-1].(type) {
	case string:
		if m, ok := parent.(map[string]any); ok {
			if remove {
				delete(m, k)
			} else {
				m[k] = val
			}
		}
	case int:
		if l, ok := parent.([]any); ok && k < len(l) {
			if remove {
				nl := append(slices.Clone(l[:k]), l[k+1:]...)
				return setPath(root, path[:len(path)-1], nl, false)
			}
			l[k] = val
		}
	}
	return root
}

// TestMatchConditionsPSAFixtures holds pod-security's conditions, alone, to the Pod
// Security Standards' own fixtures (k8s.io/pod-security-admission test/testdata, every
// level and version, passing and failing): at each level, and at the latest and the oldest
// version the conditions express, every fixture Pod they clear passes the level.
func TestMatchConditionsPSAFixtures(t *testing.T) {
	_, sets, err := psafixtures.Sets()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, set := range sets {
		for _, verdict := range []string{"pass", "fail"} {
			fs, err := filepath.Glob(filepath.Join(set.Dir, verdict, "*.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, fs...)
		}
	}
	if len(files) < 1000 {
		t.Fatalf("found only %d PSA fixtures", len(files))
	}
	dec := NewDecoder()
	pod := corev1.SchemeGroupVersion.WithKind("Pod")
	for _, level := range []string{"baseline", "restricted"} {
		for _, version := range []string{"latest", "v1.25"} {
			cfg := testConfigs(t)[onlyPrefix+PodSecurityID]
			c := *cfg
			c.Policies.PodSecurity.PodSecurityLevel = PodSecurityLevel{Level: level, Version: version}
			conds := MatchConditions(&c)
			if conds == nil {
				t.Fatalf("%s:%s: no conditions", level, version)
			}
			e, err := NewEngine(&c, fixtureClock)
			if err != nil {
				t.Fatal(err)
			}
			j := newCELJudge(t, conds)
			cleared := 0
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				js, err := yaml.YAMLToJSON(data)
				if err != nil {
					t.Fatal(err)
				}
				obj, err := dec.Decode(js, pod, false)
				if err != nil {
					continue
				}
				if j.calls(t, obj, pod, "team-a", admission.Create, "") {
					continue
				}
				cleared++
				if why, _ := clearedButFlagged(e, dec, js, pod, "team-a"); why != "" {
					t.Errorf("%s:%s: %s is cleared, yet loomguard would act: %s", level, version, f, why)
				}
			}
			t.Logf("pod-security %s:%s: %d PSA fixtures, %d cleared", level, version, len(files), cleared)
			if cleared == 0 {
				t.Errorf("%s:%s: no PSA fixture cleared: the comparison proves nothing", level, version)
			}
		}
	}
}

// BenchmarkMatchConditions is what the conditions cost the API server for one request: the
// evaluation of each webhook's conditions on a compliant Pod (all clear) by k8s.io/apiserver's
// matcher, as kube-apiserver runs it for every Pod create (a Pod create pays for validating
// and mutating). policy/<id> are the validating conditions of the Loom profile with only that
// policy on: less policy/none, the policy's own share.
func BenchmarkMatchConditions(b *testing.B) {
	objs := fixtureObjects(b)
	base := fixtureByName(b, objs, "testdata/base/deployment.yaml#0")
	js := mergePatch(b, base.json, `{}`)
	var d map[string]any
	_ = json.Unmarshal(js, &d)
	tmpl := d["spec"].(map[string]any)["template"].(map[string]any)
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": tmpl["metadata"], "spec": tmpl["spec"]}
	pjs, _ := json.Marshal(pod)
	gvk := corev1.SchemeGroupVersion.WithKind("Pod")
	obj, err := NewDecoder().Decode(pjs, gvk, false)
	if err != nil {
		b.Fatal(err)
	}
	type benchCase struct {
		name  string
		conds []MatchCondition
	}
	cases := []benchCase{
		// A constant condition: what the matcher costs whatever the conditions say.
		{"constant", []MatchCondition{{Name: "constant", Expression: "false"}}},
		{"loom-profile", MatchConditions(DefaultConfig())},
		{"loom-profile-mutating", MutatingMatchConditions(DefaultConfig())},
	}
	ids := []string{"none"}
	for _, p := range Catalog(DefaultConfig()) {
		if !p.CrossObject { // not judged in admission: no conditions of their own
			ids = append(ids, p.ID)
		}
	}
	for _, id := range ids {
		doc := "defaultAction: off\n"
		if id != "none" {
			doc += "policies:\n  " + id + ":\n    action: enforce\n"
		}
		cfg, errs := LoadConfig([]byte(doc))
		if len(errs) > 0 {
			b.Fatalf("%s: %v", id, errs)
		}
		cases = append(cases, benchCase{"policy/" + id, MatchConditions(cfg)})
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			j := newCELJudge(b, bc.conds)
			if j.calls(b, obj, gvk, "team-a", admission.Create, "") {
				b.Fatal("the compliant Pod is not cleared")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N { // the typed form only, as kube-apiserver 1.37 evaluates it
				if _, err := j.match(b, obj, gvk, "team-a", admission.Create, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// celCost evaluates the conditions on obj as kube-apiserver does and returns what they
// cost by its runtime cost tracking (the budget less what is left of it).
func celCost(t testing.TB, conds []MatchCondition, obj runtime.Object, gvk schema.GroupVersionKind, namespace string) int64 {
	t.Helper()
	exprs := make([]cel.ExpressionAccessor, len(conds))
	for i, c := range conds {
		exprs[i] = &matchconditions.MatchCondition{Name: c.Name, Expression: c.Expression}
	}
	compiler := cel.NewConditionCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	eval := compiler.CompileCondition(exprs, cel.OptionalVariableDeclarations{HasAuthorizer: true}, environment.StoredExpressions)
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	attr := admission.NewAttributesRecord(obj, nil, gvk, namespace, "costly", gvr, "", admission.Create, nil, false, &user.DefaultInfo{Name: "tester"})
	va, err := admission.NewVersionedAttributes(attr, gvk, nil)
	if err != nil {
		t.Fatal(err)
	}
	const budget = 1 << 40
	results, left, err := eval.ForInput(context.Background(), va, cel.CreateAdmissionRequest(attr, metav1.GroupVersionResource(gvr), metav1.GroupVersionKind(gvk)), cel.OptionalVariableBindings{}, nil, budget)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Error != nil {
			t.Fatalf("condition %v: %v", r.ExpressionAccessor.GetExpression()[:40], r.Error)
		}
	}
	return budget - left
}

// costlyPod is the costliest Pod the conditions of cfg may clear: every list and string at
// its limit, all of it compliant with cfg, so that no condition stops early.
func costlyPod(t testing.TB, cfg *Config) (runtime.Object, schema.GroupVersionKind) {
	t.Helper()
	long := func(n int) string { return strings.Repeat("x", n) }
	image := "ghcr.io/loom/" + strings.Repeat("a", 200) + ":1.0"
	for _, r := range cfg.Policies.ImageTag.AllowedRegistries {
		if h, _, _ := strings.Cut(r, "/"); strings.Contains(h, ".") {
			image = strings.TrimSuffix(r, "/") + "/" + strings.Repeat("a", 150) + ":1.0"
			break
		}
	}
	if cfg.Policies.ImageTag.RequireDigest {
		image = strings.TrimSuffix(image, ":1.0") + "@sha256:" + strings.Repeat("ab", 32)
	}
	paths := writablePathSpecs(cfg.Policies.WritablePaths.Paths)
	var containers []any
	for i := range celMaxContainers {
		var env, args, ports, mounts []any
		for j := range celMaxEnv {
			env = append(env, map[string]any{"name": fmt.Sprintf("V%d%s", j, strings.Repeat("Q", celMaxName-4)), "value": long(celMaxString)})
		}
		for j := range celMaxItems {
			args = append(args, long(celMaxString))
			ports = append(ports, map[string]any{"containerPort": 8000 + j})
			p := "/tmp"
			if len(paths) > 0 {
				p = paths[min(j, len(paths)-1)].path
			}
			mounts = append(mounts, map[string]any{"name": "v0", "mountPath": p})
		}
		drop := []any{"ALL"}
		for len(drop) < celMaxItems {
			drop = append(drop, "NET_RAW")
		}
		containers = append(containers, map[string]any{
			"name": fmt.Sprintf("c%d", i), "image": image,
			"command": args, "args": args, "env": env, "ports": ports, "volumeMounts": mounts,
			"resources":       map[string]any{"requests": map[string]any{"cpu": "250m", "memory": "256Mi"}, "limits": map[string]any{"cpu": "500m", "memory": "512Mi"}},
			"securityContext": map[string]any{"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": map[string]any{"drop": drop}},
			"livenessProbe":   map[string]any{"httpGet": map[string]any{"path": "/", "port": 8000}},
			"readinessProbe":  map[string]any{"httpGet": map[string]any{"path": "/", "port": 8000}},
		})
	}
	var volumes []any
	for len(volumes) < celMaxVolumes {
		volumes = append(volumes, map[string]any{"name": fmt.Sprintf("v%d", len(volumes)), "emptyDir": map[string]any{}})
	}
	labels, annotations := map[string]any{}, map[string]any{}
	for _, k := range cfg.Policies.RequiredLabels.Labels {
		labels[k] = "x"
		if v := cfg.Policies.RequiredLabels.AllowedValues[k]; len(v) > 0 {
			labels[k] = v[0]
		}
	}
	for i := 0; len(labels) < celMaxMeta; i++ {
		labels[fmt.Sprintf("l%d", i)] = "v"
	}
	for len(annotations) < celMaxMeta {
		annotations[fmt.Sprintf("a%d%s", len(annotations), strings.Repeat("b", 60))] = long(100)
	}
	seccomp := map[string]any{"type": "RuntimeDefault"}
	if !slices.Contains(cfg.Policies.SeccompProfile.AllowedTypes, "RuntimeDefault") {
		seccomp = map[string]any{"type": "Localhost", "localhostProfile": "p.json"}
	}
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "costly", "labels": labels, "annotations": annotations},
		"spec": map[string]any{"containers": containers, "volumes": volumes,
			"securityContext": map[string]any{"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": seccomp}},
	}
	js, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	gvk := corev1.SchemeGroupVersion.WithKind("Pod")
	obj, err := NewDecoder().Decode(js, gvk, false)
	if err != nil {
		t.Fatal(err)
	}
	return obj, gvk
}

// TestMatchConditionsCostModel holds the policies' Cost to what the API server measures: for
// each test config and for configs that make the conditions costlier (long lists of weak
// values and secret names, many paths and registries), the conditions of the costliest Pod
// they may clear cost no more than the model says, and a config the model puts over
// celCostLimit gets no conditions. An evaluation over the API server's budget would be an
// error, and under failurePolicy Fail a denial.
func TestMatchConditionsCostModel(t *testing.T) {
	configs := testConfigs(t)
	many := func(format string, n int) string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf(format, i))
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	for name, doc := range map[string]string{
		"weak-values-10":    "policies:\n  secret-env: {weakValues: " + many("weakpassword%03d", 10) + "}\n",
		"weak-values-50":    "policies:\n  secret-env: {weakValues: " + many("weakpassword%03d", 50) + "}\n",
		"secret-names-30":   "policies:\n  secret-env: {secretNames: " + many("SECRETWORD%03d", 30) + "}\n",
		"secret-names-80":   "policies:\n  secret-env: {secretNames: " + many("SECRETWORD%03d", 80) + "}\n",
		"writable-paths-4":  "policies:\n  writable-paths: {paths: [/tmp, /var/cache, /home/loom, /run]}\n",
		"writable-paths-12": "policies:\n  writable-paths: {paths: " + many("/w%d", 12) + "}\n",
		"registries-20":     "policies:\n  image-tag: {allowedRegistries: " + many("registry%02d.example.com/team/loom", 20) + "}\n",
	} {
		cfg, errs := LoadConfig([]byte(doc))
		if len(errs) > 0 {
			t.Fatalf("%s: %v", name, errs.ToAggregate())
		}
		configs[name] = cfg
	}
	pod := &workloadKinds[0]
	for _, name := range sortedKeys(configs) {
		cfg := configs[name]
		for _, fixesOnly := range []bool{false, true} {
			conds, _ := matchConditions(cfg, fixesOnly)
			e, err := newEngine(cfg, Catalog(cfg), nil)
			if err != nil {
				t.Fatal(err)
			}
			model := uint64(celBaseCost)
			for i := range e.policies {
				p := &e.policies[i]
				a := e.actions[p.ID]
				if a == ActionOff || p.CrossObject || (fixesOnly && (!e.fixes[p.ID] || (a != ActionEnforce && a != ActionWarn))) {
					continue
				}
				if c, ok := p.clearance(fixesOnly)(newCELTemplate(pod)); ok {
					model += c.Cost
				}
			}
			if conds == nil {
				t.Logf("%s (mutating %v): no conditions, model %d", name, fixesOnly, model)
				continue
			}
			if model > celCostLimit {
				t.Errorf("%s (mutating %v): conditions although the model says %d, over %d", name, fixesOnly, model, celCostLimit)
			}
			obj, gvk := costlyPod(t, cfg)
			if j := newCELJudge(t, conds); j.calls(t, obj, gvk, "team-a", admission.Create, "") && !strings.Contains(name, "restricted-registries") && !strings.HasPrefix(name, "registries") {
				t.Errorf("%s (mutating %v): the costliest Pod is sent, not cleared: the measure would miss what a cleared one costs", name, fixesOnly)
			}
			got := celCost(t, conds, obj, gvk, "team-a")
			if uint64(got) > model {
				t.Errorf("%s (mutating %v): the API server measures %d, more than the model's %d", name, fixesOnly, got, model)
			}
			if !fixesOnly && (name == "loom-profile" || strings.HasPrefix(name, "weak") || strings.HasPrefix(name, "secret") || strings.HasPrefix(name, "writable")) {
				t.Logf("%s: measured %d, model %d (limit %d)", name, got, model, celCostLimit)
			}
		}
	}
	if MatchConditions(configs["weak-values-50"]) != nil || MatchConditions(configs["secret-names-80"]) != nil {
		t.Error("configs whose regular expressions could exhaust the API server's CEL budget get conditions")
	}
}

// TestMatchConditionsCompileOnKubernetes130 compiles every test config's conditions as a
// kube-apiserver 1.30 validates a new webhook configuration's matchConditions: in the
// NewExpressions environment of its compatibility version, 1.29 (k8s.io/apiserver's
// DefaultCompatibilityVersion is the minor before the server's; the base environment's
// libraries carry the version that introduced them, and the optional types and the quantity
// library the conditions use came with 1.28). A condition that needs a newer library would
// be refused there, and loomguard's syncer would leave that webhook without conditions.
func TestMatchConditionsCompileOnKubernetes130(t *testing.T) {
	compiler := cel.NewCompiler(environment.MustBaseEnvSet(version.MajorMinor(1, 29)))
	configs := testConfigs(t)
	for _, name := range sortedKeys(configs) {
		cfg := configs[name]
		for webhook, conds := range map[string][]MatchCondition{"validating": MatchConditions(cfg), "mutating": MutatingMatchConditions(cfg)} {
			for _, c := range conds {
				r := compiler.CompileCELExpression(&matchconditions.MatchCondition{Name: c.Name, Expression: c.Expression},
					cel.OptionalVariableDeclarations{HasAuthorizer: true}, environment.NewExpressions)
				if r.Error != nil {
					msg := r.Error.Error()
					if len(msg) > 500 {
						msg = msg[:500] + "..."
					}
					t.Errorf("%s, %s webhook, condition %s: refused by the 1.29 environment: %s", name, webhook, c.Name, msg)
				}
			}
		}
	}
}
