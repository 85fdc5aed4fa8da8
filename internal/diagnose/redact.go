package diagnose

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Redacted replaces every secret the Redactor knows.
const Redacted = "<redacted>"

// minSecret is the shortest value worth scrubbing: shorter ones would turn
// ordinary words into <redacted>.
const minSecret = 8

// Redactor scrubs the secrets it is told from text, in every form a log is
// likely to quote them in: as is, JSON-escaped, URL-escaped and inside
// base64 at any alignment (a Secret's data, a dumped object). It also
// scrubs what it was not told but recognises by its shape: gateway tokens,
// PEM private keys (also in base64), JWTs, Entra client secrets, URL
// passwords, kubeconfig credentials and credential headers.
type Redactor struct {
	mu    sync.Mutex
	forms []string // longest first
	count int
}

// NewRedactor knows the given secrets; empty and short ones are ignored.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.Add(s)
	}
	return r
}

// Add teaches the Redactor one more secret.
func (r *Redactor) Add(secret string) {
	if len(secret) < minSecret {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, f := range r.forms {
		seen[f] = true
	}
	for _, f := range Forms(secret) {
		if !seen[f] {
			seen[f] = true
			r.forms = append(r.forms, f)
		}
	}
	sort.SliceStable(r.forms, func(i, j int) bool { return len(r.forms[i]) > len(r.forms[j]) })
}

// Forms returns the encodings of secret that the Redactor looks for. Tests use
// it to prove that none of them is left anywhere.
func Forms(secret string) []string {
	forms := []string{
		secret,
		strings.ReplaceAll(secret, "/", `\/`),
		strings.ReplaceAll(secret, "&", `\u0026`),
		url.QueryEscape(secret),
		url.PathEscape(secret),
	}
	// Without base64 padding, which URL encoders often leave unescaped or drop.
	if bare := strings.TrimRight(secret, "="); len(bare) >= minSecret && bare != secret {
		forms = append(forms, bare, strings.ReplaceAll(bare, "/", `\/`), url.QueryEscape(bare), url.PathEscape(bare))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for k := 0; k < 3; k++ {
			if in := base64Inner(enc, secret, k); len(in) >= 12 {
				forms = append(forms, in)
			}
		}
	}
	out := forms[:0]
	seen := map[string]bool{}
	for _, f := range forms {
		if f != "" && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// base64Inner is the part of the base64 text of secret that does not depend
// on the bytes around it, when secret starts k bytes past a 3-byte boundary.
func base64Inner(enc *base64.Encoding, secret string, k int) string {
	s := enc.EncodeToString(append(make([]byte, k), secret...))
	start := 0
	if k > 0 {
		start = 4 // the first group mixes the k bytes before the secret
	}
	end := len(s) - 4 // the last group may mix the bytes after it, or padding
	if end <= start {
		return ""
	}
	return s[start:end]
}

// Scrub returns b with every known secret, and everything shaped like a
// secret (see scrubShapes), replaced.
func (r *Redactor) Scrub(b []byte) []byte {
	r.mu.Lock()
	forms := r.forms
	r.mu.Unlock()
	// Shapes first, so a quoted token keeps its readable gateway id and
	// expiry; then every form of the known secrets, wherever they are.
	b, n := scrubShapes(b, 0)
	for _, f := range forms {
		if c := bytes.Count(b, []byte(f)); c > 0 {
			n += c
			b = bytes.ReplaceAll(b, []byte(f), []byte(Redacted))
		}
	}
	r.mu.Lock()
	r.count += n
	r.mu.Unlock()
	return b
}

// String is Scrub for text.
func (r *Redactor) String(s string) string { return string(r.Scrub([]byte(s))) }

// Count is how many replacements Scrub has made so far.
func (r *Redactor) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}
