//go:build !loomguard_cli

package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/loomguard/loomguard/webhook"
)

func TestAuditServeFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantErr   string
		wantLease string
		check     func(f auditServeFlags) bool
	}{
		{name: "defaults", wantLease: "loomguard-system", check: func(f auditServeFlags) bool {
			return f.enabled && f.interval == time.Minute && f.pageSize == 500 && f.maxNamespaces == 100 && !f.events && f.leaderElect
		}},
		{name: "the pod's namespace", env: map[string]string{"POD_NAMESPACE": "guard"}, wantLease: "guard"},
		{name: "the flag wins", args: []string{"--leader-election-namespace=ops"}, env: map[string]string{"POD_NAMESPACE": "guard"}, wantLease: "ops"},
		{name: "set", args: []string{"--audit=false", "--audit-interval=2s", "--audit-page-size=50", "--audit-max-namespaces=0", "--audit-events", "--leader-elect=false"},
			wantLease: "loomguard-system", check: func(f auditServeFlags) bool {
				return !f.enabled && f.interval == 2*time.Second && f.pageSize == 50 && f.maxNamespaces == 0 && f.events && !f.leaderElect
			}},
		{name: "bad values", args: []string{"--audit-interval=0s", "--audit-page-size=-1", "--audit-max-namespaces=-5"},
			wantErr: "--audit-interval 0s must be positive\n--audit-page-size -1 must be positive\n--audit-max-namespaces -5 must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f serveFlags
			fs := newServeFlagSet(&f, io.Discard)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := f.audit.validate(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("validate() = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.audit.leaseNamespace != tt.wantLease {
				t.Errorf("lease namespace %q, want %q", f.audit.leaseNamespace, tt.wantLease)
			}
			if tt.check != nil && !tt.check(f.audit) {
				t.Errorf("flags %+v", f.audit)
			}
		})
	}
}

func TestAuditServeFlagsFromEnv(t *testing.T) {
	var f serveFlags
	fs := newServeFlagSet(&f, io.Discard)
	env := map[string]string{"LOOMGUARD_AUDIT_INTERVAL": "5s", "LOOMGUARD_LEADER_ELECT": "false", "LOOMGUARD_AUDIT_EVENTS": "true"}
	if err := applyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if f.audit.interval != 5*time.Second || f.audit.leaderElect || !f.audit.events {
		t.Errorf("flags from the environment: %+v", f.audit)
	}
}

func TestAuditServerOptions(t *testing.T) {
	base := webhook.ServerOptions{Port: 9443}
	tests := []struct {
		name      string
		flags     auditServeFlags
		config    *rest.Config
		wantLE    bool
		wantQPS   float32
		wantBurst int
	}{
		{name: "no cluster: no election", flags: auditServeFlags{enabled: true, leaderElect: true, leaseNamespace: "ns"}},
		{name: "cluster", flags: auditServeFlags{enabled: true, leaderElect: true, leaseNamespace: "ns"}, config: &rest.Config{},
			wantLE: true, wantQPS: 50, wantBurst: 100},
		{name: "the kubeconfig's rate limit stays", flags: auditServeFlags{enabled: true, leaderElect: true, leaseNamespace: "ns"},
			config: &rest.Config{QPS: 7, Burst: 9}, wantLE: true, wantQPS: 7, wantBurst: 9},
		{name: "--leader-elect=false", flags: auditServeFlags{enabled: true, leaseNamespace: "ns"}, config: &rest.Config{},
			wantQPS: 50, wantBurst: 100},
		// The Lease also elects the certificate rotator: no audit, still an election.
		{name: "--audit=false", flags: auditServeFlags{leaderElect: true, leaseNamespace: "ns"}, config: &rest.Config{}, wantLE: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.flags.serverOptions(tt.config, base)
			if o.Port != base.Port {
				t.Error("serverOptions lost the options it was given")
			}
			if o.LeaderElection != tt.wantLE {
				t.Errorf("LeaderElection = %v, want %v", o.LeaderElection, tt.wantLE)
			}
			if tt.wantLE && (o.LeaderElectionNamespace != "ns" || o.LeaderElectionID != "loomguard-audit") {
				t.Errorf("lease %s/%s, want ns/loomguard-audit", o.LeaderElectionNamespace, o.LeaderElectionID)
			}
			if tt.config != nil && (tt.config.QPS != tt.wantQPS || tt.config.Burst != tt.wantBurst) {
				t.Errorf("QPS %v, burst %d; want %v, %d", tt.config.QPS, tt.config.Burst, tt.wantQPS, tt.wantBurst)
			}
		})
	}
}

func TestServeHelpListsAuditFlags(t *testing.T) {
	res := runCLI(t, "", "serve", "--help")
	for _, flag := range []string{"--audit ", "--audit-interval", "--audit-page-size", "--audit-max-namespaces", "--audit-events", "--leader-elect ", "--leader-election-namespace"} {
		if !strings.Contains(res.stdout, flag) {
			t.Errorf("serve --help does not list %s", flag)
		}
	}
}

func TestServeHelpListsMatchConditionFlags(t *testing.T) {
	res := runCLI(t, "", "serve", "--help")
	for _, flag := range []string{"--match-conditions ", "--mutating-webhook-configuration string", "--validating-webhook-configuration string"} {
		if !strings.Contains(res.stdout, flag) {
			t.Errorf("serve --help does not list %s", flag)
		}
	}
}
