package selfsigned

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func state(t *testing.T, c tls.Certificate) tls.ConnectionState {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
}

// A gateway trusts what the well-known CA issued, refuses a private CA's
// certificate with Go's unknown-authority error until that CA is trusted.
func TestVerifyChain(t *testing.T) {
	now := time.Now()
	if !bytes.Equal(WellKnown().Cert.Raw, WellKnown().Cert.Raw) || WellKnown().Cert.Subject.CommonName == "" {
		t.Fatal("the well-known CA is not one certificate")
	}
	known, err := WellKnown().Issue(now, "standin-config.example")
	if err != nil {
		t.Fatal(err)
	}
	private, err := NewAuthority("Contoso Private Root", now)
	if err != nil {
		t.Fatal(err)
	}
	privLeaf, err := private.Issue(now)
	if err != nil {
		t.Fatal(err)
	}
	pool := Trusted()
	verify := VerifyChain(pool, time.Now)
	if err := verify(state(t, known)); err != nil {
		t.Fatalf("the well-known CA's certificate: %v", err)
	}
	err = verify(state(t, privLeaf))
	if err == nil || !strings.Contains(err.Error(), "x509: certificate signed by unknown authority") {
		t.Fatalf("a private CA's certificate: %v, want unknown authority", err)
	}
	// Mounted (in the pool), the private CA's certificate is trusted.
	key, err := private.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseAuthority(private.CertPEM(), key)
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(parsed.Cert)
	if err := verify(state(t, privLeaf)); err != nil {
		t.Fatalf("with the private CA trusted: %v", err)
	}
	// Expired certificates are refused too.
	if err := VerifyChain(pool, func() time.Time { return now.Add(100 * 24 * time.Hour) })(state(t, known)); err == nil {
		t.Error("an expired certificate was trusted")
	}
	if _, err := ParseAuthority(known.Leaf.Raw, key); err == nil {
		t.Error("ParseAuthority took a DER leaf")
	}
}
