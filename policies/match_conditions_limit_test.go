package policies

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apiserver/pkg/admission"
)

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
			if _, err := newCELJudge(t, conds).match(t, obj, base.gvk, "team-a", admission.Create, ""); err != nil {
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
