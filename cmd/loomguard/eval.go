package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/loomguard/loomguard/internal/manifest"
	"github.com/loomguard/loomguard/internal/report"
	"github.com/loomguard/loomguard/policies"
)

// loadEngine builds the engine from --config, or from the default config when path is
// empty. Every config error is printed on its own line, naming the file.
func loadEngine(path string, stderr io.Writer) (*policies.Engine, bool) {
	cfg := policies.DefaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "loomguard: config %s: %v\n", path, manifest.UnwrapPath(err))
			return nil, false
		}
		var errs []error
		cfg, errs = loadConfig(data)
		if len(errs) > 0 {
			for _, err := range errs {
				fmt.Fprintf(stderr, "loomguard: config %s: %v\n", path, err)
			}
			return nil, false
		}
	}
	e, err := policies.NewEngine(cfg, time.Now)
	if err != nil {
		fmt.Fprintf(stderr, "loomguard: config %s: %v\n", path, err)
		return nil, false
	}
	return e, true
}

// loadConfig wraps policies.LoadConfig, printing an error without a field path (a YAML
// syntax error) as its detail alone.
func loadConfig(data []byte) (*policies.Config, []error) {
	cfg, ferrs := policies.LoadConfig(data)
	root := field.NewPath("").String()
	errs := make([]error, 0, len(ferrs))
	for _, fe := range ferrs {
		if fe.Field == "" || fe.Field == root {
			errs = append(errs, errors.New(fe.Detail))
			continue
		}
		errs = append(errs, fe)
	}
	return cfg, errs
}

// entry is one object of the input: a document, an item of a List, or the object of an
// AdmissionReview.
type entry struct {
	report.Object
	// pointer is the object's JSON pointer inside its document: "", "/items/3" or
	// "/request/object".
	pointer string
	raw     []byte // the object's JSON
	// related is a decoded PodDisruptionBudget or NetworkPolicy, which the cross-object
	// policies check workloads against (see crossObjectView); nil for every other kind.
	related kruntime.Object
	// released says the workload was evaluated without a Related view as soon as it was
	// read (reader.evaluateEarly), and its typed object released: Workload holds only the
	// kind and metadata that name it.
	released bool
}

// parsedDoc is a document with the objects found in it.
type parsedDoc struct {
	doc     *manifest.Document
	json    []byte // the document as JSON; nil when it is empty or could not be converted
	entries []*entry
}

// reader turns documents into typed, evaluated entries.
type reader struct {
	engine    *policies.Engine
	decoder   *policies.Decoder
	namespace string // --namespace
	// related holds, by namespace, the Related views workloads are evaluated with (see
	// crossObjectView); a namespace without one leaves the cross-object policies silent.
	related map[string]*policies.Related
	// evaluateEarly makes scan evaluate each workload as soon as it is decoded, without a
	// Related view, and release its typed object (check, unless --cross-object=on): the
	// input's workloads are never all in memory at once. finishEvaluation evaluates again,
	// from its JSON, a workload whose namespace turns out to have a view.
	evaluateEarly bool
}

func newReader(e *policies.Engine, namespace string) *reader {
	return &reader{engine: e, decoder: policies.NewDecoder(), namespace: namespace}
}

// header is what is read from every object before decoding it.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name         string `json:"name"`
		GenerateName string `json:"generateName"`
		Namespace    string `json:"namespace"`
	} `json:"metadata"`
}

// parse converts a document to JSON and decodes the objects in it. Errors are
// returned, not fatal: the entries that could be decoded are kept.
func (r *reader) parse(doc *manifest.Document) (parsedDoc, []*manifest.Error) {
	pd := parsedDoc{doc: doc}
	if doc.Empty() {
		return pd, nil
	}
	fail := func(item int, err error) []*manifest.Error {
		return []*manifest.Error{{Source: doc.Source, Document: doc.Index, Item: item, Line: doc.Line, Err: err}}
	}
	js := doc.Raw
	if !doc.IsJSON {
		var err error
		js, err = yaml.YAMLToJSONStrict(doc.Raw)
		if err != nil {
			msg, at := yamlError(err, doc.First)
			errs := fail(-1, fmt.Errorf("error converting YAML to JSON: %s", msg))
			errs[0].At = at
			return pd, errs
		}
	}
	if bytes.Equal(js, []byte("null")) {
		return pd, nil // a document holding only "~" or "null"
	}
	pd.json = js
	var errs []*manifest.Error
	add := func(item int, pointer string, raw []byte, defaultNS string, h *header) {
		e, objErrs := r.object(doc, item, pointer, raw, defaultNS, h)
		for _, err := range objErrs {
			errs = append(errs, fail(item, err)...)
		}
		if e != nil {
			pd.entries = append(pd.entries, e)
		}
	}
	h, err := readHeader(js)
	if err != nil {
		return pd, fail(-1, err)
	}
	gvk, err := h.gvk()
	if err != nil {
		return pd, fail(-1, err)
	}
	switch {
	case gvk.Group == "" && gvk.Kind == "List":
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(js, &list); err != nil {
			return pd, fail(-1, fmt.Errorf("decoding List: %w", err))
		}
		for i, item := range list.Items {
			add(i, "/items/"+strconv.Itoa(i), item, "", nil)
		}
	case gvk.Group == admissionv1.GroupName && gvk.Kind == "AdmissionReview":
		if gvk.Version != admissionv1.SchemeGroupVersion.Version {
			return pd, fail(-1, fmt.Errorf("unsupported apiVersion %q for AdmissionReview (want %s)", h.APIVersion, admissionv1.SchemeGroupVersion))
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(js, &review); err != nil {
			return pd, fail(-1, fmt.Errorf("decoding AdmissionReview: %w", err))
		}
		if review.Request == nil || len(review.Request.Object.Raw) == 0 || bytes.Equal(review.Request.Object.Raw, []byte("null")) {
			return pd, fail(-1, errors.New("AdmissionReview without request.object"))
		}
		add(-1, "/request/object", review.Request.Object.Raw, review.Request.Namespace, nil)
	default:
		add(-1, "", js, "", &h)
	}
	return pd, errs
}

// readHeader reads apiVersion, kind and the identifying metadata of an object.
func readHeader(js []byte) (header, error) {
	var h header
	if t := bytes.TrimSpace(js); len(t) == 0 || t[0] != '{' {
		return h, errors.New("not a Kubernetes object: the document must be a mapping with apiVersion and kind")
	}
	if err := json.Unmarshal(js, &h); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return h, fmt.Errorf("%s must be a %s, not a %s", te.Field, te.Type, te.Value)
		}
		return h, err
	}
	return h, nil
}

// gvk returns the object's group, version and kind; apiVersion and kind are required.
func (h *header) gvk() (schema.GroupVersionKind, error) {
	if h.Kind == "" {
		return schema.GroupVersionKind{}, errors.New("missing kind")
	}
	if h.APIVersion == "" {
		return schema.GroupVersionKind{}, fmt.Errorf("%s: missing apiVersion", h.Kind)
	}
	gv, err := schema.ParseGroupVersion(h.APIVersion)
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("%s: parsing apiVersion %q: %w", h.Kind, h.APIVersion, err)
	}
	return gv.WithKind(h.Kind), nil
}

// object decodes one object. A workload is decoded strictly into its typed object; any
// other kind is only identified. h is the object's header when the caller has read it
// already (nil: object reads it). It returns the entry, or every reason why the object
// cannot be identified or decoded.
func (r *reader) object(doc *manifest.Document, item int, pointer string, raw []byte, defaultNS string, h *header) (*entry, []error) {
	if h == nil {
		read, err := readHeader(raw)
		if err != nil {
			return nil, []error{err}
		}
		h = &read
	}
	gvk, err := h.gvk()
	if err != nil {
		return nil, []error{err}
	}
	if gvk.Group == "" && gvk.Kind == "List" {
		return nil, []error{errors.New("a List inside a List is not supported")}
	}
	e := &entry{pointer: pointer, raw: raw, Object: report.Object{Doc: doc, Item: item, GVK: gvk,
		Name: h.Metadata.Name, Namespace: h.Metadata.Namespace}}
	if e.Name == "" {
		e.Name = h.Metadata.GenerateName
	}
	related := slices.Contains(policies.RelatedKinds(), gvk)
	if !policies.IsWorkloadGroupKind(gvk.GroupKind()) && !related {
		if want, ok := legacyWorkload(gvk); ok {
			return nil, []error{fmt.Errorf("unsupported apiVersion %q for %s (want %s)", h.APIVersion, gvk.Kind, want)}
		}
		return e, nil // not a workload: counted, never evaluated
	}
	if e.Namespace == "" {
		e.Namespace = defaultNS
	}
	if e.Namespace == "" {
		e.Namespace = r.namespace
	}
	if related {
		// Counted like any other kind, and read for the cross-object policies.
		obj, err := r.decoder.DecodeKnownJSON(raw, gvk)
		if err != nil {
			return nil, []error{fmt.Errorf("%s: %w", describe(gvk.Kind, e.Name), err)}
		}
		e.related = obj
		return e, nil
	}
	var errs []error
	obj, err := r.decoder.DecodeKnownJSON(raw, gvk)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", describe(gvk.Kind, e.Name), err))
	}
	if e.Name == "" {
		errs = append(errs, fmt.Errorf("%s without metadata.name", gvk.Kind))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	w, ok := policies.NewWorkload(obj)
	if !ok {
		return nil, []error{fmt.Errorf("%s: decoded as %T, which is not a workload", describe(gvk.Kind, e.Name), obj)}
	}
	e.Workload = w
	return e, nil
}

// describe is `Kind "name"`, or Kind alone without a name.
func describe(kind, name string) string {
	if name == "" {
		return kind
	}
	return fmt.Sprintf("%s %q", kind, name)
}

// legacyWorkload reports whether gvk is a workload kind in an API group that no longer
// serves it (extensions/v1beta1 Deployment, DaemonSet and ReplicaSet), and the version
// to use instead. Skipping such an object would let it pass unchecked.
func legacyWorkload(gvk schema.GroupVersionKind) (string, bool) {
	if gvk.Group != "extensions" {
		return "", false
	}
	for _, k := range policies.WorkloadKinds() {
		if k.Kind == gvk.Kind {
			return k.GroupVersion().String(), true
		}
	}
	return "", false
}

// evaluate runs the engine on a workload in its effective namespace (see entry.namespace).
func (r *reader) evaluate(e *entry) {
	w := e.Workload
	w.Related = r.related[e.Namespace]
	e.CrossObject = w.Related != nil
	e.Report = r.engine.Evaluate(w, e.Namespace)
}

// evaluateAndRelease evaluates the workloads of a parsed document without a Related view
// (r.related is not built yet) and keeps of each only its report, its JSON and a Workload
// that names it, as the audit command's reports do: the reports never read more.
func (r *reader) evaluateAndRelease(pd *parsedDoc) {
	pd.json = nil // read only by fix
	for _, e := range pd.entries {
		if e.Workload == nil {
			continue
		}
		r.evaluate(e)
		w := e.Workload
		e.Workload = &policies.Workload{Kind: w.Kind, Meta: &metav1.ObjectMeta{Namespace: w.Meta.Namespace, Name: w.Meta.Name}}
		e.released = true
	}
}

// finishEvaluation evaluates every workload of the documents in its namespace's Related
// view (r.related): a workload that scan evaluated early is evaluated again, decoded anew
// from its JSON, only where its namespace has a view. It returns the error of a workload
// that no longer decodes, which cannot happen since it decoded before.
func (r *reader) finishEvaluation(docs []parsedDoc) error {
	for _, pd := range docs {
		for _, e := range pd.entries {
			switch {
			case e.Workload == nil:
			case !e.released:
				r.evaluate(e)
			case r.related[e.Namespace] != nil:
				obj, err := r.decoder.DecodeKnownJSON(e.raw, e.GVK)
				if err != nil {
					return fmt.Errorf("%s: decoding %s again: %w", e.Location(), describe(e.GVK.Kind, e.Name), err)
				}
				w, ok := policies.NewWorkload(obj)
				if !ok {
					return fmt.Errorf("%s: decoding %s again: %T is not a workload", e.Location(), describe(e.GVK.Kind, e.Name), obj)
				}
				named := e.Workload
				e.Workload = w
				r.evaluate(e)
				e.Workload = named
			}
		}
	}
	return nil
}

// yamlLine matches the YAML parser's line numbers, which count from the document's first line.
var yamlLine = regexp.MustCompile(`\bline (\d+)\b`)

// yamlError renders a YAML parser error on one line, with its line numbers made
// absolute (first is the file line of the document's first byte), and returns the
// first of them (0 when the error has none).
func yamlError(err error, first int) (string, int) {
	at := 0
	msg := yamlLine.ReplaceAllStringFunc(err.Error(), func(m string) string {
		n, convErr := strconv.Atoi(strings.TrimPrefix(m, "line "))
		if convErr != nil {
			return m
		}
		n += first - 1
		if at == 0 {
			at = n
		}
		return "line " + strconv.Itoa(n)
	})
	return strings.Join(strings.Fields(msg), " "), at
}

// scan reads every source and parses its documents. The sources are read and split in
// order, and their documents parsed on every core as they come (decoding dominates the
// CLI's time, and one large file of many documents must spread as well as many small
// files); the results keep the order of the sources and of the documents in each. It
// returns the parsed documents, the names of the sources it read and every input error.
func (r *reader) scan(ctx context.Context, args []string, stdin io.Reader) ([]parsedDoc, []string, []*manifest.Error) {
	srcs, errs := manifest.ExpandSources(args)
	type scanned struct {
		read    bool
		split   []manifest.Document
		errs    []*manifest.Error // reading or splitting the source
		docs    []parsedDoc
		docErrs [][]*manifest.Error // parsing each document
	}
	results := make([]scanned, len(srcs))
	type job struct{ source, doc int }
	jobs := make(chan job, 64)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				res := &results[j.source]
				res.docs[j.doc], res.docErrs[j.doc] = r.parse(&res.split[j.doc])
				if r.evaluateEarly {
					r.evaluateAndRelease(&res.docs[j.doc])
				}
			}
		})
	}
	for i, s := range srcs {
		if ctx.Err() != nil {
			break // reported once below
		}
		res := &results[i]
		data, err := manifest.ReadSource(s, stdin)
		if err != nil {
			res.errs = []*manifest.Error{manifest.FileError(s.Name, err)}
			continue
		}
		res.read = true
		res.split, res.errs = manifest.SplitDocuments(s.Name, data)
		res.docs = make([]parsedDoc, len(res.split))
		res.docErrs = make([][]*manifest.Error, len(res.split))
		for d := range res.split {
			jobs <- job{i, d}
		}
	}
	close(jobs)
	wg.Wait()

	var (
		docs  []parsedDoc
		names []string
	)
	for i, res := range results {
		if res.read {
			names = append(names, srcs[i].Name)
		}
		docs = append(docs, res.docs...)
		errs = append(errs, res.errs...)
		for _, de := range res.docErrs {
			errs = append(errs, de...)
		}
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, manifest.FileError(strings.Join(args, ", "), fmt.Errorf("interrupted: %w", err)))
	}
	return docs, names, errs
}

// newInputReader checks the input flags that check and fix share and loads the config. It
// returns nil and the exit code when the command must stop.
func (f *flags) newInputReader(files []string, namespace, configPath string, stderr io.Writer) (*reader, int) {
	if len(files) == 0 {
		return nil, f.usageError(stderr, "no input: give at least one -f PATH (- for stdin)")
	}
	if namespace == "" {
		return nil, f.usageError(stderr, "--namespace must not be empty")
	}
	engine, ok := loadEngine(configPath, stderr)
	if !ok {
		return nil, exitError
	}
	return newReader(engine, namespace), exitOK
}
