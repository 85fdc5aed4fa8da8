// Package selfsigned makes the stand-in's TLS certificates: the gateway's own
// throwaway one (the real gateway ships a default certificate too; its
// clients are tests that skip verification), and the config service's,
// issued by a CA (authority.go) that a stand-in gateway checks, as the real
// one checks Azure's endpoint.
package selfsigned

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Certificate returns a fresh self-signed certificate for localhost, the
// loopback addresses and each of extraHosts (names or IPs), valid from an hour
// before now (clock skew between containers) for a year.
func Certificate(now time.Time, extraHosts ...string) (tls.Certificate, error) {
	return issue(now, 365*24*time.Hour, nil, nil, extraHosts)
}

// issue makes a server certificate for localhost, the loopback addresses and
// hosts, valid from an hour before now for validity, signed by parent with
// parentKey (self-signed when parent is nil).
func issue(now time.Time, validity time.Duration, parent *x509.Certificate, parentKey crypto.Signer, hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"apimdev stand-in (not Azure API Management)"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		switch ip := net.ParseIP(h); {
		case h == "":
		case ip != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		case !slices.Contains(tmpl.DNSNames, h):
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	var signer crypto.Signer = key
	if parent == nil {
		parent = tmpl
	} else {
		signer = parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
