package policies

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const imageTagDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseImageRef(t *testing.T) {
	tests := []struct {
		image string
		want  imageRef
		repo  string
	}{
		{"loom", imageRef{registry: "docker.io", path: "loom", library: true}, "docker.io/library/loom"},
		{"loom:latest", imageRef{registry: "docker.io", path: "loom", library: true, tag: "latest"}, "docker.io/library/loom"},
		{"bitnami/redis:7.2", imageRef{registry: "docker.io", path: "bitnami/redis", tag: "7.2"}, "docker.io/bitnami/redis"},
		{"docker.io/alpine:3.20", imageRef{registry: "docker.io", path: "alpine", library: true, tag: "3.20"}, "docker.io/library/alpine"},
		{"index.docker.io/library/alpine", imageRef{registry: "docker.io", path: "library/alpine"}, "docker.io/library/alpine"},
		{"ghcr.io/jordanhubbard/loom:0.9.3", imageRef{registry: "ghcr.io", path: "jordanhubbard/loom", tag: "0.9.3"}, "ghcr.io/jordanhubbard/loom"},
		{"localhost:5000/app", imageRef{registry: "localhost:5000", path: "app"}, "localhost:5000/app"},
		{"localhost:5000/app:1.2", imageRef{registry: "localhost:5000", path: "app", tag: "1.2"}, "localhost:5000/app"},
		{"localhost/app", imageRef{registry: "localhost", path: "app"}, "localhost/app"},
		{"loom@" + imageTagDigest, imageRef{registry: "docker.io", path: "loom", library: true, digest: imageTagDigest}, "docker.io/library/loom"},
		{"reg.example.com:443/a/b:v1@" + imageTagDigest, imageRef{registry: "reg.example.com:443", path: "a/b", tag: "v1", digest: imageTagDigest}, "reg.example.com:443/a/b"},
	}
	for _, tt := range tests {
		got := parseImageRef(tt.image)
		if got != tt.want {
			t.Errorf("parseImageRef(%q) = %+v, want %+v", tt.image, got, tt.want)
		}
		if repo := got.repository(); repo != tt.repo {
			t.Errorf("parseImageRef(%q).repository() = %q, want %q", tt.image, repo, tt.repo)
		}
	}

	for _, tt := range []struct {
		image, prefix string
		want          bool
	}{
		{"ghcr.io/loom/app:1", "ghcr.io", true},
		{"ghcr.io/loom/app:1", "ghcr.io/loom", true},
		{"ghcr.io/loom:1", "ghcr.io/loom", true},
		{"ghcr.io/loom/app:1", "ghcr.io/loom/app", true},
		{"ghcr.io/loomer/app:1", "ghcr.io/loom", false},
		{"ghcr.io/loom/app:1", "ghcr.io/loom/app/sub", false},
		{"ghcr.io.evil.com/loom:1", "ghcr.io", false},
		{"ghcr.io/loom:1", "ghcr.io.evil.com", false},
		{"alpine:3", "docker.io", true},
		{"alpine:3", "docker.io/library", true},
		{"alpine:3", "docker.io/library/alpine", true},
		{"alpine:3", "docker.io/lib", false},
		{"alpine:3", "docker.io/alpine", false},
		{"bitnami/redis:7", "docker.io/library", false},
		{"bitnami/redis:7", "docker.io/bitnami", true},
		{"localhost:5000/app:1", "localhost:5000", true},
		{"localhost:5000/app:1", "localhost", false},
	} {
		if got := parseImageRef(tt.image).under(tt.prefix); got != tt.want {
			t.Errorf("%q under %q = %v, want %v", tt.image, tt.prefix, got, tt.want)
		}
	}
}

func TestImageTag(t *testing.T) {
	c0 := field.NewPath("spec", "template", "spec", "containers").Index(0).Child("image")
	bad := func(p *field.Path, image, detail string) *field.Error { return field.Invalid(p, image, detail) }
	image := func(img string) func(t testing.TB) runtime.Object {
		return func(t testing.TB) runtime.Object {
			return catalogDeployment(t, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = img })
		}
	}
	noTag := func(img string) *field.Error {
		return bad(c0, img, `container "loom" image "`+img+`" has no tag; pin a version tag or a digest`)
	}
	invalidRef := func(img, why string) *field.Error {
		return bad(c0, img, `container "loom" image "`+img+`" `+why+`: it is not a valid image reference`)
	}
	forbiddenTag := func(img, tag string) *field.Error {
		return bad(c0, img, `container "loom" image "`+img+`" uses the forbidden tag "`+tag+`"; pin a version tag or a digest`)
	}

	catalogRun(t, imageTag(DefaultConfig().Policies.ImageTag), []catalogCase{
		{name: "base: pinned tag", obj: image("ghcr.io/jordanhubbard/loom:0.9.3")},
		{name: "digest without tag", obj: image("ghcr.io/jordanhubbard/loom@" + imageTagDigest)},
		{name: "registry with port and tag", obj: image("localhost:5000/loom:0.9.3")},
		{name: "no tag means latest", obj: image("loom"), want: field.ErrorList{noTag("loom")}},
		{name: "a registry port is not a tag", obj: image("localhost:5000/loom"), want: field.ErrorList{noTag("localhost:5000/loom")}},
		{name: "empty tag: invalid, not guessed", obj: image("loom:"), want: field.ErrorList{invalidRef("loom:", `has an invalid tag (letters, digits, "_", "." and "-", not starting with "." or "-", at most 128)`)}},
		{name: "upper-case repository path: invalid", obj: image("ghcr.io/Shop/app:1"), want: field.ErrorList{invalidRef("ghcr.io/Shop/app:1", "has upper-case letters in its repository path")}},
		{name: "short digest: invalid", obj: image("loom@sha256:abc"), want: field.ErrorList{invalidRef("loom@sha256:abc", "has a sha256 digest that is not 64 hexadecimal characters long")}},
		{name: "image ID: invalid", obj: image(imageTagDigest[len("sha256:"):]), want: field.ErrorList{invalidRef(imageTagDigest[len("sha256:"):], "is an image ID, not a reference (64 hexadecimal characters)")}},
		{name: "loom:latest from Loom's docs", obj: image("loom:latest"), want: field.ErrorList{forbiddenTag("loom:latest", "latest")}},
		{name: "forbidden tags compare case-insensitively", obj: image("loom:Latest"), want: field.ErrorList{forbiddenTag("loom:Latest", "Latest")}},
		{
			name: "latest is forbidden even with a digest",
			obj:  image("loom:latest@" + imageTagDigest),
			want: field.ErrorList{forbiddenTag("loom:latest@"+imageTagDigest, "latest")},
		},
		{
			name: "empty image",
			obj:  image(""),
			want: field.ErrorList{field.Required(c0, `container "loom" must set an image`)},
		},
		{
			name: "pod: init, regular and ephemeral containers",
			obj: func(t testing.TB) runtime.Object {
				return catalogPod(t, func(p *corev1.Pod) {
					p.Spec.InitContainers = []corev1.Container{{Name: "fetch", Image: "alpine:latest"}}
					p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
				})
			},
			want: field.ErrorList{
				bad(field.NewPath("spec", "initContainers").Index(0).Child("image"), "alpine:latest",
					`container "fetch" image "alpine:latest" uses the forbidden tag "latest"; pin a version tag or a digest`),
				bad(field.NewPath("spec", "ephemeralContainers").Index(0).Child("image"), "busybox",
					`container "debug" image "busybox" has no tag; pin a version tag or a digest`),
			},
		},
		{
			name: "cronjob path",
			obj: func(t testing.TB) runtime.Object {
				return catalogCronJob(t, func(cj *batchv1.CronJob) { cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image = "loom:latest" })
			},
			want: field.ErrorList{bad(field.NewPath("spec", "jobTemplate", "spec", "template", "spec", "containers").Index(0).Child("image"), "loom:latest",
				`container "loom" image "loom:latest" uses the forbidden tag "latest"; pin a version tag or a digest`)},
		},
	})

	// requireDigest and custom forbidden tags.
	strict := ImageTagConfig{ForbiddenTags: []string{"latest", "stable"}, RequireDigest: true}
	needDigest := func(img string) *field.Error {
		return bad(c0, img, `container "loom" image "`+img+`" must be pinned by digest (name@sha256:...)`)
	}
	catalogRun(t, imageTag(strict), []catalogCase{
		{name: "digest", obj: image("ghcr.io/jordanhubbard/loom:0.9.3@" + imageTagDigest)},
		{name: "tag only", obj: image("ghcr.io/jordanhubbard/loom:0.9.3"), want: field.ErrorList{needDigest("ghcr.io/jordanhubbard/loom:0.9.3")}},
		{name: "neither: one error", obj: image("loom"), want: field.ErrorList{needDigest("loom")}},
		{name: "custom forbidden tag", obj: image("loom:stable"), want: field.ErrorList{needDigest("loom:stable"), forbiddenTag("loom:stable", "stable")}},
	})
	catalogRun(t, imageTag(ImageTagConfig{}), []catalogCase{
		{name: "no forbidden tags", obj: image("loom:latest")},
		{name: "still a tag or a digest", obj: image("loom"), want: field.ErrorList{noTag("loom")}},
	})

	// allowedRegistries.
	registries := ImageTagConfig{ForbiddenTags: []string{"latest"}, AllowedRegistries: []string{"ghcr.io/jordanhubbard", "docker.io/library"}}
	notAllowed := func(img, repo string) *field.Error {
		return bad(c0, img, `container "loom" image "`+img+`" (`+repo+`) is not from an allowed registry: ghcr.io/jordanhubbard, docker.io/library`)
	}
	catalogRun(t, imageTag(registries), []catalogCase{
		{name: "allowed prefix", obj: image("ghcr.io/jordanhubbard/loom:0.9.3")},
		{name: "official docker image", obj: image("alpine:3.20")},
		{name: "explicit docker.io official image", obj: image("docker.io/alpine:3.20")},
		{name: "prefix on a component boundary", obj: image("ghcr.io/jordanhubbarder/loom:0.9.3"), want: field.ErrorList{notAllowed("ghcr.io/jordanhubbarder/loom:0.9.3", "ghcr.io/jordanhubbarder/loom")}},
		{name: "docker hub user image", obj: image("bitnami/redis:7.2"), want: field.ErrorList{notAllowed("bitnami/redis:7.2", "docker.io/bitnami/redis")}},
		{name: "other registry, no tag", obj: image("quay.io/loom/loom"), want: field.ErrorList{noTag("quay.io/loom/loom"), notAllowed("quay.io/loom/loom", "quay.io/loom/loom")}},
		{name: "registry host in capitals (the reported case)", obj: image("GHCR.IO/jordanhubbard/loom:0.9.3")},
		{name: "registry host in mixed case, with docker.io", obj: image("Docker.IO/library/alpine:3.20")},
		{name: "the path stays case-sensitive: an upper-case path is invalid", obj: image("ghcr.io/JordanHubbard/loom:0.9.3"),
			want: field.ErrorList{invalidRef("ghcr.io/JordanHubbard/loom:0.9.3", "has upper-case letters in its repository path")}},
	})
	// Entries in capitals match lower-case hosts too.
	catalogRun(t, imageTag(ImageTagConfig{AllowedRegistries: []string{"GHCR.io/jordanhubbard"}}), []catalogCase{
		{name: "entry in capitals", obj: image("ghcr.io/jordanhubbard/loom:0.9.3")},
	})
}
