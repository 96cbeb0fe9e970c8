// Package image checks the container image definition without a Docker engine: the
// Dockerfile's shape, and that its build command yields a static binary.
package image

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

type stage struct {
	from  string
	lines []string // instructions after FROM, joined continuation lines
}

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" || strings.HasPrefix(line, "#") {
			return
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stages = append(stages, stage{from: strings.Fields(line)[1]})
			return
		}
		if len(stages) == 0 {
			t.Fatalf("%s: instruction before FROM: %s", path, line)
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
	}
	for sc.Scan() {
		l := sc.Text()
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		flush()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "../../Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	for _, s := range stages {
		_, tag, ok := strings.Cut(s.from, ":")
		if !ok || tag == "" || tag == "latest" {
			t.Errorf("base image %q is not pinned to a tag", s.from)
		}
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage %q is not distroless/static or scratch", final.from)
	}
	var user, entrypoint string
	for _, l := range final.lines {
		switch f := strings.Fields(l); strings.ToUpper(f[0]) {
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entrypoint = strings.TrimSpace(l[len(f[0]):])
		case "RUN":
			t.Errorf("final stage runs %q: it must need no shell", l)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final USER %q is not a numeric non-root UID", user)
	}
	if !strings.HasPrefix(entrypoint, "[") {
		t.Errorf("ENTRYPOINT %q is not in exec form", entrypoint)
	}
	build := strings.Join(stages[0].lines, "\n")
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "./cmd/loomguard") {
		t.Errorf("build stage does not build ./cmd/loomguard with CGO_ENABLED=0:\n%s", build)
	}
	if strings.Contains(build, "loomguard_cli") {
		t.Errorf("build stage builds the CLI build (tag loomguard_cli), which has no serve and would look for /loomguard-full; the image holds the full build:\n%s", build)
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil || !regexp.MustCompile(`(?m)^bin/?$`).Match(ignore) {
		t.Errorf(".dockerignore must exclude bin/ (err %v)", err)
	}
}

// TestStaticBinary builds the binary the way the Dockerfile does and checks that it needs
// no dynamic loader or shared library, so it runs on distroless/static.
func TestStaticBinary(t *testing.T) {
	out := filepath.Join(t.TempDir(), "loomguard")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "../../cmd/loomguard")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a dynamic loader (PT_INTERP)")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
}
