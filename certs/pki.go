package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Keys of the Secret.
const (
	CACertKey         = "ca.crt"
	CAKeyKey          = "ca.key"
	NextCACertKey     = "ca-next.crt"
	NextCAKeyKey      = "ca-next.key"
	PreviousCACertKey = "ca-previous.crt"
	CertKey           = "tls.crt"
	KeyKey            = "tls.key"
)

// backdate is how far NotBefore lies before the time of issue, for clocks that lag.
const backdate = 5 * time.Minute

// authority is a CA certificate with its key.
type authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// leaf is a serving certificate with its key.
type leaf struct {
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
}

// state is what the Secret holds, parsed. A part that does not parse is nil.
type state struct {
	ca       *authority
	next     *authority
	previous *x509.Certificate
	prevPEM  []byte
	leaf     *leaf
}

// policy is what the certificates must be: their names and lifetimes.
type policy struct {
	dnsNames    []string
	ips         []net.IP
	validity    time.Duration // serving certificate
	renewBefore time.Duration // renew the serving certificate when this much is left
	caValidity  time.Duration
}

// commonName is the serving certificate's subject: its first DNS name.
func (p policy) commonName() string {
	if len(p.dnsNames) > 0 {
		return p.dnsNames[0]
	}
	if len(p.ips) > 0 {
		return p.ips[0].String()
	}
	return "loomguard"
}

// caPublishLead is how long before taking over a new CA is published in the caBundle:
// a serving certificate's whole validity, so that every API server has long picked it up.
func (p policy) caPublishLead() time.Duration { return p.validity }

// caSwitchBefore is how long before the CA expires its successor takes over: a serving
// certificate signed just before the switch must not outlive its CA.
func (p policy) caSwitchBefore() time.Duration { return p.validity + p.renewBefore }

// parseState reads the Secret's data. Unparsable or missing parts are left nil: the plan
// replaces them.
func parseState(data map[string][]byte) *state {
	s := &state{}
	s.ca = parseAuthority(data[CACertKey], data[CAKeyKey])
	s.next = parseAuthority(data[NextCACertKey], data[NextCAKeyKey])
	if c, err := parseCert(data[PreviousCACertKey]); err == nil {
		s.previous, s.prevPEM = c, data[PreviousCACertKey]
	}
	if c, err := parseCert(data[CertKey]); err == nil {
		if _, err := tls.X509KeyPair(data[CertKey], data[KeyKey]); err == nil {
			s.leaf = &leaf{cert: c, certPEM: data[CertKey], keyPEM: data[KeyKey]}
		}
	}
	return s
}

// data is the state as the Secret's data. It keeps unknown keys of old.
func (s *state) data(old map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(old)+7)
	for k, v := range old {
		out[k] = v
	}
	for _, k := range []string{CACertKey, CAKeyKey, NextCACertKey, NextCAKeyKey, PreviousCACertKey, CertKey, KeyKey} {
		delete(out, k)
	}
	if s.ca != nil {
		out[CACertKey], out[CAKeyKey] = s.ca.certPEM, s.ca.keyPEM
	}
	if s.next != nil {
		out[NextCACertKey], out[NextCAKeyKey] = s.next.certPEM, s.next.keyPEM
	}
	if s.previous != nil {
		out[PreviousCACertKey] = s.prevPEM
	}
	if s.leaf != nil {
		out[CertKey], out[KeyKey] = s.leaf.certPEM, s.leaf.keyPEM
	}
	return out
}

// bundle is the caBundle: every CA of the state that has not expired at now, the signing
// CA first.
func (s *state) bundle(now time.Time) []byte {
	var b bytes.Buffer
	if s.ca != nil {
		b.Write(s.ca.certPEM)
	}
	if s.next != nil && now.Before(s.next.cert.NotAfter) {
		b.Write(s.next.certPEM)
	}
	if s.previous != nil && now.Before(s.previous.NotAfter) {
		b.Write(s.prevPEM)
	}
	return b.Bytes()
}

// serves reports whether the serving certificate can be served at now: it is within its
// validity, chains to one of the state's CAs and is valid for every name of p.
func (s *state) serves(p policy, now time.Time) bool {
	if s.leaf == nil || s.ca == nil {
		return false
	}
	return s.verifyLeaf(p, now) == nil
}

func (s *state) verifyLeaf(p policy, at time.Time) error {
	roots := x509.NewCertPool()
	for _, a := range []*authority{s.ca, s.next} {
		if a != nil {
			roots.AddCert(a.cert)
		}
	}
	if s.previous != nil {
		roots.AddCert(s.previous)
	}
	for _, name := range p.dnsNames {
		if _, err := s.leaf.cert.Verify(x509.VerifyOptions{
			DNSName: name, Roots: roots, CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			return err
		}
	}
	for _, ip := range p.ips {
		if _, err := s.leaf.cert.Verify(x509.VerifyOptions{
			DNSName: ip.String(), Roots: roots, CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			return err
		}
	}
	return nil
}

// leafCurrent reports whether the serving certificate needs nothing before renewal time:
// it is signed by the current CA, names exactly p's names and is not due for renewal.
func (s *state) leafCurrent(p policy, now time.Time) bool {
	if s.leaf == nil || s.ca == nil {
		return false
	}
	if err := s.leaf.cert.CheckSignatureFrom(s.ca.cert); err != nil {
		return false
	}
	if !sameStrings(s.leaf.cert.DNSNames, p.dnsNames) || !sameIPs(s.leaf.cert.IPAddresses, p.ips) {
		return false
	}
	if s.verifyLeaf(p, now) != nil {
		return false
	}
	return now.Before(s.leaf.cert.NotAfter.Add(-p.renewBefore))
}

// change says what plan did.
type change struct {
	newCA, publishedNext, switchedCA, droppedPrevious, newLeaf bool
}

func (c change) any() bool {
	return c.newCA || c.publishedNext || c.switchedCA || c.droppedPrevious || c.newLeaf
}

func (c change) String() string {
	var parts []string
	for _, p := range []struct {
		on   bool
		what string
	}{
		{c.newCA, "created a new CA"},
		{c.publishedNext, "published the next CA"},
		{c.switchedCA, "switched to the next CA"},
		{c.droppedPrevious, "dropped the expired previous CA"},
		{c.newLeaf, "issued a serving certificate"},
	} {
		if p.on {
			parts = append(parts, p.what)
		}
	}
	if len(parts) == 0 {
		return "no change"
	}
	return fmt.Sprint(parts)
}

// plan brings s up to date at now: it creates, publishes and switches CAs and renews the
// serving certificate as p says, and reports what it changed. It only generates keys for
// what it replaces.
func plan(s *state, p policy, now time.Time) (*state, change, error) {
	out := *s
	var c change

	// The signing CA: replace it when it is missing or can no longer sign a certificate
	// that outlives renewal. A published successor takes over; without one (first start,
	// or a CA that expired while nothing ran) a new CA is created and nothing can bridge.
	if out.ca == nil || !now.Before(out.ca.cert.NotAfter.Add(-p.caSwitchBefore())) {
		switch {
		case out.ca != nil && out.next != nil && now.Before(out.next.cert.NotAfter.Add(-p.caSwitchBefore())):
			out.previous, out.prevPEM = out.ca.cert, out.ca.certPEM
			out.ca, out.next = out.next, nil
			c.switchedCA = true
		default:
			ca, err := newAuthority(now, p.caValidity)
			if err != nil {
				return nil, change{}, err
			}
			if out.ca != nil && now.Before(out.ca.cert.NotAfter) {
				out.previous, out.prevPEM = out.ca.cert, out.ca.certPEM
			}
			out.ca, out.next = ca, nil
			c.newCA = true
		}
	}
	// Publish the successor a serving certificate's validity before it takes over.
	if out.next == nil && !now.Before(out.ca.cert.NotAfter.Add(-p.caSwitchBefore()-p.caPublishLead())) {
		next, err := newAuthority(now, p.caValidity)
		if err != nil {
			return nil, change{}, err
		}
		out.next = next
		c.publishedNext = true
	}
	if out.previous != nil && !now.Before(out.previous.NotAfter) {
		out.previous, out.prevPEM = nil, nil
		c.droppedPrevious = true
	}
	if !out.leafCurrent(p, now) {
		l, err := newLeaf(out.ca, p, now)
		if err != nil {
			return nil, change{}, err
		}
		out.leaf = l
		c.newLeaf = true
	}
	return &out, c, nil
}

// nextEvent is when plan will next have something to do.
func (s *state) nextEvent(p policy) time.Time {
	var times []time.Time
	if s.leaf != nil {
		times = append(times, s.leaf.cert.NotAfter.Add(-p.renewBefore))
	}
	if s.ca != nil {
		times = append(times, s.ca.cert.NotAfter.Add(-p.caSwitchBefore()))
		if s.next == nil {
			times = append(times, s.ca.cert.NotAfter.Add(-p.caSwitchBefore()-p.caPublishLead()))
		}
	}
	if s.previous != nil {
		times = append(times, s.previous.NotAfter)
	}
	if len(times) == 0 {
		return time.Time{}
	}
	return slices.MinFunc(times, func(a, b time.Time) int { return a.Compare(b) })
}

func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding key: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return n, nil
}

// newAuthority creates a self-signed CA valid from now for validity.
func newAuthority(now time.Time, validity time.Duration) (*authority, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("loomguard-ca@%d", now.Unix()), Organization: []string{"loomguard"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing CA certificate: %w", err)
	}
	return &authority{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  keyPEM,
	}, nil
}

// newLeaf issues a serving certificate for p's names, signed by ca, valid from now for
// p.validity but never beyond the CA.
func newLeaf(ca *authority, p policy, now time.Time) (*leaf, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(p.validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: p.commonName(), Organization: []string{"loomguard"}},
		DNSNames:     p.dnsNames,
		IPAddresses:  p.ips,
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("issuing serving certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing serving certificate: %w", err)
	}
	return &leaf{cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM: keyPEM}, nil
}

// parseAuthority parses a CA certificate and its key; nil when either is missing, does
// not parse, does not match the other or is not a CA.
func parseAuthority(certPEM, keyPEM []byte) *authority {
	cert, err := parseCert(certPEM)
	if err != nil || !cert.IsCA {
		return nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil
	}
	return &authority{cert: cert, key: signer, certPEM: certPEM, keyPEM: keyPEM}
}

// parseCert parses the first certificate of a PEM block sequence.
func parseCert(data []byte) (*x509.Certificate, error) {
	for len(data) > 0 {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
	return nil, errors.New("no certificate")
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func sameIPs(a, b []net.IP) bool {
	if len(a) != len(b) {
		return false
	}
	as, bs := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		as[i], bs[i] = a[i].String(), b[i].String()
	}
	return sameStrings(as, bs)
}
