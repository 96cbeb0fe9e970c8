package certs

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"
)

// testPolicy: a one-hour serving certificate renewed with 20 minutes left, a ten-hour CA.
func testPolicy() policy {
	return policy{
		dnsNames:    []string{"loomguard.loomguard-system.svc", "loomguard.loomguard-system.svc.cluster.local"},
		ips:         []net.IP{net.ParseIP("127.0.0.1")},
		validity:    time.Hour,
		renewBefore: 20 * time.Minute,
		caValidity:  10 * time.Hour,
	}
}

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// fresh is the state plan makes from nothing at t0.
func fresh(t *testing.T) *state {
	t.Helper()
	st, _, err := plan(&state{}, testPolicy(), t0)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPlan(t *testing.T) {
	p := testPolicy()
	tests := []struct {
		name  string
		state func(t *testing.T) *state
		p     policy
		at    time.Time
		want  change
		check func(t *testing.T, before, after *state)
	}{
		{
			name:  "empty secret: a CA and a serving certificate",
			state: func(*testing.T) *state { return &state{} },
			at:    t0,
			want:  change{newCA: true, newLeaf: true},
		},
		{
			name: "garbage in the secret is replaced",
			state: func(*testing.T) *state {
				return parseState(map[string][]byte{CACertKey: []byte("x"), CAKeyKey: []byte("y"), CertKey: []byte("z")})
			},
			at:   t0,
			want: change{newCA: true, newLeaf: true},
		},
		{
			name:  "fresh state: nothing to do",
			state: fresh,
			at:    t0.Add(time.Minute),
		},
		{
			name:  "serving certificate due: renewed by the same CA",
			state: fresh,
			at:    t0.Add(41 * time.Minute),
			want:  change{newLeaf: true},
			check: func(t *testing.T, before, after *state) {
				if after.ca != before.ca {
					t.Error("the CA changed")
				}
				if err := after.leaf.cert.CheckSignatureFrom(before.ca.cert); err != nil {
					t.Errorf("new serving certificate not signed by the CA: %v", err)
				}
			},
		},
		{
			name:  "new names: reissued",
			state: fresh,
			p:     policy{dnsNames: []string{"other.loomguard-system.svc"}, validity: p.validity, renewBefore: p.renewBefore, caValidity: p.caValidity},
			at:    t0.Add(time.Minute),
			want:  change{newLeaf: true},
		},
		{
			name: "key does not match the certificate: reissued",
			state: func(t *testing.T) *state {
				st := fresh(t)
				other := fresh(t)
				d := st.data(nil)
				d[KeyKey] = other.leaf.keyPEM
				return parseState(d)
			},
			at:   t0.Add(time.Minute),
			want: change{newLeaf: true},
		},
		{
			name:  "CA nears its end: its successor is published, nothing is signed by it yet",
			state: fresh,
			at:    t0.Add(10*time.Hour - 2*time.Hour - 20*time.Minute),
			want:  change{publishedNext: true, newLeaf: true},
			check: func(t *testing.T, before, after *state) {
				if after.ca != before.ca || after.next == nil {
					t.Fatal("want the same CA and a next one")
				}
				if err := after.leaf.cert.CheckSignatureFrom(before.ca.cert); err != nil {
					t.Errorf("serving certificate must still come from the current CA: %v", err)
				}
				if n := countCerts(t, after.bundle(t0.Add(8*time.Hour))); n != 2 {
					t.Errorf("bundle holds %d CAs, want 2", n)
				}
			},
		},
		{
			name: "CA switch: the published successor signs, the old CA stays trusted",
			state: func(t *testing.T) *state {
				st, _, err := plan(fresh(t), testPolicy(), t0.Add(10*time.Hour-2*time.Hour-20*time.Minute))
				if err != nil {
					t.Fatal(err)
				}
				return st
			},
			at:   t0.Add(10*time.Hour - time.Hour - 20*time.Minute),
			want: change{switchedCA: true, newLeaf: true},
			check: func(t *testing.T, before, after *state) {
				if after.ca != before.next || after.previous != before.ca.cert || after.next != nil {
					t.Fatal("want next promoted and the old CA kept as previous")
				}
				if err := after.leaf.cert.CheckSignatureFrom(before.next.cert); err != nil {
					t.Errorf("serving certificate not signed by the new CA: %v", err)
				}
			},
		},
		{
			name: "expired previous CA is dropped",
			state: func(t *testing.T) *state {
				st := fresh(t)
				old := fresh(t)
				st.previous, st.prevPEM = old.ca.cert, old.ca.certPEM
				return st
			},
			at:   t0.Add(10*time.Hour + time.Minute),
			want: change{newCA: true, droppedPrevious: true, newLeaf: true},
		},
		{
			name:  "CA expired with no successor (cluster off for long): a new CA, nothing to bridge",
			state: fresh,
			at:    t0.Add(11 * time.Hour),
			want:  change{newCA: true, newLeaf: true},
			check: func(t *testing.T, _, after *state) {
				if after.previous != nil {
					t.Error("an expired CA must not be kept")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := tt.p
			if pol.validity == 0 {
				pol = p
			}
			before := tt.state(t)
			after, got, err := plan(before, pol, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("change %s, want %s", got, tt.want)
			}
			if !after.serves(pol, tt.at) {
				t.Errorf("the planned state cannot serve at %s", tt.at)
			}
			if !after.leafCurrent(pol, tt.at) {
				t.Error("the planned serving certificate is not current")
			}
			if _, again, err := plan(after, pol, tt.at); err != nil || again.any() {
				t.Errorf("plan is not idempotent: %s, %v", again, err)
			}
			if tt.check != nil {
				tt.check(t, before, after)
			}
		})
	}
}

// TestPlanNeverBreaksTrust runs three CA lifetimes in 5-minute steps. After the first
// issue, every serving certificate plan issues must chain to a CA that was already in the
// caBundle before (the API server has it), and the certificate served before must chain to
// the new bundle (replicas still serve it until they reload).
func TestPlanNeverBreaksTrust(t *testing.T) {
	p := testPolicy()
	st := fresh(t)
	var rotations, switches int
	for now := t0.Add(5 * time.Minute); now.Before(t0.Add(30 * time.Hour)); now = now.Add(5 * time.Minute) {
		oldBundle := st.bundle(now)
		next, ch, err := plan(st, p, now)
		if err != nil {
			t.Fatal(err)
		}
		if ch.newCA {
			t.Fatalf("%s: a new CA was created in steady state: %s", now, ch)
		}
		if ch.newLeaf {
			rotations++
			if err := verifyWith(next.leaf.cert, oldBundle, p, now); err != nil {
				t.Fatalf("%s: the new serving certificate is not trusted by the bundle the API server had: %v", now, err)
			}
		}
		if ch.switchedCA {
			switches++
		}
		if err := verifyWith(st.leaf.cert, next.bundle(now), p, now); err != nil {
			t.Fatalf("%s: the serving certificate replicas still serve is not trusted by the new bundle: %v", now, err)
		}
		if ev := next.nextEvent(p); !ev.After(now) {
			t.Fatalf("%s: next event %s is not in the future", now, ev)
		}
		st = next
	}
	if rotations < 40 || switches < 2 {
		t.Errorf("%d renewals and %d CA switches in 30 hours, want at least 40 and 2", rotations, switches)
	}
}

func verifyWith(cert *x509.Certificate, bundle []byte, p policy, at time.Time) error {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return errNoCerts
	}
	for _, name := range append(append([]string(nil), p.dnsNames...), p.ips[0].String()) {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: at}); err != nil {
			return err
		}
	}
	return nil
}

type testError string

func (e testError) Error() string { return string(e) }

const errNoCerts = testError("bundle holds no certificate")

func countCerts(t *testing.T, bundle []byte) int {
	t.Helper()
	n := 0
	for len(bundle) > 0 {
		var block *pem.Block
		if block, bundle = pem.Decode(bundle); block == nil {
			break
		}
		n++
	}
	return n
}
