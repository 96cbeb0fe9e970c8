//go:build !loomguard_cli

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/go-logr/logr"
)

// TestServeCertFlags: the --cert-* flags' usage errors (exit 2) and start-up errors (exit 1)
// of self-managed certificates, before anything is served.
func TestServeCertFlags(t *testing.T) {
	noCluster(t)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want []string
	}{
		{"help lists the flags", []string{"--help"}, nil, 0, []string{"--cert-mode", "--cert-secret", "--cert-validity", "--cert-refresh", "--cert-ca-validity", "--cert-dns-names", "--mutating-webhook-configuration"}},
		{"deprecated and new name disagree", []string{"--cert-mutating-webhook-configuration", "a", "--mutating-webhook-configuration", "b"}, nil, 2,
			[]string{`--cert-mutating-webhook-configuration="a" and --mutating-webhook-configuration="b" name different configurations`}},
		{"unknown mode", []string{"--cert-mode", "vault"}, nil, 2, []string{`unsupported --cert-mode "vault"`}},
		{"unknown mode from env", nil, map[string]string{"LOOMGUARD_CERT_MODE": "acme"}, 2, []string{`unsupported --cert-mode "acme"`}},
		{"bad validity", []string{"--cert-validity", "soon"}, nil, 2, []string{"--cert-validity"}},
		{"self-managed needs a cluster", []string{"--cert-mode", "self-managed"}, nil, 1, []string{"--cert-mode=self-managed needs cluster access"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := serveCommand(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String()+stderr.String(), w) {
					t.Errorf("output does not contain %q:\n%s%s", w, stdout.String(), stderr.String())
				}
			}
		})
	}
}

// TestSetupCertificatesFilesMode: in files mode there is nothing to set up, with or
// without a cluster.
func TestSetupCertificatesFilesMode(t *testing.T) {
	f := certFlags{mode: certModeFiles}
	runnables, err := setupCertificates(context.Background(), &f, webhookConfigurationFlags{}, nil, t.TempDir(), logr.Discard())
	if err != nil || runnables != nil {
		t.Fatalf("setupCertificates: %v, %v; want nothing", runnables, err)
	}
}

// TestWebhookConfigurationFlags: one name per webhook configuration, for its caBundle and
// its matchConditions; the deprecated --cert-*-webhook-configuration spellings, on the
// command line or in the environment, set the same name with a warning, and may repeat
// the new flag's value but not contradict it.
func TestWebhookConfigurationFlags(t *testing.T) {
	tests := []struct {
		name                 string
		args                 []string
		env                  map[string]string
		mutating, validating string
		wantErr, wantWarning string
	}{
		{name: "defaults", mutating: "loomguard", validating: "loomguard"},
		{name: "new flags", args: []string{"--mutating-webhook-configuration", "m", "--validating-webhook-configuration", ""}, mutating: "m", validating: ""},
		{name: "deprecated flag", args: []string{"--cert-validating-webhook-configuration", "v"}, mutating: "loomguard", validating: "v",
			wantWarning: "Flag --cert-validating-webhook-configuration has been deprecated, use --validating-webhook-configuration"},
		{name: "deprecated flag none", args: []string{"--cert-mutating-webhook-configuration="}, mutating: "", validating: "loomguard", wantWarning: "deprecated"},
		{name: "deprecated variable", env: map[string]string{"LOOMGUARD_CERT_MUTATING_WEBHOOK_CONFIGURATION": "m"}, mutating: "m", validating: "loomguard", wantWarning: "deprecated"},
		{name: "both, same value", args: []string{"--cert-mutating-webhook-configuration", "m", "--mutating-webhook-configuration", "m"}, mutating: "m", validating: "loomguard", wantWarning: "deprecated"},
		{name: "both, different values", args: []string{"--validating-webhook-configuration", "a", "--cert-validating-webhook-configuration", "b"},
			wantErr: `--cert-validating-webhook-configuration="b" and --validating-webhook-configuration="a" name different configurations: give --validating-webhook-configuration only`},
		{name: "a deprecated variable contradicting the new flag", args: []string{"--mutating-webhook-configuration", "a"}, env: map[string]string{"LOOMGUARD_CERT_MUTATING_WEBHOOK_CONFIGURATION": "b"},
			wantErr: "name different configurations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f serveFlags
			var stderr bytes.Buffer
			fs := newServeFlagSet(&f, &stderr)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if err := applyEnv(fs, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }); err != nil {
				t.Fatal(err)
			}
			err := f.webhooks.resolve(fs)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolve() = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("resolve() = %v", err)
			}
			if f.webhooks.mutating != tt.mutating || f.webhooks.validating != tt.validating {
				t.Errorf("mutating %q, validating %q; want %q, %q", f.webhooks.mutating, f.webhooks.validating, tt.mutating, tt.validating)
			}
			if tt.wantWarning == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tt.wantWarning) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantWarning)
			}
		})
	}
}
