package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/testdir"
)

var caNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// certPEM makes a certificate valid from notBefore to notAfter, a CA or a
// leaf signed by parent (self-signed when parent is nil).
func certPEM(t *testing.T, cn string, isCA bool, notBefore, notAfter time.Time, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: isCA, BasicConstraintsValid: true}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert, key
}

func TestReadCACertificates(t *testing.T) {
	dir := testdir.New(t)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	year := 365 * 24 * time.Hour
	rootPEM, root, rootKey := certPEM(t, "Contoso Root", true, caNow.Add(-year), caNow.Add(5*year), nil, nil)
	interPEM, _, _ := certPEM(t, "Contoso Issuing", true, caNow.Add(-year), caNow.Add(2*year), root, rootKey)
	leafPEM, _, _ := certPEM(t, "contoso.configuration.example", false, caNow.Add(-year), caNow.Add(year), root, rootKey)
	expiredPEM, _, _ := certPEM(t, "Old Root", true, caNow.Add(-3*year), caNow.Add(-year), nil, nil)
	block, _ := pem.Decode(rootPEM)

	good := write("contoso root.pem", rootPEM)
	bundle := write("bundle.crt", append(append([]byte("# issuing first\n"), interPEM...), rootPEM...))

	t.Run("good files become the setting, the paths are forgotten", func(t *testing.T) {
		c := Default()
		c.Gateway.CACertificates = []string{good, bundle, good}
		if err := c.ReadCACertificates(caNow); err != nil {
			t.Fatal(err)
		}
		if c.Gateway.CACertificates != nil || len(c.Gateway.CACerts) != 3 {
			t.Fatalf("paths %v, certs %d", c.Gateway.CACertificates, len(c.Gateway.CACerts))
		}
		names := []string{c.Gateway.CACerts[0].Name, c.Gateway.CACerts[1].Name, c.Gateway.CACerts[2].Name}
		if strings.Join(names, " ") != "contoso-root.crt bundle.crt contoso-root-2.crt" {
			t.Errorf("names %v: want distinct keys from the file names", names)
		}
		if c.Gateway.CACerts[0].Subject != "CN=Contoso Root" || strings.Count(c.Gateway.CACerts[1].PEM, "BEGIN CERTIFICATE") != 2 {
			t.Errorf("subject %q, bundle %q", c.Gateway.CACerts[0].Subject, c.Gateway.CACerts[1].PEM)
		}
		if strings.Contains(c.Gateway.CACerts[1].PEM, "issuing first") {
			t.Error("text around the PEM blocks kept")
		}
		// none clears what is deployed.
		c.Gateway.CACertificates = []string{"none"}
		if err := c.ReadCACertificates(caNow); err != nil || c.Gateway.CACerts != nil {
			t.Fatalf("none: %v, %v", err, c.Gateway.CACerts)
		}
		// No paths: the certificates (e.g. from the record) stay.
		c.Gateway.CACerts = []CACert{{Name: "x.crt", PEM: "kept"}}
		if err := c.ReadCACertificates(caNow); err != nil || len(c.Gateway.CACerts) != 1 {
			t.Fatalf("no paths: %v, %v", err, c.Gateway.CACerts)
		}
	})

	t.Run("every bad file is named at once and nothing changes", func(t *testing.T) {
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3}})
		bad := map[string]string{
			filepath.Join(dir, "missing.pem"):                 "cannot be read",
			write("empty.pem", nil):                           "is not a PEM file",
			write("root.der", block.Bytes):                    "convert a DER file",
			write("server.pem", leafPEM):                      `"CN=contoso.configuration.example", which is not a CA certificate`,
			write("old.pem", expiredPEM):                      "expired on",
			write("with-key.pem", append(rootPEM, keyPEM...)): "holds a private key",
			write("garbled.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")): "does not parse",
		}
		c := Default()
		c.Gateway.CACerts = []CACert{{Name: "deployed.crt", PEM: "deployed"}}
		for p := range bad {
			c.Gateway.CACertificates = append(c.Gateway.CACertificates, p)
		}
		c.Gateway.CACertificates = append(c.Gateway.CACertificates, good)
		err := c.ReadCACertificates(caNow)
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != len(bad) {
			t.Fatalf("want %d problems, got %v", len(bad), err)
		}
		for p, want := range bad {
			if !strings.Contains(err.Error(), p+": ") || !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q of %s:\n%v", want, p, err)
			}
		}
		if !strings.Contains(err.Error(), "--ca-cert FILE") {
			t.Errorf("no fix named:\n%v", err)
		}
		if len(c.Gateway.CACerts) != 1 || c.Gateway.CACerts[0].Name != "deployed.crt" {
			t.Errorf("a failed read changed the certificates: %v", c.Gateway.CACerts)
		}
	})

	t.Run("the flag's and the variable's list", func(t *testing.T) {
		c := Default()
		if err := c.Set("gateway.caCertificates", good+string(filepath.ListSeparator)+" "+bundle); err != nil {
			t.Fatal(err)
		}
		if len(c.Gateway.CACertificates) != 2 || c.Gateway.CACertificates[1] != bundle {
			t.Fatalf("%q", c.Gateway.CACertificates)
		}
	})
}
