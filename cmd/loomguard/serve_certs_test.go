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
		{"help lists the flags", []string{"--help"}, nil, 0, []string{"--cert-mode", "--cert-secret", "--cert-validity", "--cert-refresh", "--cert-ca-validity", "--cert-dns-names", "--cert-mutating-webhook-configuration"}},
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
	runnables, err := setupCertificates(context.Background(), &f, nil, t.TempDir(), logr.Discard())
	if err != nil || runnables != nil {
		t.Fatalf("setupCertificates: %v, %v; want nothing", runnables, err)
	}
}
