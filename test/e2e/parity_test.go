package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/internal/testsummary"
	"github.com/loomguard/loomguard/policies"
)

// parityExcluded are the fixture directories the parity test leaves out, with why.
var parityExcluded = map[string]string{
	"cmd/loomguard/testdata/bad":        "deliberately malformed input: check refuses each file as an input error, and the API server could not decode it either",
	"cmd/loomguard/testdata/config":     "loomguard configs, not manifests",
	"cmd/loomguard/testdata/golden":     "the CLI's expected outputs, not manifests",
	"cmd/loomguard/testdata/gatekeeper": "Gatekeeper Constraints and a corpus judged under migrated configs (test/e2e's gatekeeper test compares those)",
}

// warningRecorder keeps the warnings of the requests it serves, for one request at a time.
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, text)
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.warnings
	w.warnings = nil
	return out
}

// admissionAnswer is what a dry-run create through loomguard says about one object.
type admissionAnswer struct {
	denied   bool
	enforced []string // policy IDs of the denial's causes
	warned   []string // policy IDs of the warnings
	fixed    []string // what the mutating webhook fixed
	invalid  string   // the API server refused the object itself as invalid (422), not loomguard
	failed   string   // the request failed otherwise (a webhook call that timed out, say)
}

func (a admissionAnswer) String() string {
	return fmt.Sprintf("denied=%v enforce=%v warn=%v fixed=%v", a.denied, a.enforced, a.warned, a.fixed)
}

// checkAnswer is what `loomguard check` says about one object.
type checkAnswer struct {
	denied   bool
	enforced []string
	warned   []string
}

func (c checkAnswer) String() string {
	return fmt.Sprintf("denied=%v enforce=%v warn=%v", c.denied, c.enforced, c.warned)
}

// TestParity holds `loomguard check` and `loomguard fix` to what the real API server does
// through loomguard, on every fixture the project has: for each workload, a dry-run create
// (kubectl apply --dry-run=server's API call) of the file's object is fixed by the mutating
// webhook exactly as `loomguard fix` fixes it, and decided by the validating webhook as
// `loomguard check` decides the fixed object (same decision, same enforce and warn policy
// IDs; audit violations never reach the client); and `fix`'s output, dry-run created, is
// admitted with no further patch and the same decision. Cross-object policies are off on
// the CLI side, as admission never sees the related objects.
func TestParity(t *testing.T) {
	s := newScenario(t, "e2e-parity")
	root := s.c.RepoRoot()
	bin := s.c.BinPath("loomguard")
	files := parityFiles(t, root)

	rec := &warningRecorder{}
	cfg := s.c.RESTConfig()
	cfg.WarningHandlerWithContext = nil
	cfg.WarningHandler = rec
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	namespaces := map[string]bool{}
	objects, unstorable := 0, 0
	for _, file := range files {
		rel, _ := filepath.Rel(root, file)
		if rel == file || strings.HasPrefix(rel, "..") {
			rel = file
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// Every object goes to the scenario's namespace, on both sides: other tests keep real
		// objects of the same names in the fixtures' own namespaces (the Loom bundle's in
		// loom), which a dry-run create would collide with. The default config treats all
		// these namespaces alike.
		raw = inDefaultNamespace(raw)
		fixedOut, ok := runLoomguard(t, bin, raw, "fix", "-f", "-", "-n", s.ns)
		if !ok {
			t.Logf("%s: not compared, loomguard refuses it as input (exit 2)", rel)
			continue
		}
		rawDocs, fixedDocs := splitDocs(raw), splitDocs(fixedOut)
		if len(rawDocs) != len(fixedDocs) {
			t.Errorf("%s: fix printed %d documents for %d", rel, len(fixedDocs), len(rawDocs))
			continue
		}
		verdicts := checkVerdicts(t, bin, fixedOut, s.ns)
		for i := range rawDocs {
			obj, ok := workloadObject(rawDocs[i])
			if !ok {
				continue
			}
			fixedObj, _ := workloadObject(fixedDocs[i])
			ns := obj.GetNamespace()
			if ns == "" {
				ns = s.ns
			}
			obj.SetNamespace(ns)
			fixedObj.SetNamespace(ns)
			if !namespaces[ns] {
				namespaces[ns] = true
				if err := s.c.CreateNamespace(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
					t.Fatal(err)
				}
			}
			where := fmt.Sprintf("%s document %d (%s %s/%s)", rel, i, obj.GetKind(), ns, obj.GetName())
			want, ok := verdicts[verdictKey(fixedObj)]
			if !ok {
				t.Errorf("%s: check reported no result for it", where)
				continue
			}
			objects++
			if eph, found, _ := unstructured.NestedSlice(obj.Object, "spec", "ephemeralContainers"); found && len(eph) > 0 && obj.GetKind() == "Pod" {
				// The API server refuses ephemeral containers on create: they reach admission
				// through pods/ephemeralcontainers, as kubectl debug sends them.
				compareEphemeral(t, where, bin, dyn, rec, obj)
				continue
			}
			got := dryRunCreate(t, dyn, rec, obj)
			if got.failed != "" {
				t.Errorf("%s: the dry-run create failed: %s", where, got.failed)
				continue
			}
			if got.invalid != "" {
				unstorable++
				t.Logf("%s: not compared, the API server refuses the object itself: %s", where, got.invalid)
				continue
			}
			wantFixed := fixedList(fixedObj)
			if !slices.Equal(got.fixed, wantFixed) {
				t.Errorf("%s: the mutating webhook fixed %v, loomguard fix fixed %v", where, got.fixed, wantFixed)
			}
			compareAnswers(t, where, got, want)

			again := dryRunCreate(t, dyn, rec, fixedObj)
			if again.failed != "" {
				t.Errorf("%s: the dry-run create of loomguard fix's output failed: %s", where, again.failed)
				continue
			}
			if again.invalid != "" {
				t.Errorf("%s: the API server refuses loomguard fix's output: %s", where, again.invalid)
				continue
			}
			if len(again.fixed) > 0 {
				t.Errorf("%s: loomguard fix's output gets a further patch in admission: %v", where, again.fixed)
			}
			compareAnswers(t, where+" (fix output)", again, want)
		}
	}
	testsummary.Record(t, "parity with the API server: %d files, %d workload objects compared (%d refused by the API server itself, not compared)", len(files), objects-unstorable, unstorable)
	if objects-unstorable < 50 {
		t.Errorf("only %d objects compared: the fixture walk is broken", objects-unstorable)
	}
}

func compareAnswers(t *testing.T, where string, got admissionAnswer, want checkAnswer) {
	t.Helper()
	if got.denied != want.denied || !slices.Equal(got.enforced, want.enforced) || !slices.Equal(got.warned, want.warned) {
		var ids []string
		for _, id := range append(append(append([]string{}, got.enforced...), got.warned...), append(want.enforced, want.warned...)...) {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		t.Errorf("%s: policies %v differ: API server through loomguard says %s; loomguard check says %s", where, ids, got, want)
	}
}

// parityFiles lists every fixture: policies/testdata, cmd/loomguard/testdata (but the
// excluded directories), manifests/examples and the shared cases.
func parityFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	walk := func(dir string) {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if d.IsDir() {
				if _, ok := parityExcluded[rel]; ok || (strings.HasPrefix(d.Name(), ".") && p != dir) {
					return filepath.SkipDir // hidden directories: check does not read them either
				}
				return nil
			}
			if ext := filepath.Ext(p); ext == ".yaml" || ext == ".yml" || ext == ".json" {
				if !strings.HasSuffix(p, ".config.yaml") && filepath.Base(p) != "kustomization.yaml" {
					files = append(files, p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	walk(filepath.Join(root, "policies", "testdata"))
	walk(filepath.Join(root, "cmd", "loomguard", "testdata"))
	walk(filepath.Join(root, "manifests", "examples"))
	walk(sharedCases(t, root))
	sort.Strings(files)
	return files
}

// sharedCases finds ../shared/cases from the repository root (CI), or beside a parent of it.
// Under CI=true a missing directory fails the test.
func sharedCases(t *testing.T, root string) string {
	t.Helper()
	for dir := root; ; dir = filepath.Dir(dir) {
		d := filepath.Join(filepath.Dir(dir), "shared", "cases")
		if _, err := os.Stat(filepath.Join(d, "README.md")); err == nil {
			return d
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the shared cases are missing: no shared/cases/README.md beside %s or a parent", root)
	}
	t.Logf("no shared/cases beside the repository: the shared cases are not compared")
	return filepath.Join(root, "nonexistent-shared-cases")
}

// runLoomguard runs the CLI; false when it refused its input (exit 2).
func runLoomguard(t *testing.T, bin string, stdin []byte, args ...string) ([]byte, bool) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case err == nil, errors.As(err, &exit) && exit.ExitCode() == 1:
		return out, true
	case errors.As(err, &exit) && exit.ExitCode() == 2:
		return nil, false
	}
	t.Fatalf("loomguard %v: %v\n%s", args, err, stderr.String())
	return nil, false
}

// checkVerdicts runs check on fixed output and returns each workload's answer by key.
func checkVerdicts(t *testing.T, bin string, manifests []byte, namespace string) map[string]checkAnswer {
	t.Helper()
	out, ok := runLoomguard(t, bin, manifests, "check", "-f", "-", "-o", "json", "--cross-object", "off", "-n", namespace)
	if !ok {
		t.Fatalf("check refuses loomguard fix's output as input")
	}
	var rep struct {
		Results []struct {
			Kind, Namespace, Name, Decision string
			Violations                      []struct{ Policy, Action string }
		}
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("check -o json: %v\n%s", err, out)
	}
	m := map[string]checkAnswer{}
	for _, r := range rep.Results {
		var a checkAnswer
		a.denied = r.Decision == "denied"
		for _, v := range r.Violations {
			switch v.Action {
			case "enforce":
				a.enforced = appendOnce(a.enforced, v.Policy)
			case "warn":
				a.warned = appendOnce(a.warned, v.Policy)
			}
		}
		sort.Strings(a.enforced)
		sort.Strings(a.warned)
		m[r.Kind+" "+r.Namespace+"/"+r.Name] = a
	}
	return m
}

func verdictKey(o *unstructured.Unstructured) string {
	name := o.GetName()
	if name == "" {
		name = o.GetGenerateName()
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + name
}

func appendOnce(l []string, s string) []string {
	if slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}

// splitDocs splits a YAML stream at its "---" lines, as loomguard numbers documents.
// inDefaultNamespace removes metadata.namespace from every document of data that is a
// YAML or JSON object, so that `-n` decides it; everything else of the document keeps its
// spelling (numbers, quantities, quoting), and other documents are kept as they are.
func inDefaultNamespace(data []byte) []byte {
	docs := splitDocs(data)
	for i, doc := range docs {
		var root yamlv3.Node
		if err := yamlv3.Unmarshal(doc, &root); err != nil || len(root.Content) != 1 || root.Content[0].Kind != yamlv3.MappingNode {
			continue
		}
		meta := mappingValue(root.Content[0], "metadata")
		if meta == nil || meta.Kind != yamlv3.MappingNode {
			continue
		}
		removed := false
		for j := 0; j+1 < len(meta.Content); j += 2 {
			if meta.Content[j].Value == "namespace" {
				meta.Content = append(meta.Content[:j], meta.Content[j+2:]...)
				removed = true
				break
			}
		}
		if !removed {
			continue
		}
		out, err := yamlv3.Marshal(&root)
		if err != nil {
			continue
		}
		docs[i] = bytes.TrimSuffix(out, []byte("\n"))
	}
	return bytes.Join(docs, []byte("\n---\n"))
}

// mappingValue returns the value of key in a YAML mapping node, or nil.
func mappingValue(m *yamlv3.Node, key string) *yamlv3.Node {
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == key {
			return m.Content[j+1]
		}
	}
	return nil
}

func splitDocs(data []byte) [][]byte {
	data = bytes.TrimPrefix(data, []byte("---\n"))
	return bytes.Split(data, []byte("\n---\n"))
}

// workloadObject decodes a document that is one workload object (not a List, not an
// AdmissionReview, not another kind).
func workloadObject(doc []byte) (*unstructured.Unstructured, bool) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil || len(bytes.TrimSpace(js)) == 0 || js[0] != '{' {
		return nil, false
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, false
	}
	if !policies.IsWorkloadGroupKind(u.GroupVersionKind().GroupKind()) || u.GetName() == "" && u.GetGenerateName() == "" {
		return nil, false
	}
	return &u, true
}

func fixedList(o *unstructured.Unstructured) []string {
	v := o.GetAnnotations()["loomguard.io/fixed"]
	if v == "" {
		return nil
	}
	l := strings.Split(v, ",")
	sort.Strings(l)
	return l
}

var workloadResources = map[string]string{
	"Pod": "pods", "Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets",
	"ReplicaSet": "replicasets", "Job": "jobs", "CronJob": "cronjobs",
}

// dryRunCreate creates obj with dryRun=All and reads loomguard's answer from the result.
func dryRunCreate(t *testing.T, dyn dynamic.Interface, rec *warningRecorder, obj *unstructured.Unstructured) admissionAnswer {
	t.Helper()
	gvk := obj.GroupVersionKind()
	gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: workloadResources[gvk.Kind]}
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	// A request that fails for another reason than the answer (a webhook call that timed out
	// while other test packages load the machine) is tried again, a few times: the test
	// compares answers, and one that never comes is a failure.
	var a admissionAnswer
	for try := range 5 {
		if try > 0 {
			time.Sleep(time.Second)
		}
		rec.take()
		_, err := dyn.Resource(gvr).Namespace(obj.GetNamespace()).Create(ctx, obj.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if a = answerOf(rec, err); a.failed == "" {
			break
		}
	}
	return a
}

// answerOf reads loomguard's answer from a request's warnings and error.
func answerOf(rec *warningRecorder, err error) admissionAnswer {
	var a admissionAnswer
	for _, w := range rec.take() {
		if fixed, ok := strings.CutPrefix(w, "loomguard fixed: "); ok {
			a.fixed = strings.Split(fixed, ", ")
			sort.Strings(a.fixed)
			continue
		}
		if id, ok := policyOf(w); ok {
			a.warned = appendOnce(a.warned, id)
		}
	}
	sort.Strings(a.warned)
	var status apierrors.APIStatus
	switch {
	case err == nil:
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "loomguard"):
		a.denied = true
		if errors.As(err, &status) && status.Status().Details != nil {
			for _, c := range status.Status().Details.Causes {
				if id, ok := policyOf(c.Message); ok {
					a.enforced = appendOnce(a.enforced, id)
				}
			}
		}
		sort.Strings(a.enforced)
	case apierrors.IsInvalid(err):
		a.invalid = err.Error()
	default:
		a.failed = err.Error()
	}
	return a
}

// policyOf reads the policy ID of "[policy-id] ...".
func policyOf(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "[")
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "]")
	return id, ok
}

var _ rest.WarningHandler = (*warningRecorder)(nil)

// compareEphemeral creates the Pod without its ephemeral containers, then adds them with a
// dry-run update of pods/ephemeralcontainers: loomguard's answer there must be check's on the
// whole Pod (the mutating webhook does not fix ephemeral containers), provided check finds
// nothing in the Pod without them (else the subresource is judged on what it adds only).
func compareEphemeral(t *testing.T, where, bin string, dyn dynamic.Interface, rec *warningRecorder, obj *unstructured.Unstructured) {
	t.Helper()
	running := obj.DeepCopy()
	unstructured.RemoveNestedField(running.Object, "spec", "ephemeralContainers")
	js, err := running.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := checkVerdicts(t, bin, js, running.GetNamespace())[verdictKey(running)]
	if before.denied || len(before.warned) > 0 {
		t.Logf("%s: not compared, the Pod has violations of its own without its ephemeral containers", where)
		return
	}
	pods := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace(obj.GetNamespace())
	created, err := pods.Create(t.Context(), running, metav1.CreateOptions{})
	if err != nil {
		t.Errorf("%s: creating the Pod without its ephemeral containers: %v", where, err)
		return
	}
	defer func() {
		if err := pods.Delete(context.Background(), created.GetName(), metav1.DeleteOptions{}); err != nil {
			t.Errorf("%s: deleting the Pod: %v", where, err)
		}
	}()
	withEph := obj.DeepCopy()
	withEph.SetResourceVersion(created.GetResourceVersion())
	withEph.SetUID(created.GetUID())
	rec.take()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	_, err = pods.Update(ctx, withEph, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}, "ephemeralcontainers")
	got := answerOf(rec, err)
	if got.failed != "" {
		t.Errorf("%s: pods/ephemeralcontainers failed: %s", where, got.failed)
		return
	}
	if got.invalid != "" {
		t.Errorf("%s: pods/ephemeralcontainers refused by the API server itself: %s", where, got.invalid)
		return
	}
	js, err = obj.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := checkVerdicts(t, bin, js, obj.GetNamespace())[verdictKey(obj)]
	if len(got.fixed) > 0 {
		t.Errorf("%s: the mutating webhook patched pods/ephemeralcontainers: %v", where, got.fixed)
	}
	compareAnswers(t, where+" (pods/ephemeralcontainers)", got, want)
}
