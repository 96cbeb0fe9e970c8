package main

import "testing"

// TestCrossObjectGolden: check evaluates the cross-object policies against the
// PodDisruptionBudgets and NetworkPolicies of its input, by namespace (--cross-object).
func TestCrossObjectGolden(t *testing.T) {
	const input = "testdata/input/cross-object.yaml"
	tests := []struct {
		name string
		args []string
		code int
	}{
		// auto: shop ships a NetworkPolicy, so its input is its whole truth; blog ships
		// neither and is not checked.
		{name: "check-cross-object-auto", args: []string{"check", "-f", input}, code: 0},
		// on: blog is checked too.
		{name: "check-cross-object-on", args: []string{"check", "-f", input, "--cross-object", "on"}, code: 0},
		// off: as in admission.
		{name: "check-cross-object-off", args: []string{"check", "-f", input, "--cross-object=off"}, code: 0},
		// Enforced, a cross-object policy fails check (it never can in admission).
		{name: "check-cross-object-enforced", args: []string{"check", "-f", input, "-c", "testdata/config/cross-object-enforce.yaml"}, code: 1},
		{name: "usage-check-cross-object", args: []string{"check", "-f", input, "--cross-object", "always"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, "", tt.args...)
			if res.code != tt.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", res.code, tt.code, res.stderr)
			}
			checkGolden(t, tt.name+".txt", res.stdout)
			checkGolden(t, tt.name+".txt.stderr", res.stderr)
		})
	}
}
