package policies

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psapolicy "k8s.io/pod-security-admission/policy"

	"github.com/loomguard/loomguard/internal/psafixtures"
	"github.com/loomguard/loomguard/internal/testsummary"
)

// TestPodSecurityOracle runs every fixture of k8s.io/pod-security-admission's test/testdata,
// read from the module cache (the version go.mod pins), through the pod-security policy of a
// loomguard Engine set to the fixture's level and version, and requires PSA's expected
// verdict for every one of them; the privileged level admits every one.
//
// The fixtures are the ones PSA's own integration test (test/run.go) creates in a namespace
// labelled enforce=<level>, enforce-version=<version>: each pass/*.yaml must be admitted and
// each fail/*.yaml refused, both as a Pod and as a Deployment's pod template; a fail
// fixture is named after the check it exercises (lowercased check ID and an index). Here,
// besides the verdict, a failing fixture must be reported under that check's control ID,
// every violation must sit at a field the control's finder located (never the bare pod
// spec), and the Deployment must get the same violations, at the same fields below
// spec.template.
func TestPodSecurityOracle(t *testing.T) {
	root, sets, err := psafixtures.Sets()
	if err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder()
	controls := map[string]string{} // lowercased check ID -> check ID
	for _, id := range PodSecurityControls() {
		controls[strings.ToLower(id)] = id
	}
	// At restricted, some restricted checks replace baseline ones (restrictedVolumes
	// replaces hostPathVolumes): a fixture named after the replaced check fails under the one
	// that replaces it.
	replacedBy := map[string][]string{}
	for _, c := range psapolicy.DefaultChecks() {
		for _, v := range c.Versions {
			for _, o := range v.OverrideCheckIDs {
				if !slices.Contains(replacedBy[string(o)], string(c.ID)) {
					replacedBy[string(o)] = append(replacedBy[string(o)], string(c.ID))
				}
			}
		}
	}
	privileged := podSecurityEngine(t, "privileged", "latest")
	total, agree := 0, 0
	perLevel := map[string][2]int{}
	for _, set := range sets {
		e := podSecurityEngine(t, set.Level, set.Version)
		for _, verdict := range []string{"pass", "fail"} {
			dir := filepath.Join(set.Dir, verdict)
			files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				total++
				name := strings.TrimSuffix(filepath.Base(f), ".yaml")
				where := filepath.Join(set.Level, set.Version, verdict, name)
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				obj, err := dec.Decode(data, corev1.SchemeGroupVersion.WithKind("Pod"), true)
				if err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
				pod := obj.(*corev1.Pod)
				pw, _ := NewWorkload(pod)
				pr := e.Evaluate(pw, "")
				dw, _ := NewWorkload(asDeployment(pod))
				dr := e.Evaluate(dw, "")
				ok := true
				if r := privileged.Evaluate(pw, ""); len(r.Violations) > 0 {
					t.Errorf("%s: the privileged level must admit everything, got:%s", where, messages(r))
					ok = false
				}
				if verdict == "pass" {
					if len(pr.Violations) > 0 || len(dr.Violations) > 0 {
						t.Errorf("%s: PSA admits it, loomguard reports:%s%s", where, messages(pr), messages(dr))
						ok = false
					}
				} else {
					control := controls[strings.TrimRight(name, "0123456789")]
					want := []string{control}
					if set.Level == "restricted" {
						want = append(want, replacedBy[control]...)
					}
					ok = checkOracleFail(t, where, want, pr, dr)
				}
				if ok {
					agree++
					c := perLevel[set.Level]
					if verdict == "pass" {
						c[0]++
					} else {
						c[1]++
					}
					perLevel[set.Level] = c
				}
			}
		}
	}
	if total < 4000 {
		t.Errorf("only %d fixtures found under %s; PSA v0.37.2 has over 4,500", total, root)
	}
	for _, l := range slices.Sorted(maps.Keys(perLevel)) {
		t.Logf("%s: %d pass and %d fail fixtures agree with PSA", l, perLevel[l][0], perLevel[l][1])
	}
	testsummary.Record(t, "PSA oracle: %d of %d fixtures agree (%.1f %%), each as a Pod and as a Deployment", agree, total, 100*float64(agree)/float64(total))
}

// podSecurityEngine returns an engine running pod-security alone at a level and version.
func podSecurityEngine(t *testing.T, level, version string) *Engine {
	t.Helper()
	cfg, errs := LoadConfig([]byte(fmt.Sprintf("defaultAction: \"off\"\npolicies:\n  pod-security: {action: enforce, level: %s, version: %s}\n", level, version)))
	if len(errs) > 0 {
		t.Fatalf("%s/%s: %v", level, version, errs.ToAggregate())
	}
	e, err := NewEngine(cfg, fixtureClock)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// checkOracleFail checks a fixture PSA refuses: the Pod and the Deployment fail under the
// control the fixture is named after, at located fields, the same ones.
func checkOracleFail(t *testing.T, where string, control []string, pr, dr Report) bool {
	t.Helper()
	if len(pr.Violations) == 0 || len(dr.Violations) == 0 {
		t.Errorf("%s: PSA refuses it, loomguard admits it (pod: %d violations, deployment: %d)", where, len(pr.Violations), len(dr.Violations))
		return false
	}
	if control[0] == "" {
		t.Errorf("%s: the fixture's name does not name a check", where)
		return false
	}
	ok := true
	var podFields, deployFields []string
	hasControl := false
	for _, v := range pr.Violations {
		if slices.Contains(control, v.Origin) {
			hasControl = true
		}
		if v.Field == "spec" {
			t.Errorf("%s: control %s reported at the bare pod spec: its finder located no field:%s", where, v.Origin, messages(pr))
			ok = false
		}
		podFields = append(podFields, v.Origin+" "+v.Field)
	}
	for _, v := range dr.Violations {
		f, ok := strings.CutPrefix(v.Field, "spec.template.")
		if !ok {
			t.Errorf("%s: the Deployment's violation is outside its pod template: %s", where, v.Message())
		}
		deployFields = append(deployFields, v.Origin+" "+f)
	}
	if !hasControl {
		t.Errorf("%s: want a violation of control %s, got:%s", where, strings.Join(control, " or "), messages(pr))
		ok = false
	}
	if !slices.Equal(podFields, deployFields) {
		t.Errorf("%s: the Deployment's violations differ from the Pod's:%s%s", where, messages(pr), messages(dr))
		ok = false
	}
	return ok
}

// asDeployment wraps a pod into a Deployment's template, as PSA's integration test does.
func asDeployment(pod *corev1.Pod) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		Spec: appsv1.DeploymentSpec{
			Template: corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec},
		},
	}
}
