package config

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// CACert is one private certificate authority the gateway pods trust, as
// read from the file the user named: its PEM is the setting (a certificate
// is public), the file only where it came from.
type CACert struct {
	// Name is the key the certificate has in the pods' CA directory
	// (<file's base name>.crt).
	Name string `json:"name"`
	PEM  string `json:"pem"`
	// Subject and NotAfter are for messages and status.
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"notAfter,omitzero"`
}

// NoCACerts, as the only --ca-cert, removes the private CAs deployed.
const NoCACerts = "none"

// maxCACertBytes bounds one CA file: a bundle of a few hundred certificates
// is far below it; a wrong file (an image, a log) is refused, not read.
const maxCACertBytes = 1 << 20

var caNameRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// ReadCACertificates reads the files gateway.caCertificates names into
// Gateway.CACerts, replacing what was there, and forgets the paths: from
// then on the certificates themselves are the setting (what the cluster
// records), so a later command needs the files no more. "none" clears them.
// Every file's problem is returned at once; nothing changes then.
func (c *Config) ReadCACertificates(now time.Time) error {
	paths := c.Gateway.CACertificates
	if len(paths) == 0 {
		return nil
	}
	if len(paths) == 1 && strings.TrimSpace(paths[0]) == NoCACerts {
		c.Gateway.CACerts, c.Gateway.CACertificates = nil, nil
		return nil
	}
	var ps Problems
	var certs []CACert
	used := map[string]bool{}
	for _, p := range paths {
		got, problem := readCAFile(p, now)
		if problem != "" {
			ps = append(ps, Problem{Field: "gateway.caCertificates", Message: fmt.Sprintf("%s: %s", p, problem),
				Fix: "give the PEM file of the CA that signed the configuration endpoint's certificate (--ca-cert FILE, repeatable), e.g. the root your company's PKI publishes"})
			continue
		}
		name := strings.TrimSuffix(caNameRE.ReplaceAllString(filepath.Base(p), "-"), filepath.Ext(p))
		if name == "" || name == "." {
			name = "ca"
		}
		for n, i := name, 2; used[name+".crt"]; i++ {
			name = fmt.Sprintf("%s-%d", n, i)
		}
		used[name+".crt"] = true
		got.Name = name + ".crt"
		certs = append(certs, got)
	}
	if len(ps) > 0 {
		return ps
	}
	c.Gateway.CACerts, c.Gateway.CACertificates = certs, nil
	return nil
}

// readCAFile reads one PEM file of CA certificates: at least one, each a CA
// (or self-signed) and valid now. The problem is "" when the file is good.
func readCAFile(path string, now time.Time) (CACert, string) {
	f, err := os.Open(path)
	if err != nil {
		return CACert{}, "cannot be read: " + strings.TrimPrefix(err.Error(), "open "+path+": ")
	}
	defer f.Close()
	var buf bytes.Buffer
	if n, err := buf.ReadFrom(io.LimitReader(f, maxCACertBytes+1)); err != nil {
		return CACert{}, "cannot be read: " + err.Error()
	} else if n > maxCACertBytes {
		return CACert{}, fmt.Sprintf("is larger than %d KiB: not a PEM file of CA certificates", maxCACertBytes>>10)
	}
	return parseCAPEM(buf.Bytes(), now)
}

// parseCAPEM is readCAFile's check of the content, without a file.
func parseCAPEM(data []byte, now time.Time) (CACert, string) {
	var out bytes.Buffer
	var first *x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			if strings.Contains(b.Type, "PRIVATE KEY") {
				return CACert{}, "holds a private key: give only the CA's certificate (never its key)"
			}
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return CACert{}, "has a certificate that does not parse: " + err.Error()
		}
		selfSigned := cert.CheckSignatureFrom(cert) == nil
		switch {
		case !cert.IsCA && !selfSigned:
			return CACert{}, fmt.Sprintf("holds %q, which is not a CA certificate (basic constraints CA:FALSE): give the certificate of the CA that signed it", cert.Subject.String())
		case now.After(cert.NotAfter):
			return CACert{}, fmt.Sprintf("holds %q, which expired on %s", cert.Subject.String(), cert.NotAfter.UTC().Format("2006-01-02"))
		case now.Before(cert.NotBefore):
			return CACert{}, fmt.Sprintf("holds %q, which is not valid before %s", cert.Subject.String(), cert.NotBefore.UTC().Format("2006-01-02"))
		}
		if first == nil {
			first = cert
		}
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes})
	}
	if first == nil {
		if bytes.Contains(data, []byte("-----BEGIN")) {
			return CACert{}, "has no CERTIFICATE block"
		}
		return CACert{}, "is not a PEM file (no -----BEGIN CERTIFICATE----- block; convert a DER file with `openssl x509 -inform der -in FILE -out FILE.pem`)"
	}
	return CACert{PEM: out.String(), Subject: first.Subject.String(), NotAfter: first.NotAfter}, ""
}
