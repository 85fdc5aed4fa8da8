package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/apimdev/apimdev/internal/kit"
	"github.com/apimdev/apimdev/internal/kit/kittest"
	"github.com/apimdev/apimdev/internal/testdir"
)

// kit create's engine is enginefake's, holding the kit's images.
var _ kit.Docker = (*enginefake.Engine)(nil)

var kitRefs = map[string]string{kit.RoleNode: "kindest/node:v1.34.4", kit.RoleStatsd: "prom/statsd-exporter:v0.31.0", kit.RoleDemo: "apimdev-e2e/standin-gateway:2.11.1-standin"}

// makeKit makes a kit as kit create does, signed by key when it is not nil.
func makeKit(t *testing.T, dir string, key *kit.SigningKey) string {
	t.Helper()
	d := enginefake.New()
	var want []kit.Want
	for _, role := range []string{kit.RoleNode, kit.RoleStatsd, kit.RoleDemo} {
		ref := kitRefs[role]
		if _, err := d.Add(enginefake.Archive(ref, []byte(strings.Repeat(role, 500)))); err != nil {
			t.Fatal(err)
		}
		want = append(want, kit.Want{Role: role, Ref: ref})
	}
	out := filepath.Join(dir, fmt.Sprintf("kit-%d.tar", time.Now().UnixNano()))
	cfg := []byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\ngateway:\n  endpoint: contoso.configuration.azure-api.net\n")
	if _, _, err := (&kit.Creator{Docker: d, Key: key}).Create(context.Background(), out, want, cfg); err != nil {
		t.Fatal(err)
	}
	return out
}

// changed is a fresh path for a kit a test rewrote.
func changed(dir string) string {
	return filepath.Join(dir, fmt.Sprintf("changed-%d.tar", time.Now().UnixNano()))
}

// flipByte is the kit with one byte of an entry changed (the manifest's
// inside a value, so it still decodes).
func flipByte(t *testing.T, dir, src, name string) string {
	t.Helper()
	out := changed(dir)
	kittest.Flip(t, src, out, name, `"kindest`)
	return out
}

// recast rewrites an unsigned kit: edit changes its files (by name), then
// the manifest's checksums and SHA256SUMS are made to match again, as a
// hand-made kit would.
func recast(t *testing.T, dir, src string, edit func(files map[string][]byte)) string {
	t.Helper()
	es := kittest.Entries(t, src)
	files := map[string][]byte{}
	for _, e := range es {
		files[e.Header.Name] = e.Data
	}
	edit(files)
	var m kit.Manifest
	if err := json.Unmarshal(files[kit.ManifestFile], &m); err != nil {
		t.Fatal(err)
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	sums := ""
	if m.Config != nil {
		m.Config.Size, m.Config.SHA256 = int64(len(files[kit.ConfigFile])), sum(files[kit.ConfigFile])
		sums += m.Config.SHA256 + "  " + kit.ConfigFile + "\n"
	}
	for i := range m.Images {
		b := files[m.Images[i].File]
		m.Images[i].Size, m.Images[i].SHA256 = int64(len(b)), sum(b)
		sums += m.Images[i].SHA256 + "  " + m.Images[i].File + "\n"
	}
	files[kit.ManifestFile], _ = json.MarshalIndent(m, "", "  ")
	files[kit.SumsFile] = []byte(sums)
	for i := range es {
		es[i].Data = files[es[i].Header.Name]
	}
	out := changed(dir)
	kittest.Write(t, out, es)
	return out
}

// recorder is a fake engine that counts every request it gets.
func recorder(t *testing.T) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "the test's engine answers nothing", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("DOCKER_HOST", "tcp://"+strings.TrimPrefix(srv.URL, "http://"))
	t.Setenv("CONTAINER_HOST", "")
	return &n
}

func newKey(t *testing.T, dir, name string) (*kit.SigningKey, string) {
	t.Helper()
	prefix := filepath.Join(dir, name)
	if _, _, err := (kit.KeyGen{Prefix: prefix, NoPassword: true}).Write(); err != nil {
		t.Fatal(err)
	}
	key, err := kit.ReadSigningKey(prefix+".key", nil)
	if err != nil {
		t.Fatal(err)
	}
	return key, prefix + ".pub"
}

// Every refused kit is refused by kit verify, kit load and up --kit before
// the engine gets a single request, with the problem and the fix; a good
// kit verifies with --trust FINGERPRINT and --trust file.pub, and kit load
// of it does reach the engine (the recorder is wired).
func TestKitRefusalsReachNoEngine(t *testing.T) {
	calls := recorder(t)
	dir := testdir.New(t)
	home := testdir.New(t)
	key, pubFile := newKey(t, dir, "instructor")
	other, _ := newKey(t, dir, "someone")
	signed := makeKit(t, dir, key)
	unsigned := makeKit(t, dir, nil)
	bySomeone := makeKit(t, dir, other)
	fp := key.Fingerprint
	dup := kittest.Entries(t, signed)
	dup = append(dup, dup[len(dup)-1])
	twice := changed(dir)
	kittest.Write(t, twice, dup)
	pathCfg := recast(t, dir, unsigned, func(f map[string][]byte) {
		f[kit.ConfigFile] = append(f[kit.ConfigFile], []byte("cluster:\n  kubeconfig: ~/.kube/config\n")...)
	})
	renamed := recast(t, dir, unsigned, func(f map[string][]byte) {
		f["images/statsd.tar"] = enginefake.Archive("kindest/node:v1.34.4", []byte("x"))
	})
	for _, tc := range []struct {
		name  string
		kit   string
		flags []string
		says  []string
		fix   string
	}{
		{"an image byte", flipByte(t, dir, signed, "images/statsd.tar"), []string{"--trust", fp}, []string{"images/statsd.tar does not match its SHA-256"}, "copy it again"},
		{"a config byte", flipByte(t, dir, signed, kit.ConfigFile), []string{"--trust", fp}, []string{"apimdev.yaml does not match its SHA-256"}, "copy it again"},
		{"a manifest byte", flipByte(t, dir, signed, kit.ManifestFile), []string{"--trust", fp}, []string{"manifest.json does not match its signature"}, "get the kit again"},
		{"another signer", bySomeone, []string{"--trust", fp}, []string{"signed by key " + other.Fingerprint, "which is not a key you trust", "privileged container, that is as root on this machine"}, "if it is " + other.Fingerprint},
		{"unsigned", unsigned, []string{"--trust", fp}, []string{"is not signed", "kindest/node:v1.34.4 as a privileged container", "prom/statsd-exporter:v0.31.0 (statsd)", "gateway.endpoint: contoso.configuration.azure-api.net (where your gateway token would be sent)"}, "--allow-unsigned only for a kit you made yourself"},
		{"signed, --allow-unsigned", signed, []string{"--allow-unsigned"}, []string{"signed by key " + fp}, "--allow-unsigned never accepts a signed kit"},
		{"an entry twice", twice, []string{"--trust", fp}, []string{"holds images/demo.tar twice"}, "get it again from the instructor"},
		{"a kubeconfig in its config", pathCfg, []string{"--allow-unsigned"}, []string{"cluster.kubeconfig (line 6)"}, "--kubeconfig"},
		{"an archive naming another image", renamed, []string{"--allow-unsigned"}, []string{"images/statsd.tar names kindest/node:v1.34.4", "the manifest says it is prom/statsd-exporter:v0.31.0"}, "get it again"},
	} {
		for _, args := range [][]string{{"kit", "verify", tc.kit}, {"kit", "load", tc.kit}, {"up", "--kit", tc.kit, "--demo"}} {
			r := apimdev(t, map[string]string{"APIMDEV_HOME": home}, "", append(args, tc.flags...)...)
			all := r.out + r.err
			if r.code == 0 || !strings.Contains(r.err, "fix: ") || !strings.Contains(r.err, tc.fix) {
				t.Errorf("%s, %s: exit %d, want the fix %q:\n%s", tc.name, args[:2], r.code, tc.fix, all)
			}
			for _, w := range tc.says {
				if !strings.Contains(all, w) {
					t.Errorf("%s, %s: lacks %q:\n%s", tc.name, args[:2], w, all)
				}
			}
			if n := calls.Load(); n != 0 {
				t.Fatalf("%s, %s: the engine got %d request(s)", tc.name, args[:2], n)
			}
		}
	}
	if left, _ := filepath.Glob(filepath.Join(home, "kit", "*")); len(left) != 0 {
		t.Errorf("a refused kit's config was kept: %v", left)
	}
	// A good kit verifies with the fingerprint, the .pub file and the
	// variable, and says who signed it.
	for _, trust := range [][]string{{"--trust", fp}, {"--trust", pubFile}, {"--trust", "SHA256:" + strings.Repeat("A", 43), "--trust", fp}} {
		r := apimdev(t, map[string]string{"APIMDEV_HOME": home}, "", append([]string{"kit", "verify", signed}, trust...)...)
		if r.code != 0 || !strings.Contains(r.err, "signed by "+fp) || !strings.Contains(r.out, "apimdev up --kit "+signed+" --trust "+fp) {
			t.Errorf("verify %v: exit %d\n%s%s", trust, r.code, r.out, r.err)
		}
	}
	if r := apimdev(t, map[string]string{"APIMDEV_HOME": home, "APIMDEV_KIT_TRUST": "x.pub," + fp}, "", "kit", "verify", signed); r.code != ExitUsage || !strings.Contains(r.err, "--trust x.pub") {
		t.Errorf("a bad APIMDEV_KIT_TRUST entry: exit %d\n%s", r.code, r.err)
	}
	if r := apimdev(t, map[string]string{"APIMDEV_HOME": home, "APIMDEV_KIT_TRUST": " " + fp + " "}, "", "kit", "verify", signed); r.code != 0 {
		t.Errorf("APIMDEV_KIT_TRUST: exit %d\n%s", r.code, r.err)
	}
	r := apimdev(t, map[string]string{"APIMDEV_HOME": home}, "", "kit", "verify", unsigned, "--allow-unsigned")
	if r.code != 0 || !strings.Contains(r.err, "not signed: loading it because of --allow-unsigned") || !strings.Contains(r.out, "apimdev up --kit "+unsigned+" --allow-unsigned") {
		t.Errorf("--allow-unsigned: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("verify reached the engine: %d request(s)", n)
	}
	if r := apimdev(t, map[string]string{"APIMDEV_HOME": home}, "", "up", "--demo", "--trust", fp); r.code != ExitUsage || !strings.Contains(r.err, "add --kit FILE") {
		t.Errorf("--trust without --kit: exit %d\n%s", r.code, r.err)
	}
	// The control: a good kit's load does reach this engine.
	apimdev(t, map[string]string{"APIMDEV_HOME": home}, "", "kit", "load", signed, "--trust", fp)
	if calls.Load() == 0 {
		t.Error("kit load of a good kit never reached the test's engine: the refusals above prove nothing")
	}
}

// kit keygen writes the pair once, the secret key 0600, prints the
// fingerprint the .pub has; without a password source it writes nothing.
func TestKitKeygen(t *testing.T) {
	dir := testdir.New(t)
	prefix := filepath.Join(dir, "instructor")
	r := apimdev(t, nil, "", "kit", "keygen", "-o", prefix+".key", "--no-password")
	if r.code != 0 {
		t.Fatalf("keygen: %d\n%s", r.code, r.err)
	}
	fps, err := kit.ParseTrust([]string{prefix + ".pub"})
	if err != nil || !strings.Contains(r.out, "fingerprint: "+fps[0]) || !strings.Contains(r.out, "--trust "+fps[0]) {
		t.Errorf("%v; output:\n%s", err, r.out)
	}
	if !strings.Contains(r.err, "not password-protected") {
		t.Errorf("no warning for an unprotected key:\n%s", r.err)
	}
	if fi, err := os.Stat(prefix + ".key"); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Errorf("secret key: %v %v", fi, err)
	}
	key, _ := os.ReadFile(prefix + ".key")
	pub, _ := os.ReadFile(prefix + ".pub")
	for _, args := range [][]string{{"-o", prefix, "--no-password"}, {"-o", prefix + ".pub", "--no-password"}} {
		r := apimdev(t, map[string]string{"APIMDEV_KIT_PASSWORD": "pw"}, "", append([]string{"kit", "keygen"}, args...)...)
		if r.code == 0 || !strings.Contains(r.err, "already exists") || !strings.Contains(r.err, "fix: ") {
			t.Errorf("keygen over a key: %d\n%s", r.code, r.err)
		}
	}
	if k2, _ := os.ReadFile(prefix + ".key"); !bytes.Equal(k2, key) {
		t.Error("the secret key changed")
	}
	if p2, _ := os.ReadFile(prefix + ".pub"); !bytes.Equal(p2, pub) {
		t.Error("the public key changed")
	}
	// No terminal, no APIMDEV_KIT_PASSWORD, no --no-password: nothing.
	r = apimdev(t, nil, "", "kit", "keygen", "-o", filepath.Join(dir, "x"))
	if r.code != ExitUsage || !strings.Contains(r.err, "APIMDEV_KIT_PASSWORD") || !strings.Contains(r.err, "--no-password") {
		t.Errorf("keygen without a password: %d\n%s", r.code, r.err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "x.*")); len(left) != 0 {
		t.Errorf("left %v", left)
	}
}

// A password-protected key: minisign-encrypted, and the password in no
// output and not in the file. (minisign's scrypt is slow by design, 30 s
// under -race: the one unit test that runs it; that the password opens the
// key again is TestWorkshop's, which signs a kit with it.)
func TestKitKeygenKeepsThePasswordSecret(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	prefix := filepath.Join(dir, "instructor")
	const password = "Q0FOQVJZLWtpdC1wYXNzd29yZA"
	r := apimdev(t, map[string]string{"APIMDEV_KIT_PASSWORD": password}, "", "kit", "keygen", prefix, "-o", "json")
	if r.code != 0 {
		t.Fatalf("keygen: %d\n%s", r.code, r.err)
	}
	var out struct {
		Fingerprint       string
		PasswordProtected bool
	}
	if err := json.Unmarshal([]byte(r.out), &out); err != nil || !out.PasswordProtected {
		t.Fatalf("%v: %s", err, r.out)
	}
	secret, _ := os.ReadFile(prefix + ".key")
	if !minisign.IsEncrypted(secret) || strings.Contains(r.out+r.err+string(secret), password) {
		t.Errorf("encrypted %v; the password is in the output or the file", minisign.IsEncrypted(secret))
	}
	if !kit.KeyEncrypted(prefix + ".key") {
		t.Error("kit create would not ask for this key's password")
	}
	if fps, err := kit.ParseTrust([]string{prefix + ".pub"}); err != nil || fps[0] != out.Fingerprint {
		t.Errorf("printed fingerprint %s, the .pub's %v %v", out.Fingerprint, fps, err)
	}
}

// kit create --sign reads the key (and asks for its password) before it
// touches the engine: with neither a terminal nor APIMDEV_KIT_PASSWORD it
// stops there, with the fix.
func TestKitCreateSignNeedsThePasswordFirst(t *testing.T) {
	calls := recorder(t)
	dir := testdir.New(t)
	enc := filepath.Join(dir, "enc.key")
	os.WriteFile(enc, []byte("untrusted comment: minisign encrypted secret key\nRWRTY0Iy"+strings.Repeat("A", 40)+"\n"), 0o600)
	env := map[string]string{"APIMDEV_HOME": testdir.New(t)}
	r := apimdev(t, env, "", "kit", "create", "-o", filepath.Join(dir, "kit.tar"), "--sign", enc)
	if r.code != ExitUsage || !strings.Contains(r.err, "APIMDEV_KIT_PASSWORD") {
		t.Errorf("no password: %d\n%s", r.code, r.err)
	}
	env["APIMDEV_KIT_PASSWORD"] = "not-it"
	r = apimdev(t, env, "", "kit", "create", "-o", filepath.Join(dir, "kit.tar"), "--sign", enc)
	if r.code == 0 || !strings.Contains(r.err, "the password does not open it") || strings.Contains(r.err, "not-it") {
		t.Errorf("wrong password: %d\n%s", r.code, r.err)
	}
	_, pub := newKey(t, dir, "k")
	r = apimdev(t, env, "", "kit", "create", "-o", filepath.Join(dir, "kit.tar"), "--sign", pub)
	if r.code == 0 || !strings.Contains(r.err, "is a public key") {
		t.Errorf("a .pub for --sign: %d\n%s", r.code, r.err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the engine got %d request(s)", n)
	}
}
