// Package deploy tests loomguard's installation manifests: the kustomize base and
// overlays, the monitoring bundle and the Helm chart. It renders them with the real tools
// (bin/kubectl's `kubectl kustomize`, bin/helm's `helm template`) and checks what they
// render: loomguard's own policies pass on loomguard's own objects, the config is the
// built-in default, the Helm chart and kustomize agree, the certificate wiring is
// consistent, and every metric the alerts and the dashboard query exists.
//
// The tools come from $LOOMGUARD_BIN (the repository's bin/, filled by `make build` and
// `make tools`). A missing tool fails the tests; nothing is skipped or downloaded.
//
//	make deploy-test
//	LOOMGUARD_BIN=$PWD/bin go test ./test/deploy/...
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	module = "github.com/loomguard/loomguard"
	// namespace is loomguard's own namespace in the manifests.
	namespace = "loomguard-system"
	// toolTimeout bounds one run of kubectl, helm or loomguard.
	toolTimeout = 2 * time.Minute
)

// repoRoot is the directory whose go.mod declares the loomguard module.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	for dir := filepath.Dir(file); ; {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module "+module+"\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find the loomguard repository above " + file)
		}
		dir = parent
	}
}

// tool returns the path of a binary in $LOOMGUARD_BIN (default: the repository's bin/)
// and fails the test, naming the make target, when it is missing.
func tool(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("LOOMGUARD_BIN")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "bin")
	}
	path := filepath.Join(dir, name)
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		target := "make tools"
		if name == "loomguard" {
			target = "make build"
		}
		t.Fatalf("missing %s: run `%s` (or `make deploy-test`, which builds it); these tests never skip", path, target)
	}
	return path
}

// run runs a binary and returns its stdout; a non-zero exit fails the test with stderr.
func run(t *testing.T, stdin []byte, bin string, args ...string) []byte {
	t.Helper()
	out, stderr, err := runCode(t, stdin, bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr)
	}
	return out
}

// runCode runs a binary and returns stdout, stderr and the error of a non-zero exit.
func runCode(t *testing.T, stdin []byte, bin string, args ...string) ([]byte, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// kustomize renders a kustomization directory (relative to the repository) with
// `kubectl kustomize`.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	return run(t, nil, tool(t, "kubectl"), "kustomize", filepath.Join(repoRoot(t), dir))
}

// kustomizeWith renders a throw-away kustomization that lists resources and components
// (directories relative to the repository), as a user's own overlay would.
func kustomizeWith(t *testing.T, resources, components []string) []byte {
	t.Helper()
	dir := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(dir, filepath.Join(repoRoot(t), p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var b strings.Builder
	b.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for _, r := range resources {
		fmt.Fprintf(&b, "  - %s\n", rel(r))
	}
	if len(components) > 0 {
		b.WriteString("components:\n")
		for _, c := range components {
			fmt.Fprintf(&b, "  - %s\n", rel(c))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return run(t, nil, tool(t, "kubectl"), "kustomize", dir)
}

// helmChart is the chart's directory, relative to the repository.
const helmChart = "manifests/helm/loomguard"

// helmTemplate renders the chart as `helm install loomguard ... -n loomguard-system`
// would, with extra arguments (--set ...).
func helmTemplate(t *testing.T, extra ...string) []byte {
	t.Helper()
	args := append([]string{"template", "loomguard", filepath.Join(repoRoot(t), helmChart), "--namespace", namespace}, extra...)
	return run(t, nil, tool(t, "helm"), args...)
}

// decode splits a multi-document YAML stream into objects, skipping empty documents.
func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading rendered YAML: %v", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("decoding rendered YAML: %v\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

// key identifies an object in a render.
func key(u *unstructured.Unstructured) string {
	return fmt.Sprintf("%s/%s %s/%s", u.GroupVersionKind().Group, u.GetKind(), u.GetNamespace(), u.GetName())
}

// find returns the one object of kind and name; it fails the test when there is none.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the render (have %v)", kind, name, keys(objs))
	return nil
}

func keys(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, key(o))
	}
	slices.Sort(out)
	return out
}

// into converts an object to a typed one, strictly: a field the type does not know fails.
func into(t *testing.T, u *unstructured.Unstructured, out any) {
	t.Helper()
	data, err := yaml.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, out); err != nil {
		t.Fatalf("%s: %v", key(u), err)
	}
}

// exitCode is the exit code of a command that ran; anything else fails the test.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("running a tool: %v", err)
	}
	return ee.ExitCode()
}
