package mutation

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"gomodules.xyz/jsonpatch/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/policies"
)

// applyReference is Apply as it was before diffValues: jsonpatch.CreatePatch from raw to
// the fixed object and from raw to the typed round trip, each decoding raw anew. The
// differential tests hold Apply to it.
func applyReference(e *policies.Engine, w *policies.Workload, raw []byte, namespace string) ([]string, []jsonpatch.Operation, error) {
	fixed := e.Mutate(w, namespace)
	if len(fixed) == 0 {
		return nil, nil, nil
	}
	if w.Meta.Annotations == nil {
		w.Meta.Annotations = map[string]string{}
	}
	w.Meta.Annotations[FixedAnnotation] = strings.Join(fixed, ",")
	current, err := json.Marshal(w.Object)
	if err != nil {
		return nil, nil, err
	}
	ops, err := jsonpatch.CreatePatch(raw, current)
	if err != nil {
		return nil, nil, err
	}
	fresh := reflect.New(reflect.TypeOf(w.Object).Elem()).Interface()
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, fresh); err != nil {
		return nil, nil, err
	}
	same, err := json.Marshal(fresh)
	if err != nil {
		return nil, nil, err
	}
	noise, err := jsonpatch.CreatePatch(raw, same)
	if err != nil {
		return nil, nil, err
	}
	return fixed, relevant(ops, noise), nil
}

// workload decodes one JSON document leniently, or returns nil when it is not a workload.
func workload(raw []byte) *policies.Workload {
	gvk, err := policies.PeekKind(raw)
	if err != nil {
		return nil
	}
	obj, err := policies.NewDecoder().Decode(raw, gvk, false) // as the webhook: fields newer than loomguard's types pass
	if err != nil {
		return nil
	}
	w, ok := policies.NewWorkload(obj)
	if !ok {
		return nil
	}
	return w
}

// fixtureDocuments returns every YAML document under the repository's test data, as JSON,
// named by file and index.
func fixtureDocuments(t testing.TB) map[string][]byte {
	t.Helper()
	docs := map[string][]byte{}
	for _, root := range []string{"../policies/testdata", "../cmd/loomguard/testdata", "../test/e2e/testdata", "../webhook/testdata"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return filepath.SkipDir
			}
			if err != nil || d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml" && filepath.Ext(path) != ".json") {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
			for i := 0; ; i++ {
				doc, err := r.Read()
				if err == io.EOF {
					break
				}
				if err != nil {
					break // a fixture of bad input
				}
				raw, err := yaml.YAMLToJSON(doc)
				if err != nil || len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
					continue
				}
				docs[fmt.Sprintf("%s#%d", path, i)] = raw
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return docs
}

// sortedOps orders operations by path, for comparing two patches as sets of operations.
func sortedOps(ops []jsonpatch.Operation) []jsonpatch.Operation {
	out := slices.Clone(ops)
	slices.SortStableFunc(out, func(a, b jsonpatch.Operation) int { return cmp.Compare(a.Path, b.Path) })
	return out
}

// assertSameAsReference applies the fixes to raw both ways, each on its own decoding, and
// fails unless Apply's patch is the reference's operation for operation, and its JSON too.
func assertSameAsReference(t *testing.T, e *policies.Engine, name string, raw []byte) (fixed bool) {
	t.Helper()
	w, ref := workload(raw), workload(raw)
	if w == nil {
		return false
	}
	got, err := Apply(e, w, raw, w.Meta.Namespace)
	if err != nil {
		t.Fatalf("%s: Apply: %v", name, err)
	}
	wantFixed, want, err := applyReference(e, ref, raw, ref.Meta.Namespace)
	if err != nil {
		t.Fatalf("%s: reference: %v", name, err)
	}
	if !slices.Equal(got.Fixed, wantFixed) {
		t.Fatalf("%s: fixed %v, reference %v", name, got.Fixed, wantFixed)
	}
	if !reflect.DeepEqual(sortedOps(got.Patch), sortedOps(want)) {
		t.Fatalf("%s: patch differs from the reference:\n got %v\nwant %v", name, got.Patch, want)
	}
	gotJSON, err := EncodePatch(got.Patch)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("%s: patch JSON differs from the reference:\n got %s\nwant %s", name, gotJSON, wantJSON)
	}
	return len(got.Fixed) > 0
}

// TestApplyMatchesReferenceOnFixtures holds Apply to the CreatePatch algorithm on every
// workload in the repository's test data.
func TestApplyMatchesReferenceOnFixtures(t *testing.T) {
	e := engine(t)
	docs := fixtureDocuments(t)
	fixed := 0
	for name, raw := range docs {
		if assertSameAsReference(t, e, name, raw) {
			fixed++
		}
	}
	if fixed < 20 {
		t.Fatalf("only %d of %d fixture documents were fixed: the test covers too little", fixed, len(docs))
	}
	t.Logf("%d documents, %d fixed", len(docs), fixed)
}

// variedPod is a Pod of n containers in every state the fixes meet: bare, partly set,
// fully set, with quantities spelled as numbers, fields loomguard's types do not know,
// member names that need escaping in a JSON pointer, init containers and volumes.
func variedPod(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"varied","namespace":"loom",` +
		`"annotations":{"a/b~c":"x","":"empty","01":"y","1":"z"},"labels":{"app.kubernetes.io/name":"varied"},"futureMeta":[1,null]},` +
		`"spec":{"futureSpec":{"x":null},"volumes":[{"name":"v","emptyDir":{}},{"name":"h","hostPath":{"path":"/tmp"}}],` +
		`"initContainers":[{"name":"init","image":"busybox","resources":{"limits":{"cpu":1}}}],"containers":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		switch i % 6 {
		case 0:
			fmt.Fprintf(&b, `{"name":"c%d","image":"registry.example.com/app:1.0.%d"}`, i, i)
		case 1:
			fmt.Fprintf(&b, `{"name":"c%d","image":"app:%d","securityContext":{"privileged":false},"resources":{"requests":{"cpu":"100m","memory":1000000}}}`, i, i)
		case 2:
			fmt.Fprintf(&b, `{"name":"c%d","image":"app@sha256:%064d","securityContext":{"runAsNonRoot":true,"readOnlyRootFilesystem":true,"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},`+
				`"resources":{"limits":{"cpu":"1","memory":"64Mi"},"requests":{"cpu":"1","memory":"64Mi"}},"livenessProbe":{"httpGet":{"path":"/","port":80}},"readinessProbe":{"httpGet":{"path":"/","port":80}}}`, i, i)
		case 3:
			fmt.Fprintf(&b, `{"name":"c%d","image":"app:%d","futureContainerField":{"k":[1,2]},"volumeMounts":[{"name":"v","mountPath":"/v"}],"ports":[{"containerPort":%d}]}`, i, i, 1000+i)
		case 4:
			fmt.Fprintf(&b, `{"name":"c%d","image":"app:%d","securityContext":null,"resources":null,"env":[{"name":"A","value":"1"}]}`, i, i)
		case 5:
			fmt.Fprintf(&b, `{"name":"c%d","image":"app:%d","securityContext":{"capabilities":{"add":["NET_ADMIN"]},"privileged":true},"resources":{}}`, i, i)
		}
	}
	b.WriteString(`]},"status":{}}`)
	return b.Bytes()
}

// TestApplyMatchesReferenceOnGeneratedPods holds Apply to the CreatePatch algorithm on
// generated Pods, big and varied, and on variants of every fixture Pod.
func TestApplyMatchesReferenceOnGeneratedPods(t *testing.T) {
	e := engine(t)
	for _, n := range []int{1, 6, 100, 2000} {
		if !assertSameAsReference(t, e, fmt.Sprintf("varied pod of %d", n), variedPod(n)) {
			t.Fatalf("the varied pod of %d containers was not fixed", n)
		}
	}
	for _, n := range []int{1, 3000} {
		var b bytes.Buffer
		b.WriteString(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"big","namespace":"loom"},"spec":{"containers":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"c%d","image":"registry.example.com/app:1.0.%d"}`, i, i)
		}
		b.WriteString(`]}}`)
		if !assertSameAsReference(t, e, fmt.Sprintf("bare pod of %d", n), b.Bytes()) {
			t.Fatalf("the bare pod of %d containers was not fixed", n)
		}
	}
}

// withManagedFields returns the variants of a workload document that carry managedFields,
// named: as kube-apiserver sends it (encoding/json of the typed object, whose round trip
// leaves it as it is) with the managedFields of a create; and with members in sorted order
// and managedFields that the typed round trip respells (a time with a fraction, a fieldsV1
// with spaces), drops (an unknown member, a null fieldsV1, an empty list) or keeps.
func withManagedFields(t *testing.T, raw []byte) map[string][]byte {
	t.Helper()
	w := workload(raw)
	if w == nil {
		return nil
	}
	now := metav1.NewTime(time.Date(2026, 11, 30, 17, 1, 36, 0, time.UTC))
	w.Meta.ManagedFields = []metav1.ManagedFieldsEntry{{
		Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &now,
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{}}}}}`)},
	}}
	apiServer, err := json.Marshal(w.Object)
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string][]byte{"as the API server sends it": apiServer}
	for name, fields := range map[string]any{
		"respelled": []any{
			map[string]any{"manager": "m", "operation": "Update", "time": "2026-11-30T17:01:36.123456Z", "fieldsType": "FieldsV1",
				"fieldsV1": json.RawMessage(`{ "f:spec" : { "f:replicas" : { } } }`)},
			map[string]any{"manager": "future", "futureMember": []any{1, nil}, "fieldsV1": nil, "subresource": "status"},
			map[string]any{},
		},
		"empty": []any{},
		"null":  nil,
	} {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		meta, ok := doc["metadata"].(map[string]any)
		if !ok {
			meta = map[string]any{}
			doc["metadata"] = meta
		}
		meta["managedFields"] = fields
		v, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		variants[name] = v
	}
	return variants
}

// TestApplyMatchesReferenceWithManagedFields holds Apply, which leaves metadata.managedFields
// out of the documents it compares, to the reference, which compares them whole, on every
// fixture workload with managedFields in each shape of withManagedFields; and proves that no
// patch touches them.
func TestApplyMatchesReferenceWithManagedFields(t *testing.T) {
	e := engine(t)
	fixed, respelled := 0, 0
	for name, doc := range fixtureDocuments(t) {
		for variant, raw := range withManagedFields(t, doc) {
			name := name + " " + variant
			if !assertSameAsReference(t, e, name, raw) {
				continue
			}
			fixed++
			w := workload(raw)
			r, err := Apply(e, w, raw, w.Meta.Namespace)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range r.Patch {
				if op.Path == "/metadata" || strings.HasPrefix(op.Path, "/metadata/managedFields") {
					t.Errorf("%s: the patch touches the managedFields: %v", name, op)
				}
			}
			if variant == "respelled" {
				respelled++
			}
		}
	}
	if respelled < 20 {
		t.Fatalf("only %d documents with respelled managedFields were fixed: the test covers too little", respelled)
	}
	t.Logf("%d variants fixed", fixed)
}

// TestDiffValuesMatchesCreatePatch holds diffValues to jsonpatch.CreatePatch, operation for
// operation, on pairs that exercise each of its cases, and on every fixture document against
// its typed round trip and against its fixed encoding.
func TestDiffValuesMatchesCreatePatch(t *testing.T) {
	for _, p := range diffPairs() {
		assertDiffLikeCreatePatch(t, p[0]+" → "+p[1], []byte(p[0]), []byte(p[1]))
	}
	e := engine(t)
	for name, raw := range fixtureDocuments(t) {
		w := workload(raw)
		if w == nil {
			continue
		}
		same, err := json.Marshal(w.Object)
		if err != nil {
			t.Fatal(err)
		}
		assertDiffLikeCreatePatch(t, name+" round trip", raw, same)
		e.Mutate(w, w.Meta.Namespace)
		current, err := json.Marshal(w.Object)
		if err != nil {
			t.Fatal(err)
		}
		assertDiffLikeCreatePatch(t, name+" fixed", raw, current)
		// As the API server sends it (its members in Go field order, as the fixed object's):
		// diffJSON descends lazily, comparing raw values.
		assertDiffLikeCreatePatch(t, name+" encoded as the API server does, fixed", same, current)
		if _, lazy := diffLazily(&document{data: same, prune: []string{"metadata", "managedFields"}}, current); !lazy {
			t.Errorf("%s: diffJSON decodes both documents whole, though they were written alike", name)
		}
	}
}

func assertDiffLikeCreatePatch(t *testing.T, name string, a, b []byte) {
	t.Helper()
	want, err := jsonpatch.CreatePatch(a, b)
	if err != nil {
		t.Fatalf("%s: CreatePatch: %v", name, err)
	}
	at, err := decodeJSON(a)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := decodeJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	got := diffValues(at, bt)
	if len(got) != 0 || len(want) != 0 {
		if !reflect.DeepEqual(sortedOps(got), sortedOps(want)) {
			t.Errorf("%s: diffValues = %v, CreatePatch = %v", name, got, want)
		}
	}
	assertDiffJSONLikeDiffValues(t, name, a, b, nil)
	assertDiffJSONLikeDiffValues(t, name+" without metadata.managedFields", a, b, []string{"metadata", "managedFields"})
}

// assertDiffJSONLikeDiffValues fails unless diffJSON(a, b, prune) returns the operations of
// diffValues on the documents as decodePruned decodes them.
func assertDiffJSONLikeDiffValues(t testing.TB, name string, a, b []byte, prune []string) {
	t.Helper()
	at, errA := decodePruned(a, prune)
	bt, errB := decodePruned(b, prune)
	got, err := diffJSON(&document{data: a, prune: prune}, b)
	if errA != nil || errB != nil {
		if err == nil && !bytes.Equal(a, b) {
			t.Errorf("%s: diffJSON read what decodePruned refuses (%v, %v)", name, errA, errB)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: diffJSON: %v", name, err)
	}
	want := diffValues(at, bt)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(sortedOps(got), sortedOps(want)) {
		t.Errorf("%s (prune %v): diffJSON = %v, diffValues = %v", name, prune, got, want)
	}
}

// TestDiffJSON: documents that differ only in spelling (whitespace, member order, escapes,
// duplicate names) yield no operation, as their decodings are equal. (Whatever they differ
// in, diffJSON agrees with diffValues: TestDiffValuesMatchesCreatePatch, FuzzDiffJSON.)
func TestDiffJSON(t *testing.T) {
	for _, p := range [][2]string{
		{`{"a":1,"b":[1,2]}`, `{ "b" : [1, 2], "a" : 1 }`},
		{`{"a":"A"}`, `{"a":"\u0041"}`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`{"metadata":{"managedFields":[1]}}`, `{"metadata":{"managedFields":[2,3]}}`},
	} {
		if ops, err := diffJSON(&document{data: []byte(p[0]), prune: []string{"metadata", "managedFields"}}, []byte(p[1])); err != nil || len(ops) != 0 {
			t.Errorf("diffJSON(%s, %s) = %v, %v; want no operation", p[0], p[1], ops, err)
		}
	}
}

// TestDiffJSONDeepDifference: a difference at the bottom of a deep document (here one space
// in the free-form JSON of a pod template's managedFields, which loomguard's encoding
// drops) would make the lazy comparison read every enclosing value again; it gives up
// within its budget instead, and the documents are decoded whole, to the same operations.
func TestDiffJSONDeepDifference(t *testing.T) {
	const depth = 2000
	nested := func(leaf string) string {
		return strings.Repeat(`{"a":`, depth) + leaf + strings.Repeat(`}`, depth)
	}
	doc := func(leaf, label string) []byte {
		return []byte(`{"kind":"Deployment","spec":{"template":{"metadata":{"labels":{"app":"` + label +
			`"},"managedFields":[{"fieldsV1":` + nested(leaf) + `}]}}}}`)
	}
	a, b := doc(`"x" `, "a"), doc(`"x"`, "b")
	if _, lazy := diffLazily(&document{data: a}, b); lazy {
		t.Errorf("the lazy comparison read a %d-deep difference to the end", depth)
	}
	assertDiffJSONLikeDiffValues(t, "deep", a, b, nil)
	ops, err := diffJSON(&document{data: a}, b)
	if err != nil || len(ops) != 1 || ops[0].Path != "/spec/template/metadata/labels/app" {
		t.Errorf("diffJSON = %v, %v; want the label's replace alone", ops, err)
	}
}

// diffPairs are pairs of documents of every shape diffValues and diffJSON tell apart.
func diffPairs() [][2]string {
	return [][2]string{
		{`{}`, `{}`},
		{`{"a":null}`, `{"a":null}`},
		{`{"a":1}`, `{"a":1.0}`},
		{`{"a":1}`, `{"a":"1"}`},
		{`{"a":null}`, `{}`},
		{`{}`, `{"a":null}`},
		{`{"a":{"b":1}}`, `{"a":[1]}`},
		{`{"a":[1,2,3]}`, `{"a":[1]}`},
		{`{"a":[1]}`, `{"a":[3,2,1]}`},
		{`{"a":[{"x":1},{"y":2}]}`, `{"a":[{"x":2},{"y":2,"z":null}]}`},
		{`{"a/b":{"c~d":1,"":2}}`, `{"a/b":{"c~d":2,"":3,"e/~":4}}`},
		{`{"t":true,"f":false}`, `{"t":false,"f":false}`},
		{`{"a":"x"}`, `{"a":"\u0078y"}`},
		{`{"a":true}`, `{"a":null}`},
		{`{"a":1,"a":{"b":2}}`, `{"a":{"b":3}}`},
		{`{"metadata":{"managedFields":[1],"name":"x"}}`, `{"metadata":{"managedFields":[2],"name":"y"}}`},
		{`{"metadata":{"name":"x"}}`, `{"metadata":{"managedFields":[2],"name":"x","labels":{"a":"b"}}}`},
		{`{}`, `{"metadata":{"managedFields":[2],"name":"x"}}`},
		{`{"metadata":[1]}`, `{"metadata":{"managedFields":[2]}}`},
		{`{"metadata":{"managedFields":{"a":1}}}`, `{"metadata":null}`},
		{`[1,2]`, `[1,2,3]`},
		{`{"a":1}`, `[1]`},
		{`"x"`, `"y"`},
		{`null`, `{"a":1}`},
		{` {"a": [ {"b": 1} ] } `, `{"a":[{"b":2}]}`},
	}
}

// FuzzDiffJSON holds diffJSON to diffValues on any two documents.
//
//	go test ./mutation -run '^$' -fuzz FuzzDiffJSON -fuzztime 5m -parallel 1
func FuzzDiffJSON(f *testing.F) {
	for _, p := range diffPairs() {
		f.Add([]byte(p[0]), []byte(p[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		assertDiffJSONLikeDiffValues(t, fmt.Sprintf("%q → %q", a, b), a, b, nil)
		assertDiffJSONLikeDiffValues(t, fmt.Sprintf("%q → %q", a, b), a, b, []string{"metadata", "managedFields"})
	})
}

// TestEncodePatch holds EncodePatch to json.Marshal on operations of every shape, including
// values that need escaping and a remove, and on an empty patch.
func TestEncodePatch(t *testing.T) {
	for _, ops := range [][]jsonpatch.Operation{
		nil,
		{},
		{
			{Operation: "add", Path: "/metadata/annotations/a~1b", Value: "<&>\u2028\""},
			{Operation: "add", Path: "/x", Value: nil},
			{Operation: "replace", Path: "/y", Value: nil},
			{Operation: "remove", Path: "/z"},
			{Operation: "replace", Path: "/n", Value: json.Number("1.50")},
			{Operation: "add", Path: "/spec/containers/0/securityContext", Value: map[string]any{"b": true, "a": []any{"ALL", 1.5, nil}}},
			{Operation: "test", Path: "/<p>", Value: "v"},
		},
	} {
		got, err := EncodePatch(ops)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(ops)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("EncodePatch = %s, json.Marshal = %s", got, want)
		}
	}
	if _, err := EncodePatch([]jsonpatch.Operation{{Operation: "add", Path: "/bad", Value: json.Number("x")}}); err == nil {
		t.Error("EncodePatch accepted an invalid number")
	}
}

// jsonSamples are documents decodeJSON must read as encoding/json does: every fixture,
// and values in the spellings and odd shapes JSON allows.
func jsonSamples(t testing.TB) [][]byte {
	samples := [][]byte{
		[]byte(`null`), []byte(`true`), []byte(` false `), []byte(`"s"`), []byte(`[]`), []byte(`{}`),
		[]byte(`-0`), []byte(`1.50e+10`), []byte(`12345678901234567890123`), []byte(`-1E-7`),
		[]byte(`{"a":[1,"2",null,true,{"b":{}}],"":"","\u00e9\ud83d\ude00":"\n\t\"\\\/"}`),
		[]byte(`{"a":1} trailing`), []byte(`[1,2] [3]`), []byte("\t\r\n [ ] "),
		[]byte(`{"a":1,"a":2}`), []byte(`{"a":{"b":1},"a":{"c":2}}`), []byte("\"\xff\""), []byte(`"\ud800"`),
		[]byte(`{"a":`), []byte(`[1,]`), []byte(`{"a" 1}`), []byte(`01`), []byte(`nul`), []byte(``), []byte(`}`),
		[]byte(strings.Repeat("[", 10001) + strings.Repeat("]", 10001)),
		// managedFields, which decodeObject leaves out of the top-level object's metadata
		// only: in any shape, with duplicate names or invalid UTF-8 inside or around them.
		[]byte(`{"metadata":{"name":"a","managedFields":[{"manager":"m","fieldsV1":{"f:spec":{".":{}}}}]},"spec":{}}`),
		[]byte(`{"metadata":{"managedFields":null},"managedFields":[1]}`),
		[]byte(`{"metadata":{"managedFields":{"a":[{}]},"labels":{"managedFields":"x"}}}`),
		[]byte(`{"metadata":[{"managedFields":1}],"spec":{"template":{"metadata":{"managedFields":[{"manager":"m"}]}}}}`),
		[]byte(`{"metadata":"managedFields"}`), []byte(`[{"metadata":{"managedFields":1}}]`),
		[]byte(`{"metadata":{"managedFields":[{"fieldsV1":{"f:a":{},"f:a":{}}}],"name":"dup"}}`),
		[]byte(`{"metadata":{"managedFields":[{"manager":"` + "\xff" + `"}]}}`),
		[]byte("{\"metadata\":{\"managedFields\":[{\"manager\":\"\xff\"}],\"name\":\"\xfe\"}}"),
		[]byte(`{"metadata":{"managedFields":[1],"name":"a"},"metadata":{"managedFields":[2],"name":"b"}}`),
		[]byte(`{"metadata":{"managedFields":[1],"managedFields":[2],"name":"c"}}`),
		[]byte(`{"metadata":{"managedFields":[1,}}`),
	}
	for _, doc := range fixtureDocuments(t) {
		samples = append(samples, doc)
	}
	return samples
}

// sameAsV1 fails t unless decodeJSON reads data as encoding/json does (decodeJSONv1): the
// same value, or an error from both; and unless decodeObject reads it as encoding/json
// does, less the top-level object's metadata.managedFields.
func sameAsV1(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := decodeJSON(data)
	want, wantErr := decodeJSONv1(data)
	if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeJSON(%.200q) = %#v, %v; encoding/json: %#v, %v", data, got, gotErr, want, wantErr)
	}
	got, gotErr = decodeObject(data)
	want, wantErr = decodeJSONv1(data)
	if m, ok := want.(map[string]any); ok {
		if meta, ok := m["metadata"].(map[string]any); ok {
			delete(meta, "managedFields")
		}
	}
	if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeObject(%.200q) = %#v, %v; encoding/json less managedFields: %#v, %v", data, got, gotErr, want, wantErr)
	}
}

func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	for _, data := range jsonSamples(t) {
		sameAsV1(t, data)
	}
	// The tokenizer reads every fixture itself, without encoding/json.
	for name, doc := range fixtureDocuments(t) {
		if _, err := readJSON(jsontext.NewDecoder(bytes.NewReader(doc)), nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeJSON holds decodeJSON to encoding/json on any input.
//
//	go test ./mutation -run '^$' -fuzz FuzzDecodeJSON -fuzztime 5m -parallel 1
func FuzzDecodeJSON(f *testing.F) {
	for _, data := range jsonSamples(f) {
		if len(data) < 16<<10 {
			f.Add(data)
		}
	}
	f.Fuzz(sameAsV1)
}
