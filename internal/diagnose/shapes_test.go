package diagnose

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// testKey is a fresh EC private key in PEM (SEC 1 and PKCS#8) and a
// certificate for it: the kinds of PEM a kubeconfig and a TLS Secret hold.
type testKey struct {
	sec1, pkcs8, cert string
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes-admin"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{
		sec1:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})),
		pkcs8: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
		cert:  string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
	}
}

// body is a PEM block's base64 lines: what must not survive.
func body(block string) []string {
	var out []string
	for _, l := range strings.Split(block, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// wrap breaks s into lines of width characters.
func wrap(s string, width int) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width] + "\n")
		s = s[width:]
	}
	return b.String() + s + "\n"
}

func testJWT() (jwt, header string) {
	enc := base64.RawURLEncoding
	header = enc.EncodeToString([]byte(`{"typ":"JWT","alg":"RS256","kid":"nOo3ZDrODXEK1jKWhXslHR_KXEg"}`))
	claims := enc.EncodeToString([]byte(`{"aud":"https://management.azure.com","oid":"00000000-1111-2222-3333-444444444444","exp":1767225600}`))
	sig := enc.EncodeToString([]byte("a signature that is 64 bytes long, as an RS256 one would be....."))
	return header + "." + claims + "." + sig, header
}

// entraSecret has the shape of an Entra client secret: 3 characters, a
// digit, "Q~", 34 more.
const entraSecret = "Kx78Q~aB3_dE5.fG7-hI9~jK1lM3nO5pQ7rS9tU1"

func TestRedactorShapes(t *testing.T) {
	t.Parallel()
	key := newTestKey(t)
	jwt, jwtHeader := testJWT()
	cases := []struct {
		name  string
		in    string
		want  string   // the whole output, when given
		keep  []string // parts that must remain
		gone  []string // parts that must not
		count int
	}{
		{name: "PEM EC private key", in: "key file:\n" + key.sec1 + "done\n",
			want: "key file:\n-----BEGIN EC PRIVATE KEY-----\n<redacted>\n-----END EC PRIVATE KEY-----\ndone\n", gone: body(key.sec1), count: 1},
		{name: "PEM PKCS#8 key in a JSON string", in: mustJSON(t, map[string]string{"tls.key": key.pkcs8}),
			want: `{"tls.key":"-----BEGIN PRIVATE KEY-----\n<redacted>\n-----END PRIVATE KEY-----\n"}`, gone: body(key.pkcs8), count: 1},
		{name: "OpenSSH and encrypted keys", in: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkq\n-----END ENCRYPTED PRIVATE KEY-----\n",
			gone: []string{"b3BlbnNzaC1rZXktdjEAAAAABG5vbmU=", "MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkq"}, keep: []string{"-----END OPENSSH PRIVATE KEY-----", "-----BEGIN ENCRYPTED PRIVATE KEY-----"}, count: 2},
		{name: "PEM key cut before its END", in: "log: " + key.sec1[:len(key.sec1)/2],
			want: "log: -----BEGIN EC PRIVATE KEY-----\n<redacted>\n", gone: body(key.sec1[:len(key.sec1)/2]), count: 1},
		{name: "PEM key whose BEGIN was cut off", in: "ready\n" + key.sec1[strings.Index(key.sec1, "\n")+1:],
			want: "ready\n<redacted>\n-----END EC PRIVATE KEY-----\n", gone: body(key.sec1), count: 1},
		{name: "PEM key in a JSON string whose BEGIN was cut off", in: `{"key":"` + strings.ReplaceAll(key.pkcs8[strings.Index(key.pkcs8, "\n")+1:], "\n", `\n`) + `"}`,
			want: `{"key":"<redacted>\n-----END PRIVATE KEY-----\n"}`, gone: body(key.pkcs8), count: 1},
		{name: "base64 PEM key in a kubeconfig", in: "users:\n- name: kind-apimdev\n  user:\n    client-certificate-data: " + b64(key.cert) + "\n    client-key-data: " + b64(key.sec1) + "\n",
			keep: []string{"client-certificate-data: " + b64(key.cert), "client-key-data: <redacted>\n"}, gone: []string{b64(key.sec1)[:40]}, count: 1},
		{name: "base64 PEM key in a Secret's data", in: mustJSON(t, map[string]any{"data": map[string]string{"tls.crt": b64(key.cert), "tls.key": b64(key.pkcs8)}}),
			keep: []string{`"tls.crt":"` + b64(key.cert) + `"`, `"tls.key":"<redacted>"`}, gone: []string{b64(key.pkcs8)[:40]}, count: 1},
		{name: "base64 PEM key wrapped as base64(1) wraps it", in: "$ base64 key.pem\n" + wrap(b64(key.pkcs8), 76) + "$ base64 cert.pem\n" + wrap(b64(key.cert), 76),
			want: "$ base64 key.pem\n<redacted>\n$ base64 cert.pem\n" + wrap(b64(key.cert), 76), count: 1},
		{name: "base64 service account token in a Secret's data", in: "  ca.crt: " + b64(key.cert) + "\n  sa-token: " + b64(jwt) + "\n",
			keep: []string{"ca.crt: " + b64(key.cert), "sa-token: <redacted>"}, count: 1},
		{name: "JWT keeps its header", in: "access_token=" + jwt + " expires_in=3599",
			want: "access_token=" + jwtHeader + ".<redacted> expires_in=3599", count: 1},
		{name: "Authorization: Bearer JWT", in: "Authorization: Bearer " + jwt + "\n",
			want: "Authorization: Bearer " + jwtHeader + ".<redacted>\n", count: 1},
		{name: "Entra secret nobody told", in: "AZURE_CLIENT_SECRET=" + entraSecret + "\n",
			want: "AZURE_CLIENT_SECRET=Kx7<redacted>\n", count: 1},
		{name: "proxy URL with a password", in: "HTTPS_PROXY=http://alice:s3cr3t-P4ss@proxy.corp.example:3128 NO_PROXY=localhost",
			want: "HTTPS_PROXY=http://alice:<redacted>@proxy.corp.example:3128 NO_PROXY=localhost", count: 1},
		{name: "URL password with an @ in it, JSON-escaped", in: `{"proxy":"https:\/\/bob:p@ss:w0rd@10.0.0.1:8080\/"}`,
			want: `{"proxy":"https:\/\/bob:<redacted>@10.0.0.1:8080\/"}`, count: 1},
		{name: "kubeconfig token", in: "users:\n- name: admin\n  user:\n    token: 0123456789abcdef0123456789abcdef\n",
			want: "users:\n- name: admin\n  user:\n    token: <redacted>\n", count: 1},
		{name: "kubeconfig as JSON", in: `{"user":{"token":"abc.def","client-key-data":"c2hvcnQ=","username":"admin"}}`,
			want: `{"user":{"token":"<redacted>","client-key-data":"<redacted>","username":"admin"}}`, count: 2},
		{name: "Authorization in a Go map, Basic", in: "headers: map[Accept:[*/*] Authorization:[Basic YWxpY2U6c2VjcmV0]]",
			want: "headers: map[Accept:[*/*] Authorization:[Basic <redacted>]]", count: 1},
		{name: "subscription key header and query", in: "Ocp-Apim-Subscription-Key: 0123456789abcdef0123456789abcdef\nGET /echo?subscription-key=fedcba9876543210&x=1\n" + `{"ocp-apim-subscription-key":"00112233445566778899aabbccddeeff"}`,
			want: "Ocp-Apim-Subscription-Key: <redacted>\nGET /echo?subscription-key=<redacted>&x=1\n" + `{"ocp-apim-subscription-key":"<redacted>"}`, count: 3},
		{name: "a certificate is public", in: "ca:\n" + key.cert, want: "ca:\n" + key.cert},
		{name: "a public key is public", in: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n",
			want: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"},
		{name: "URLs without a password", in: "GET https://contoso.configuration.azure-api.net:443/subscriptions?api-version=2021-01-01&x=1 via http://user@proxy:3128/ and git@github.com:org/repo.git, mail ops@example.com"},
		{name: "base64 of ordinary data", in: "data:\n  config.json: " + b64(`{"logLevel":"debug","endpoint":"https://contoso.configuration.azure-api.net"}`) + "\n  blob: " + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x00\x01\x02binary", 10))) + "\n"},
		{name: "ids and digests", in: `containerID="containerd://4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b" image="mcr.microsoft.com/azure-api-management/gateway@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" path=/var/lib/kubelet/pods/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9/volumes/kubernetes.io~projected/kube-api-access-x7k2p`},
		{name: "words that name credentials", in: "authorization failed for user alice: token expired\nkubelet --authorization-mode=Webhook --rotate-server-certificates\nauthorization:\n  mode: Webhook\nService account token projected into the pod\n"},
		{name: "a JWT-looking word without a token", in: "eyJhbGciOiJub25lIn0 and eyJhbGciOiJub25lIn0.. and a.b.c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewRedactor()
			got := r.String(tc.in)
			want := tc.want
			if want == "" && len(tc.keep) == 0 && len(tc.gone) == 0 {
				want = tc.in // a negative: nothing changes
			}
			if want != "" && got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			for _, k := range tc.keep {
				if !strings.Contains(got, k) {
					t.Errorf("lost %q:\n%s", k, got)
				}
			}
			for _, g := range tc.gone {
				if strings.Contains(got, g) {
					t.Errorf("%q survived:\n%s", g, got)
				}
			}
			if r.Count() != tc.count {
				t.Errorf("counted %d replacement(s), want %d", r.Count(), tc.count)
			}
		})
	}
}

// What a told secret's forms and a shape both catch is counted once, and
// scrubbing again changes nothing.
func TestRedactorDoesNotCountTwice(t *testing.T) {
	t.Parallel()
	r := NewRedactor(entraSecret)
	in := "Authorization: Bearer " + entraSecret + "\nclient-secret: " + entraSecret + "\n"
	once := r.String(in)
	if want := "Authorization: Bearer Kx7<redacted>\nclient-secret: Kx7<redacted>\n"; once != want {
		t.Errorf("got\n%s\nwant\n%s", once, want)
	}
	if r.Count() != 2 {
		t.Errorf("counted %d, want 2", r.Count())
	}
	if twice := r.String(once); twice != once || r.Count() != 2 {
		t.Errorf("a second scrub changed %q into %q (count %d)", once, twice, r.Count())
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(j)
}
