package policies

import (
	"regexp"
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
//     configured secret names matches a run of whole words of it, case-insensitively. Words
//     are split in every common convention: at "_", "-" and "." (SCREAMING_SNAKE, kebab,
//     dotted), and at case changes (camelCase dbPassword, PascalCase DbPassword, acronyms
//     DBPassword as DB|Password); an all-upper or all-lower run is one word.
//     So PWD matches POSTGRES_PWD, API_KEY matches OPENAI_API_KEY and apiKey, PASSWORD
//     matches dbPassword and spring.datasource.password, TOKEN matches GITHUB_TOKEN but not
//     TOKENIZER_MODEL. Loom reads LOOM_PASSWORD, JWT_SECRET, DATABASE_DSN, DATABASE_URL,
//     POSTGRES_PASSWORD, POSTGRES_PWD, SMTP_PASSWORD and the providers' *_API_KEY from its
//     environment (LOOM.md, "secrets in env"). A name whose last word, past the secret
//     words, names a location — FILE, PATH, DIR or DIRECTORY (POSTGRES_PASSWORD_FILE,
//     SECRETS_DIR, tlsKeyPath) — holds where a mounted secret is, the Docker and Postgres
//     convention, not the secret: it is not secret-like. An empty variable (no value, no
//     valueFrom) is allowed;
//   - a forbidden name (Loom's default: GITHUB_TOKEN, which must never be in a pod) is
//     refused even from a Secret, in any convention (githubToken, github-token): the name's
//     words are exactly the forbidden name's;
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
	var forbidden [][]string
	for _, n := range cfg.ForbiddenNames {
		if words := envNameWords(n); len(words) > 0 {
			forbidden = append(forbidden, words)
		}
	}
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
					if forbiddenEnvName(e.Name, forbidden) {
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
		// Cleared: no env name is, in any case and with any separators, a forbidden name; a
		// variable whose name holds a secret name's words in a row (wordsPattern) is empty or
		// from a Secret; no literal value, command or args element holds a weak value, in any
		// case.
		Clear: func(t celTemplate) (clearance, bool) {
			name, value := "e.?name.orValue('')", "e.?value.orValue('')"
			env := []string{"size(" + name + ") <= " + strconv.Itoa(celMaxName), "size(" + value + ") <= " + strconv.Itoa(celMaxString)}
			perEnv, perArg := uint64(60), uint64(20)
			if len(forbidden) > 0 {
				re := `(?i)^[_.-]*(` + wordsPattern(forbidden) + `)[_.-]*$`
				env = append(env, "!"+name+".matches("+celString(re)+")")
				perEnv += celRegexCost(celMaxName, len(re))
			}
			if len(patterns) > 0 {
				re := `(?i)` + wordsPattern(patterns)
				// A variable with neither value nor valueFrom, or from a Secret, needs no look
				// at its name: the regular expression (microseconds on a name) runs only on
				// the others.
				env = append(env, "(("+value+" == '' && (!has(e.valueFrom) || has(e.valueFrom.secretKeyRef))) || !"+name+".matches("+celString(re)+"))")
				perEnv += celRegexCost(celMaxName, len(re))
			}
			var conds []string
			if len(weak) > 0 {
				alts := make([]string, len(weak))
				for i, v := range weak {
					alts[i] = regexp.QuoteMeta(v)
				}
				re := `(?i)` + strings.Join(alts, "|")
				weakRE := celString(re)
				env = append(env, "!"+value+".matches("+weakRE+")")
				perEnv += celRegexCost(celMaxString, len(re))
				perArg += celRegexCost(celMaxString, len(re))
				for _, list := range []string{"command", "args"} {
					conds = append(conds, sizedList("c.?"+list+".orValue([])", celMaxItems, "a", "size(a) <= "+strconv.Itoa(celMaxString)+" && !a.matches("+weakRE+")"))
				}
			}
			cost := uint64(celMaxContainers) * (uint64(celMaxEnv)*perEnv + 2*uint64(celMaxItems)*perArg)
			return clearance{Containers: append([]string{sizedList("c.?env.orValue([])", celMaxEnv, "e", strings.Join(env, " && "))}, conds...), Cost: cost}, true
		},
	}
}

// wordsPattern is a regular expression for the names in which each pattern's words follow
// each other, any separators between them: API_KEY gives API[_.-]*KEY, which matches
// OPENAI_API_KEY, apiKey and api-key. Matched case-insensitively ((?i) folds as
// strings.EqualFold does), it matches every name that holds a pattern's words as a run of its
// own words, and more (TOKENIZER holds TOKEN): the conditions only need the first.
func wordsPattern(patterns [][]string) string {
	alts := make([]string, len(patterns))
	for i, words := range patterns {
		quoted := make([]string, len(words))
		for j, w := range words {
			quoted[j] = regexp.QuoteMeta(w)
		}
		alts[i] = strings.Join(quoted, "[_.-]*")
	}
	return strings.Join(alts, "|")
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

// forbiddenEnvName reports whether name consists of exactly the words of a forbidden name,
// in any convention (GITHUB_TOKEN, githubToken, github-token).
func forbiddenEnvName(name string, forbidden [][]string) bool {
	for _, f := range forbidden {
		if sameEnvNameWords(name, f) {
			return true
		}
	}
	return false
}

// isEnvNameSeparator reports whether b separates the words of an environment variable name.
func isEnvNameSeparator(b byte) bool { return b == '_' || b == '-' || b == '.' }

func isASCIIUpper(b byte) bool { return 'A' <= b && b <= 'Z' }
func isASCIILower(b byte) bool { return 'a' <= b && b <= 'z' }
func isASCIIDigit(b byte) bool { return '0' <= b && b <= '9' }

// envNameWordEnd returns the index just past the word of name that starts at i, where
// name[i] is not a separator. A word ends at a separator ("_", "-", "."), before an upper-case
// letter that follows a lower-case letter (db|Password, api|Key) or digits after a
// lower-case letter (oauth2|Token), and before the last letter of an upper-case run that a
// lower-case letter follows (DB|Password, API|Key). An all-upper or all-lower name splits at
// separators only.
func envNameWordEnd(name string, i int) int {
	j := i + 1
	for ; j < len(name); j++ {
		b, prev := name[j], name[j-1]
		if isEnvNameSeparator(b) {
			break
		}
		if !isASCIIUpper(b) {
			continue
		}
		if isASCIILower(prev) {
			break
		}
		if isASCIIDigit(prev) {
			k := j - 1
			for k > i && isASCIIDigit(name[k]) {
				k--
			}
			if isASCIILower(name[k]) {
				break
			}
			continue
		}
		if isASCIIUpper(prev) && j+1 < len(name) && isASCIILower(name[j+1]) {
			break
		}
	}
	return j
}

// nextEnvNameWord returns the word of name that starts at or after i and the index just
// past it; the word is "" when there is none.
func nextEnvNameWord(name string, i int) (string, int) {
	for i < len(name) && isEnvNameSeparator(name[i]) {
		i++
	}
	if i == len(name) {
		return "", i
	}
	j := envNameWordEnd(name, i)
	return name[i:j], j
}

// envNameWords splits a configured name into upper-case words, like an environment
// variable's name.
func envNameWords(s string) []string {
	var words []string
	for i := 0; ; {
		w, next := nextEnvNameWord(s, i)
		if w == "" {
			return words
		}
		words, i = append(words, strings.ToUpper(w)), next
	}
}

// sameEnvNameWords reports whether name consists of exactly the pattern's words.
func sameEnvNameWords(name string, pattern []string) bool {
	end, ok := matchEnvNameWords(name, 0, pattern)
	if !ok {
		return false
	}
	w, _ := nextEnvNameWord(name, end)
	return w == ""
}

// locationWords name where something is, not what it is: a name whose last word is one of
// them (POSTGRES_PASSWORD_FILE, SECRETS_DIR, sslKeyPath) points at a mounted secret, the
// Docker and Postgres convention, and holds none.
var locationWords = [...]string{"FILE", "PATH", "DIR", "DIRECTORY"}

// secretLikeEnvName reports whether a pattern matches a run of whole words of name, not
// counting matches followed by a final location word. It does not allocate.
func secretLikeEnvName(name string, patterns [][]string) bool {
	// locationFrom is where a final location word starts; a match must reach past it.
	locationFrom := len(name) + 1
	for i := 0; ; {
		w, next := nextEnvNameWord(name, i)
		if w == "" {
			break
		}
		if last, _ := nextEnvNameWord(name, next); last == "" {
			for _, l := range locationWords {
				if strings.EqualFold(w, l) {
					locationFrom = next - len(w)
				}
			}
		}
		i = next
	}
	for start := 0; ; {
		word, next := nextEnvNameWord(name, start)
		if word == "" {
			return false
		}
		for _, p := range patterns {
			if end, ok := matchEnvNameWords(name, start, p); ok && (locationFrom > len(name) || end > locationFrom) {
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
	// matches whole words of the name, split at "_", "-", "." and case changes: PWD matches
	// POSTGRES_PWD, API_KEY matches OPENAI_API_KEY and apiKey.
	SecretNames []string `json:"secretNames,omitempty"`
	// ForbiddenNames may never be set in a pod, even from a Secret; compared word by word
	// (GITHUB_TOKEN also forbids githubToken).
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
