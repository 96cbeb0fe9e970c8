package policies

import (
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// imageRefCorpus returns a few hundred image references, valid and invalid: every
// combination of the hosts, paths and suffixes below, and hand-written malformed ones.
func imageRefCorpus() []string {
	hosts := []string{
		"", "docker.io/", "index.docker.io/", "ghcr.io/", "GHCR.IO/", "Ghcr.Io/", "localhost/", "localhost:5000/",
		"registry.example.com:443/", "reg-1.example.com/", "127.0.0.1:5000/", "[::1]:5000/", "[fe80::1]/",
		"Registry/", "-bad.example.com/", "bad-.example.com/", "a_b.example.com/", "example.com:/", "example.com:http/",
		"exa mple.com/", "[::1/", "[]/", "example..com/",
	}
	paths := []string{
		"alpine", "library/alpine", "shop/app", "a/b/c/d", "app.v2", "app_v2", "app__v2", "app---v2", "a1/b2",
		"Shop/app", "app_", "_app", "app.", "app..v2", "app___v2", "app/", "/app", "a//b", "app-.v2", "",
	}
	suffixes := []string{
		"", ":1.4.2", ":latest", ":v1_RC-2.x", ":", ":.hidden", ":-dash", ":a:b", ":" + strings.Repeat("t", 128), ":" + strings.Repeat("t", 129),
		"@sha256:" + strings.Repeat("a", 64), ":1.0@sha256:" + strings.Repeat("0", 64), "@sha256:" + strings.Repeat("A", 64),
		"@sha256:abc", "@sha512:" + strings.Repeat("f", 128), "@sha384:" + strings.Repeat("1", 96), "@md5:" + strings.Repeat("a", 32),
		"@sha256", "@", "@sha256:" + strings.Repeat("a", 64) + "@x",
	}
	var refs []string
	for _, h := range hosts {
		for _, p := range paths[:10] {
			refs = append(refs, h+p+":1.0")
		}
		for _, p := range paths[10:] {
			refs = append(refs, h+p)
		}
		for _, s := range suffixes {
			refs = append(refs, h+"shop/app"+s)
		}
	}
	for _, p := range paths {
		for _, s := range suffixes {
			refs = append(refs, p+s)
		}
	}
	return append(refs,
		"", " ", "alpine ", "alpine:3.20 ", "ALPINE", "alpine@", "@sha256:"+strings.Repeat("a", 64),
		strings.Repeat("a", 64), strings.Repeat("a", 63), strings.Repeat("A", 64), "docker.io/"+strings.Repeat("a", 64),
		"ghcr.io/"+strings.Repeat("a", 255), "ghcr.io/"+strings.Repeat("a", 256), strings.Repeat("a", 247), strings.Repeat("a", 248),
		"localhost", "localhost:5000", "example.com", "example.com:5000/x", "a_b.c/d", "a.b_c/d:1", "éxample.com/app",
		"ghcr.io/app\n", "ghcr.io/a\x00b", "ghcr.io/shop/app:1.4.2/extra", "ghcr.io/shop/app@sha256:"+strings.Repeat("a", 64)+":x",
	)
}

// TestParseImageRefDifferential holds parseImageRef to github.com/distribution/reference's
// ParseNormalizedNamed, the parser the container runtimes use: on every reference of the
// corpus they agree on validity and, for valid ones, on the normalized repository, the tag
// and the digest.
func TestParseImageRefDifferential(t *testing.T) {
	corpus := imageRefCorpus()
	valid := 0
	for _, s := range corpus {
		got := parseImageRef(s)
		named, err := reference.ParseNormalizedNamed(s)
		if (err == nil) != (got.invalid == "") {
			t.Errorf("%q: distribution/reference says %v, parseImageRef says invalid=%q", s, err, got.invalid)
			continue
		}
		if err != nil {
			continue
		}
		valid++
		if repo := got.repository(); repo != named.Name() {
			t.Errorf("%q: repository %q, distribution/reference %q", s, repo, named.Name())
		}
		var tag, digest string
		if tagged, ok := named.(reference.Tagged); ok {
			tag = tagged.Tag()
		}
		if digested, ok := named.(reference.Digested); ok {
			digest = digested.Digest().String()
		}
		if got.tag != tag || got.digest != digest {
			t.Errorf("%q: tag %q digest %q, distribution/reference tag %q digest %q", s, got.tag, got.digest, tag, digest)
		}
	}
	if len(corpus) < 300 || valid < 100 || len(corpus)-valid < 100 {
		t.Errorf("the corpus is too thin: %d references, %d valid", len(corpus), valid)
	}
	t.Logf("%d references compared, %d valid, %d invalid", len(corpus), valid, len(corpus)-valid)
}
