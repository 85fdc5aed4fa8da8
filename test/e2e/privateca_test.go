//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// privateEndpoint is the stand-in configuration service whose certificate
// the suite's private CA signs.
const privateEndpoint = "standin-config-private.standin-config.svc.cluster.local:8443"

// privateCA makes a CA as a company's PKI has one: its certificate (what a
// user gives apimdev) and its key (only the stand-in service gets it).
func privateCA(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:   pkix.Name{CommonName: "Contoso Private Root CA (e2e)", Organization: []string{"Contoso"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

// deployPrivateConfigService runs a second stand-in configuration service
// whose certificate the CA signs, with the same keys as the first.
func (r *rig) deployPrivateConfigService(t *testing.T, caCert, caKey []byte) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{"STANDIN_TLS_CA_CERT": caCert, "STANDIN_TLS_CA_KEY": caKey,
		"STANDIN_GATEWAY_KEY": []byte(gatewayKey), "STANDIN_SUBSCRIPTION_KEYS": []byte(subKey)}
	args := []string{"--kubeconfig", r.kubeconfig, "-n", "standin-config", "create", "secret", "generic", "standin-config-private"}
	for k, v := range files {
		p := filepath.Join(dir, k)
		if err := os.WriteFile(p, v, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, fmt.Sprintf("--from-file=%s=%s", k, p))
	}
	for _, c := range [][]string{args,
		{"--kubeconfig", r.kubeconfig, "apply", "-f", "testdata/standin-config-private.yaml"},
		{"--kubeconfig", r.kubeconfig, "-n", "standin-config", "rollout", "status", "deployment/standin-config-private", "--timeout=120s"}} {
		if b, err := exec.Command(r.kubectl, c...).CombinedOutput(); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", c[3:5], err, b)
		}
	}
}
