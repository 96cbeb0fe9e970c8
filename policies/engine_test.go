package policies

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The engine is the unit under test here; the policies are stand-ins with the catalog's
// IDs that flag every container whose name starts with "bad" and fix it by renaming.
func engineStandIns() []Policy {
	mk := func(id string, def Action) Policy {
		return Policy{
			ID:            id,
			DefaultAction: def,
			Check: func(w *Workload) field.ErrorList {
				var errs field.ErrorList
				for _, c := range w.Containers() {
					if len(c.Name) >= 3 && c.Name[:3] == "bad" {
						errs = append(errs, field.Invalid(c.Path.Child("name"), c.Name, id))
					}
				}
				return errs
			},
			Fix: func(w *Workload) bool {
				changed := false
				for _, c := range w.Containers() {
					if len(c.Name) >= 3 && c.Name[:3] == "bad" {
						c.Name = "ok" + c.Name[3:]
						changed = true
					}
				}
				return changed
			},
		}
	}
	return []Policy{mk("image-tag", ActionEnforce), mk("health-probes", ActionWarn), mk("high-availability", ActionAudit)}
}

func engineClock() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }

func enginePod(ns string, containers ...string) *Workload {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c})
	}
	w, _ := NewWorkload(pod)
	return w
}

func engineVerdicts(r Report) []string {
	var out []string
	for _, v := range r.Violations {
		out = append(out, v.Policy+"="+string(v.Action)+"@"+v.Field)
	}
	return out
}

func TestEngineActions(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		ns   string
		want []string
	}{{
		name: "built-in actions",
		ns:   "loom",
		want: []string{"image-tag=enforce@spec.containers[0].name", "health-probes=warn@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"},
	}, {
		name: "defaultAction caps the built-in actions",
		cfg:  func(c *Config) { c.DefaultAction = ActionWarn },
		ns:   "loom",
		want: []string{"image-tag=warn@spec.containers[0].name", "health-probes=warn@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"},
	}, {
		name: "a policy's own action wins over defaultAction",
		cfg: func(c *Config) {
			c.DefaultAction = ActionAudit
			c.Policies.HighAvailability.Action = ActionEnforce
			c.Policies.HealthProbes.Action = ActionOff
		},
		ns:   "loom",
		want: []string{"image-tag=audit@spec.containers[0].name", "high-availability=enforce@spec.containers[0].name"},
	}, {
		name: "namespace override: first match wins, per-policy beats the cap",
		cfg: func(c *Config) {
			c.Namespaces = []NamespaceOverride{
				{Names: []string{"dev-*"}, Action: ActionAudit, Policies: map[string]Action{"health-probes": ActionEnforce}},
				{Names: []string{"dev-loom"}, Action: ActionOff},
			}
		},
		ns:   "dev-loom",
		want: []string{"image-tag=audit@spec.containers[0].name", "health-probes=enforce@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"},
	}, {
		name: "namespace override does not leak to other namespaces",
		cfg:  func(c *Config) { c.Namespaces = []NamespaceOverride{{Names: []string{"dev-*"}, Action: ActionOff}} },
		ns:   "loom",
		want: []string{"image-tag=enforce@spec.containers[0].name", "health-probes=warn@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"},
	}, {
		name: "exempt namespace",
		ns:   "kube-system",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			e, err := newEngine(cfg, engineStandIns(), engineClock)
			if err != nil {
				t.Fatal(err)
			}
			r := e.Evaluate(enginePod(tt.ns, "bad"), tt.ns)
			if got := engineVerdicts(r); !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			if r.Exempt != (tt.ns == "kube-system") {
				t.Errorf("Exempt = %v", r.Exempt)
			}
		})
	}
}

func TestEngineMutateOnlyEnforcedAndWarned(t *testing.T) {
	cfg := DefaultConfig()
	f := false
	cfg.Policies.HealthProbes.Fix = &f
	e, err := newEngine(cfg, engineStandIns(), engineClock)
	if err != nil {
		t.Fatal(err)
	}
	w := enginePod("loom", "bad")
	if got := e.Mutate(w, w.Meta.Namespace); !slices.Equal(got, []string{"image-tag"}) {
		t.Errorf("Mutate = %v, want [image-tag] (health-probes fix disabled, high-availability audits)", got)
	}
	if w.Spec.Containers[0].Name != "ok" {
		t.Errorf("container not fixed: %q", w.Spec.Containers[0].Name)
	}
	if got := e.Mutate(enginePod("kube-system", "bad"), "kube-system"); got != nil {
		t.Errorf("Mutate in an exempt namespace = %v", got)
	}
}

func TestEngineExceptions(t *testing.T) {
	future, past := "2027-01-31", "2026-11-25"
	ex := func(name, ns, workload, expires string, containers ...string) Exception {
		return Exception{Name: name, Policies: []string{"image-tag"}, Namespace: ns, Workload: workload,
			Containers: containers, Owner: "team-a", Reason: "vendor image", Expires: expires}
	}
	ctrl := true
	rsPod := func() *Workload {
		w := enginePod("loom", "bad", "bad-sidecar")
		w.Meta.Name, w.Meta.GenerateName = "", "legacy-7d9f8-"
		w.Meta.Labels = map[string]string{"pod-template-hash": "7d9f8"}
		w.Meta.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "legacy-7d9f8", Controller: &ctrl}}
		return w
	}
	cronPod := func() *Workload {
		w := enginePod("loom", "bad")
		w.Meta.Name = "nightly-29000000-x7k2p"
		w.Meta.OwnerReferences = []metav1.OwnerReference{{Kind: "Job", Name: "nightly-29000000", Controller: &ctrl}}
		return w
	}
	tests := []struct {
		name       string
		exceptions []Exception
		w          *Workload
		want       []string
		waived     []Waiver
	}{{
		name:       "whole workload waived",
		exceptions: []Exception{ex("web-ok", "loom", "web", future)},
		w:          enginePod("loom", "bad"),
		want:       []string{"health-probes=warn@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"},
		waived:     []Waiver{{Policy: "image-tag", Exception: "web-ok"}},
	}, {
		name:       "expired exception no longer applies",
		exceptions: []Exception{ex("web-ok", "loom", "web", past)},
		w:          enginePod("loom", "bad"),
		want:       []string{"image-tag=enforce@spec.containers[0].name", "health-probes=warn@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"},
	}, {
		name:       "other namespace",
		exceptions: []Exception{ex("web-ok", "batch", "*", future)},
		w:          enginePod("loom", "bad"),
		want:       []string{"image-tag=enforce@spec.containers[0].name", "health-probes=warn@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"},
	}, {
		name:       "container-scoped",
		exceptions: []Exception{ex("sidecar", "loom", "web", future, "bad-sidecar")},
		w:          enginePod("loom", "bad", "bad-sidecar"),
		want: []string{
			"image-tag=enforce@spec.containers[0].name",
			"health-probes=warn@spec.containers[0].name", "health-probes=warn@spec.containers[1].name",
			"high-availability=audit@spec.containers[0].name", "high-availability=audit@spec.containers[1].name",
		},
		waived: []Waiver{{Policy: "image-tag", Exception: "sidecar"}},
	}, {
		name:       "a Deployment's exception covers the Pods of its ReplicaSets",
		exceptions: []Exception{ex("legacy", "loom", "legacy", future)},
		w:          rsPod(),
		want: []string{
			"health-probes=warn@spec.containers[0].name", "health-probes=warn@spec.containers[1].name",
			"high-availability=audit@spec.containers[0].name", "high-availability=audit@spec.containers[1].name",
		},
		waived: []Waiver{{Policy: "image-tag", Exception: "legacy"}},
	}, {
		name:       "a CronJob's exception covers the Pods of its Jobs",
		exceptions: []Exception{ex("nightly", "loom", "nightly", future)},
		w:          cronPod(),
		want:       []string{"health-probes=warn@spec.containers[0].name", "high-availability=audit@spec.containers[0].name"},
		waived:     []Waiver{{Policy: "image-tag", Exception: "nightly"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Exceptions = tt.exceptions
			e, err := newEngine(cfg, engineStandIns(), engineClock)
			if err != nil {
				t.Fatal(err)
			}
			r := e.Evaluate(tt.w, tt.w.Meta.Namespace)
			if got := engineVerdicts(r); !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			if !slices.Equal(r.Waivers, tt.waived) {
				t.Errorf("waivers = %v, want %v", r.Waivers, tt.waived)
			}
		})
	}
}

func TestEngineExceptionStates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Exceptions = []Exception{
		{Name: "a", Policies: []string{"image-tag"}, Namespace: "*", Workload: "*", Owner: "o", Reason: "r", Expires: "2026-11-26"},
		{Name: "b", Policies: []string{"image-tag"}, Namespace: "*", Workload: "*", Owner: "o", Reason: "r", Expires: "2026-11-26T11:00:00Z"},
	}
	e, err := NewEngine(cfg, engineClock)
	if err != nil {
		t.Fatal(err)
	}
	got := e.Exceptions()
	want := []ExceptionState{
		{Name: "a", Expires: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), Active: true},
		{Name: "b", Expires: time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC), Active: false},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Exceptions() = %+v, want %+v", got, want)
	}
}

func TestReportDecision(t *testing.T) {
	for _, tt := range []struct {
		actions []Action
		want    Decision
	}{
		{nil, Allowed},
		{[]Action{ActionAudit}, Allowed},
		{[]Action{ActionAudit, ActionWarn}, Warned},
		{[]Action{ActionWarn, ActionEnforce}, Denied},
	} {
		var r Report
		for _, a := range tt.actions {
			r.Violations = append(r.Violations, Violation{Action: a, Error: field.Required(field.NewPath("x"), "")})
		}
		if got := r.Decision(); got != tt.want {
			t.Errorf("%v: Decision() = %s, want %s", tt.actions, got, tt.want)
		}
	}
}
