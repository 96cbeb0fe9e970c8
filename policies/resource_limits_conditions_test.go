package policies

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
)

// TestResourceLimitsConditionsQuantities judges resource-limits' conditions on the quantity
// strings where the floats they compare could part from the check's verdict: decimal and
// binary suffixes, thousandths of a cpu and whole cpus for the same amount, amounts at and
// past the 10^13-unit bound of wholeCPU and wholeBytes, non-canonical spellings the API
// server keeps as sent (1.500, +1), zero, a missing request (the limit's copy), under
// whole, non-whole and huge ratios and none; each pair in a Pod and in a Deployment.
// Whatever either webhook's conditions clear must need nothing from resource-limits, and
// they must agree on the typed and the unstructured object (celJudge.calls).
func TestResourceLimitsConditionsQuantities(t *testing.T) {
	cpu := []string{"", "1m", "3m", "999m", "1000m", "1", "1001m", "1.5", "1.500", "+1", "3", "0", "0.1m", "1e3", "1k",
		"9999999999", "10000000000", "9999999999999m", "10000000000000m"}
	mem := []string{"", "1", "3", "1000", "1k", "1024", "1Ki", "1536", "1.5Ki", "1000m", "0", "1e9", "1G", "1Gi", "1073741824",
		"9999999999999", "10000000000000", "9T", "10T", "9Ti", "999Gi", "1000Gi", "999999999Ki", "1000000000Ki"}
	var objs []resourcesObject
	for _, pair := range []struct {
		values []string
		other  string
		isCPU  bool
	}{{cpu, "256Mi", true}, {mem, "100m", false}} {
		for _, req := range pair.values {
			for _, lim := range pair.values {
				c := map[string]any{"name": "c", "image": "x"}
				r := map[string]any{"requests": map[string]any{}, "limits": map[string]any{}}
				set := func(kind, cpuV, memV string) {
					if cpuV != "" {
						r[kind].(map[string]any)["cpu"] = cpuV
					}
					if memV != "" {
						r[kind].(map[string]any)["memory"] = memV
					}
				}
				if pair.isCPU {
					set("requests", req, pair.other)
					set("limits", lim, pair.other)
				} else {
					set("requests", pair.other, req)
					set("limits", pair.other, lim)
				}
				c["resources"] = r
				objs = append(objs, resourcesObject{fmt.Sprintf("request %q limit %q", req, lim), c})
			}
		}
	}
	for _, ratio := range []float64{0, 1, 1.5, 2.0000001, 5, 65, 1e6} {
		t.Run(fmt.Sprint("ratio ", ratio), func(t *testing.T) {
			cfg := resourceLimitsOnly(t, ratio)
			cleared := judgeResources(t, cfg, objs)
			if ratio != 1.5 && cleared == 0 {
				t.Error("nothing cleared: the conditions are not tried")
			}
		})
	}
}

// TestResourceLimitsConditionsLongQuantity: a quantity of many digits keeps them all in its
// canonical form, which is what CEL reads. Its conditions must not run a regular expression
// over it, which would cost more than the API server's per-call budget (an evaluation error,
// which skips the webhook under failurePolicy Ignore; celJudge.calls fails on it).
func TestResourceLimitsConditionsLongQuantity(t *testing.T) {
	long := strings.Repeat("123456789", 50_000) // 450,000 digits (bytes): wholeBytes over it would cost 1,080,000
	r := map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "1"}, "limits": map[string]any{"cpu": "100m", "memory": long}}
	judgeResources(t, resourceLimitsOnly(t, 5), []resourcesObject{{"a memory limit of 450,000 digits", map[string]any{"name": "c", "image": "x", "resources": r}}})
}

type resourcesObject struct {
	what      string
	container map[string]any
}

// resourceLimitsOnly is the default config with only resource-limits on, at ratio, its
// default limits equal to its default requests (valid for every ratio).
func resourceLimitsOnly(t *testing.T, ratio float64) *Config {
	t.Helper()
	cfg := DefaultConfig()
	for _, r := range Registry() {
		if r.ID != "resource-limits" {
			setAction(r.Config(&cfg.Policies), ActionOff)
		}
	}
	cfg.Policies.ResourceLimits.MaxLimitRequestRatio = ratio
	cfg.Policies.ResourceLimits.Defaults.Limits = cfg.Policies.ResourceLimits.Defaults.Requests
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	return cfg
}

// judgeResources judges a Pod and a Deployment with each container under cfg and returns
// how many the validating webhook's conditions clear.
func judgeResources(t *testing.T, cfg *Config, objs []resourcesObject) int {
	t.Helper()
	e, err := NewEngine(cfg, fixtureClock)
	if err != nil {
		t.Fatal(err)
	}
	jv, jm := newCELJudge(t, MatchConditions(cfg)), newCELJudge(t, MutatingMatchConditions(cfg))
	dec := NewDecoder()
	cleared := 0
	for _, o := range objs {
		spec := map[string]any{"containers": []any{o.container}}
		labels := map[string]any{"app": "a"}
		for _, doc := range []struct {
			gvk schema.GroupVersionKind
			obj map[string]any
		}{
			{schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, map[string]any{"apiVersion": "v1", "kind": "Pod",
				"metadata": map[string]any{"name": "p", "labels": labels}, "spec": spec}},
			{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
				"metadata": map[string]any{"name": "d", "labels": labels},
				"spec":     map[string]any{"selector": map[string]any{"matchLabels": labels}, "template": map[string]any{"metadata": map[string]any{"labels": labels}, "spec": spec}}}},
		} {
			js, err := json.Marshal(doc.obj)
			if err != nil {
				t.Fatal(err)
			}
			decode := func() *Workload {
				obj, err := dec.Decode(js, doc.gvk, false)
				if err != nil {
					t.Fatalf("%s: %v", o.what, err)
				}
				w, _ := NewWorkload(obj)
				return w
			}
			if !jm.calls(t, decode().Object, doc.gvk, "team-a", admission.Create, "") {
				if fixed := e.Mutate(decode(), "team-a"); len(fixed) > 0 {
					t.Errorf("%s %s: the mutating webhook's conditions skip it, yet loomguard would fix %v", doc.gvk.Kind, o.what, fixed)
				}
			}
			if !jv.calls(t, decode().Object, doc.gvk, "team-a", admission.Create, "") {
				cleared++
				if why, _ := clearedButFlagged(e, dec, js, doc.gvk, "team-a"); why != "" {
					t.Errorf("%s %s: the conditions skip it, yet loomguard would act: %s", doc.gvk.Kind, o.what, why)
				}
			}
		}
	}
	return cleared
}
