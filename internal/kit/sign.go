package kit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"aead.dev/minisign"
)

// Files of a signed kit besides the manifest.
const (
	SignatureFile = ManifestFile + ".minisig" // minisign's signature of manifest.json's bytes
	SignerFile    = "signer.pub"              // the signer's public key, minisign's .pub format
)

// FingerprintPrefix starts every fingerprint.
const FingerprintPrefix = "SHA256:"

// Fingerprint names a signer's public key, as ssh-keygen -l names keys:
// "SHA256:" and the unpadded base64 of the SHA-256 of the key's bytes (the
// base64 line of its .pub file, decoded). minisign's own key ID has 64 bits,
// too few to trust a key by.
func Fingerprint(pub minisign.PublicKey) string {
	raw, _ := base64.StdEncoding.DecodeString(pub.String())
	sum := sha256.Sum256(raw)
	return FingerprintPrefix + base64.RawStdEncoding.EncodeToString(sum[:])
}

// publicKeyText is a .pub file's text, as minisign writes it.
func publicKeyText(pub minisign.PublicKey) []byte {
	b, _ := pub.MarshalText()
	return append(b, '\n')
}

// signatureComment is the (unsigned) first line of a kit's signature; it
// is checked like every other byte of the kit.
func signatureComment(fingerprint string) string {
	return "signature from apimdev kit key " + fingerprint
}

// KeyFiles are the secret and public key files of a key pair named prefix.
func KeyFiles(prefix string) (secret, public string) { return prefix + ".key", prefix + ".pub" }

// KeyGen makes a signing key pair.
type KeyGen struct {
	// Prefix names the files: Prefix.key (the secret key, 0600) and
	// Prefix.pub.
	Prefix string
	// Password encrypts the secret key as minisign does (scrypt, then
	// XSalsa20); NoPassword writes it unencrypted instead.
	Password   string
	NoPassword bool
}

// Write writes the key pair, never over an existing file, and returns the
// public key's fingerprint and its minisign text (the .pub file's).
func (g KeyGen) Write() (fingerprint string, public []byte, err error) {
	secretPath, publicPath := KeyFiles(g.Prefix)
	if err := Unused(secretPath, publicPath); err != nil {
		return "", nil, err
	}
	if g.Password == "" && !g.NoPassword {
		return "", nil, &KeyError{Path: secretPath, Problem: "no password to protect it", Fix: "give a password (APIMDEV_KIT_PASSWORD, or type it at the terminal), or pass --no-password for an unencrypted key"}
	}
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		return "", nil, err
	}
	var secret []byte
	if g.NoPassword {
		secret, err = priv.MarshalText()
	} else {
		secret, err = minisign.EncryptKey(g.Password, priv)
	}
	if err != nil {
		return "", nil, fmt.Errorf("encrypting the secret key: %w", err)
	}
	if err := writeNew(secretPath, append(secret, '\n'), 0o600); err != nil {
		return "", nil, err
	}
	public = publicKeyText(pub)
	if err := writeNew(publicPath, public, 0o644); err != nil {
		os.Remove(secretPath) // made just now, by us: no pair without its half
		return "", nil, err
	}
	return Fingerprint(pub), public, nil
}

// Unused refuses any of paths that exists: a key is never written over.
func Unused(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return &KeyError{Path: p, Problem: "already exists, and keygen never writes over a key (you would lose the one your attendees trust)",
				Fix: "choose another name with -o PREFIX, or move the old files away first"}
		} else if !errors.Is(err, os.ErrNotExist) {
			return &KeyError{Path: p, Problem: err.Error(), Fix: "choose another name with -o PREFIX"}
		}
	}
	return nil
}

// writeNew creates path with data; an existing file is an error, not
// overwritten.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return Unused(path)
		}
		return &KeyError{Path: path, Problem: err.Error(), Fix: "choose a directory you can write to with -o PREFIX"}
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return &KeyError{Path: path, Problem: err.Error(), Fix: "free some space, or choose another directory with -o PREFIX"}
	}
	return nil
}

// KeyError says a key file cannot be made or used.
type KeyError struct{ Path, Problem, Fix string }

func (e *KeyError) Error() string { return fmt.Sprintf("kit key %s: %s", e.Path, e.Problem) }

// Hint says what to do.
func (e *KeyError) Hint() string { return e.Fix }

// SigningKey is a secret key, read and opened, that signs kits.
type SigningKey struct {
	key         minisign.PrivateKey
	Fingerprint string
}

// KeyEncrypted says whether the secret key file at path is
// password-protected (false for a file that is not one; ReadSigningKey
// says what it is).
func KeyEncrypted(path string) bool {
	b, err := readKeyFile(path)
	return err == nil && minisign.IsEncrypted(b)
}

// ReadSigningKey reads a minisign secret key file; password is called only
// when the key is encrypted. A wrong password is an error that never
// repeats it.
func ReadSigningKey(path string, password func() (string, error)) (*SigningKey, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	notKey := &KeyError{Path: path, Problem: "is not a minisign secret key", Fix: "--sign takes the .key file `apimdev kit keygen` wrote (not the .pub)"}
	if bytes.HasPrefix(b, []byte("untrusted comment: minisign public key")) {
		notKey.Problem = "is a public key"
		return nil, notKey
	}
	var priv minisign.PrivateKey
	if minisign.IsEncrypted(b) {
		pw, err := password()
		if err != nil {
			return nil, err
		}
		if priv, err = minisign.DecryptKey(pw, b); err != nil {
			return nil, &KeyError{Path: path, Problem: "the password does not open it (or the file is damaged)",
				Fix: "give the password the key was made with: typed at the terminal, or in APIMDEV_KIT_PASSWORD"}
		}
	} else if err := priv.UnmarshalText(b); err != nil {
		return nil, notKey
	}
	pub, ok := priv.Public().(minisign.PublicKey)
	if !ok {
		return nil, notKey
	}
	return &SigningKey{key: priv, Fingerprint: Fingerprint(pub)}, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &KeyError{Path: path, Problem: strings.TrimPrefix(err.Error(), "open "+path+": "), Fix: "name the .key file `apimdev kit keygen` wrote"}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4<<10))
	if err != nil {
		return nil, &KeyError{Path: path, Problem: err.Error(), Fix: "name the .key file `apimdev kit keygen` wrote"}
	}
	return b, nil
}

func (k *SigningKey) public() minisign.PublicKey {
	pub, _ := k.key.Public().(minisign.PublicKey)
	return pub
}

// sign returns the minisign signature of manifest (prehashed, minisign's
// default since 0.10) and the signer's .pub text.
func (k *SigningKey) sign(manifest []byte, now time.Time) (sig, pub []byte) {
	r := minisign.NewReader(bytes.NewReader(manifest))
	_, _ = io.Copy(io.Discard, r)
	trusted := fmt.Sprintf("timestamp:%d\tfile:%s\tapimdev kit", now.Unix(), ManifestFile)
	return r.SignWithComments(k.key, trusted, signatureComment(k.Fingerprint)), publicKeyText(k.public())
}

// Trust is whom a kit may come from.
type Trust struct {
	// Fingerprints are the keys trusted to sign kits.
	Fingerprints []string
	// AllowUnsigned lets a kit with no signature at all load (one you
	// made yourself). It never lets a signed kit through whose signer is
	// not trusted, nor one whose signature does not verify.
	AllowUnsigned bool
}

func (t Trust) trusts(fingerprint string) bool {
	for _, f := range t.Fingerprints {
		if f == fingerprint {
			return true
		}
	}
	return false
}

var keyIDRE = regexp.MustCompile(`^[0-9A-Fa-f]{16}$`)

// ParseTrust reads --trust values (and APIMDEV_KIT_TRUST's): each is a
// fingerprint (SHA256:…), a minisign public key (the base64 line of a .pub
// file) or the path of a .pub file. It returns their fingerprints.
func ParseTrust(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		fp, err := parseTrustValue(v)
		if err != nil {
			return nil, err
		}
		out = append(out, fp)
	}
	return out, nil
}

func parseTrustValue(v string) (string, error) {
	if rest, ok := strings.CutPrefix(v, FingerprintPrefix); ok {
		raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(rest, "="))
		if err != nil || len(raw) != sha256.Size {
			return "", &TrustError{Value: v, Problem: "is not a whole fingerprint (SHA256: and 43 characters)"}
		}
		return FingerprintPrefix + base64.RawStdEncoding.EncodeToString(raw), nil
	}
	if keyIDRE.MatchString(v) {
		return "", &TrustError{Value: v, Problem: "looks like a minisign key ID: 64 bits are too few to trust a key by"}
	}
	var pub minisign.PublicKey
	if pub.UnmarshalText([]byte(v)) == nil {
		return Fingerprint(pub), nil
	}
	f, err := os.Open(v)
	if err != nil {
		return "", &TrustError{Value: v, Problem: "is not a fingerprint, a minisign public key or a .pub file you can read"}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4<<10))
	if err != nil || pub.UnmarshalText(b) != nil {
		return "", &TrustError{Value: v, Problem: "is not a minisign public key file"}
	}
	return Fingerprint(pub), nil
}

// TrustError says a --trust value names no key.
type TrustError struct{ Value, Problem string }

func (e *TrustError) Error() string { return fmt.Sprintf("--trust %s %s", e.Value, e.Problem) }

// Hint says what --trust takes.
func (e *TrustError) Hint() string {
	return "pass the fingerprint the instructor gave you (SHA256:…, printed by `apimdev kit keygen`), their .pub file, or the public key line in it"
}

// checkSignature verifies sig over manifest with the key in pub, both
// exactly as kit create writes them, and returns the key's fingerprint.
// It says nothing of trust.
func checkSignature(kitPath string, manifest, sig, pub []byte) (string, error) {
	bad := func(problem string) error { return &SignatureError{Kit: kitPath, Problem: problem} }
	switch {
	case sig == nil && pub == nil:
		return "", nil
	case sig == nil:
		return "", bad("it carries a signer's key (" + SignerFile + ") but no signature (" + SignatureFile + ")")
	case pub == nil:
		return "", bad("it carries a signature (" + SignatureFile + ") but not the signer's key (" + SignerFile + ")")
	}
	var key minisign.PublicKey
	if key.UnmarshalText(pub) != nil || !bytes.Equal(pub, publicKeyText(key)) {
		return "", bad(SignerFile + " is not a minisign public key as kit create writes it")
	}
	fp := Fingerprint(key)
	var s minisign.Signature
	if s.UnmarshalText(sig) != nil {
		return "", bad(SignatureFile + " is not a minisign signature")
	}
	if canon, err := s.MarshalText(); err != nil || !bytes.Equal(sig, canon) || s.UntrustedComment != signatureComment(fp) {
		return "", bad(SignatureFile + " is not the signature kit create writes")
	}
	if s.KeyID != key.ID() || !minisign.Verify(key, manifest, sig) {
		return "", bad(ManifestFile + " does not match its signature")
	}
	return fp, nil
}

// SignatureError says a kit's signature does not hold: the kit was changed
// after it was signed. No trust and no --allow-unsigned accepts it.
type SignatureError struct{ Kit, Problem string }

func (e *SignatureError) Error() string {
	return fmt.Sprintf("kit %s: %s: it was changed after it was signed", e.Kit, e.Problem)
}

// Hint says what to do.
func (e *SignatureError) Hint() string {
	return "nothing was loaded; do not use this copy: get the kit again from the instructor (a copy cut short fails its checksums instead)"
}

// UntrustedError refuses a kit that no trusted key signed, and says what
// the kit would do on this machine: the reason to ask who made it.
type UntrustedError struct {
	Kit string
	// Signer is the fingerprint of the key that signed the kit; "" when
	// the kit is not signed.
	Signer string
	// Trusted says some key was trusted (by --trust or APIMDEV_KIT_TRUST).
	Trusted bool
	// Effects is what the kit would run and change.
	Effects []string
}

func (e *UntrustedError) Error() string {
	var b strings.Builder
	switch {
	case e.Signer == "":
		fmt.Fprintf(&b, "kit %s is not signed: nothing says who made it, or that no one changed it since; refused", e.Kit)
	case e.Trusted:
		fmt.Fprintf(&b, "kit %s is signed by key %s, which is not a key you trust; refused", e.Kit, e.Signer)
	default:
		fmt.Fprintf(&b, "kit %s is signed by key %s, and you named no key to trust; refused", e.Kit, e.Signer)
	}
	b.WriteString(". Loaded, it would:")
	for _, x := range e.Effects {
		b.WriteString("\n- " + x)
	}
	return b.String()
}

// Hint says how to trust it, the right way.
func (e *UntrustedError) Hint() string {
	if e.Signer == "" {
		return "nothing was loaded. Ask the instructor for a signed kit and their key's fingerprint, then pass --trust SHA256:… (or their .pub file); pass --allow-unsigned only for a kit you made yourself"
	}
	return "nothing was loaded. Ask the instructor for their key's fingerprint (`apimdev kit keygen` printed it); if it is " + e.Signer +
		", pass --trust " + e.Signer + " (or set APIMDEV_KIT_TRUST). --allow-unsigned never accepts a signed kit"
}
