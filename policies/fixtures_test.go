package policies

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden fixed/ fixtures")

// fixtureClock is a fixed instant, so fixtures never depend on the date they run.
func fixtureClock() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }

func fixtureEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := NewEngine(DefaultConfig(), fixtureClock)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// loadWorkload decodes a fixture strictly. Its first document is the workload. Further
// documents, PodDisruptionBudgets and NetworkPolicies of the workload's namespace, form
// its Related view (the cross-object policies' fixtures use them): a fixture with more
// than one document states the namespace's whole truth, one without leaves the view
// unknown (nil), as in admission.
func loadWorkload(t testing.TB, path string) *Workload {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder()
	var w *Workload
	for i, doc := range splitFixture(data) {
		gvk, err := PeekKind(doc)
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		obj, err := dec.Decode(doc, gvk, true)
		if err != nil {
			t.Fatalf("decoding %s: document %d: %v", path, i, err)
		}
		if i == 0 {
			var ok bool
			if w, ok = NewWorkload(obj); !ok {
				t.Fatalf("%s: %s is not a workload", path, gvk)
			}
			continue
		}
		if ns := obj.(interface{ GetNamespace() string }).GetNamespace(); ns != w.Meta.Namespace {
			t.Fatalf("%s: document %d is in namespace %q, the workload in %q", path, i, ns, w.Meta.Namespace)
		}
		if w.Related == nil {
			w.Related = NewRelated()
		}
		if !w.Related.Add(obj) {
			t.Fatalf("%s: document %d: %s cannot be part of a Related view", path, i, gvk)
		}
	}
	if w == nil {
		t.Fatalf("%s holds no document", path)
	}
	return w
}

// evaluate evaluates w in its own namespace, as the audit does.
func evaluate(e *Engine, w *Workload) Report { return e.Evaluate(w, w.Meta.Namespace) }

// splitFixture splits a fixture at its "---" lines, dropping documents without content.
func splitFixture(data []byte) [][]byte {
	var docs [][]byte
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		content := false
		for line := range bytes.Lines(doc) {
			if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' && !bytes.Equal(l, []byte("---")) {
				content = true
				break
			}
		}
		if content {
			docs = append(docs, doc)
		}
	}
	return docs
}

func yamlFiles(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func policiesOf(r Report) []string {
	var ids []string
	for _, v := range r.Violations {
		if !slices.Contains(ids, v.Policy) {
			ids = append(ids, v.Policy)
		}
	}
	return ids
}

func messages(r Report) string {
	var b strings.Builder
	for _, v := range r.Violations {
		b.WriteString("\n  " + v.Message())
	}
	return b.String()
}

// TestFixtures enforces the fixture invariants: every policy has pass and fail cases and
// no directory is an orphan; the base and every pass fixture pass every policy; a fail
// fixture fails only its own policy; fixed/ is the golden Mutate(fail), which passes
// unless the fixture is named unfixable-*; and Mutate is idempotent. A cross-object
// policy's fail fixtures carry the related objects that make them fail, and pass without
// them: admission, which never has that view, never reports them.
func TestFixtures(t *testing.T) {
	e := fixtureEngine(t)
	byID := map[string]Policy{}
	for _, p := range e.Policies() {
		byID[p.ID] = p
	}

	for _, f := range yamlFiles(t, "testdata/base") {
		if r := evaluate(e, loadWorkload(t, f)); len(r.Violations) > 0 {
			t.Errorf("base %s has violations:%s", f, messages(r))
		}
	}

	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "base" || d.Name() == "fuzz" {
			continue
		}
		if _, ok := byID[d.Name()]; !ok {
			t.Errorf("testdata/%s is not a policy ID (orphan fixture directory)", d.Name())
		}
		seen[d.Name()] = true
	}
	for _, p := range e.Policies() {
		if !seen[p.ID] {
			t.Errorf("policy %s has no testdata/%s", p.ID, p.ID)
			continue
		}
		t.Run(p.ID, func(t *testing.T) { testPolicyFixtures(t, e, p) })
	}
}

func testPolicyFixtures(t *testing.T, e *Engine, p Policy) {
	dir := filepath.Join("testdata", p.ID)
	passes, fails := yamlFiles(t, filepath.Join(dir, "pass")), yamlFiles(t, filepath.Join(dir, "fail"))
	if len(passes) == 0 || len(fails) == 0 {
		t.Fatalf("%s needs pass/ and fail/ fixtures (has %d and %d)", dir, len(passes), len(fails))
	}
	for _, f := range passes {
		if r := evaluate(e, loadWorkload(t, f)); len(r.Violations) > 0 {
			t.Errorf("%s has violations:%s", f, messages(r))
		}
	}
	fixedWant := map[string]bool{}
	for _, f := range fails {
		w := loadWorkload(t, f)
		r := evaluate(e, w)
		if got := policiesOf(r); !slices.Equal(got, []string{p.ID}) {
			t.Errorf("%s: want violations of %s only, got%s", f, p.ID, messages(r))
		}
		if p.CrossObject {
			if w.Related == nil {
				t.Errorf("%s: a fail fixture of a cross-object policy needs related documents (a PodDisruptionBudget or NetworkPolicy)", f)
			}
			unknown := *w
			unknown.Related = nil
			if r := evaluate(e, &unknown); len(r.Violations) > 0 {
				t.Errorf("%s: without a related view (as in admission) it must pass, got%s", f, messages(r))
			}
		}
		if p.Fix == nil {
			continue
		}
		name := filepath.Base(f)
		fixedWant[name] = true
		before := w.Object.DeepCopyObject()
		fixed := e.Mutate(w, w.Meta.Namespace)
		unfixable := strings.HasPrefix(name, "unfixable-")
		if slices.ContainsFunc(fixed, func(id string) bool { return id != p.ID }) {
			t.Errorf("%s: fixes %v touched policies other than %s", f, fixed, p.ID)
		}
		if r := evaluate(e, w); unfixable != (len(r.Violations) > 0) {
			if unfixable {
				t.Errorf("%s is named unfixable-* but passes after Mutate", f)
			} else {
				t.Errorf("%s still fails after Mutate %v:%s", f, fixed, messages(r))
			}
		}
		if !unfixable && equality.Semantic.DeepEqual(before, w.Object) {
			t.Errorf("%s: Mutate changed nothing", f)
		}
		checkGolden(t, filepath.Join(dir, "fixed", name), w.Object)
		again := w.Object.DeepCopyObject()
		if second := e.Mutate(w, w.Meta.Namespace); len(second) > 0 || !equality.Semantic.DeepEqual(again, w.Object) {
			t.Errorf("%s: Mutate is not idempotent: the second run fixed %v", f, second)
		}
	}
	for _, f := range yamlFiles(t, filepath.Join(dir, "fixed")) {
		if !fixedWant[filepath.Base(f)] {
			t.Errorf("%s has no fail/ counterpart (orphan)", f)
		}
	}
}

func checkGolden(t *testing.T, path string, obj runtime.Object) {
	t.Helper()
	got, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./policies -run TestFixtures -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from Mutate(fail) (rerun with -update and review the diff):\n%s", path, got)
	}
}
