// Package mutation applies the engine's fixes to an object and expresses them as a JSON
// patch (RFC 6902) against the document the object was decoded from: the patch the mutating
// admission webhook returns (AdmissionResponse.patch, patchType JSONPatch) and the one
// `loomguard fix` applies to the documents it reads, so that both change exactly the same
// fields.
package mutation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/loomguard/loomguard/policies"
)

// FixedAnnotation lists, on a mutated object, the policies whose fixes loomguard applied.
const FixedAnnotation = "loomguard.io/fixed"

// Result is the outcome of applying the engine's fixes to one object.
type Result struct {
	// Fixed lists the policies whose fixes changed the object, in catalog order.
	Fixed []string
	// Patch turns the original JSON into the fixed object. It is empty when Fixed is.
	Patch []jsonpatch.Operation
	// Original is the object as decoded from raw, without the fixes (a deep copy of w's
	// object taken before them, not w's object itself), when Fixed is not empty (nil
	// otherwise): callers that must compare the request's object with another, such as the
	// mutating webhook on an UPDATE, use it instead of decoding raw once more.
	Original runtime.Object
}

// Unfixable says why no fix is ever applied to w, or "" when fixes apply. The mutating
// webhook and `loomguard fix` both ask, so that fix prints what admission would store:
//   - a mirror pod (the kubelet's copy of a static pod) is never changed;
//   - a ReplicaSet that a controller owns (a Deployment's) is left as generated: the
//     Deployment controller finds its ReplicaSet by comparing pod templates, so a patched
//     template would make it create ReplicaSet after ReplicaSet. The Deployment itself is
//     fixed on admission, and the pods on theirs.
func Unfixable(w *policies.Workload) string {
	switch {
	case w.Mirror():
		return "loomguard does not mutate mirror pods"
	case w.TemplatePinned():
		return "loomguard does not mutate the ReplicaSets a controller generates"
	}
	return ""
}

// Apply applies the engine's fixes to w, whose object was decoded from raw, and computes
// the JSON patch from raw to the result, adding FixedAnnotation. namespace decides the
// actions, exemption and exceptions (see policies.Engine.Mutate); it is never written into
// the object.
//
// Apply fixes w's object in place. It first takes a deep copy of the object, returned as
// Original when a fix applied, whose encoding tells the typed round trip's own changes from
// the fixes'. The copy costs every object, also one that needs no fix (+39 allocations,
// +5.9 KB, ≈ +10 µs CPU on a Deployment), but it spares a fix review the second typed
// decoding of raw (≈ 25–45 µs CPU on a Pod as the API server sends it); and the mutating
// webhook's matchConditions keep most objects that need no fix from being sent (see
// BENCHMARKS.md).
//
// The patch carries the fixes and nothing else: what the typed round trip alone would change
// in raw (a status with zero counters, a null creationTimestamp, a quantity respelled from 1
// to "1", a field newer than loomguard's API types) is left out, so raw keeps its own
// spelling everywhere a fix did not touch. The operations are in a stable order.
//
// raw is compared with the fixed object's encoding and, unless it encodes to raw itself,
// with the round trip's (diffJSON), each without metadata.managedFields, which no fix
// touches: only the members and elements that the two spell differently are decoded, the
// rest is scanned. Time and memory are linear in the size of raw: the scanning is bounded
// to a multiple of it, past which both documents are decoded whole.
func Apply(e *policies.Engine, w *policies.Workload, raw []byte, namespace string) (Result, error) {
	original := w.Object.DeepCopyObject()
	fixed := e.Mutate(w, namespace)
	if len(fixed) == 0 {
		return Result{}, nil
	}
	if w.Meta.Annotations == nil {
		w.Meta.Annotations = map[string]string{}
	}
	w.Meta.Annotations[FixedAnnotation] = strings.Join(fixed, ",")
	current, err := json.Marshal(w.Object)
	if err != nil {
		return Result{}, fmt.Errorf("encoding fixed %s: %w", w.Kind.Kind, err)
	}
	// raw is compared with both encodings, metadata.managedFields left out, decoding only
	// where they differ (diffJSON).
	doc := &document{data: raw, prune: []string{"metadata", "managedFields"}}
	ops, err := diffJSON(doc, current)
	if err != nil {
		return Result{}, fmt.Errorf("computing patch for %s: comparing the original with the fixed object: %w", w.Kind.Kind, err)
	}
	// What the typed round trip alone makes of raw, with no fix applied.
	same, err := json.Marshal(original)
	if err != nil {
		return Result{}, fmt.Errorf("computing patch for %s: encoding the original: %w", w.Kind.Kind, err)
	}
	var noise []jsonpatch.Operation
	if !bytes.Equal(raw, same) { // an API server's encoding of the same types round-trips unchanged
		if noise, err = diffJSON(doc, same); err != nil {
			return Result{}, fmt.Errorf("computing patch for %s: comparing the original with its round trip: %w", w.Kind.Kind, err)
		}
	}
	return Result{Fixed: fixed, Patch: relevant(ops, noise), Original: original}, nil
}

// relevant keeps the operations that carry a fix, in a stable order. Fixes only add and set
// fields, so a "remove" can only come from the typed round trip (a field newer than
// loomguard's API types, say) and must never reach the API server; neither may anything the
// round trip alone produces (noise). Adding null or {} is the round trip spelling out an
// empty field (creationTimestamp: null, status: {}); nulls inside an added value are dropped
// for the same reason: a fix never sets a field to null.
//
// It takes time linear in the operations (and n log n to sort them): the noise is indexed by
// path, and each path is split into its segments once.
func relevant(ops, noise []jsonpatch.Operation) []jsonpatch.Operation {
	byPath := make(map[string][]int, len(noise))
	for i, n := range noise {
		byPath[n.Path] = append(byPath[n.Path], i)
	}
	isNoise := func(op jsonpatch.Operation) bool {
		for _, i := range byPath[op.Path] {
			if n := noise[i]; n.Operation == op.Operation && reflect.DeepEqual(n.Value, op.Value) {
				return true
			}
		}
		return false
	}
	type keyed struct {
		op   jsonpatch.Operation
		path []string
	}
	kept := make([]keyed, 0, len(ops))
	for _, op := range ops {
		if op.Operation == "remove" {
			continue
		}
		if op.Operation == "add" && isEmpty(op.Value) {
			continue
		}
		if isNoise(op) {
			continue
		}
		op.Value = dropNulls(op.Value)
		kept = append(kept, keyed{op: op, path: strings.Split(op.Path, "/")})
	}
	// Without removes the operations touch disjoint paths, so any order applies the same,
	// except for adds to consecutive array indexes, which must stay in ascending order:
	// compare paths segment by segment, indexes as numbers.
	slices.SortStableFunc(kept, func(a, b keyed) int { return compareSegments(a.path, b.path) })
	out := ops[:0]
	for _, k := range kept {
		out = append(out, k.op)
	}
	return out
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(t) == 0
	}
	return false
}

// dropNulls removes the null members of the objects in v, recursively.
func dropNulls(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if e == nil {
				delete(t, k)
				continue
			}
			t[k] = dropNulls(e)
		}
	case []any:
		for i, e := range t {
			t[i] = dropNulls(e)
		}
	}
	return v
}

// compareSegments orders JSON pointers, split at "/", segment by segment, numeric segments
// by value.
func compareSegments(as, bs []string) int {
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		ai, aerr := strconv.Atoi(as[i])
		bi, berr := strconv.Atoi(bs[i])
		if aerr == nil && berr == nil {
			return ai - bi
		}
		return strings.Compare(as[i], bs[i])
	}
	return len(as) - len(bs)
}
