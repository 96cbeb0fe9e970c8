package policies

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// secret-env keeps secrets out of pod specs, in every container (init, regular and
// ephemeral):
//
//   - an environment variable with a secret-like name takes its value from a Secret
//     (valueFrom.secretKeyRef): a literal value, a configMapKeyRef, a fieldRef, a
//     resourceFieldRef or a fileKeyRef is forbidden. A name is secret-like when one of the
//     configured secret names matches a run of whole words of it, words being split at
//     "_", "-" and ".", case-insensitively: PWD matches POSTGRES_PWD, API_KEY matches
//     OPENAI_API_KEY, DATABASE_URL matches LOOM_DATABASE_URL, TOKEN matches GITHUB_TOKEN
//     but not TOKENIZER_MODEL. Loom reads LOOM_PASSWORD, JWT_SECRET, DATABASE_DSN,
//     DATABASE_URL, POSTGRES_PASSWORD, POSTGRES_PWD, SMTP_PASSWORD and the providers'
//     *_API_KEY from its environment (LOOM.md, "secrets in env"). A name whose last word
//     is FILE or PATH, past the secret words (POSTGRES_PASSWORD_FILE), holds where a
//     mounted secret is, the Docker and Postgres convention, not the secret: it is not
//     secret-like. An empty variable (no value, no valueFrom) is allowed;
//   - a forbidden name (Loom's default: GITHUB_TOKEN, which must never be in a pod) is
//     refused even from a Secret;
//   - a known weak default (changeme, loom-default-password, change-me-in-production;
//     compared trimmed and case-insensitively) is refused as the literal value of any
//     variable, whatever its name, and as any command or args element that is the value or
//     ends with "=" and the value (--password=changeme).
//
// Details never repeat a literal value: it may be a real secret. They name a weak default,
// which is published. envFrom cannot be inspected (the keys live in the ConfigMap or
// Secret) and is allowed. There is no fix: the Secret has to exist first.
func secretEnv(cfg SecretEnvConfig) Policy {
	patterns := make([][]string, 0, len(cfg.SecretNames))
	for _, n := range cfg.SecretNames {
		if words := envNameWords(n); len(words) > 0 {
			patterns = append(patterns, words)
		}
	}
	forbidden := nonEmptyStrings(cfg.ForbiddenNames)
	var weak []string
	for _, v := range cfg.WeakValues {
		if v = strings.TrimSpace(v); v != "" {
			weak = append(weak, v)
		}
	}
	return Policy{
		Fields: []string{
			"{initContainers,containers,ephemeralContainers}[*].env",
			"{initContainers,containers,ephemeralContainers}[*].command",
			"{initContainers,containers,ephemeralContainers}[*].args",
		},
		Check: func(w *Workload) field.ErrorList {
			var errs field.ErrorList
			for _, c := range w.Containers() {
				for i := range c.Env {
					e := &c.Env[i]
					if containsFold(forbidden, e.Name) {
						errs = append(errs, field.Forbidden(c.Path.Child("env").Index(i),
							"container "+strconv.Quote(c.Name)+" must not set the environment variable "+strconv.Quote(e.Name)+", not even from a Secret"))
						continue
					}
					if secretLikeEnvName(e.Name, patterns) {
						if p, source := envSource(c, i); p != nil {
							errs = append(errs, field.Forbidden(p, "container "+strconv.Quote(c.Name)+" must take the secret-like variable "+
								strconv.Quote(e.Name)+" from a Secret (valueFrom.secretKeyRef), not "+source))
						}
					}
					if e.Value != "" {
						if v := weakValue(e.Value, weak, false); v != "" {
							errs = append(errs, field.Forbidden(c.Path.Child("env").Index(i).Child("value"),
								"container "+strconv.Quote(c.Name)+" variable "+strconv.Quote(e.Name)+" must not be set to the published default "+strconv.Quote(v)))
						}
					}
				}
				errs = weakArgs(errs, c, "command", c.Command, weak)
				errs = weakArgs(errs, c, "args", c.Args, weak)
			}
			return errs
		},
	}
}

// envSource returns the field of env[i] that supplies a secret-like variable's value other
// than a Secret, and what it is; nil when the value comes from a Secret or is empty.
func envSource(c ContainerRef, i int) (*field.Path, string) {
	e := &c.Env[i]
	if e.Value != "" {
		return c.Path.Child("env").Index(i).Child("value"), "a literal value"
	}
	vf := e.ValueFrom
	if vf == nil || vf.SecretKeyRef != nil {
		return nil, ""
	}
	var name, what string
	switch {
	case vf.ConfigMapKeyRef != nil:
		name, what = "configMapKeyRef", "a ConfigMap"
	case vf.FieldRef != nil:
		name, what = "fieldRef", "a pod field"
	case vf.ResourceFieldRef != nil:
		name, what = "resourceFieldRef", "a resource field"
	case vf.FileKeyRef != nil:
		name, what = "fileKeyRef", "an env file"
	default:
		return nil, ""
	}
	return c.Path.Child("env").Index(i).Child("valueFrom", name), what
}

// weakArgs appends a violation for every element of a command or args list that carries a
// weak value.
func weakArgs(errs field.ErrorList, c ContainerRef, list string, args []string, weak []string) field.ErrorList {
	for k, a := range args {
		if v := weakValue(a, weak, true); v != "" {
			errs = append(errs, field.Forbidden(c.Path.Child(list).Index(k),
				"container "+strconv.Quote(c.Name)+" must not pass the published default "+strconv.Quote(v)+" in its "+list))
		}
	}
	return errs
}

// weakValue returns the weak value that s is (trimmed, case-insensitively) or, with
// assignment, that s ends with after an "=", and "" when none.
func weakValue(s string, weak []string, assignment bool) string {
	s = strings.TrimSpace(s)
	for _, v := range weak {
		if strings.EqualFold(s, v) {
			return v
		}
		if assignment && len(s) > len(v) && s[len(s)-len(v)-1] == '=' && strings.EqualFold(s[len(s)-len(v):], v) {
			return v
		}
	}
	return ""
}

func containsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}

// isEnvNameSeparator reports whether b separates the words of an environment variable name.
func isEnvNameSeparator(b byte) bool { return b == '_' || b == '-' || b == '.' }

// envNameWords splits a configured secret name into upper-case words.
func envNameWords(s string) []string {
	return strings.FieldsFunc(strings.ToUpper(s), func(r rune) bool { return r < 0x80 && isEnvNameSeparator(byte(r)) })
}

// nextEnvNameWord returns the word of name that starts at or after i and the index just
// past it; the word is "" when there is none.
func nextEnvNameWord(name string, i int) (string, int) {
	for i < len(name) && isEnvNameSeparator(name[i]) {
		i++
	}
	j := i
	for j < len(name) && !isEnvNameSeparator(name[j]) {
		j++
	}
	return name[i:j], j
}

// secretLikeEnvName reports whether a pattern matches a run of whole words of name, not
// counting matches followed by a final FILE or PATH word. It does not allocate.
func secretLikeEnvName(name string, patterns [][]string) bool {
	// pathFrom is where a final FILE or PATH word starts; a match must reach past it.
	pathFrom := len(name) + 1
	for i := len(name); i > 0; i-- {
		if isEnvNameSeparator(name[i-1]) {
			if last := name[i:]; strings.EqualFold(last, "FILE") || strings.EqualFold(last, "PATH") {
				pathFrom = i
			}
			break
		}
	}
	for start := 0; ; {
		word, next := nextEnvNameWord(name, start)
		if word == "" {
			return false
		}
		for _, p := range patterns {
			if end, ok := matchEnvNameWords(name, start, p); ok && (pathFrom > len(name) || end > pathFrom) {
				return true
			}
		}
		start = next
	}
}

// matchEnvNameWords reports whether the words of name from index i on begin with the
// pattern's words, and the index just past the match.
func matchEnvNameWords(name string, i int, pattern []string) (int, bool) {
	for _, pw := range pattern {
		w, next := nextEnvNameWord(name, i)
		if !strings.EqualFold(w, pw) {
			return 0, false
		}
		i = next
	}
	return i, true
}

// SecretEnvConfig configures secret-env.
type SecretEnvConfig struct {
	Settings `json:",inline"`
	// SecretNames are the words that make an environment variable secret-like. A word
	// matches whole parts of the name split at "_", "-" and ".": PWD matches POSTGRES_PWD,
	// API_KEY matches OPENAI_API_KEY.
	SecretNames []string `json:"secretNames,omitempty"`
	// ForbiddenNames may never be set in a pod, even from a Secret.
	ForbiddenNames []string `json:"forbiddenNames,omitempty"`
	// WeakValues are refused in any environment value, command or argument (case-insensitive).
	WeakValues []string `json:"weakValues,omitempty"`
}

// Default sets Loom's secret-like name words, forbids GITHUB_TOKEN and refuses the default
// passwords Loom's manifests used to ship.
func (c *SecretEnvConfig) Default() {
	c.SecretNames = []string{
		"PASSWORD", "PASSWD", "PWD", "SECRET", "TOKEN", "API_KEY", "APIKEY",
		"DSN", "PRIVATE_KEY", "CREDENTIALS", "CREDENTIAL", "DATABASE_URL",
	}
	c.ForbiddenNames = []string{"GITHUB_TOKEN"}
	c.WeakValues = []string{"changeme", "loom-default-password", "change-me-in-production"}
}

// Validate requires non-empty name words and weak values.
func (c *SecretEnvConfig) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, n := range c.SecretNames {
		if n == "" {
			errs = append(errs, field.Required(fldPath.Child("secretNames").Index(i), "a name word"))
		}
	}
	for i, v := range c.WeakValues {
		if v == "" {
			errs = append(errs, field.Required(fldPath.Child("weakValues").Index(i), "a value"))
		}
	}
	return errs
}
