package kit

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/apimdev/apimdev/internal/kit/kittest"
	"github.com/apimdev/apimdev/internal/testdir"
)

// The engine is enginefake's: images held as saved archives under IDs
// computed from their content, names on them, every call counted.
var _ Docker = (*enginefake.Engine)(nil)

// archive makes a docker-save archive naming ref, with size bytes of layer.
func archive(t *testing.T, ref string, size int) []byte {
	t.Helper()
	return enginefake.Archive(ref, bytes.Repeat([]byte(ref[:1]), size))
}

// tarOf makes a tar of files (in name order) after a layer of size bytes.
func tarOf(t *testing.T, files map[string]string, size int, fill string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	add("layer.tar", bytes.Repeat([]byte(fill), size))
	for _, name := range slices.Sorted(maps.Keys(files)) {
		add(name, []byte(files[name]))
	}
	tw.Close()
	return b.Bytes()
}

func newFake(t *testing.T, refs ...string) *enginefake.Engine {
	t.Helper()
	d := enginefake.New()
	for _, r := range refs {
		if _, err := d.Add(archive(t, r, 300<<10)); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// named is the ID of the image the engine names ref ("" for none).
func named(d *enginefake.Engine, ref string) string {
	id, _ := d.ImageID(ref)
	return id
}

var wants = []Want{{RoleNode, "kindest/node:v1.34.4"}, {RoleGateway, "mcr.microsoft.com/azure-api-management/gateway:2.11.1"}, {RoleStatsd, "prom/statsd-exporter:v0.31.0"}}

func refsOf(ws []Want) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Ref)
	}
	return out
}

// testKey is an unencrypted signing key made for the test, and its
// public key.
func testKey(t *testing.T) (*SigningKey, minisign.PublicKey) {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &SigningKey{key: priv, Fingerprint: Fingerprint(pub)}, pub
}

const testConfig = "apiVersion: apimdev.io/v1alpha1\nkind: Config\ngateway:\n  endpoint: contoso.configuration.azure-api.net\n"

func create(t *testing.T, d *enginefake.Engine, key *SigningKey, cfg []byte) (string, Manifest, []string) {
	t.Helper()
	out := filepath.Join(testdir.New(t), "kit.tar")
	var lines []string
	c := &Creator{Docker: d, Version: "test", Now: func() time.Time { return time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC) }, Key: key,
		Progress: func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }}
	m, size, err := c.Create(context.Background(), out, wants, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Size() != size {
		t.Fatalf("kit size %d, stat %v %v", size, fi, err)
	}
	return out, m, lines
}

func trusting(fingerprints ...string) Trust { return Trust{Fingerprints: fingerprints} }

func TestCreateThenLoadAfterRemoval(t *testing.T) {
	d := newFake(t, refsOf(wants)...)
	key, _ := testKey(t)
	out, m, lines := create(t, d, key, []byte(testConfig))
	if len(m.Images) != 3 || m.Config == nil || m.Images[0].File != "images/node.tar" {
		t.Fatalf("manifest: %+v", m)
	}
	joined := strings.Join(lines, "\n")
	for _, w := range []string{"saving node image kindest/node:v1.34.4 [##########] 100%", "writing the kit kit.tar [##########] 100%"} {
		if !strings.Contains(joined, w) {
			t.Errorf("progress lacks %q:\n%s", w, joined)
		}
	}
	// Small images: one line each.
	if len(lines) != 4 {
		t.Errorf("%d progress lines", len(lines))
	}
	// The layout: the manifest, its signature and key right after it.
	if got := kittest.Names(t, out); strings.Join(got, " ") != "manifest.json manifest.json.minisig signer.pub SHA256SUMS apimdev.yaml images/node.tar images/gateway.tar images/statsd.tar" {
		t.Errorf("entries: %v", got)
	}
	read, err := ReadManifest(out)
	if err != nil || read.Images[2].SHA256 != m.Images[2].SHA256 {
		t.Fatalf("ReadManifest: %v %+v", err, read)
	}
	k, err := Open(context.Background(), out, trusting(key.Fingerprint), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(k.Config()), "contoso") || k.Signer() != key.Fingerprint {
		t.Errorf("config %q, signer %s", k.Config(), k.Signer())
	}
	k.Close()

	// Nothing to load while Docker holds the same images.
	res, err := Load(context.Background(), d, out, trusting(key.Fingerprint), nil)
	if err != nil || len(res.Loaded) != 0 || len(res.Present) != 3 || d.Loaded() != 0 {
		t.Fatalf("load onto the same images: %v %+v", err, res)
	}
	// Remove two; load brings them back with the same IDs.
	for _, r := range []string{wants[0].Ref, wants[1].Ref} {
		d.Remove(r)
	}
	res, err = Load(context.Background(), d, out, trusting(key.Fingerprint), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Loaded) != 2 || len(res.Present) != 1 || d.Loaded() != 2 {
		t.Fatalf("loaded %+v present %+v", res.Loaded, res.Present)
	}
	if got := res.String(); !strings.Contains(got, "node loaded") || !strings.Contains(got, "statsd already in Docker") || !strings.Contains(got, "signed by "+key.Fingerprint) {
		t.Errorf("summary: %s", got)
	}
	for _, img := range m.Images {
		if named(d, img.Ref) != img.ID {
			t.Errorf("%s is image %s after the load, the manifest says %s", img.Ref, named(d, img.Ref), img.ID)
		}
	}
}

// An engine that gives a loaded image another ID than the one the kit's
// manifest recorded (here one that names an image by the digest of the
// whole archive) holds something else under the name than the kit meant:
// the load stops there, says which image it is, and puts the user's own
// image back under the name.
func TestLoadRefusesAnImageWhoseIDIsNotTheManifests(t *testing.T) {
	src := newFake(t, refsOf(wants)...)
	key, _ := testKey(t)
	out, m, _ := create(t, src, key, nil)
	d := newFake(t)
	d.SetIDOf(func(arch []byte) string { return "sha256:" + sha(arch) })
	users := "sha256:" + strings.Repeat("a", 64)
	d.AddAs(users, wants[0].Ref, archive(t, "users/own:1", 10))
	_, err := Load(context.Background(), d, out, trusting(key.Fingerprint), nil)
	if err == nil {
		t.Fatal("a load that left another image under the name succeeded")
	}
	got := "sha256:" + sha(kittest.Data(t, out, m.Images[0].File))
	want := fmt.Sprintf("after docker load, %s is image %s but the kit's manifest says %s", wants[0].Ref, shortID(got), shortID(m.Images[0].ID))
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error lacks %q:\n%v", want, err)
	}
	var le *LoadError
	if !errors.As(err, &le) || len(le.Restored) != 1 || named(d, wants[0].Ref) != users {
		t.Errorf("the user's image is not back under %s (%s): %v", wants[0].Ref, named(d, wants[0].Ref), err)
	}
	// The load stopped at the first image: the others were not loaded.
	if d.Loaded() != 1 {
		t.Errorf("%d loads after the wrong image", d.Loaded())
	}
	if _, ok := d.ImageID(wants[1].Ref); ok {
		t.Errorf("%s was loaded after the wrong image", wants[1].Ref)
	}
}

// A signed kit loads with its key trusted by fingerprint, by .pub file and
// by the public key string; the signature verifies with minisign's own
// verification of manifest.json's bytes (what `minisign -Vm` does).
func TestSignedKitLoadsWithEveryFormOfTrust(t *testing.T) {
	d := newFake(t, refsOf(wants)...)
	key, pub := testKey(t)
	out, _, _ := create(t, d, key, []byte(testConfig))
	dir := testdir.New(t)
	pubFile := filepath.Join(dir, "instructor.pub")
	os.WriteFile(pubFile, publicKeyText(pub), 0o644)
	for name, value := range map[string]string{"fingerprint": key.Fingerprint, ".pub file": pubFile, "key string": pub.String()} {
		fps, err := ParseTrust([]string{value})
		if err != nil || len(fps) != 1 || fps[0] != key.Fingerprint {
			t.Fatalf("%s: %v %v", name, fps, err)
		}
		for _, w := range wants {
			d.Remove(w.Ref)
		}
		res, err := Load(context.Background(), d, out, Trust{Fingerprints: fps}, nil)
		if err != nil || len(res.Loaded) != 3 {
			t.Fatalf("--trust %s: %v %+v", name, err, res)
		}
	}
	if !minisign.Verify(pub, kittest.Data(t, out, ManifestFile), kittest.Data(t, out, SignatureFile)) {
		t.Error("minisign does not verify manifest.json with manifest.json.minisig")
	}
	var s minisign.Signature
	if err := s.UnmarshalText(kittest.Data(t, out, SignatureFile)); err != nil || s.Algorithm != minisign.HashEdDSA || !strings.Contains(s.TrustedComment, "file:manifest.json") {
		t.Errorf("signature: %v %+v", err, s)
	}
	if got := string(kittest.Data(t, out, SignerFile)); got != string(publicKeyText(pub)) {
		t.Errorf("signer.pub: %q", got)
	}
}

// writeParts writes a kit of entries es and returns its path.
func writeParts(t *testing.T, es []kittest.Entry) string {
	t.Helper()
	p := filepath.Join(testdir.New(t), "changed.tar")
	kittest.Write(t, p, es)
	return p
}

// flipped is the kit with one byte of entry name changed (the manifest's
// inside a value, so it still decodes).
func flipped(t *testing.T, kitPath, name string) string {
	t.Helper()
	p := filepath.Join(testdir.New(t), "changed.tar")
	kittest.Flip(t, kitPath, p, name, `"test"`)
	return p
}

// refusal is a kit and the error it must get, naming the problem, with a
// fix.
type refusal struct {
	name  string
	kit   string
	trust Trust
	want  any    // a pointer to the error type expected
	says  string // in the error
	fix   string // in its hint
}

// Every refusal happens before the engine gets a single call, and says
// what is wrong and what to do.
func TestRefusedKitsNeverTouchTheEngine(t *testing.T) {
	src := newFake(t, refsOf(wants)...)
	key, _ := testKey(t)
	other, _ := testKey(t)
	signed, _, _ := create(t, src, key, []byte(testConfig))
	unsigned, _, _ := create(t, src, nil, []byte(testConfig))
	trust := trusting(key.Fingerprint)
	cases := []refusal{
		{"a byte of an image", flipped(t, signed, "images/gateway.tar"), trust, new(*ChecksumError), "images/gateway.tar does not match its SHA-256", "copy it again"},
		{"a byte of the config", flipped(t, signed, ConfigFile), trust, new(*ChecksumError), "apimdev.yaml does not match its SHA-256", "copy it again"},
		{"a byte of the manifest", flipped(t, signed, ManifestFile), trust, new(*SignatureError), "manifest.json does not match its signature", "get the kit again"},
		{"a byte of the signature", flipped(t, signed, SignatureFile), trust, new(*SignatureError), "changed after it was signed", "get the kit again"},
		{"a byte of the signer's key", flipped(t, signed, SignerFile), trust, new(*SignatureError), "changed after it was signed", "get the kit again"},
		{"a byte of SHA256SUMS", flipped(t, signed, SumsFile), trust, new(*ChecksumError), "SHA256SUMS does not match", "copy it again"},
		{"signed by another key", signed, trusting(other.Fingerprint), new(*UntrustedError), "signed by key " + key.Fingerprint + ", which is not a key you trust", "--trust"},
		{"signed, nothing trusted", signed, Trust{}, new(*UntrustedError), "you named no key to trust", "Ask the instructor"},
		{"signed, --allow-unsigned", signed, Trust{AllowUnsigned: true}, new(*UntrustedError), "signed by key", "--allow-unsigned never accepts a signed kit"},
		{"unsigned", unsigned, trust, new(*UntrustedError), "is not signed", "--allow-unsigned only for a kit you made yourself"},
		{"unsigned, tampered, --allow-unsigned", flipped(t, unsigned, "images/node.tar"), Trust{AllowUnsigned: true}, new(*ChecksumError), "images/node.tar does not match", "copy it again"},
	}
	for _, tc := range cases {
		checkRefused(t, tc)
	}
}

func checkRefused(t *testing.T, tc refusal) {
	t.Helper()
	d := newFake(t) // an engine with nothing: every image would load
	_, err := Load(context.Background(), d, tc.kit, tc.trust, nil)
	if err == nil {
		t.Errorf("%s: loaded", tc.name)
		return
	}
	if !errors.As(err, tc.want) {
		t.Errorf("%s: got %T %v", tc.name, err, err)
	}
	var h interface{ Hint() string }
	if !errors.As(err, &h) || !strings.Contains(h.Hint(), tc.fix) || !strings.Contains(h.Hint(), "nothing was loaded") {
		t.Errorf("%s: hint lacks %q: %v", tc.name, tc.fix, h)
	}
	if !strings.Contains(err.Error(), tc.says) {
		t.Errorf("%s: error lacks %q:\n%v", tc.name, tc.says, err)
	}
	if n := d.CallCount(); n != 0 {
		t.Errorf("%s: the engine got %d call(s): %v", tc.name, n, d.Calls())
	}
}

// An unsigned kit's refusal says what it would do: root by its node image,
// the names it would take, the endpoint the token would go to.
func TestUnsignedRefusalSaysWhatTheKitWouldDo(t *testing.T) {
	key, _ := testKey(t)
	unsigned, _, _ := create(t, newFake(t, refsOf(wants)...), nil, []byte(testConfig))
	_, err := Verify(context.Background(), unsigned, trusting(key.Fingerprint), nil)
	var ue *UntrustedError
	if !errors.As(err, &ue) {
		t.Fatalf("got %v", err)
	}
	for _, w := range []string{
		"kindest/node:v1.34.4 as a privileged container, that is as root on this machine",
		"mcr.microsoft.com/azure-api-management/gateway:2.11.1 (gateway)",
		"gateway.endpoint: contoso.configuration.azure-api.net (where your gateway token would be sent)",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal lacks %q:\n%v", w, err)
		}
	}
	// With --allow-unsigned it verifies, and says it is unsigned.
	k, err := Verify(context.Background(), unsigned, Trust{AllowUnsigned: true}, nil)
	if err != nil || k.Signer() != "" {
		t.Fatalf("--allow-unsigned: %v", err)
	}
}

// A kit holding an entry twice, an entry it does not list, a link, or a
// name outside the kit is refused by every reader, before the engine.
func TestKitLayoutIsExact(t *testing.T) {
	key, _ := testKey(t)
	signed, _, _ := create(t, newFake(t, refsOf(wants)...), key, []byte(testConfig))
	ps := kittest.Entries(t, signed)
	node := ps[5]
	if node.Header.Name != "images/node.tar" {
		t.Fatalf("entry 5 is %s", node.Header.Name)
	}
	other := node
	other.Data = archive(t, "kindest/node:v1.34.4", 1000)
	with := func(extra ...kittest.Entry) []kittest.Entry {
		return append(append([]kittest.Entry(nil), ps...), extra...)
	}
	before := func(extra kittest.Entry) []kittest.Entry {
		return append(append(append([]kittest.Entry(nil), ps[:5]...), extra), ps[5:]...)
	}
	link := kittest.Entry{Header: tar.Header{Name: "images/demo.tar", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", Mode: 0o777}}
	trust := trusting(key.Fingerprint)
	for _, tc := range []refusal{
		{"a second node image after the first", writeParts(t, with(other)), trust, new(*TamperedError), "holds images/node.tar twice", "get it again from the instructor"},
		{"a second node image before the first", writeParts(t, before(other)), trust, new(*TamperedError), "holds images/node.tar twice", "get it again"},
		{"a second manifest", writeParts(t, with(ps[0])), trust, new(*TamperedError), "holds manifest.json twice", "get it again"},
		{"an entry it does not list", writeParts(t, with(kittest.Entry{Header: tar.Header{Name: "images/extra.tar", Typeflag: tar.TypeReg, Mode: 0o644}, Data: []byte("x")})), trust, new(*TamperedError), "images/extra.tar, which its manifest does not list", "get it again"},
		{"a symlink", writeParts(t, with(link)), trust, new(*TamperedError), "not a plain file", "get it again"},
		{"an absolute name", writeParts(t, with(kittest.Entry{Header: tar.Header{Name: "/etc/cron.d/x", Typeflag: tar.TypeReg, Mode: 0o644}, Data: []byte("x")})), trust, new(*TamperedError), "outside the kit", "get it again"},
		{"a .. name", writeParts(t, with(kittest.Entry{Header: tar.Header{Name: "images/../../x", Typeflag: tar.TypeReg, Mode: 0o644}, Data: []byte("x")})), trust, new(*TamperedError), "outside the kit", "get it again"},
	} {
		checkRefused(t, tc)
		if _, err := ReadManifest(tc.kit); !errors.As(err, tc.want) {
			t.Errorf("%s: ReadManifest gives %v", tc.name, err)
		}
	}
}

// A kit's configuration cannot name a file: each path-valued setting is
// refused, by key and line, even in a kit signed by a trusted key.
func TestKitConfigCannotNameFiles(t *testing.T) {
	key, _ := testKey(t)
	for key2, yaml := range map[string]string{
		"gateway.tokenFile (line 5)":             "gateway:\n  endpoint: x.configuration.azure-api.net\n  tokenFile: /home/you/gw.token\n",
		"gateway.auth.clientSecretFile (line 6)": "gateway:\n  endpoint: x.configuration.azure-api.net\n  auth:\n    clientSecretFile: /etc/secret\n",
		"gateway.caCertificates (line 4)":        "gateway:\n  caCertificates: [/etc/ssl/private/ca.pem]\n",
		"cluster.kubeconfig (line 4)":            "cluster:\n  kubeconfig: ~/.kube/config\n",
		"smoke.file (line 4)":                    "smoke:\n  file: /etc/shadow\n",
		"cluster.mergeKubeconfig (line 4)":       "cluster:\n  mergeKubeconfig: true\n",
	} {
		cfg := []byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\n" + yaml)
		kitPath := kitWithConfig(t, key, cfg)
		checkRefused(t, refusal{key2, kitPath, trusting(key.Fingerprint), new(*ConfigError), key2, "give your own files yourself with"})
	}
	// An alias still names the file: refused, without a line.
	cfg := []byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\nx: &k {kubeconfig: /root/.kube/config}\n")
	if _, err := checkConfig("k.tar", cfg); err == nil {
		t.Error("an unknown key went through")
	}
	cfg = []byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\ncluster: &c\n  kubeconfig: /root/.kube/config\n")
	if _, err := checkConfig("k.tar", cfg); err == nil || !strings.Contains(err.Error(), "cluster.kubeconfig") {
		t.Errorf("got %v", err)
	}
	// kit create refuses it too, before saving anything.
	d := newFake(t, refsOf(wants)...)
	c := &Creator{Docker: d}
	_, _, err := c.Create(context.Background(), filepath.Join(testdir.New(t), "k.tar"), wants, []byte("apiVersion: apimdev.io/v1alpha1\nkind: Config\nsmoke:\n  file: s.yaml\n"))
	if !errors.As(err, new(*ConfigError)) || d.CallCount() != 0 {
		t.Errorf("create: %v, %d call(s)", err, d.CallCount())
	}
}

// kitWithConfig is a kit signed by key whose configuration is cfg,
// written as kit create writes kits (create itself refuses such a config).
func kitWithConfig(t *testing.T, key *SigningKey, cfg []byte) string {
	t.Helper()
	ref := "kindest/node:v1.34.4"
	arch := archive(t, ref, 1000)
	return writeTestKit(t, key, []Image{{Role: RoleNode, Ref: ref, ID: "sha256:" + strings.Repeat("1", 64)}}, [][]byte{arch}, cfg)
}

// writeTestKit writes a kit of images (with their archives) and cfg,
// signed by key when it is not nil.
func writeTestKit(t *testing.T, key *SigningKey, imgs []Image, archives [][]byte, cfg []byte) string {
	t.Helper()
	dir := testdir.New(t)
	m := Manifest{APIVersion: APIVersion, Kind: Kind, Created: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC), Apimdev: "test"}
	var spooled []string
	for i, img := range imgs {
		p := filepath.Join(dir, img.Role+".spool")
		os.WriteFile(p, archives[i], 0o644)
		spooled = append(spooled, p)
		s := sha256.Sum256(archives[i])
		img.File, img.Size, img.SHA256 = "images/"+img.Role+".tar", int64(len(archives[i])), hex.EncodeToString(s[:])
		m.Images = append(m.Images, img)
	}
	if cfg != nil {
		m.Config = &File{Name: ConfigFile, Size: int64(len(cfg)), SHA256: sha(cfg)}
	}
	mb, _ := json.MarshalIndent(m, "", "  ")
	files := kitFiles{m: m, manifest: mb, cfg: cfg}
	if key != nil {
		files.sig, files.pub = key.sign(mb, m.Created)
	}
	out := filepath.Join(dir, "kit.tar")
	if _, err := writeKit(context.Background(), out, files, spooled, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	return out
}

// An image archive that names another image than the manifest says (in any
// of the places an engine reads names from) is refused before any call.
func TestImageArchiveNamesWhatTheManifestSays(t *testing.T) {
	key, _ := testKey(t)
	ref := "kindest/node:v1.34.4"
	img := Image{Role: RoleNode, Ref: ref, ID: "sha256:" + strings.Repeat("1", 64)}
	index := func(annotations string) string {
		return `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{` + annotations + `}}]}`
	}
	ok := map[string]map[string]string{
		"RepoTags":            {"manifest.json": `[{"RepoTags":["kindest/node:v1.34.4"]}]`},
		"RepoTags, docker.io": {"manifest.json": `[{"RepoTags":["docker.io/kindest/node:v1.34.4"]}]`},
		"an OCI index":        {"index.json": index(`"io.containerd.image.name":"docker.io/kindest/node:v1.34.4","org.opencontainers.image.ref.name":"v1.34.4"`)},
		"repositories":        {"repositories": `{"kindest/node":{"v1.34.4":"abc"}}`},
	}
	for name, files := range ok {
		k, err := Verify(context.Background(), writeTestKit(t, key, []Image{img}, [][]byte{tarOf(t, files, 10, "x")}, nil), trusting(key.Fingerprint), nil)
		if err != nil || k == nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string]map[string]string{
		"RepoTags naming another":     {"manifest.json": `[{"RepoTags":["kindest/node:v1.34.4","mcr.microsoft.com/azure-api-management/gateway:2.11.1"]}]`},
		"repositories naming another": {"manifest.json": `[{"RepoTags":["kindest/node:v1.34.4"]}]`, "repositories": `{"prom/statsd-exporter":{"v0.31.0":"abc"}}`},
		"an OCI image name":           {"index.json": index(`"io.containerd.image.name":"docker.io/library/nginx:latest"`)},
		"an OCI ref.name":             {"index.json": index(`"org.opencontainers.image.ref.name":"docker.io/kindest/node:latest"`)},
		"an OCI bare tag":             {"index.json": index(`"org.opencontainers.image.ref.name":"v9"`)},
		"no name at all":              {"manifest.json": `[{"RepoTags":[]}]`},
		"a second manifest.json":      {"manifest.json": `[{"RepoTags":["kindest/node:v1.34.4"]}]`, "./manifest.json": `[{"RepoTags":["busybox:latest"]}]`},
	}
	for name, files := range bad {
		kitPath := writeTestKit(t, key, []Image{img}, [][]byte{tarOf(t, files, 10, "x")}, nil)
		checkRefused(t, refusal{name, kitPath, trusting(key.Fingerprint), new(*TamperedError), "images/node.tar", "get it again"})
	}
}

// A failed load puts back every name it moved off the user's own images,
// and says so.
func TestFailedLoadRollsBackTheTagsItMoved(t *testing.T) {
	src := newFake(t, refsOf(wants)...)
	key, _ := testKey(t)
	out, _, _ := create(t, src, key, nil)
	// The user's engine: their own images under the gateway's and node's
	// names, no statsd exporter; the statsd load fails part-way.
	d := newFake(t)
	d.AddAs("sha256:"+strings.Repeat("a", 64), wants[0].Ref, archive(t, "users/own:1", 10))
	d.AddAs("sha256:"+strings.Repeat("b", 64), wants[1].Ref, archive(t, "users/other:1", 10))
	d.FailLoad(wants[2].Ref, "write /var/lib/docker: no space left on device")
	_, err := Load(context.Background(), d, out, trusting(key.Fingerprint), nil)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("got %T %v", err, err)
	}
	if named(d, wants[0].Ref) != "sha256:"+strings.Repeat("a", 64) || named(d, wants[1].Ref) != "sha256:"+strings.Repeat("b", 64) {
		t.Errorf("names not rolled back: %v", d.Tags())
	}
	for _, w := range []string{"no space left on device", "rolled back", wants[0].Ref + " → aaaaaaaaaaaa", wants[1].Ref + " → bbbbbbbbbbbb"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	// The statsd name was on no image before: nothing to put back.
	if strings.Contains(err.Error(), wants[2].Ref+" →") {
		t.Errorf("rolled back a name nobody had: %v", err)
	}

	// Interrupted (Ctrl-C) part-way: the names still go back.
	d.SetTag(wants[0].Ref, "sha256:"+strings.Repeat("a", 64))
	d.FailLoad(wants[2].Ref, "")
	ctx, cancel := context.WithCancel(context.Background())
	progress := func(f string, a ...any) {
		if strings.HasPrefix(fmt.Sprintf(f, a...), "loading node") {
			cancel()
		}
	}
	d.SetTag(wants[1].Ref, "sha256:"+strings.Repeat("b", 64))
	_, err = Load(ctx, d, out, trusting(key.Fingerprint), progress)
	if !errors.Is(err, context.Canceled) || named(d, wants[0].Ref) != "sha256:"+strings.Repeat("a", 64) {
		t.Errorf("interrupted: %v, node is %s", err, named(d, wants[0].Ref))
	}
}

func TestCreateReportsEveryMissingImage(t *testing.T) {
	d := newFake(t, wants[0].Ref)
	out := filepath.Join(testdir.New(t), "kit.tar")
	c := &Creator{Docker: d}
	_, _, err := c.Create(context.Background(), out, append(wants, Want{RoleDemo, "apimdev-e2e/standin-gateway:2.11.1-standin"}), nil)
	var me *MissingError
	if !errors.As(err, &me) || len(me.Missing) != 3 {
		t.Fatalf("want 3 missing, got %v", err)
	}
	if !strings.Contains(me.Hint(), "make demo-image") || !strings.Contains(me.Hint(), "docker pull prom/statsd-exporter:v0.31.0") {
		t.Errorf("hint: %s", me.Hint())
	}
	if n := d.Count("save"); n != 0 {
		t.Errorf("saved %d image(s) before finding what is missing: %v", n, d.Calls())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a kit was left: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".apimdev-kit-*"))
	if len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
}

func TestNotAKit(t *testing.T) {
	t.Parallel()
	p := filepath.Join(testdir.New(t), "x.tar")
	os.WriteFile(p, []byte("hello"), 0o644)
	_, err := ReadManifest(p)
	var de *DamagedError
	if !errors.As(err, &de) {
		t.Fatalf("got %v", err)
	}
}

func TestBar(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		done, total int64
		want        string
	}{
		{0, 1000 << 20, "[----------]   0%  0/1000 MB"},
		{412 << 20, 1030 << 20, "[####------]  40%  412/1030 MB"},
		{1030<<20 - 1, 1030 << 20, "[#########-]  99%  1030/1030 MB"},
		{1030 << 20, 1030 << 20, "[##########] 100%  1030/1030 MB"},
		{5 << 20, 0, "5 MB"},
	} {
		if got := bar(tt.done, tt.total); got != tt.want {
			t.Errorf("bar(%d, %d) = %q, want %q", tt.done, tt.total, got, tt.want)
		}
	}
}

func TestMeterLines(t *testing.T) {
	t.Parallel()
	var lines []string
	m := newMeter("saving", 1000<<20, func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) })
	chunk := make([]byte, 1<<20)
	for range 1000 {
		m.Write(chunk)
	}
	m.finish()
	m.finish()
	if len(lines) != 11 || !strings.HasSuffix(lines[0], "0%  0/1000 MB") || !strings.HasSuffix(lines[10], "100%  1000/1000 MB") {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
}

func TestResolveTagsADigestRef(t *testing.T) {
	d := newFake(t, "kindest/node:v1.37.0")
	digest := "kindest/node:v1.37.0@sha256:" + strings.Repeat("a", 64)
	// The engine answers for the digest reference with the image's tags.
	d.SetTag(digest, named(d, "kindest/node:v1.37.0"))
	c := &Creator{Docker: d}
	got, err := c.Resolve(context.Background(), []Want{{RoleNode, digest}, {RoleStatsd, "prom/statsd-exporter:v0.31.0"}})
	if err != nil || got[0].Ref != "kindest/node:v1.37.0" || got[1].Ref != "prom/statsd-exporter:v0.31.0" {
		t.Fatalf("%v %+v", err, got)
	}
	for ref, repo := range map[string]string{"localhost:5000/a/b:1.2": "localhost:5000/a/b", "a/b@sha256:x": "a/b", "a:1": "a", "localhost:5000/a": "localhost:5000/a"} {
		if r := repository(ref); r != repo {
			t.Errorf("repository(%s) = %s, want %s", ref, r, repo)
		}
	}
}

func TestNormalizeRef(t *testing.T) {
	t.Parallel()
	for ref, want := range map[string]string{
		"busybox":                            "docker.io/library/busybox:latest",
		"index.docker.io/library/busybox:1":  "docker.io/library/busybox:1",
		"kindest/node:v1.34.4":               "docker.io/kindest/node:v1.34.4",
		"localhost/standin:1":                "localhost/standin:1",
		"localhost:5000/a/b":                 "localhost:5000/a/b:latest",
		"mcr.microsoft.com/x/gateway:2.11.1": "mcr.microsoft.com/x/gateway:2.11.1",
	} {
		if got := normalizeRef(ref); got != want {
			t.Errorf("normalizeRef(%s) = %s, want %s", ref, got, want)
		}
	}
}

// kit create refuses an archive the engine saved with another name in it
// (an OCI index.json it did not rename): the instructor sees it, not the
// attendees.
func TestCreateRefusesAnArchiveNamingAnotherImage(t *testing.T) {
	d := newFake(t, refsOf(wants)...)
	d.AddAs(named(d, wants[2].Ref), wants[2].Ref, tarOf(t, map[string]string{
		"manifest.json": `[{"RepoTags":["prom/statsd-exporter:v0.31.0"]}]`,
		"index.json":    `{"manifests":[{"annotations":{"io.containerd.image.name":"docker.io/library/busybox:latest"}}]}`,
	}, 10, "s"))
	out := filepath.Join(testdir.New(t), "kit.tar")
	_, _, err := (&Creator{Docker: d}).Create(context.Background(), out, wants, nil)
	if err == nil || !strings.Contains(err.Error(), "busybox") || !strings.Contains(err.Error(), wants[2].Ref) {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a kit was left: %v", err)
	}
}
