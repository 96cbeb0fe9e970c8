package gatekeeper

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// params reads spec.parameters, collecting a field error for each value of the wrong type.
type params struct {
	m    map[string]any
	errs field.ErrorList
}

var paramsPath = field.NewPath("spec", "parameters")

func (p *params) has(key string) bool {
	v, ok := p.m[key]
	return ok && v != nil
}

func (p *params) strings(key string) []string {
	out, errs := stringList(p.m[key], paramsPath.Child(key))
	p.errs = append(p.errs, errs...)
	return out
}

func (p *params) str(key string) string {
	v, ok := p.m[key]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.errs = append(p.errs, field.Invalid(paramsPath.Child(key), v, "must be a string"))
	}
	return s
}

func (p *params) boolean(key string) bool {
	v, ok := p.m[key]
	if !ok || v == nil {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		p.errs = append(p.errs, field.Invalid(paramsPath.Child(key), v, "must be a boolean"))
	}
	return b
}

// integer reads a whole number; ok is false when it is absent.
func (p *params) integer(key string) (int64, bool) {
	return toInt(p.m[key], paramsPath.Child(key), &p.errs)
}

// number reads a number given as a number or a string ("2", "1.5"), as ratio is.
func (p *params) number(key string) (float64, bool) {
	v, ok := p.m[key]
	if !ok || v == nil {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case string:
		f, err := strconv.ParseFloat(n, 64)
		if err == nil {
			return f, true
		}
	}
	p.errs = append(p.errs, field.Invalid(paramsPath.Child(key), v, "must be a number"))
	return 0, false
}

// list reads a list of objects.
func (p *params) list(key string) []map[string]any {
	v, ok := p.m[key]
	if !ok || v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		p.errs = append(p.errs, field.Invalid(paramsPath.Child(key), v, "must be a list"))
		return nil
	}
	out := make([]map[string]any, 0, len(l))
	for i, item := range l {
		m, ok := item.(map[string]any)
		if !ok {
			p.errs = append(p.errs, field.Invalid(paramsPath.Child(key).Index(i), item, "must be an object"))
			continue
		}
		out = append(out, m)
	}
	return out
}

// object reads a nested object as params of its own; its errors land in p.
func (p *params) object(key string) *params {
	v, ok := p.m[key]
	if !ok || v == nil {
		return &params{}
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.errs = append(p.errs, field.Invalid(paramsPath.Child(key), v, "must be an object"))
		return &params{}
	}
	return &params{m: m}
}

func toInt(v any, p *field.Path, errs *field.ErrorList) (int64, bool) {
	switch n := v.(type) {
	case nil:
		return 0, false
	case int64:
		return n, true
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	*errs = append(*errs, field.Invalid(p, v, "must be a whole number"))
	return 0, false
}

func quoteAll(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(s)
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
