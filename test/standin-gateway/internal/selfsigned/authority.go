package selfsigned

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// Authority is a certificate authority that issues the stand-in config
// service's TLS certificate, so a gateway can check who signed it, as the
// real gateway checks Azure's endpoint.
type Authority struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// WellKnown is the stand-in's "well-known" CA: the one every stand-in image
// trusts, as the real image trusts the public CAs that sign Azure's
// endpoints. Its key derives from a fixed seed, so every stand-in process
// has the same CA without a file; it is test infrastructure and its key is
// public by design: it proves wiring, never secrecy.
func WellKnown() *Authority {
	wellKnownOnce.Do(func() {
		seed := sha256.Sum256([]byte("apimdev stand-in well-known CA (test infrastructure, not a secret)"))
		key := ed25519.NewKeyFromSeed(seed[:])
		tmpl := caTemplate("apimdev stand-in well-known CA", big.NewInt(1),
			time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			panic("the stand-in's well-known CA: " + err.Error())
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			panic("the stand-in's well-known CA: " + err.Error())
		}
		wellKnown = &Authority{Cert: cert, Key: key}
	})
	return wellKnown
}

var (
	wellKnownOnce sync.Once
	wellKnown     *Authority
)

func caTemplate(cn string, serial *big.Int, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"apimdev stand-in (not Azure API Management)"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

// NewAuthority makes a private CA (a company's own, in the tests), valid
// from an hour before now for a year.
func NewAuthority(cn string, now time.Time) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	tmpl := caTemplate(cn, serial, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// ParseAuthority reads a CA from its certificate and PKCS #8 key in PEM.
func ParseAuthority(certPEM, keyPEM []byte) (*Authority, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, errors.New("the CA's certificate and key must both be PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the CA's certificate: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the CA's key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok || !cert.IsCA {
		return nil, errors.New("not a CA certificate with its signing key")
	}
	return &Authority{Cert: cert, Key: signer}, nil
}

// CertPEM and KeyPEM are the CA's certificate and key in PEM.
func (a *Authority) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Cert.Raw})
}

func (a *Authority) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(a.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Issue returns a server certificate signed by the CA for localhost, the
// loopback addresses and each of hosts, valid from an hour before now for
// 90 days.
func (a *Authority) Issue(now time.Time, hosts ...string) (tls.Certificate, error) {
	return issue(now, 90*24*time.Hour, a.Cert, a.Key, hosts)
}

// Trusted is the pool a stand-in gateway checks its configuration
// endpoint's certificate against: the system's roots, which Go reads from
// SSL_CERT_FILE and every directory of SSL_CERT_DIR as .NET does (the
// stand-in image has none of its own), and the well-known stand-in CA.
func Trusted() *x509.CertPool {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pool.AddCert(WellKnown().Cert)
	return pool
}

// VerifyChain checks that a peer's chain leads to a root in pool. The host
// name is not checked: the stand-in proves which CA a gateway trusts, and
// its endpoints are reached by names no certificate of a test lists.
func VerifyChain(pool *x509.CertPool, now func() time.Time) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now()})
		if err != nil {
			return fmt.Errorf("tls: failed to verify certificate: %w", err)
		}
		return nil
	}
}
