package selfsigned

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestCertificateNames(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := Certificate(now, "gw-pod-0", "10.1.2.3", "", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.Leaf)
	for _, name := range []string{"localhost", "gw-pod-0", "127.0.0.1", "10.1.2.3"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now}); err != nil {
			t.Errorf("certificate does not verify for %q: %v", name, err)
		}
	}
	if c.Leaf.Subject.CommonName != "localhost" {
		t.Errorf("CN = %q, want localhost", c.Leaf.Subject.CommonName)
	}
}
