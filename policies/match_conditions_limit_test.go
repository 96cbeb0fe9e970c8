package policies

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
)

// matchErr is celJudge.calls for a CREATE, returning the evaluation error (a condition the
// API server's CEL cannot compile is one) instead of failing the test.
func (j *celJudge) matchErr(t testing.TB, obj runtime.Object, gvk schema.GroupVersionKind, namespace string) (bool, error) {
	t.Helper()
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	attr := admission.NewAttributesRecord(obj, nil, gvk, namespace, "web", gvr, "", admission.Create, nil, false, &user.DefaultInfo{Name: "tester"})
	va, err := admission.NewVersionedAttributes(attr, gvk, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := j.matcher.Match(context.Background(), va, nil, nil)
	return r.Matches, r.Error
}

// TestMatchConditionsWithinParserLimit: the API server's CEL parses at most 100,000 code
// points per expression (cel-go's default ParserExpressionSizeLimit, which k8s.io/apiserver
// does not change), and refuses a webhook configuration whose matchConditions it cannot
// compile. As one expression for all seven kinds, the Loom profile's validating condition is
// about 75,000 code points long; a config well within the cost limit — the Loom profile with
// a "team" label restricted to 160 allowed values, each repeated for the object and its
// template in each kind's branch — would take it past the limit, so the generator gives it
// one condition per kind (not-cleared-<kind>). Every test config's conditions must compile
// with the API server's CEL and evaluate on the base Deployment.
func TestMatchConditionsWithinParserLimit(t *testing.T) {
	var teams []string
	for i := range 160 {
		teams = append(teams, fmt.Sprintf("team-%03d", i))
	}
	doc := "policies:\n  required-labels: {labels: [app, version, environment, team], allowedValues: {environment: [development, staging, production], team: [" +
		strings.Join(teams, ", ") + "]}}\n"
	cfg, errs := LoadConfig([]byte(doc))
	if len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	cfgs := testConfigs(t)
	cfgs["team-label-160-values"] = cfg
	base := fixtureByName(t, fixtureObjects(t), "testdata/base/deployment.yaml#0")
	dec := NewDecoder()
	for _, name := range sortedKeys(cfgs) {
		for _, mutating := range []bool{false, true} {
			conds := MatchConditions(cfgs[name])
			if mutating {
				conds = MutatingMatchConditions(cfgs[name])
			}
			if conds == nil {
				continue
			}
			if name == "team-label-160-values" && !mutating {
				var names []string
				for _, c := range conds {
					names = append(names, c.Name)
				}
				if len(conds) != len(workloadKinds) || names[0] != "not-cleared-pod" {
					t.Errorf("%s: validating conditions %v, want one per kind (not-cleared-<kind>): one would be too long", name, names)
				}
			}
			obj, err := dec.Decode(base.json, base.gvk, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := newCELJudge(t, conds).matchErr(t, obj, base.gvk, "team-a"); err != nil {
				longest := 0
				for _, c := range conds {
					longest = max(longest, utf8.RuneCountInString(c.Expression))
				}
				msg := err.Error()
				if len(msg) > 300 {
					msg = msg[:300] + "..."
				}
				t.Errorf("%s (mutating %v): the API server's CEL cannot compile the conditions (longest %d code points): %s", name, mutating, longest, msg)
			}
		}
	}
}
