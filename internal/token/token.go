package token

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Prefix is what the Azure portal puts before the token and what the gateway
// expects in its config.service.auth setting.
const Prefix = "GatewayKey "

// ExpiryLayout is the layout of the token's middle field, read as UTC.
const ExpiryLayout = "200601021504"

// WarnWindow is how long before expiry a warning starts: Azure Advisor warns
// seven days ahead, and so do we.
const WarnWindow = 7 * 24 * time.Hour

// Token is a parsed gateway token: <gatewayId>&<yyyyMMddHHmm>&<base64 signature>.
type Token struct {
	GatewayID string
	// Expiry is the middle field read as a UTC time. Reading it as the expiry is
	// an inference (documented nowhere), so it only ever produces warnings.
	Expiry    time.Time
	HasExpiry bool
	value     string // <id>&<expiry>&<signature>, without the prefix
	// app says value is a Microsoft Entra app's client secret, not a
	// gateway token: it goes into the Secret as it is, and has no expiry
	// that can be read from it.
	app bool
}

const secretFix = "copy the client secret's Value (not its Secret ID) from the Microsoft Entra admin center (App registrations > your app > Certificates & secrets) into the file, on one line"

// AppSecret holds a Microsoft Entra app's client secret the way a Token holds
// a gateway token: it leaves only through SecretValue, and every printed form
// is redacted. White space around it is removed; none may be inside it.
func AppSecret(s string) (Token, error) {
	v := strings.TrimSpace(s)
	for len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		v = strings.TrimSpace(v[1 : len(v)-1])
	}
	switch {
	case v == "":
		return Token{}, &ParseError{Problem: "the client secret is empty", Fix: secretFix}
	case strings.ContainsAny(v, " \t\r\n"):
		return Token{}, &ParseError{Problem: "the client secret contains white space inside it (was it wrapped over several lines?)", Fix: secretFix}
	case len(v) > 1024:
		return Token{}, &ParseError{Problem: "the client secret is longer than 1024 characters: is it the right file?", Fix: secretFix}
	}
	return Token{value: v, app: true}, nil
}

// IsAppSecret says t is an Entra app's client secret.
func (t Token) IsAppSecret() bool { return t.app }

// ParseError says what is wrong with a token without quoting any of it.
type ParseError struct {
	Problem string
	Fix     string
}

func (e *ParseError) Error() string { return "token: " + e.Problem }

// Hint is the fix a user can act on.
func (e *ParseError) Hint() string { return e.Fix }

const copyFix = "copy the whole token from the Azure portal (API Management > Gateways > your gateway > Deployment) into the token file"

// Clean removes what pasting adds around a token: white space, line breaks,
// surrounding quotes and the GatewayKey prefix. It never fails.
func Clean(s string) string {
	s = strings.TrimSpace(s)
	for len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if len(s) >= len(Prefix) && strings.EqualFold(s[:len(Prefix)], Prefix) {
		s = strings.TrimSpace(s[len(Prefix):])
	}
	return s
}

// Parse cleans s and checks its shape. It refuses a token with missing parts or
// a signature that is not base64; it accepts an expiry field it cannot read
// (HasExpiry is then false) because that reading is only an inference.
func Parse(s string) (Token, error) {
	v := Clean(s)
	if v == "" {
		return Token{}, &ParseError{Problem: "the token is empty", Fix: copyFix}
	}
	if strings.ContainsAny(v, " \t\r\n") {
		return Token{}, &ParseError{Problem: "the token contains white space inside it (was it wrapped over several lines?)", Fix: copyFix + ", on one line"}
	}
	parts := strings.Split(v, "&")
	if len(parts) != 3 {
		return Token{}, &ParseError{
			Problem: fmt.Sprintf("the token has %d part(s) separated by '&', expected 3: <gateway id>&<expiry yyyyMMddHHmm>&<signature>", len(parts)),
			Fix:     copyFix,
		}
	}
	id, exp, sig := parts[0], parts[1], parts[2]
	if id == "" {
		return Token{}, &ParseError{Problem: "the token's first part (the gateway id) is empty", Fix: copyFix}
	}
	if sig == "" {
		return Token{}, &ParseError{Problem: "the token's last part (the signature) is empty", Fix: copyFix}
	}
	if _, err := base64.StdEncoding.DecodeString(sig); err != nil {
		return Token{}, &ParseError{Problem: "the token's signature is not valid base64 (was part of it cut off?)", Fix: copyFix}
	}
	t := Token{GatewayID: id, value: v}
	if at, err := time.Parse(ExpiryLayout, exp); err == nil {
		t.Expiry, t.HasExpiry = at.UTC(), true
	}
	return t, nil
}

// IsZero reports whether t holds no token.
func (t Token) IsZero() bool { return t.value == "" }

// SecretValue is the text for the Kubernetes Secret: "GatewayKey <token>".
// It is the only way to get the secret out of a Token.
func (t Token) SecretValue() string {
	if t.value == "" {
		return ""
	}
	if t.app {
		return t.value
	}
	return Prefix + t.value
}

// Redacted shows the parts that are not secret and hides the signature.
func (t Token) Redacted() string {
	if t.value == "" {
		return "<no token>"
	}
	if t.app {
		return "<client secret, redacted>"
	}
	exp := "?"
	if t.HasExpiry {
		exp = t.Expiry.Format(ExpiryLayout)
	}
	return Prefix + t.GatewayID + "&" + exp + "&<redacted>"
}

func (t Token) String() string   { return t.Redacted() }
func (t Token) GoString() string { return t.Redacted() }

// Format makes every fmt verb, %#v and %q included, print the redacted form.
func (t Token) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(t.Redacted())) }

// MarshalJSON writes the redacted form and the expiry, never the signature.
func (t Token) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%q", t.Redacted()), nil
}

// MarshalText keeps YAML and other encoders from reaching the secret.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.Redacted()), nil }

// ExpiryState classifies how close a token is to its expiry.
type ExpiryState string

const (
	ExpiryUnknown ExpiryState = "unknown"
	ExpiryOK      ExpiryState = "ok"
	ExpirySoon    ExpiryState = "soon"
	ExpiryPast    ExpiryState = "expired"
	// ExpiryElsewhere is a client secret's: Entra ID keeps its expiry.
	ExpiryElsewhere ExpiryState = "in-entra-id"
)

// Expiry describes the token's expiry as far as it can be told.
type Expiry struct {
	State     ExpiryState   `json:"state"`
	At        time.Time     `json:"at,omitzero"`
	Remaining time.Duration `json:"-"`
	// RemainingSeconds is Remaining for JSON readers; negative once expired.
	RemainingSeconds int64 `json:"remainingSeconds"`
}

// ExpiryAt tells whether the token has expired or will within WarnWindow.
func (t Token) ExpiryAt(now time.Time) Expiry {
	if t.app {
		return Expiry{State: ExpiryElsewhere}
	}
	if !t.HasExpiry {
		return Expiry{State: ExpiryUnknown}
	}
	left := t.Expiry.Sub(now)
	e := Expiry{At: t.Expiry, Remaining: left.Truncate(time.Second), RemainingSeconds: int64(left / time.Second)}
	switch {
	case left <= 0:
		e.State = ExpiryPast
	case left <= WarnWindow:
		e.State = ExpirySoon
	default:
		e.State = ExpiryOK
	}
	return e
}

// Describe is a one-line human reading of the expiry, including the caveat.
func (e Expiry) Describe() string {
	switch e.State {
	case ExpiryPast:
		return fmt.Sprintf("expired %s ago (%s UTC, read from the token)", human(-e.Remaining), e.At.Format("2006-01-02 15:04"))
	case ExpirySoon:
		return fmt.Sprintf("expires in %s (%s UTC): regenerate it in the portal soon", human(e.Remaining), e.At.Format("2006-01-02 15:04"))
	case ExpiryOK:
		return fmt.Sprintf("expires in %s (%s UTC)", human(e.Remaining), e.At.Format("2006-01-02 15:04"))
	case ExpiryElsewhere:
		return "a Microsoft Entra app's client secret: its expiry is kept in Entra ID (App registrations > Certificates & secrets), not in the secret"
	default:
		return "expiry unknown (the token's middle field is not a yyyyMMddHHmm date)"
	}
}

// Warning returns a warning to show, or "" when there is nothing to say.
func (e Expiry) Warning() string {
	switch e.State {
	case ExpiryPast:
		return "the gateway token " + e.Describe() + "; a gateway with an expired token answers 200 with an empty body. Generate a new token in the Azure portal (Gateways > Deployment) and run `apimdev token rotate --token-file FILE` or re-run `apimdev up`"
	case ExpirySoon:
		return "the gateway token " + e.Describe()
	}
	return ""
}

func human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
}

// ErrNoToken is returned when no token source was given.
var ErrNoToken = errors.New("no gateway token given")
