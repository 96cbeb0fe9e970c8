package report

import (
	"testing"

	"github.com/loomguard/loomguard/policies"
)

func TestSARIFURI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"deploy.yaml", "deploy.yaml"},
		{"manifests/base/deploy.yaml", "manifests/base/deploy.yaml"},
		{"my manifests/a#b.yaml", "my%20manifests/a%23b.yaml"},
		{"/abs/deploy.yaml", "file:///abs/deploy.yaml"},
		{"-", "-"},
	}
	for _, tt := range tests {
		if got := sarifURI(tt.in); got != tt.want {
			t.Errorf("sarifURI(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSARIFLevel(t *testing.T) {
	want := map[policies.Action]string{
		policies.ActionEnforce: "error",
		policies.ActionWarn:    "warning",
		policies.ActionAudit:   "note",
		policies.ActionOff:     "none",
	}
	for a, l := range want {
		if got := sarifLevel(a); got != l {
			t.Errorf("sarifLevel(%s) = %q, want %q", a, got, l)
		}
	}
}
