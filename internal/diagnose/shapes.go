package diagnose

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"unicode/utf8"
)

// The shapes below find secrets nobody told the Redactor about, by their
// look, and replace them while keeping what helps the reader: a gateway
// token's id and expiry, a PEM block's BEGIN and END lines, a JWT's header,
// an Entra secret's three-character hint (the portal shows it too), a URL's
// scheme, user and host, a header's or key's name. Each returns the text and
// how many replacements it made; a value that already holds Redacted is
// left alone, so nothing is counted twice.

// maxDepth bounds how deep base64 inside base64 is decoded.
const maxDepth = 2

// scrubShapes runs every shape over b; depth counts the base64 layers b was
// decoded from.
func scrubShapes(b []byte, depth int) ([]byte, int) {
	total := 0
	for _, shape := range []func([]byte, int) ([]byte, int){
		// Token shapes first, so a quoted token keeps its gateway id and
		// expiry even inside a header; then the shapes that keep a readable
		// part; then the named values, which redact whatever is left whole.
		gatewayTokens, privateKeys, base64Blobs, jwts, entraSecrets, urlPasswords,
		yamlCredentials, jsonCredentials, headerCredentials, queryKeys,
	} {
		var n int
		b, n = shape(b, depth)
		total += n
	}
	return b, total
}

// replaceMatches rewrites each match of re in b with what repl makes of it
// (nil leaves the match as it is), and counts the rewrites. repl gets the
// submatch indexes, as FindAllSubmatchIndex gives them.
func replaceMatches(b []byte, re *regexp.Regexp, repl func(b []byte, m []int) []byte) ([]byte, int) {
	ms := re.FindAllSubmatchIndex(b, -1)
	var out []byte
	last, n := 0, 0
	for _, m := range ms {
		r := repl(b, m)
		if r == nil {
			continue
		}
		out = append(out, b[last:m[0]]...)
		out = append(out, r...)
		last = m[1]
		n++
	}
	if n == 0 {
		return b, 0
	}
	return append(out, b[last:]...), n
}

// redactSecond is the replacement that redacts submatch 2 and keeps the
// rest of the match, unless submatch 2 already holds Redacted.
func redactSecond(b []byte, m []int) []byte {
	if bytes.Contains(b[m[4]:m[5]], []byte(Redacted)) {
		return nil
	}
	return join(b[m[0]:m[4]], []byte(Redacted), b[m[5]:m[1]])
}

func join(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// tokenShape matches anything that looks like a gateway token
// (<id>&<yyyyMMddHHmm>&<signature>), also with JSON's \u0026 for '&', so a
// token the Redactor was not told about is scrubbed as well. The gateway id
// and expiry are kept: they are not secret and they help the reader.
var tokenShape = regexp.MustCompile(`([A-Za-z0-9][A-Za-z0-9._-]{0,79})(&|\\u0026)([0-9]{12})(&|\\u0026)[A-Za-z0-9+/=_-]{8,}`)

func gatewayTokens(b []byte, _ int) ([]byte, int) {
	return onLines(b, hasTokenJoint, func(line []byte) ([]byte, int) {
		return replaceMatches(line, tokenShape, func(b []byte, m []int) []byte {
			return join(b[m[2]:m[3]], []byte("&"), b[m[6]:m[7]], []byte("&"+Redacted))
		})
	})
}

// hasTokenJoint says line has a token's "&<yyyyMMddHHmm>&" (or \u0026 for
// either '&'), the part a token cannot do without.
func hasTokenJoint(line []byte) bool {
	if bytes.IndexByte(line, '&') < 0 && !bytes.Contains(line, []byte(`\u0026`)) {
		return false
	}
	for i := 0; i < len(line); i++ {
		n := separatorAt(line, i)
		if n == 0 {
			continue
		}
		j := i + n
		k := j
		for k < len(line) && k-j < 12 && '0' <= line[k] && line[k] <= '9' {
			k++
		}
		if k-j == 12 && separatorAt(line, k) > 0 {
			return true
		}
	}
	return false
}

// separatorAt is the length of the '&' or \u0026 at line[i], or 0.
func separatorAt(line []byte, i int) int {
	switch {
	case i >= len(line):
		return 0
	case line[i] == '&':
		return 1
	case bytes.HasPrefix(line[i:], []byte(`\u0026`)):
		return 6
	}
	return 0
}

// onLines applies shape to each line of b that hint accepts, and only to
// those: the regular expressions are slow on long text that cannot match.
func onLines(b []byte, hint func(line []byte) bool, shape func(line []byte) ([]byte, int)) ([]byte, int) {
	var out []byte
	last, n := 0, 0
	for start := 0; start < len(b); {
		end := bytes.IndexByte(b[start:], '\n')
		if end < 0 {
			end = len(b)
		} else {
			end += start
		}
		if line := b[start:end]; hint(line) {
			if got, c := shape(line); c > 0 {
				out = append(append(out, b[last:start]...), got...)
				last = end
				n += c
			}
		}
		start = end + 1
	}
	if n == 0 {
		return b, 0
	}
	return append(out, b[last:]...), n
}

// mentions is a hint: the line holds one of words.
func mentions(words ...string) func([]byte) bool {
	return func(line []byte) bool { return containsAny(line, words...) }
}

// pemMarker is a BEGIN or END line of a private key in PEM: PKCS#1 (RSA),
// SEC 1 (EC), PKCS#8 (plain or ENCRYPTED), OpenSSH's and PGP's blocks.
// Certificates and public keys are not secret and are kept.
var pemMarker = regexp.MustCompile(`-----(BEGIN|END) (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----`)

// privateKeys replaces the body of every PEM private key, keeping its
// BEGIN and END lines. A key whose END is missing (the text was cut
// short) loses everything after its BEGIN line; an END whose BEGIN is
// missing (the text starts inside the key) loses the key lines before it.
func privateKeys(b []byte, _ int) ([]byte, int) {
	ms := pemMarker.FindAllSubmatchIndex(b, -1)
	if len(ms) == 0 {
		return b, 0
	}
	var out []byte
	last, open, n := 0, -1, 0
	for _, m := range ms {
		begin := string(b[m[2]:m[3]]) == "BEGIN"
		switch {
		case begin && open < 0:
			open = m[1]
		case begin:
			// inside a block already: part of what is redacted
		case open >= 0:
			if body := b[open:m[0]]; len(bytes.TrimSpace(body)) > 0 {
				nl := lineBreak(body)
				out = append(append(out, b[last:open]...), nl+Redacted+nl...)
				last = m[0]
				n++
			}
			open = -1
		default:
			start := keyLinesBefore(b, last, m[0])
			if body := b[start:m[0]]; len(bytes.TrimSpace(body)) > 0 {
				nl := "\n"
				if !bytes.Contains(body, []byte("\n")) && bytes.Contains(body, []byte(`\n`)) {
					nl = `\n`
				}
				out = append(append(out, b[last:start]...), Redacted+nl...)
				last = m[0]
				n++
			}
		}
	}
	if open >= 0 && len(bytes.TrimSpace(b[open:])) > 0 {
		nl := lineBreak(b[open:])
		out = append(append(out, b[last:open]...), nl+Redacted+nl...)
		last = len(b)
		n++
	}
	if n == 0 {
		return b, 0
	}
	return append(out, b[last:]...), n
}

// lineBreak is how the text after a BEGIN line breaks its lines: as is,
// or escaped inside a JSON string.
func lineBreak(body []byte) string {
	switch {
	case bytes.HasPrefix(body, []byte(`\r\n`)):
		return `\r\n`
	case bytes.HasPrefix(body, []byte(`\n`)):
		return `\n`
	case bytes.HasPrefix(body, []byte("\r\n")):
		return "\r\n"
	}
	return "\n"
}

// keyLinesBefore is where the key lines that end at end begin, for an END
// line whose BEGIN is not in b (after from): on END's own line, the base64
// and escaped line breaks before it (a key inside a JSON string); then the
// whole lines of base64 before it, each at least 40 long (PEM's are 64)
// but the key's last one.
func keyLinesBefore(b []byte, from, end int) int {
	start := end
	for start > from && b[start-1] != '\n' && (isBase64Byte(b[start-1]) || b[start-1] == '=' || b[start-1] == '\\') {
		start--
	}
	if start > from && b[start-1] != '\n' {
		return start // stopped inside END's line
	}
	for last := true; start > from; last = false {
		ls := bytes.LastIndexByte(b[from:start-1], '\n') + 1 + from
		line := bytes.TrimSuffix(b[ls:start-1], []byte("\r"))
		if len(line) == 0 || !last && len(line) < 40 || !allBase64(line) {
			break
		}
		start = ls
	}
	return start
}

func allBase64(line []byte) bool {
	for _, c := range line {
		if !isBase64Byte(c) && c != '=' {
			return false
		}
	}
	return true
}

func isBase64Byte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_'
}

// minBlob is the shortest base64 text decoded to look inside: the base64 of
// an Entra secret (40 characters) is 56 long, of the shortest JWT more.
const minBlob = 40

// base64Blobs replaces base64 text (standard or URL alphabet) whose decoded
// bytes hold a secret of any shape above: a private key in a kubeconfig's
// client-key-data or a Secret's tls.key, a service account's token in a
// Secret's data. Base64 of anything else is kept.
func base64Blobs(b []byte, depth int) ([]byte, int) {
	if depth >= maxDepth {
		return b, 0
	}
	var out []byte
	last, n := 0, 0
	for i := 0; i < len(b); {
		if !isBase64Byte(b[i]) {
			i++
			continue
		}
		run, end := base64Run(b, i)
		if len(run) >= minBlob && hidesSecret(run, depth) {
			out = append(append(out, b[last:i]...), Redacted...)
			last = end
			n++
		}
		i = end
	}
	if n == 0 {
		return b, 0
	}
	return append(out, b[last:]...), n
}

// base64Run is the base64 text that starts at b[i]: a run of base64 bytes,
// or the lines of one wrapped at 64 or 76 characters (as PEM and base64(1)
// wrap). It returns the text without its line breaks and padding, and
// where it ends in b (after its padding).
func base64Run(b []byte, i int) ([]byte, int) {
	j := skipBase64(b, i)
	run := b[i:j:j]
	for width := j - i; (width == 64 || width == 76) && j < len(b) && b[j] == '\n'; {
		next := skipBase64(b, j+1)
		line := b[j+1 : next]
		if len(line) == 0 || len(line) > width {
			break
		}
		run, j = append(run, line...), next
		if len(line) < width {
			break // the last line
		}
	}
	end := j
	for end < len(b) && end-j < 2 && b[end] == '=' {
		end++
	}
	return run, end
}

func skipBase64(b []byte, i int) int {
	for i < len(b) && isBase64Byte(b[i]) {
		i++
	}
	return i
}

// hidesSecret decodes run (unpadded base64, perhaps after a few bytes that
// are not part of it) at each of the four alignments and says whether text
// it decodes to has a secret's shape.
func hidesSecret(run []byte, depth int) bool {
	enc := base64.RawStdEncoding
	if bytes.ContainsAny(run, "-_") {
		enc = base64.RawURLEncoding
	}
	for off := 0; off < 4 && len(run)-off >= minBlob; off++ {
		part := run[off:]
		part = part[:len(part)-len(part)%4]
		dec := make([]byte, enc.DecodedLen(len(part)))
		k, err := enc.Decode(dec, part)
		if err != nil || !mostlyText(dec[:k]) {
			continue
		}
		if _, found := scrubShapes(dec[:k], depth+1); found > 0 {
			return true
		}
	}
	return false
}

// mostlyText says b is text (what a key, a token or a config decodes to),
// not the noise that base64-looking words such as hex ids decode to.
func mostlyText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	bad := 0
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
			bad++
		}
	}
	return len(b) > 0 && bad*20 <= len(b)
}

// jwtShape is a JSON Web Token: a base64url JSON header ("eyJ" is `{"`),
// then the payload and signature (or the four parts of an encrypted one).
var jwtShape = regexp.MustCompile(`(eyJ[A-Za-z0-9_-]{8,})\.([A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?)`)

// jwts keeps a token's header (its algorithm and key id, which are public)
// and redacts its claims and signature.
func jwts(b []byte, _ int) ([]byte, int) {
	return replaceMatches(b, jwtShape, func(b []byte, m []int) []byte {
		if m[5]-m[4] < 8 {
			return nil // "eyJ…." followed by next to nothing is no token
		}
		return join(b[m[2]:m[3]], []byte("."+Redacted))
	})
}

// entraSecrets redacts what has the shape of an Entra ID application's
// client secret (as GitHub's secret scanning documents it): three
// characters, a digit, "Q~", then 31 to 34 characters. The first three
// characters are kept: the portal shows them as the secret's hint.
func entraSecrets(b []byte, _ int) ([]byte, int) {
	marker := []byte("Q~")
	var out []byte
	last, n := 0, 0
	for from := 0; ; {
		k := bytes.Index(b[from:], marker)
		if k < 0 {
			break
		}
		q := from + k // b[q:q+2] == "Q~"
		from = q + 2
		if q-4 < last || b[q-1] < '0' || b[q-1] > '9' || !isSecretByte(b[q-4]) || !isSecretByte(b[q-3]) || !isSecretByte(b[q-2]) {
			continue
		}
		end := q + 2
		for end < len(b) && end-(q+2) < 34 && isSecretByte(b[end]) {
			end++
		}
		if end-(q+2) < 31 {
			continue
		}
		out = append(append(out, b[last:q-1]...), Redacted...)
		last, from = end, end
		n++
	}
	if n == 0 {
		return b, 0
	}
	return append(out, b[last:]...), n
}

func isSecretByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '~' || c == '.' || c == '-'
}

// urlUserinfo is the user:password@ of a URL (an HTTPS_PROXY, a
// registry mirror, a database), also with JSON's escaped slashes. The
// scheme, the user and the host are kept.
var urlUserinfo = regexp.MustCompile(`(:(?://|\\/\\/)[^\s:/?#@"'<>\\]*:)([^\s/?#"'<>\\]+)@`)

func urlPasswords(b []byte, _ int) ([]byte, int) {
	hint := func(line []byte) bool {
		return bytes.IndexByte(line, '@') >= 0 && containsAny(line, "://", `:\/\/`)
	}
	return onLines(b, hint, func(line []byte) ([]byte, int) { return replaceMatches(line, urlUserinfo, redactSecond) })
}

// credentialKeys are the kubeconfig (and OIDC provider) fields that hold
// a credential.
const credentialKeys = `token|client-key-data|password|id-token|refresh-token|client-secret|access-token`

// yamlCredential is such a field in YAML, at the start of a line, also one
// escaped inside a JSON string.
var yamlCredential = regexp.MustCompile(`(?m)((?:^|\\n)[ \t]*(?:-[ \t]+)?(?:` + credentialKeys + `):[ \t]*["']?)([^\s"'\\]+)`)

func yamlCredentials(b []byte, _ int) ([]byte, int) {
	return onLines(b, mentions("token:", "client-key-data:", "password:", "client-secret:"), func(line []byte) ([]byte, int) {
		return replaceMatches(line, yamlCredential, redactSecond)
	})
}

// jsonCredential is such a field in JSON, and the camel-case names Azure's
// tools use.
var jsonCredential = regexp.MustCompile(`("(?:` + credentialKeys + `|accessToken|refreshToken|clientSecret)"[ \t]*:[ \t]*")((?:[^"\\]|\\.)+)"`)

func jsonCredentials(b []byte, _ int) ([]byte, int) {
	hint := mentions(`token"`, `client-key-data"`, `password"`, `client-secret"`, `Token"`, `clientSecret"`)
	return onLines(b, hint, func(line []byte) ([]byte, int) { return replaceMatches(line, jsonCredential, redactSecond) })
}

// headerCredential is the value of an Authorization, Proxy-Authorization or
// Ocp-Apim-Subscription-Key header, as an HTTP dump, JSON or a Go map prints
// it. An Authorization's scheme is kept when it is a known one.
var headerCredential = regexp.MustCompile(`(?i)((?:proxy-)?authorization|ocp-apim-subscription-key)(["']?[ \t]*[:=][ \t]*\[?[ \t]*["']?)((?:` + authSchemes + `)[ \t]+)?([^\s"',\[\]{}]+)`)

// authSchemes are the Authorization schemes kept in front of a redacted
// credential.
const authSchemes = `bearer|basic|digest|negotiate|ntlm|gatewaykey|sharedaccesssignature|sharedkey|token`

func headerCredentials(b []byte, _ int) ([]byte, int) {
	hint := mentions("uthorization", "UTHORIZATION", "ubscription-", "UBSCRIPTION-")
	return onLines(b, hint, func(line []byte) ([]byte, int) {
		return replaceMatches(line, headerCredential, func(b []byte, m []int) []byte {
			if bytes.Contains(b[m[8]:m[9]], []byte(Redacted)) {
				return nil
			}
			return join(b[m[0]:m[8]], []byte(Redacted))
		})
	})
}

// querySubscriptionKey is API Management's subscription key in a query
// string.
var querySubscriptionKey = regexp.MustCompile(`(?i)([?&]subscription-key=)([^&\s"'#]+)`)

func queryKeys(b []byte, _ int) ([]byte, int) {
	return onLines(b, mentions("ubscription-key=", "UBSCRIPTION-KEY=", "ubscription-Key="), func(line []byte) ([]byte, int) {
		return replaceMatches(line, querySubscriptionKey, redactSecond)
	})
}

func containsAny(b []byte, words ...string) bool {
	for _, w := range words {
		if bytes.Contains(b, []byte(w)) {
			return true
		}
	}
	return false
}
