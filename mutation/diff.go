package mutation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"gomodules.xyz/jsonpatch/v2"
)

// decodeJSON decodes the first JSON value in data into maps, slices, strings, bools, nil and
// json.Number (numbers keep their spelling), as jsonpatch.CreatePatch does with
// encoding/json. It reads the value with the tokenizer of encoding/json/v2
// (github.com/go-json-experiment/json/jsontext), at about half the cost, keeping the last of
// duplicate names as encoding/json does; what the tokenizer refuses (invalid UTF-8,
// malformed JSON), encoding/json reads, in its own way, or explains: the two agree on
// everything both read (FuzzDecodeJSON).
func decodeJSON(data []byte) (any, error) {
	return decodePruned(data, nil)
}

// decodeObject is decodeJSON without the object's metadata.managedFields, which no fix
// changes: the API server sets them before it calls the mutating webhooks, they are often
// the biggest part of an object, and a patch must never touch them. Any difference there
// between two documents is the typed round trip's own, which the patch leaves out anyway
// (see Apply), so the documents' diff only saves building it. diffJSON decodes a document
// so when it cannot compare the two lazily.
func decodeObject(data []byte) (any, error) {
	return decodePruned(data, []string{"metadata", "managedFields"})
}

// decodePruned is decodeJSON without the member at the path of member names prune (none
// when prune is empty), starting from the top-level value.
func decodePruned(data []byte, prune []string) (any, error) {
	// Duplicate names are allowed, the last one winning, as with encoding/json: the
	// tokenizer then need not remember every name of every object. It reads a bytes.Buffer
	// in place instead of copying data into a buffer of its own; nothing writes to data.
	dec := jsontext.NewDecoder(bytes.NewBuffer(data), jsontext.AllowDuplicateNames(true))
	if v, err := readJSON(dec, prune); err == nil {
		return v, nil
	}
	v, err := decodeJSONv1(data)
	if err != nil || len(prune) == 0 {
		return v, err
	}
	parent := v
	for _, name := range prune[:len(prune)-1] {
		m, ok := parent.(map[string]any)
		if !ok {
			return v, nil
		}
		parent = m[name]
	}
	if m, ok := parent.(map[string]any); ok {
		delete(m, prune[len(prune)-1])
	}
	return v, nil
}

// readJSON reads the next JSON value from dec as decodeJSON returns it, without the member
// at the path of member names prune (none when prune is empty): that member's value is
// skipped, not decoded.
func readJSON(dec *jsontext.Decoder, prune []string) (any, error) {
	switch dec.PeekKind() {
	case '{':
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		m := map[string]any{}
		for dec.PeekKind() != '}' {
			t, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			name := t.String() // before the next read voids t
			var inner []string
			if len(prune) > 0 && name == prune[0] {
				if len(prune) == 1 {
					if err := dec.SkipValue(); err != nil {
						return nil, err
					}
					continue
				}
				inner = prune[1:]
			}
			v, err := readJSON(dec, inner)
			if err != nil {
				return nil, err
			}
			m[name] = v
		}
		_, err := dec.ReadToken()
		return m, err
	case '[':
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		a := []any{}
		for dec.PeekKind() != ']' {
			v, err := readJSON(dec, nil)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.ReadToken()
		return a, err
	case '0':
		v, err := dec.ReadValue()
		return json.Number(v), err
	}
	t, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch t.Kind() {
	case 'n':
		return nil, nil
	case 't', 'f':
		return t.Bool(), nil
	case '"':
		return t.String(), nil
	}
	return nil, fmt.Errorf("unexpected %v", t)
}

// decodeJSONv1 is decodeJSON with encoding/json alone.
func decodeJSONv1(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON document: %w", err)
	}
	return v, nil
}

// diffValues returns the operations that turn a into b, both as decodeJSON returns them: the
// same operations as jsonpatch.CreatePatch on their encodings (RFC 6902 add, replace and
// remove, arrays compared index by index, a value whose type changes replaced whole), in no
// particular order. Unlike CreatePatch it takes documents decoded once by the caller, so that
// one original can be compared with several others, and it spells a JSON pointer only for the
// operations it returns, not for every member it visits: time and memory are linear in the
// size of the documents.
//
// Operation values are subtrees of b, shared, not copies.
func diffValues(a, b any) []jsonpatch.Operation {
	d := differ{}
	d.values(a, b)
	return d.ops
}

// differ walks two decoded documents together, keeping the escaped reference tokens from
// the root to the member it visits.
type differ struct {
	tokens []string
	ops    []jsonpatch.Operation
	dec    *jsontext.Decoder // diffLazily's, reused for every value it reads
	budget int               // the bytes diffLazily may still read
}

// emit records an operation at the current member.
func (d *differ) emit(op string, value any) {
	n := 0
	for _, t := range d.tokens {
		n += 1 + len(t)
	}
	var p strings.Builder
	p.Grow(n)
	for _, t := range d.tokens {
		p.WriteByte('/')
		p.WriteString(t)
	}
	d.ops = append(d.ops, jsonpatch.Operation{Operation: op, Path: p.String(), Value: value})
}

// emitChild records an operation at the current member's child token (escaped).
func (d *differ) emitChild(op, token string, value any) {
	d.tokens = append(d.tokens, token)
	d.emit(op, value)
	d.tokens = d.tokens[:len(d.tokens)-1]
}

func (d *differ) values(a, b any) {
	at, bt := reflect.TypeOf(a), reflect.TypeOf(b)
	switch {
	case at == nil && bt == nil:
		return
	case at != bt:
		d.emit("replace", b)
		return
	}
	switch a := a.(type) {
	case map[string]any:
		d.objects(a, b.(map[string]any))
	case []any:
		d.arrays(a, b.([]any))
	default: // string, bool, json.Number: comparable, and of one type here
		if a != b {
			d.emit("replace", b)
		}
	}
}

func (d *differ) objects(a, b map[string]any) {
	for k, bv := range b {
		av, ok := a[k]
		if !ok {
			d.emitChild("add", escapeToken(k), bv)
			continue
		}
		d.tokens = append(d.tokens, escapeToken(k))
		d.values(av, bv)
		d.tokens = d.tokens[:len(d.tokens)-1]
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			d.emitChild("remove", escapeToken(k), nil)
		}
	}
}

func (d *differ) arrays(a, b []any) {
	n := min(len(a), len(b))
	for i := len(a) - 1; i >= n; i-- {
		d.emitChild("remove", strconv.Itoa(i), nil)
	}
	for i := n; i < len(b); i++ {
		d.emitChild("add", strconv.Itoa(i), b[i])
	}
	for i := range n {
		d.tokens = append(d.tokens, strconv.Itoa(i))
		d.values(a[i], b[i])
		d.tokens = d.tokens[:len(d.tokens)-1]
	}
}

// escapeToken spells a member name as a JSON pointer reference token (RFC 6901 section 3:
// "~" as "~0", "/" as "~1").
func escapeToken(k string) string {
	if !strings.ContainsAny(k, "~/") {
		return k
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}

// EncodePatch returns the JSON of ops, byte for byte what json.Marshal(ops) returns
// (jsonpatch.Operation.MarshalJSON: "value" omitted when nil, except null for add and
// replace), written into one buffer: json.Marshal encodes each operation on its own and then
// scans the whole patch once more to check and compact it, which on a big object's patch
// costs about as much as computing it.
func EncodePatch(ops []jsonpatch.Operation) ([]byte, error) {
	if ops == nil {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b) // escapes HTML as json.Marshal does
	encode := func(v any) error {
		if err := enc.Encode(v); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode ends each value with a newline
		return nil
	}
	b.WriteByte('[')
	for i, op := range ops {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"op":`)
		if err := encode(op.Operation); err != nil {
			return nil, err
		}
		b.WriteString(`,"path":`)
		if err := encode(op.Path); err != nil {
			return nil, err
		}
		if op.Value != nil || op.Operation == "add" || op.Operation == "replace" {
			b.WriteString(`,"value":`)
			if err := encode(op.Value); err != nil {
				return nil, fmt.Errorf("encoding the value at %s: %w", op.Path, err)
			}
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// diffJSON returns the operations that turn document a into the JSON document b, both
// without the member at the path of member names a.prune (none when it is empty): the
// operations of diffValues(decodePruned(a.data, a.prune), decodePruned(b, a.prune)), with
// their values decoded as decodeJSON decodes them. It decodes only where the two documents
// differ: an object's members and an array's elements are read as raw values, and a value
// spelled alike in both is skipped unread. A fixed object's encoding differs from the API server's original only
// where a fix changed it (an API server's encoding of the same types round-trips byte for
// byte), so the comparison costs little more than reading both documents once.
//
// Where diffLazily gives up (documents of two encoders, something the tokenizer refuses, a
// deep difference over its budget) both are decoded as decodePruned reads them, a.data once
// for all the calls that need it. Time and memory are linear in the size of the documents.
func diffJSON(a *document, b []byte) ([]jsonpatch.Operation, error) {
	if ops, ok := diffLazily(a, b); ok {
		return ops, nil
	}
	at, err := a.decodedTree()
	if err != nil {
		return nil, err
	}
	bt, err := decodePruned(b, a.prune)
	if err != nil {
		return nil, err
	}
	return diffValues(at, bt), nil
}

// lazyScanFactor bounds diffLazily's work: it gives up once it has read this many times the
// two documents' bytes. A value is read again for each enclosing value that differs, so a
// document nested deep (metav1.FieldsV1 is free-form JSON, in every pod template's
// managedFields) and differing at the bottom would otherwise cost its size times its depth.
// An API server's Pod or workload that needs fixes takes 3–4 times its size.
const lazyScanFactor = 8

// errLazyBudget ends a lazy comparison that reached its budget.
var errLazyBudget = errors.New("lazy comparison over budget")

// diffLazily is diffJSON's comparison of raw values. It reports false, with no operations,
// when it cannot stand for decoding both documents: when they are of two kinds or begin
// with different members (written by two encoders: see rawObjects), when the tokenizer
// refuses something (so that what decodePruned refuses is refused), or when it would read
// more than lazyScanFactor times their bytes.
func diffLazily(a *document, b []byte) ([]jsonpatch.Operation, bool) {
	if rawKind(a.data) != rawKind(b) || firstName(a.data) != firstName(b) {
		return nil, false
	}
	d := differ{budget: lazyScanFactor * (len(a.data) + len(b))}
	if err := d.raw(a.data, b, a.prune); err != nil {
		return nil, false
	}
	return d.ops, true
}

// document is a JSON document compared by diffJSON, without the member at the path of
// member names prune, with its decoding (decodePruned) kept once it is needed.
type document struct {
	data  []byte
	prune []string

	tree    any
	err     error
	decoded bool
}

// decodedTree returns decodePruned(d.data, d.prune), decoding it the first time only.
func (d *document) decodedTree() (any, error) {
	if !d.decoded {
		d.tree, d.err = decodePruned(d.data, d.prune)
		d.decoded = true
	}
	return d.tree, d.err
}

// firstName is the name of the first member of the JSON object v, or "" when v is no object
// or has none.
func firstName(v []byte) string {
	dec := jsontext.NewDecoder(bytes.NewBuffer(v), jsontext.AllowDuplicateNames(true))
	if t, err := dec.ReadToken(); err != nil || t.Kind() != '{' {
		return ""
	}
	if t, err := dec.ReadToken(); err == nil && t.Kind() == '"' {
		return t.String()
	}
	return ""
}

// rawKind is a raw JSON value's kind as decodeJSON's types tell them apart: '{', '[', '"',
// 'b' (true or false), 'n' (null) or '0' (a number).
func rawKind(v []byte) byte {
	switch k := jsontext.Value(v).Kind(); k {
	case 't', 'f':
		return 'b'
	default:
		return byte(k)
	}
}

// raw is values on raw JSON values, decoding only what differs.
func (d *differ) raw(a, b []byte, prune []string) error {
	if bytes.Equal(a, b) {
		return nil
	}
	ka, kb := rawKind(a), rawKind(b)
	if ka != kb {
		v, err := decodePruned(b, prune)
		if err != nil {
			return err
		}
		d.emit("replace", v)
		return nil
	}
	switch ka {
	case '{':
		return d.rawObjects(a, b, prune)
	case '[':
		return d.rawArrays(a, b)
	}
	av, err := d.scalar(a) // a null, too, is read: the document may be no JSON at all
	if err != nil {
		return err
	}
	bv, err := d.scalar(b)
	if err != nil {
		return err
	}
	if av != bv { // nil, string, bool or json.Number: comparable
		d.emit("replace", bv)
	}
	return nil
}

// scalar decodes the JSON null, string, boolean or number v as decodeJSON does, with d's
// decoder.
func (d *differ) scalar(v []byte) (any, error) {
	if d.budget -= len(v); d.budget < 0 {
		return nil, errLazyBudget
	}
	return readJSON(d.decoder(v), nil)
}

func (d *differ) rawObjects(a, b []byte, prune []string) error {
	am, aNames, err := d.rawMembers(a)
	if err != nil {
		return err
	}
	bm, bNames, err := d.rawMembers(b)
	if err != nil {
		return err
	}
	if !sameOrder(aNames, bNames, bm) {
		// Written by two encoders (a YAML file's members come sorted, a Go type's in field
		// order): their values rarely match byte for byte, and descending lazily would
		// rescan each level. Decoded whole, as diffValues compares them.
		av, err := decodePruned(a, prune)
		if err != nil {
			return err
		}
		bv, err := decodePruned(b, prune)
		if err != nil {
			return err
		}
		d.values(av, bv)
		return nil
	}
	inner := func(name string) (skip bool, rest []string) {
		if len(prune) == 0 || name != prune[0] {
			return false, nil
		}
		return len(prune) == 1, prune[1:]
	}
	for k, bv := range bm {
		skip, rest := inner(k)
		if skip {
			continue
		}
		av, ok := am[k]
		if !ok {
			v, err := decodePruned(bv, rest)
			if err != nil {
				return err
			}
			d.emitChild("add", escapeToken(k), v)
			continue
		}
		d.tokens = append(d.tokens, escapeToken(k))
		err := d.raw(av, bv, rest)
		d.tokens = d.tokens[:len(d.tokens)-1]
		if err != nil {
			return err
		}
	}
	for k := range am {
		if skip, _ := inner(k); skip {
			continue
		}
		if _, ok := bm[k]; !ok {
			d.emitChild("remove", escapeToken(k), nil)
		}
	}
	return nil
}

func (d *differ) rawArrays(a, b []byte) error {
	ae, err := d.rawElements(a)
	if err != nil {
		return err
	}
	be, err := d.rawElements(b)
	if err != nil {
		return err
	}
	n := min(len(ae), len(be))
	for i := len(ae) - 1; i >= n; i-- {
		d.emitChild("remove", strconv.Itoa(i), nil)
	}
	for i := n; i < len(be); i++ {
		v, err := decodeJSON(be[i])
		if err != nil {
			return err
		}
		d.emitChild("add", strconv.Itoa(i), v)
	}
	for i := range n {
		d.tokens = append(d.tokens, strconv.Itoa(i))
		err := d.raw(ae[i], be[i], nil)
		d.tokens = d.tokens[:len(d.tokens)-1]
		if err != nil {
			return err
		}
	}
	return nil
}

// decoder returns d's decoder, reading v afresh (in place: see decodePruned).
func (d *differ) decoder(v []byte) *jsontext.Decoder {
	if d.dec == nil {
		d.dec = jsontext.NewDecoder(bytes.NewBuffer(v), jsontext.AllowDuplicateNames(true))
	} else {
		d.dec.Reset(bytes.NewBuffer(v), jsontext.AllowDuplicateNames(true))
	}
	return d.dec
}

// rawMembers returns the members of the JSON object v by name, each value as the bytes of v
// that spell it, and their names in order; of duplicate names the last wins, as with
// encoding/json.
func (d *differ) rawMembers(v []byte) (map[string][]byte, []string, error) {
	if d.budget -= len(v); d.budget < 0 {
		return nil, nil, errLazyBudget
	}
	dec := d.decoder(v)
	if _, err := dec.ReadToken(); err != nil {
		return nil, nil, err
	}
	m := map[string][]byte{}
	var names []string
	for dec.PeekKind() != '}' {
		t, err := dec.ReadToken()
		if err != nil {
			return nil, nil, err
		}
		name := t.String()
		val, err := dec.ReadValue()
		if err != nil {
			return nil, nil, err
		}
		end := int(dec.InputOffset())
		m[name] = v[end-len(val) : end : end]
		names = append(names, name)
	}
	_, err := dec.ReadToken()
	return m, names, err
}

// sameOrder says whether the names that a and b (b's members by name in bm) both have
// come in the same order in each.
func sameOrder(a, b []string, bm map[string][]byte) bool {
	j := 0
	for _, name := range a {
		if _, ok := bm[name]; !ok {
			continue
		}
		for j < len(b) && b[j] != name {
			j++
		}
		if j == len(b) {
			return false
		}
		j++
	}
	return true
}

// rawElements returns the elements of the JSON array v, each as the bytes of v that spell it.
func (d *differ) rawElements(v []byte) ([][]byte, error) {
	if d.budget -= len(v); d.budget < 0 {
		return nil, errLazyBudget
	}
	dec := d.decoder(v)
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	var out [][]byte
	for dec.PeekKind() != ']' {
		val, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		end := int(dec.InputOffset())
		out = append(out, v[end-len(val):end:end])
	}
	_, err := dec.ReadToken()
	return out, err
}
