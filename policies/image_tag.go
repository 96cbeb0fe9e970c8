package policies

import (
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
// References are parsed here (no image library in this pure package): a digest follows
// "@"; a tag follows the last ":" when that ":" comes after the last "/" (localhost:5000/app
// has no tag); the first path component is a registry when it contains "." or ":" or is
// "localhost". There is no fix: a tag cannot be guessed.
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
	}
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
	// registry is the registry host, docker.io when the reference has none.
	registry string
	// path is the repository path within the registry, without library/.
	path string
	// library is true for a single-component docker.io name, which lives under library/.
	library bool
	// tag and digest are "" when absent.
	tag, digest string
}

// parseImageRef splits an image reference into its parts without allocating.
func parseImageRef(image string) imageRef {
	var r imageRef
	name := image
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name, r.digest = name[:i], name[i+1:]
	}
	if colon := strings.LastIndexByte(name, ':'); colon > strings.LastIndexByte(name, '/') {
		name, r.tag = name[:colon], name[colon+1:]
	}
	r.registry, r.path = "docker.io", name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		if first := name[:i]; strings.ContainsAny(first, ".:") || first == "localhost" {
			r.registry, r.path = first, name[i+1:]
		}
	}
	if r.registry == "index.docker.io" {
		r.registry = "docker.io"
	}
	r.library = r.registry == "docker.io" && !strings.Contains(r.path, "/")
	return r
}

// repository renders the normalized repository: registry/[library/]path.
func (r imageRef) repository() string {
	if r.library {
		return r.registry + "/library/" + r.path
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
// without building the repository string.
func (r imageRef) under(prefix string) bool {
	rest, ok := strings.CutPrefix(prefix, r.registry)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	if rest, ok = strings.CutPrefix(rest, "/"); !ok || rest == "" {
		return false
	}
	if r.library {
		if rest == "library" {
			return true
		}
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

// Validate requires each allowed registry to be a host or repository prefix.
func (c *ImageTagConfig) Validate(fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range c.AllowedRegistries {
		if r == "" || strings.HasSuffix(r, "/") || strings.Contains(r, "://") {
			errs = append(errs, field.Invalid(fldPath.Child("allowedRegistries").Index(i), r, "must be a registry host or repository prefix such as ghcr.io/loom, without scheme or trailing slash"))
		}
	}
	return errs
}
