package policies

import (
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// required-labels requires the configured labels (Loom's guide: app, version, environment)
// on the workload's own metadata.labels and on its pod template's labels, each with a
// non-empty value; a label that has allowed values (environment: development, staging or
// production) must use one of them, wherever it is set. The workload labels are what
// people and tools select deployments by; the template labels end up on the pods, where
// metrics, logs, NetworkPolicies and PodDisruptionBudgets select them.
//
// Where the labels are read:
//
//   - Deployment, StatefulSet, DaemonSet, ReplicaSet, Job: metadata.labels and
//     spec.template.metadata.labels;
//   - CronJob: metadata.labels and spec.jobTemplate.spec.template.metadata.labels (the
//     Job template's own jobTemplate.metadata.labels are not required: the pods never carry
//     them);
//   - Pod: metadata.labels, once (a Pod is its own template);
//   - an object that a controller generated (a ReplicaSet of a Deployment, a Job of a
//     CronJob, a Pod of a ReplicaSet, Job, StatefulSet or DaemonSet) is checked on its pod
//     template only: that is what its owner's admission checked, while its own labels come
//     from places that admission never saw (a CronJob's Jobs carry jobTemplate.metadata.labels,
//     not the CronJob's). A workload that was admitted must be able to create its children.
//
// The fix copies a label that is missing from the pod template from the workload's own
// labels, when the workload has it with a non-empty, allowed value. It never invents a
// value, never copies the other way (template → workload), never replaces a label that is
// present (even empty or not allowed), and leaves Pods (nothing to copy from) and
// generated objects alone: changing a generated ReplicaSet's template would make its
// Deployment stop recognising it and create another one.
func requiredLabels(cfg RequiredLabelsConfig) Policy {
	r := newLabelRules(cfg)
	metadata := field.NewPath("metadata")
	return Policy{
		Fields: []string{
			"metadata.labels",
			"spec.template.metadata.labels",
			"spec.jobTemplate.spec.template.metadata.labels",
		},
		Check: func(w *Workload) field.ErrorList {
			var errs field.ErrorList
			if w.Template == w.Meta { // a Pod
				return r.check(errs, w.Meta.Labels, metadata, w.Kind.Kind)
			}
			if !w.Controlled() {
				errs = r.check(errs, w.Meta.Labels, metadata, w.Kind.Kind)
			}
			return r.check(errs, w.Template.Labels, w.TemplatePath, "")
		},
		// Cleared: every required label set, every restricted one absent or allowed, on the
		// template and (even when the object has a controller, which the check forgives) on
		// the object itself; the fix then has nothing to copy.
		Clear: func(t celTemplate) (clearance, bool) {
			metas := []string{t.TemplateMeta}
			if t.Meta != t.TemplateMeta {
				metas = append(metas, t.Meta)
			}
			var c clearance
			for _, l := range r.restricted {
				c.Cost += uint64(len(metas)) * uint64(20+len(l.values))
			}
			c.Cost += uint64(len(metas)) * uint64(20*len(r.required))
			// One attribute per label ("m.?labels[?key]"), no map built in between.
			for _, m := range metas {
				for _, k := range r.required {
					c.Pod = append(c.Pod, m+".?labels[?"+celString(k)+"].orValue('') != ''")
				}
				for _, l := range r.restricted {
					label := m + ".?labels[?" + celString(l.key) + "]"
					if len(l.values) == 0 { // absent only
						c.Pod = append(c.Pod, "!"+label+".hasValue()")
						continue
					}
					// Absent reads as the first allowed value.
					c.Pod = append(c.Pod, label+".orValue("+celString(l.values[0])+") in "+celStrings(l.values))
				}
			}
			return c, true
		},
		// No fix: a Pod's labels are never filled; a template's are when the key is missing.
		NoFix: func(t celTemplate) (clearance, bool) {
			if t.TemplateMeta == t.Meta {
				return clearance{}, true
			}
			var c clearance
			for _, k := range r.required {
				c.Pod = append(c.Pod, celString(k)+" in "+t.TemplateMeta+".?labels.orValue({})")
			}
			c.Cost = uint64(20 * len(r.required))
			return c, true
		},
		Fix: func(w *Workload) bool {
			if w.Template == w.Meta || w.Controlled() {
				return false
			}
			changed := false
			for _, k := range r.required {
				if _, ok := w.Template.Labels[k]; ok {
					continue
				}
				v := w.Meta.Labels[k]
				if v == "" || !r.allowed(k, v) {
					continue
				}
				if w.Template.Labels == nil {
					w.Template.Labels = map[string]string{}
				}
				w.Template.Labels[k] = v
				changed = true
			}
			return changed
		},
	}
}

// labelRules is required-labels' config, compiled once per engine.
type labelRules struct {
	// required are the labels that must be present, in config order.
	required []string
	// restricted are the labels with allowed values: the required ones in config order,
	// then the others sorted, so that violations come out in a stable order.
	restricted []restrictedLabel
}

type restrictedLabel struct {
	key     string
	values  []string
	missing bool // also required: reported as missing, not checked for values
}

func newLabelRules(cfg RequiredLabelsConfig) *labelRules {
	r := &labelRules{}
	for _, k := range cfg.Labels {
		if !slices.Contains(r.required, k) {
			r.required = append(r.required, k)
		}
	}
	for _, k := range r.required {
		if v, ok := cfg.AllowedValues[k]; ok {
			r.restricted = append(r.restricted, restrictedLabel{key: k, values: slices.Clone(v), missing: true})
		}
	}
	for _, k := range sortedKeys(cfg.AllowedValues) {
		if !slices.Contains(cfg.Labels, k) {
			r.restricted = append(r.restricted, restrictedLabel{key: k, values: slices.Clone(cfg.AllowedValues[k])})
		}
	}
	return r
}

// allowed reports whether v is an allowed value of label k (any value when k is unrestricted).
func (r *labelRules) allowed(k, v string) bool {
	for _, l := range r.restricted {
		if l.key == k {
			return slices.Contains(l.values, v)
		}
	}
	return true
}

// check appends the violations of one label set; meta is the path of the metadata that
// holds it, kind the workload kind whose own labels these are, or "" for the pod template.
func (r *labelRules) check(errs field.ErrorList, labels map[string]string, meta *field.Path, kind string) field.ErrorList {
	for _, k := range r.required {
		if labels[k] == "" {
			errs = append(errs, field.Required(meta.Child("labels").Key(k),
				labelSubject(kind)+" must have the label "+strconv.Quote(k)+" with a non-empty value"))
		}
	}
	for _, l := range r.restricted {
		v, ok := labels[l.key]
		if !ok || (v == "" && l.missing) || slices.Contains(l.values, v) {
			continue
		}
		e := field.NotSupported(meta.Child("labels").Key(l.key), v, l.values)
		e.Detail = labelSubject(kind) + " label " + strconv.Quote(l.key) + " has the unsupported value " + strconv.Quote(v) + "; " + e.Detail
		errs = append(errs, e)
	}
	return errs
}

// labelSubject names the owner of a label set in a detail: "the Deployment" or "the pod template".
func labelSubject(kind string) string {
	if kind == "" {
		return "the pod template"
	}
	return "the " + kind
}

// RequiredLabelsConfig configures required-labels.
type RequiredLabelsConfig struct {
	Settings `json:",inline"`
	// Labels must be present on the workload and on its pod template.
	Labels []string `json:"labels,omitempty"`
	// AllowedValues restricts the values of some labels.
	AllowedValues map[string][]string `json:"allowedValues,omitempty"`
}

// Default sets Loom's labels: app, version and environment, the last one development,
// staging or production.
func (c *RequiredLabelsConfig) Default() {
	c.Labels = []string{"app", "version", "environment"}
	c.AllowedValues = map[string][]string{"environment": {"development", "staging", "production"}}
}

// Validate requires label keys that are qualified label names and, for each restricted
// label, at least one value, each a valid label value (apimachinery's validators).
func (c *RequiredLabelsConfig) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, l := range c.Labels {
		errs = append(errs, validateLabelKey(fldPath.Child("labels").Index(i), l)...)
	}
	for _, k := range sortedKeys(c.AllowedValues) {
		p := fldPath.Child("allowedValues").Key(k)
		errs = append(errs, validateLabelKey(p, k)...)
		if len(c.AllowedValues[k]) == 0 {
			errs = append(errs, field.Required(p, "at least one allowed value"))
		}
		for i, v := range c.AllowedValues[k] {
			errs = append(errs, validateLabelValue(p.Index(i), v)...)
		}
	}
	return errs
}
