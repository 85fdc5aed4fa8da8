package kit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/apimdev/apimdev/internal/testdir"
)

// keygen writes a key pair once: the secret key 0600, the public key in
// minisign's format with the fingerprint it returns; a second run over
// either file changes nothing.
func TestKeyGenWritesOnce(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	prefix := filepath.Join(dir, "instructor")
	fp, pubText, err := KeyGen{Prefix: prefix, NoPassword: true}.Write()
	if err != nil {
		t.Fatal(err)
	}
	secretPath, publicPath := KeyFiles(prefix)
	fi, err := os.Stat(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("secret key mode %v", fi.Mode().Perm())
	}
	pub, err := minisign.PublicKeyFromFile(publicPath)
	if err != nil || Fingerprint(pub) != fp || !strings.HasPrefix(fp, "SHA256:") || len(fp) != len("SHA256:")+43 {
		t.Fatalf("public key %v, fingerprint %s", err, fp)
	}
	if b, _ := os.ReadFile(publicPath); !bytes.Equal(b, pubText) {
		t.Errorf("returned public text differs from the file")
	}
	key, err := ReadSigningKey(secretPath, func() (string, error) { t.Fatal("asked for a password of an unencrypted key"); return "", nil })
	if err != nil || key.Fingerprint != fp {
		t.Fatalf("ReadSigningKey: %v", err)
	}
	before, _ := os.ReadFile(secretPath)
	for _, g := range []KeyGen{{Prefix: prefix, NoPassword: true}, {Prefix: prefix, Password: "pw"}} {
		_, _, err := g.Write()
		var ke *KeyError
		if !errors.As(err, &ke) || !strings.Contains(err.Error(), "already exists") || !strings.Contains(ke.Hint(), "-o PREFIX") {
			t.Errorf("second keygen: %v", err)
		}
	}
	// Only the public key left: still refused, and the secret key is not made.
	os.Remove(secretPath)
	if _, _, err := (KeyGen{Prefix: prefix, NoPassword: true}).Write(); err == nil {
		t.Error("wrote over a .pub")
	}
	if _, err := os.Stat(secretPath); !os.IsNotExist(err) {
		t.Errorf("a secret key was written beside an old .pub: %v", err)
	}
	after, _ := os.ReadFile(publicPath)
	if !bytes.Equal(after, pubText) || len(before) == 0 {
		t.Error("the public key changed")
	}
	// No password and not asked for none: refused, nothing written.
	other := filepath.Join(dir, "other")
	if _, _, err := (KeyGen{Prefix: other}).Write(); err == nil {
		t.Error("an unprotected key without --no-password")
	}
	if left, _ := filepath.Glob(other + ".*"); len(left) != 0 {
		t.Errorf("left %v", left)
	}
}

// A password that does not open a key is an error that never repeats it;
// a public key given for --sign says so.
func TestReadSigningKeyErrors(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	prefix := filepath.Join(dir, "k")
	if _, _, err := (KeyGen{Prefix: prefix, NoPassword: true}).Write(); err != nil {
		t.Fatal(err)
	}
	secretPath, publicPath := KeyFiles(prefix)
	if _, err := ReadSigningKey(publicPath, nil); err == nil || !strings.Contains(err.Error(), "is a public key") {
		t.Errorf("a .pub for --sign: %v", err)
	}
	// An encrypted key whose ciphertext is cut: the password path, without
	// minisign's deliberately slow key derivation.
	enc := []byte("untrusted comment: minisign encrypted secret key\nRWRTY0Iy" + strings.Repeat("A", 40) + "\n")
	if !minisign.IsEncrypted(enc) {
		t.Fatal("not taken for an encrypted key")
	}
	encPath := filepath.Join(dir, "enc.key")
	os.WriteFile(encPath, enc, 0o600)
	if !KeyEncrypted(encPath) || KeyEncrypted(secretPath) {
		t.Error("KeyEncrypted")
	}
	const password = "correct-horse-battery-staple"
	_, err := ReadSigningKey(encPath, func() (string, error) { return password, nil })
	var ke *KeyError
	if !errors.As(err, &ke) || !strings.Contains(err.Error(), "the password does not open it") || strings.Contains(err.Error()+ke.Hint(), password) {
		t.Errorf("wrong password: %v", err)
	}
	asked := errors.New("no terminal")
	if _, err := ReadSigningKey(encPath, func() (string, error) { return "", asked }); !errors.Is(err, asked) {
		t.Errorf("the password function's error: %v", err)
	}
	if _, err := ReadSigningKey(filepath.Join(dir, "missing.key"), nil); err == nil || !strings.Contains(err.Error(), "missing.key") {
		t.Errorf("missing: %v", err)
	}
}

func TestParseTrust(t *testing.T) {
	t.Parallel()
	_, pub := testKey(t)
	fp := Fingerprint(pub)
	got, err := ParseTrust([]string{fp, " " + fp + "= ", pub.String(), ""})
	if err != nil || len(got) != 3 || got[0] != fp || got[1] != fp || got[2] != fp {
		t.Fatalf("%v %v", got, err)
	}
	for v, says := range map[string]string{
		"SHA256:abc":       "not a whole fingerprint",
		"E7620F1842B4E81F": "minisign key ID",
		"no-such.pub":      "not a fingerprint, a minisign public key or a .pub file",
	} {
		_, err := ParseTrust([]string{v})
		var te *TrustError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), says) || !strings.Contains(te.Hint(), "fingerprint") {
			t.Errorf("%s: %v", v, err)
		}
	}
}
