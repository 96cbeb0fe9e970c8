//go:build !loomguard_cli

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/loomguard/loomguard/audit"
	"github.com/loomguard/loomguard/internal/manifest"
	"github.com/loomguard/loomguard/policies"
)

// fakeClusterObjects decodes testdata/cluster/objects.yaml: what a small cluster runs.
func fakeClusterObjects(t testing.TB) []client.Object {
	t.Helper()
	const path = "testdata/cluster/objects.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, errs := manifest.SplitDocuments(path, data)
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	dec := policies.NewDecoder()
	var objs []client.Object
	for _, d := range docs {
		gvk, err := policies.PeekKind(d.Raw)
		if err != nil {
			t.Fatalf("%s#%d: %v", path, d.Index, err)
		}
		obj, err := dec.Decode(d.Raw, gvk, true)
		if err != nil {
			t.Fatalf("%s#%d: %v", path, d.Index, err)
		}
		objs = append(objs, obj.(client.Object))
	}
	return objs
}

// fakeConnect connects to a fake cluster holding objs, whose List fails with listErr when
// it is set.
func fakeConnect(objs []client.Object, listErr error) connectFunc {
	return func(kubeconfig, kubeContext string, _ time.Duration) (client.Reader, string, error) {
		if kubeconfig == "missing" {
			return nil, "", errors.New("loading the kubeconfig: stat missing: no such file or directory")
		}
		b := fake.NewClientBuilder().WithScheme(audit.Scheme()).WithObjects(objs...)
		if listErr != nil {
			b = b.WithInterceptorFuncs(interceptor.Funcs{List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
				return listErr
			}})
		}
		return b.Build(), "https://fake-cluster:6443", nil
	}
}

// TestAuditGolden drives `loomguard audit` against a fake cluster and compares its output
// and exit code with golden files, like TestGolden does for check: the same report in
// every format, from the source "cluster".
func TestAuditGolden(t *testing.T) {
	objs := fakeClusterObjects(t)
	tests := []struct {
		name    string
		ext     string
		args    []string
		listErr error
		code    int
	}{
		{name: "audit", ext: "txt", args: nil, code: 1},
		{name: "audit-verbose", ext: "txt", args: []string{"-v"}, code: 1},
		{name: "audit", ext: "json", args: []string{"-o", "json"}, code: 1},
		{name: "audit", ext: "sarif", args: []string{"-o", "sarif"}, code: 1},
		{name: "audit", ext: "xml", args: []string{"-o", "junit"}, code: 1},
		{name: "audit-namespace", ext: "json", args: []string{"-n", "loom", "-o", "json"}, code: 0},
		// What would enforcing health probes and high availability deny?
		{name: "audit-what-if", ext: "txt", args: []string{"-n", "loom", "--config", "testdata/config/what-if.yaml"}, code: 1},
		// What would pod-security at restricted deny?
		{name: "audit-what-if-restricted", ext: "txt", args: []string{"--config", "testdata/config/what-if-restricted.yaml"}, code: 1},
		{name: "audit-config-broken", ext: "txt", args: []string{"--config", "testdata/config/broken.yaml"}, code: 2},
		{name: "audit-connect-error", ext: "txt", args: []string{"--kubeconfig", "missing"}, code: 2},
		{name: "audit-list-error", ext: "txt", args: []string{"-o", "json"}, code: 2,
			listErr: errors.New(`poddisruptionbudgets.policy is forbidden: User "auditor" cannot list resource "poddisruptionbudgets" in API group "policy" at the cluster scope`)},
		{name: "usage-audit-help", ext: "txt", args: []string{"--help"}, code: 0},
		{name: "usage-audit-page-size", ext: "txt", args: []string{"--page-size", "0"}, code: 2},
		{name: "usage-audit-argument", ext: "txt", args: []string{"everything"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name+"."+tt.ext, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := auditCommand(context.Background(), tt.args, &stdout, &stderr, fakeConnect(objs, tt.listErr))
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, tt.code, stderr.String())
			}
			checkGolden(t, tt.name+"."+tt.ext, stdout.String())
			checkGolden(t, tt.name+"."+tt.ext+".stderr", stderr.String())
		})
	}
}

// TestAuditJSONIsCheckJSON: the audit's JSON report has exactly check's schema, so that
// tools read both alike.
func TestAuditJSONIsCheckJSON(t *testing.T) {
	var stdout bytes.Buffer
	auditCommand(context.Background(), []string{"-o", "json"}, &stdout, &bytes.Buffer{}, fakeConnect(fakeClusterObjects(t), nil))
	check := runCLI(t, "", "check", "-o", "json", "-f", "testdata/input/mixed.yaml")
	keys := func(js string) []string {
		var report struct {
			Summary map[string]any   `json:"summary"`
			Results []map[string]any `json:"results"`
		}
		if err := json.Unmarshal([]byte(js), &report); err != nil {
			t.Fatal(err)
		}
		var out []string
		for k := range report.Summary {
			out = append(out, "summary."+k)
		}
		for _, r := range report.Results {
			for k := range r {
				if !strings.Contains(strings.Join(out, " "), "results."+k) {
					out = append(out, "results."+k)
				}
			}
			for _, v := range r["violations"].([]any) {
				for k := range v.(map[string]any) {
					if !strings.Contains(strings.Join(out, " "), "violations."+k) {
						out = append(out, "violations."+k)
					}
				}
			}
		}
		return out
	}
	a, c := keys(stdout.String()), keys(check.stdout)
	for _, k := range c {
		if !strings.Contains(strings.Join(a, " "), k) {
			t.Errorf("the audit's JSON lacks check's field %s", k)
		}
	}
	for _, k := range a {
		if !strings.Contains(strings.Join(c, " "), k) {
			t.Errorf("the audit's JSON has a field check does not: %s", k)
		}
	}
}

// TestAuditProgress: the progress line rewrites itself and names the kind, the step and
// the counts.
func TestAuditProgress(t *testing.T) {
	tests := []struct {
		p    audit.Progress
		want string
	}{
		{audit.Progress{Kind: "Deployment", Step: 4, Steps: 9, Listed: 500, Remaining: 9500, Evaluated: 620},
			"\rloomguard: auditing https://k:6443: Deployment (4/9): 500 listed, ~9500 to go; 620 workloads evaluated\033[K"},
		{audit.Progress{Kind: "Pod", Step: 3, Steps: 9, Listed: 12, Remaining: -1, Evaluated: 3},
			"\rloomguard: auditing https://k:6443: Pod (3/9): 12 listed; 3 workloads evaluated\033[K"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeProgress(&b, "https://k:6443", tt.p)
		if b.String() != tt.want {
			t.Errorf("writeProgress(%+v) = %q, want %q", tt.p, b.String(), tt.want)
		}
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
}
