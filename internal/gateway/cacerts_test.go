package gateway

import (
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/token"
)

// caConfig is the token config with the Contoso private root CA to trust.
func caConfig(t *testing.T) config.Config {
	t.Helper()
	pem, err := os.ReadFile("testdata/contoso-root-ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	cfg := authConfig(config.AuthToken)
	cfg.Gateway.CACerts = []config.CACert{{Name: "contoso-root-ca.crt", PEM: string(pem), Subject: "CN=Contoso Private Root CA,O=Contoso"}}
	return cfg
}

// A private CA, dev and prod, against golden files; and the facts the
// golden files must hold, asserted directly.
func TestCACertificatesGolden(t *testing.T) {
	cfg := caConfig(t)
	prod, err := Prod(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]Profile{"dev": Dev(cfg), "prod": prod} {
		objs := p.Objects(token.Token{}, true)
		out, err := YAML(objs)
		if err != nil {
			t.Fatal(err)
		}
		golden := "testdata/ca-" + name + ".golden.yaml"
		if *update {
			if err := os.WriteFile(golden, out, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if string(want) != string(out) {
			t.Errorf("%s differs from %s (run go test -update):\n%s", name, golden, out)
		}

		var caCM, settings *corev1.ConfigMap
		for _, o := range objs {
			if cm, ok := o.(*corev1.ConfigMap); ok {
				switch cm.Name {
				case p.CAConfigMapName():
					caCM = cm
				case p.ConfigMapName():
					settings = cm
				}
			}
		}
		if caCM == nil || !strings.Contains(caCM.Data["contoso-root-ca.crt"], "BEGIN CERTIFICATE") {
			t.Fatalf("%s: no ConfigMap %s with the CA's PEM: %+v", name, p.CAConfigMapName(), caCM)
		}
		if settings.Data["certificates.local.ca.enabled"] != "true" {
			t.Errorf("%s: certificates.local.ca.enabled = %q, want \"true\"", name, settings.Data["certificates.local.ca.enabled"])
		}
		d, _ := find[*appsv1.Deployment](objs)
		c := d.Spec.Template.Spec.Containers[0]
		var mounted, env bool
		for _, m := range c.VolumeMounts {
			mounted = mounted || m.MountPath == CADir && m.ReadOnly
		}
		for _, e := range c.Env {
			env = env || e.Name == "SSL_CERT_DIR" && strings.HasSuffix(e.Value, ":"+CADir) && strings.HasPrefix(e.Value, "/etc/ssl/certs:")
		}
		if !mounted || !env {
			t.Errorf("%s: CA directory mounted read-only %v, SSL_CERT_DIR keeps the image's CAs and adds %s %v", name, mounted, CADir, env)
		}
		// The gateway reads local CAs as root or UID 1001 only.
		if sc := d.Spec.Template.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser != 0 && *sc.RunAsUser != 1001 {
			t.Errorf("%s: runs as UID %d; certificates.local.ca.enabled needs root or 1001", name, *sc.RunAsUser)
		}
	}

	// Without a CA nothing of it is rendered: the portal's deployment stays the portal's.
	plain := Dev(authConfig(config.AuthToken))
	out, _ := YAML(plain.Objects(token.Token{}, true))
	for _, s := range []string{"ca-certificates", "SSL_CERT_DIR", "certificates.local.ca"} {
		if strings.Contains(string(out), s) {
			t.Errorf("a gateway without private CAs renders %q", s)
		}
	}
}

// The gateway's and the stand-in's log lines of an untrusted endpoint
// certificate name the flag; a wrong host name says something else.
func TestCertFix(t *testing.T) {
	plain := Dev(authConfig(config.AuthToken))
	withCA := Dev(caConfig(t))
	for _, c := range []struct {
		p         Profile
		log, want string
	}{
		{plain, `System.Net.Http.HttpRequestException: The SSL connection could not be established ... RemoteCertificateChainErrors ... UntrustedRoot`, "--ca-cert ca.pem"},
		{plain, `{"level":"error","msg":"configuration fetch failed","error":"tls: failed to verify certificate: x509: certificate signed by unknown authority"}`, "certificate problem"},
		{withCA, `x509: certificate signed by unknown authority`, "even with the private CA(s) given (contoso-root-ca.crt)"},
		{plain, `RemoteCertificateNameMismatch`, "not for that host name"},
		{plain, `401 Unauthorized: the token is not valid`, ""},
	} {
		w := &Waiter{Profile: c.p}
		got := w.certFix([]string{"first", c.log})
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("certFix(%q) = %q, want it to say %q", c.log, got, c.want)
		}
	}
}
