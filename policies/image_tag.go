package policies

import (
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// image-tag requires every container image (init, regular and ephemeral containers) to be
// pinned: it names an explicit tag or a digest (an image without either means "latest"),
// its tag is not a forbidden one (Loom's default: latest, which Loom's own docs use
// everywhere — `loom:latest`, `alpine:latest`, LOOM.md "images" — so those are denied,
// with or without a digest, since the tag then misleads readers), it has a digest when
// requireDigest is set, and, when allowedRegistries is set, it comes from one of them.
//
// A registry entry is a registry host or a repository prefix, matched on whole path
// components against the image's normalized repository: an image without a registry
// component is on docker.io, and a single-component docker.io name is under library/
// (alpine:3.20 is docker.io/library/alpine). So "ghcr.io" allows ghcr.io/x/y, and
// "ghcr.io/loom" allows ghcr.io/loom and ghcr.io/loom/app but not ghcr.io/loomer/app.
//
// Registry host names compare case-insensitively (GHCR.IO is ghcr.io); repository paths
// case-sensitively. References are parsed here by the reference grammar that the container
// runtimes use (see parseImageRef): a reference that does not follow it (an upper-case
// repository path, an empty tag, a malformed digest) is reported as invalid, with why,
// rather than guessed at; the kubelet would refuse it (InvalidImageName). There is no fix:
// a tag cannot be guessed.
func imageTag(cfg ImageTagConfig) Policy {
	forbidden := nonEmptyStrings(cfg.ForbiddenTags)
	registries := nonEmptyStrings(cfg.AllowedRegistries)
	registryList := strings.Join(registries, ", ")
	return Policy{
		Fields: []string{"{initContainers,containers,ephemeralContainers}[*].image"},
		Check: func(w *Workload) field.ErrorList {
			var errs field.ErrorList
			for _, c := range w.Containers() {
				if c.Image == "" {
					errs = append(errs, field.Required(c.Path.Child("image"), "container "+strconv.Quote(c.Name)+" must set an image"))
					continue
				}
				ref := parseImageRef(c.Image)
				if ref.invalid != "" {
					errs = append(errs, imageError(c, ref.invalid+": it is not a valid image reference"))
					continue
				}
				switch {
				case cfg.RequireDigest && ref.digest == "":
					errs = append(errs, imageError(c, "must be pinned by digest (name@sha256:...)"))
				case ref.tag == "" && ref.digest == "":
					errs = append(errs, imageError(c, "has no tag; pin a version tag or a digest"))
				}
				for _, t := range forbidden {
					if ref.tag != "" && strings.EqualFold(ref.tag, t) {
						errs = append(errs, imageError(c, "uses the forbidden tag "+strconv.Quote(ref.tag)+"; pin a version tag or a digest"))
						break
					}
				}
				if len(registries) > 0 && !ref.fromAny(registries) {
					errs = append(errs, imageError(c, "("+ref.repository()+") is not from an allowed registry: "+registryList))
				}
			}
			return errs
		},
		// Cleared: every image matches imageClearPattern (at most 240 characters, which keeps the repository path within its 255 even under library/; a valid reference with a tag or a
		// sha256 digest, a digest when one is required, from an allowed registry written out
		// as its prefix) and has no forbidden tag.
		Clear: func(t celTemplate) (clearance, bool) {
			img := "c.?image.orValue('')"
			pattern := imageClearPattern(registries, cfg.RequireDigest)
			conds := []string{"size(" + img + ") <= 240", img + ".matches(" + celString(pattern) + ")"}
			cost := celRegexCost(240, len(pattern)) + 100
			if len(forbidden) > 0 {
				tags := make([]string, len(forbidden))
				for i, f := range forbidden {
					tags[i] = regexp.QuoteMeta(f)
				}
				// (?i) folds as strings.EqualFold does (Unicode simple folding).
				re := "(?i):(" + strings.Join(tags, "|") + ")(@|$)"
				conds = append(conds, "!"+img+".matches("+celString(re)+")")
				cost += celRegexCost(240, len(re))
			}
			return clearance{Containers: conds, Cost: uint64(celMaxContainers) * cost}, true
		},
	}
}

// imageClearPattern is a regular expression for image references that parseImageRef reads
// without fault, with a tag or a sha256 digest (only a digest when requireDigest), from one
// of registries when there are any. A registry entry is matched as the image's literal prefix
// and is used only when the reference grammar reads its first component as a registry host
// (it has a "." or ":" or is localhost) and it is not index.docker.io, which parseImageRef
// renames; without a usable entry the pattern matches nothing.
func imageClearPattern(registries []string, requireDigest bool) string {
	const (
		component = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
		repo      = component + `(?:/` + component + `)*`
		label     = `[a-z0-9]+(?:-+[a-z0-9]+)*`
		host      = label + `(?:\.` + label + `)*(?::[0-9]+)?`
		tag       = `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
		digest    = `@sha256:[0-9a-f]{64}`
	)
	tail := `(?::` + tag + `(?:` + digest + `)?|` + digest + `)$`
	if requireDigest {
		tail = `(?::` + tag + `)?` + digest + `$`
	}
	if len(registries) == 0 {
		return `^(?:` + host + `/)?` + repo + tail
	}
	hostRE := regexp.MustCompile(`^` + host + `$`)
	var prefixes []string
	for _, e := range registries {
		h, _, _ := strings.Cut(e, "/")
		if !hostRE.MatchString(h) || (!strings.ContainsAny(h, ".:") && h != "localhost") || strings.EqualFold(h, "index.docker.io") {
			continue
		}
		prefixes = append(prefixes, regexp.QuoteMeta(strings.TrimSuffix(e, "/")))
	}
	if len(prefixes) == 0 {
		return `^$`
	}
	return `^(?:` + strings.Join(prefixes, "|") + `)/` + repo + tail
}

// imageError reports the container's image as Invalid, the detail continuing
// `container "x" image "y" `.
func imageError(c ContainerRef, what string) *field.Error {
	return field.Invalid(c.Path.Child("image"), c.Image,
		"container "+strconv.Quote(c.Name)+" image "+strconv.Quote(c.Image)+" "+what)
}

// nonEmptyStrings copies a config list, dropping empty entries.
func nonEmptyStrings(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// imageRef is a parsed image reference. Its strings alias the image string.
type imageRef struct {
	// registry is the registry host (and port) as written, docker.io when the reference
	// has none or names index.docker.io.
	registry string
	// path is the repository path within the registry, without library/.
	path string
	// library is true for a single-component docker.io name, which lives under library/.
	library bool
	// tag and digest are "" when absent.
	tag, digest string
	// invalid says why the reference does not follow the grammar; "" when it does.
	invalid string
}

// parseImageRef parses an image reference without allocating, as the container runtimes
// do (github.com/distribution/reference's ParseNormalizedNamed; a differential test holds
// the two in agreement):
//
//	reference := name [":" tag] ["@" digest]
//	name      := [domain "/"] path
//	domain    := host [":" port], host a DNS name of [a-zA-Z0-9-] labels or "[" IPv6 "]"
//	path      := component ("/" component)*, component [a-z0-9]+ joined by ".", "_", "__" or "-"+
//	tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//	digest    := sha256:<64 hex> | sha384:<96 hex> | sha512:<128 hex> (lower-case hex)
//
// The first path component is the domain when it contains "." or ":", is "localhost", or
// has an upper-case letter; otherwise the registry is docker.io, and a single-component
// docker.io name is under library/. The repository path is at most 255 characters and is
// not a bare 64-hex image ID.
func parseImageRef(image string) imageRef {
	var r imageRef
	if isImageID(image) {
		r.invalid = "is an image ID, not a reference (64 hexadecimal characters)"
		return r
	}
	name := image
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name, r.digest = name[:i], name[i+1:]
		if r.invalid = invalidDigest(r.digest); r.invalid != "" {
			return r
		}
	}
	r.registry = "docker.io"
	if first, rest, ok := strings.Cut(name, "/"); ok {
		switch {
		case first == "localhost", strings.ContainsAny(first, ".:"), hasUpper(first):
			r.registry, name = first, rest
		}
	}
	if r.registry == "index.docker.io" {
		r.registry = "docker.io"
	}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name, r.tag = name[:i], name[i+1:]
		if !validTag(r.tag) {
			r.invalid = "has an invalid tag (letters, digits, \"_\", \".\" and \"-\", not starting with \".\" or \"-\", at most 128)"
			return r
		}
	}
	r.path = name
	r.library = r.registry == "docker.io" && !strings.Contains(name, "/")
	switch {
	case hasUpper(name):
		r.invalid = "has upper-case letters in its repository path"
	case !validRepositoryPath(name):
		r.invalid = "has an invalid repository path (lower-case letters and digits, separated by \".\", \"_\", \"__\", \"-\" or \"/\")"
	case len(name) > 255 || (r.library && len(name) > 255-len("library/")):
		r.invalid = "has a repository path longer than 255 characters"
	case r.registry != "docker.io" && !validRegistryHost(r.registry):
		if !validRepositoryPath(r.registry) {
			r.invalid = "has an invalid registry host " + "(a DNS name or [IPv6 address], with an optional port)"
			return r
		}
		// Not a host, but the whole name is a valid path: the grammar reads it so, with
		// no registry at all (distribution/reference does the same).
		r.registry, r.path = "", image[:len(r.registry)+1+len(name)]
	}
	return r
}

// isImageID reports whether s is 64 lower-case hexadecimal characters.
func isImageID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isASCIIDigit(s[i]) && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if isASCIIUpper(s[i]) {
			return true
		}
	}
	return false
}

func isWordByte(b byte) bool {
	return isASCIILower(b) || isASCIIUpper(b) || isASCIIDigit(b) || b == '_'
}

func validTag(t string) bool {
	if t == "" || len(t) > 128 || !isWordByte(t[0]) {
		return false
	}
	for i := 1; i < len(t); i++ {
		if !isWordByte(t[i]) && t[i] != '.' && t[i] != '-' {
			return false
		}
	}
	return true
}

// invalidDigest says why d is not a digest the runtimes accept; "" when it is one.
func invalidDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	var size int
	switch alg {
	case "sha256":
		size = 64
	case "sha384":
		size = 96
	case "sha512":
		size = 128
	default:
		if !ok {
			return "has an invalid digest (algorithm:hex)"
		}
		return "has a digest of an unsupported algorithm " + strconv.Quote(alg) + " (sha256, sha384 or sha512)"
	}
	if len(hex) != size {
		return "has a " + alg + " digest that is not " + strconv.Itoa(size) + " hexadecimal characters long"
	}
	for i := 0; i < len(hex); i++ {
		if !isASCIIDigit(hex[i]) && (hex[i] < 'a' || hex[i] > 'f') {
			return "has a digest with characters other than lower-case hexadecimal"
		}
	}
	return ""
}

// validRepositoryPath reports whether p is "/"-separated components of lower-case letters
// and digits joined by ".", "_", "__" or a run of "-".
func validRepositoryPath(p string) bool {
	for comp := range strings.SplitSeq(p, "/") {
		if comp == "" || !isLowerAlnum(comp[0]) || !isLowerAlnum(comp[len(comp)-1]) {
			return false
		}
		for i := 1; i < len(comp); {
			if isLowerAlnum(comp[i]) {
				i++
				continue
			}
			j := i
			for j < len(comp) && !isLowerAlnum(comp[j]) {
				j++
			}
			switch sep := comp[i:j]; {
			case sep == ".", sep == "_", sep == "__", strings.Trim(sep, "-") == "":
			default:
				return false
			}
			i = j
		}
	}
	return true
}

func isLowerAlnum(b byte) bool { return isASCIILower(b) || isASCIIDigit(b) }

// validRegistryHost reports whether h is a host (DNS labels of letters, digits and "-",
// not starting or ending with "-", joined by "."; or "[" hex digits and ":" "]") with an
// optional ":port" of digits.
func validRegistryHost(h string) bool {
	host, port, hasPort := h, "", false
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 2 {
			return false
		}
		for i := 1; i < end; i++ {
			if b := h[i]; !isASCIIDigit(b) && b != ':' && (b|0x20 < 'a' || b|0x20 > 'f') {
				return false
			}
		}
		rest := h[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return false
			}
			port, hasPort = rest[1:], true
		}
	} else {
		host, port, hasPort = strings.Cut(h, ":")
		if !validDNSName(host) {
			return false
		}
	}
	if hasPort {
		if port == "" {
			return false
		}
		for i := 0; i < len(port); i++ {
			if !isASCIIDigit(port[i]) {
				return false
			}
		}
	}
	return true
}

// validDNSName reports whether host is labels of letters, digits and "-", not starting or
// ending with "-", joined by ".".
func validDNSName(host string) bool {
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if b := label[i]; !isASCIILower(b) && !isASCIIUpper(b) && !isASCIIDigit(b) && b != '-' {
				return false
			}
		}
	}
	return true
}

// repository renders the normalized repository: registry/[library/]path, or the path alone
// when the grammar reads the whole name as a path (no registry).
func (r imageRef) repository() string {
	switch {
	case r.library:
		return r.registry + "/library/" + r.path
	case r.registry == "":
		return r.path
	}
	return r.registry + "/" + r.path
}

// fromAny reports whether the normalized repository equals one of the entries or lies
// under one of them (on a "/" boundary).
func (r imageRef) fromAny(entries []string) bool {
	for _, e := range entries {
		if r.under(e) {
			return true
		}
	}
	return false
}

// under compares the normalized repository with a prefix, component by component,
// without building the repository string. The registry host compares case-insensitively
// (host names are, RFC 4343); the path case-sensitively.
func (r imageRef) under(prefix string) bool {
	host, rest, _ := strings.Cut(prefix, "/")
	if r.registry == "" || !strings.EqualFold(host, r.registry) {
		return false
	}
	if rest == "" {
		return !strings.HasSuffix(prefix, "/")
	}
	if r.library {
		if rest == "library" {
			return true
		}
		var ok bool
		if rest, ok = strings.CutPrefix(rest, "library/"); !ok {
			return false
		}
	}
	return r.path == rest || (strings.HasPrefix(r.path, rest) && r.path[len(rest)] == '/')
}

// ImageTagConfig configures image-tag.
type ImageTagConfig struct {
	Settings `json:",inline"`
	// ForbiddenTags may never be used (latest, always).
	ForbiddenTags []string `json:"forbiddenTags,omitempty"`
	// AllowedRegistries, when set, are the only registries or repository prefixes images
	// may come from (e.g. ghcr.io or ghcr.io/loom). docker.io is the implicit registry.
	AllowedRegistries []string `json:"allowedRegistries,omitempty"`
	// RequireDigest requires every image to be pinned by digest.
	RequireDigest bool `json:"requireDigest,omitempty"`
}

// Default forbids the latest tag and allows every registry.
func (c *ImageTagConfig) Default() {
	c.ForbiddenTags = []string{"latest"}
}

// Validate requires each allowed registry to be a registry host (a DNS name or IP address,
// with an optional port) or such a host and a repository path of the reference grammar.
func (c *ImageTagConfig) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range c.AllowedRegistries {
		errs = append(errs, validateRegistryPrefix(fldPath.Child("allowedRegistries").Index(i), r)...)
	}
	return errs
}
