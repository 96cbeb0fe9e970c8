package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/loomguard/loomguard/internal/manifest"
	"github.com/loomguard/loomguard/policies"
)

// syntheticResult is a check result with hand-made reports, so that the renderers are
// tested independently of what the policies report: a denied Deployment (with a List
// item index), an exempt DaemonSet and a Certificate, which is not a workload.
func syntheticResult(t *testing.T) *Result {
	t.Helper()
	e, err := policies.NewEngine(policies.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	workload := func(obj runtime.Object) *policies.Workload {
		w, ok := policies.NewWorkload(obj)
		if !ok {
			t.Fatalf("%T is not a workload", obj)
		}
		return w
	}
	denied := &Object{
		Doc: &manifest.Document{Source: "a.yaml", Index: 1, Line: 7}, Item: 2,
		GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Name: "api", Namespace: "loom",
		Workload: workload(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "loom"}}),
	}
	containers := field.NewPath("spec", "template", "spec", "containers").Index(0)
	denied.Report = policies.Report{
		Kind: denied.Workload.Kind, Namespace: "loom", Name: "api",
		Violations: []policies.Violation{
			{Policy: "image-tag", Action: policies.ActionEnforce, Error: field.Invalid(containers.Child("image"), "x:latest", `image "x:latest" uses <latest> & more`)},
			{Policy: "image-tag", Action: policies.ActionEnforce, Error: field.Required(containers.Child("name"), "second")},
			{Policy: "health-probes", Action: policies.ActionWarn, Error: field.Required(containers.Child("livenessProbe"), "add a probe")},
			{Policy: "high-availability", Action: policies.ActionAudit, Error: field.Invalid(field.NewPath("spec", "replicas"), 1, "run 2")},
		},
		Waivers: []policies.Waiver{{Policy: "run-as-non-root", Exception: "legacy"}},
	}
	exempt := &Object{
		Doc: &manifest.Document{Source: "b.yaml", Index: 0, Line: 1}, Item: -1,
		GVK: appsv1.SchemeGroupVersion.WithKind("DaemonSet"), Name: "node-agent", Namespace: "kube-system",
		Workload: workload(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "node-agent", Namespace: "kube-system"}}),
	}
	exempt.Report = policies.Report{Kind: exempt.Workload.Kind, Namespace: "kube-system", Name: "node-agent", Exempt: true}
	certificate := &Object{
		Doc: &manifest.Document{Source: "b.yaml", Index: 1, Line: 9}, Item: -1,
		GVK: schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}, Name: "loomguard-serving", Namespace: "loomguard-system",
	}
	return &Result{Engine: e, ToolVersion: "test", Sources: []string{"a.yaml", "b.yaml"}, Objects: []*Object{denied, exempt, certificate}}
}

func TestWriteText(t *testing.T) {
	tests := []struct {
		verbose bool
		want    string
	}{{false, `a.yaml#1.items[2] Deployment loom/api: denied
  [image-tag] spec.template.spec.containers[0].image: image "x:latest" uses <latest> & more (enforce)
  [image-tag] spec.template.spec.containers[0].name: second (enforce)
  [health-probes] spec.template.spec.containers[0].livenessProbe: add a probe (warn)
  [high-availability] spec.replicas: run 2 (audit)
3 objects, 2 workloads: 1 denied, 0 warned, 1 allowed; 4 violations (2 enforce, 1 warn, 1 audit)
`}, {true, `a.yaml#1.items[2] Deployment loom/api: denied
  [image-tag] spec.template.spec.containers[0].image: image "x:latest" uses <latest> & more (enforce)
  [image-tag] spec.template.spec.containers[0].name: second (enforce)
  [health-probes] spec.template.spec.containers[0].livenessProbe: add a probe (warn)
  [high-availability] spec.replicas: run 2 (audit)
  [run-as-non-root] waived by exception "legacy"
b.yaml#0 DaemonSet kube-system/node-agent: allowed (namespace "kube-system" is exempt)
b.yaml#1 Certificate loomguard-system/loomguard-serving: skipped (not a workload)
3 objects, 2 workloads: 1 denied, 0 warned, 1 allowed; 4 violations (2 enforce, 1 warn, 1 audit)
`}}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := writeText(&b, syntheticResult(t), tt.verbose); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("verbose=%v: got\n%s\nwant\n%s", tt.verbose, b.String(), tt.want)
		}
	}
}

// TestWriteJSONContract pins the JSON report, which other tools parse: field names, field
// order, 2-space indentation, no HTML escaping, "item" only for List items, [] for none.
func TestWriteJSONContract(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, syntheticResult(t)); err != nil {
		t.Fatal(err)
	}
	want := `{
  "summary": {
    "objects": 3,
    "workloads": 2,
    "violations": 4,
    "denied": 1
  },
  "results": [
    {
      "source": "a.yaml",
      "document": 1,
      "item": 2,
      "kind": "Deployment",
      "namespace": "loom",
      "name": "api",
      "decision": "denied",
      "violations": [
        {
          "policy": "image-tag",
          "action": "enforce",
          "field": "spec.template.spec.containers[0].image",
          "message": "image \"x:latest\" uses <latest> & more"
        },
        {
          "policy": "image-tag",
          "action": "enforce",
          "field": "spec.template.spec.containers[0].name",
          "message": "second"
        },
        {
          "policy": "health-probes",
          "action": "warn",
          "field": "spec.template.spec.containers[0].livenessProbe",
          "message": "add a probe"
        },
        {
          "policy": "high-availability",
          "action": "audit",
          "field": "spec.replicas",
          "message": "run 2"
        }
      ]
    },
    {
      "source": "b.yaml",
      "document": 0,
      "kind": "DaemonSet",
      "namespace": "kube-system",
      "name": "node-agent",
      "decision": "allowed",
      "violations": []
    }
  ]
}
`
	if b.String() != want {
		t.Errorf("JSON report: got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestWriteJUnit checks the JUnit mapping and that the counts match the testcases.
func TestWriteJUnit(t *testing.T) {
	res := syntheticResult(t)
	bad := errors.New("bad input")
	res.Errors = []*manifest.Error{{Source: "c.yaml", Document: 3, Item: -1, Line: 12, Err: bad}}
	var b bytes.Buffer
	if err := writeJUnit(&b, res); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), xml.Header) {
		t.Errorf("no XML header")
	}
	var got junitTestsuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b.String())
	}
	n := len(res.Engine.Policies())
	// Without PodDisruptionBudgets and NetworkPolicies in the input, the cross-object
	// policies are skipped.
	cross := 0
	for _, p := range res.Engine.Policies() {
		if p.CrossObject {
			cross++
		}
	}
	wantSuites := []struct {
		name                             string
		tests, failures, errors, skipped int
	}{
		{"a.yaml", n, 1, 0, cross},
		{"b.yaml", n, 0, 0, n},
		{"c.yaml", 1, 0, 1, 0},
	}
	if len(got.Suites) != len(wantSuites) {
		t.Fatalf("%d suites, want %d", len(got.Suites), len(wantSuites))
	}
	total := 0
	for i, w := range wantSuites {
		s := got.Suites[i]
		if s.Name != w.name || s.Tests != w.tests || s.Failures != w.failures || s.Errors != w.errors || s.Skipped != w.skipped || len(s.Cases) != s.Tests {
			t.Errorf("suite %d: %s tests=%d failures=%d errors=%d skipped=%d cases=%d, want %+v",
				i, s.Name, s.Tests, s.Failures, s.Errors, s.Skipped, len(s.Cases), w)
		}
		total += s.Tests
	}
	if got.Tests != total || got.Failures != 1 || got.Errors != 1 || got.Skipped != n+cross {
		t.Errorf("testsuites: tests=%d failures=%d errors=%d skipped=%d", got.Tests, got.Failures, got.Errors, got.Skipped)
	}
	cases := map[string]junitCase{}
	for _, c := range got.Suites[0].Cases {
		cases[c.Name] = c
		if c.Classname != "a.yaml" {
			t.Errorf("%s: classname %q, want the source", c.Name, c.Classname)
		}
	}
	image := cases["Deployment loom/api: image-tag"]
	if image.Failure == nil || image.Failure.Type != "enforce" ||
		image.Failure.Message != `[image-tag] spec.template.spec.containers[0].image: image "x:latest" uses <latest> & more; [image-tag] spec.template.spec.containers[0].name: second` {
		t.Errorf("image-tag testcase: %+v", image.Failure)
	}
	for id, want := range map[string]string{
		"health-probes":     "[health-probes] spec.template.spec.containers[0].livenessProbe: add a probe (warn)",
		"high-availability": "[high-availability] spec.replicas: run 2 (audit)",
		"run-as-non-root":   `[run-as-non-root] waived by exception "legacy"`,
	} {
		c := cases["Deployment loom/api: "+id]
		if c.Failure != nil || c.SystemOut == nil || c.SystemOut.Text != want {
			t.Errorf("%s testcase: failure %+v, system-out %+v; want a pass with %q", id, c.Failure, c.SystemOut, want)
		}
	}
	if c := got.Suites[2].Cases[0]; c.Name != "document 3" || c.Error == nil || c.Error.Message != bad.Error() {
		t.Errorf("input error testcase: %+v", c)
	}
}
