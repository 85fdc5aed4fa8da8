package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const sig = "c2lnbmF0dXJlLWJ5dGVzLWZvci10ZXN0cw=="

func TestParse(t *testing.T) {
	t.Parallel()
	good := "contoso-gw&202612301200&" + sig
	tests := []struct {
		name    string
		in      string
		wantErr string
		wantID  string
		wantExp bool
	}{
		{name: "bare", in: good, wantID: "contoso-gw", wantExp: true},
		{name: "with prefix", in: "GatewayKey " + good, wantID: "contoso-gw", wantExp: true},
		{name: "lower-case prefix", in: "gatewaykey " + good, wantID: "contoso-gw", wantExp: true},
		{name: "trailing newline", in: good + "\n", wantID: "contoso-gw", wantExp: true},
		{name: "crlf", in: "GatewayKey " + good + "\r\n", wantID: "contoso-gw", wantExp: true},
		{name: "double quotes", in: `"GatewayKey ` + good + `"`, wantID: "contoso-gw", wantExp: true},
		{name: "single quotes and spaces", in: `  '` + good + `'  `, wantID: "contoso-gw", wantExp: true},
		{name: "unreadable expiry is accepted", in: "gw&soon&" + sig, wantID: "gw", wantExp: false},
		{name: "empty", in: "  \n", wantErr: "empty"},
		{name: "missing parts", in: "contoso-gw&" + sig, wantErr: "2 part(s)"},
		{name: "too many parts", in: good + "&x", wantErr: "4 part(s)"},
		{name: "empty id", in: "&202612301200&" + sig, wantErr: "gateway id"},
		{name: "empty signature", in: "gw&202612301200&", wantErr: "signature) is empty"},
		{name: "bad base64", in: "gw&202612301200&not*base64!", wantErr: "not valid base64"},
		{name: "truncated base64", in: "gw&202612301200&" + sig[:len(sig)-3], wantErr: "not valid base64"},
		{name: "wrapped", in: "gw&2026\n12301200&" + sig, wantErr: "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want it to mention %q", err, tt.wantErr)
				}
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Hint() == "" {
					t.Fatalf("error %v carries no fix hint", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tok.GatewayID != tt.wantID || tok.HasExpiry != tt.wantExp {
				t.Fatalf("got id %q hasExpiry %v", tok.GatewayID, tok.HasExpiry)
			}
			if !strings.HasPrefix(tok.SecretValue(), Prefix) || strings.Count(tok.SecretValue(), Prefix) != 1 {
				t.Fatalf("SecretValue must carry exactly one prefix, got %d", strings.Count(tok.SecretValue(), Prefix))
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	mk := func(at time.Time) Token {
		tok, err := Parse("gw&" + at.Format(ExpiryLayout) + "&" + sig)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		at   time.Time
		want ExpiryState
	}{
		{now.Add(-time.Minute), ExpiryPast},
		{now.Add(3 * 24 * time.Hour), ExpirySoon},
		{now.Add(7*24*time.Hour - time.Minute), ExpirySoon},
		{now.Add(20 * 24 * time.Hour), ExpiryOK},
	}
	for _, tt := range tests {
		e := mk(tt.at).ExpiryAt(now)
		if e.State != tt.want {
			t.Errorf("expiry %s: state %s, want %s", tt.at, e.State, tt.want)
		}
		if (tt.want == ExpiryOK) != (e.Warning() == "") {
			t.Errorf("expiry %s: warning %q", tt.at, e.Warning())
		}
	}
	unknown, _ := Parse("gw&x&" + sig)
	if got := unknown.ExpiryAt(now); got.State != ExpiryUnknown || got.Warning() != "" {
		t.Errorf("unknown expiry: %+v", got)
	}
	if w := mk(now.Add(-48 * time.Hour)).ExpiryAt(now).Warning(); !strings.Contains(w, "empty body") || !strings.Contains(w, "2 days") {
		t.Errorf("expired warning does not explain: %q", w)
	}
}

// The canary must not come out of any way a Token can be printed or encoded.
func TestTokenNeverPrintsItsSignature(t *testing.T) {
	t.Parallel()
	canary := "Q0FOQVJZLTdmM2E5YzFlLWRvLW5vdC1sZWFr"
	tok, err := Parse("GatewayKey gw&202612301200&" + canary)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(map[string]any{"token": tok})
	txt, _ := tok.MarshalText()
	outs := []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s %q %x", tok, tok, tok, tok, tok, tok),
		fmt.Sprintf("%v", struct{ T Token }{tok}), fmt.Sprintf("%+v", &struct{ T Token }{tok}),
		string(js), string(txt), tok.Redacted(),
	}
	for _, o := range outs {
		if strings.Contains(o, canary) {
			t.Fatalf("canary leaked: %s", o)
		}
	}
	if !strings.Contains(tok.SecretValue(), canary) {
		t.Fatal("SecretValue lost the token")
	}
	// Errors must not quote what they were given either.
	for _, bad := range []string{canary, "gw&" + canary, "gw&1&" + canary + "*"} {
		if _, err := Parse(bad); err == nil || strings.Contains(err.Error(), canary) {
			t.Fatalf("Parse(%d bytes) error %v", len(bad), err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"gw&202612301200&" + sig, "GatewayKey a&b&c", `"x&y&z"`, "&&", "", "GatewayKey ", "a&202612301200&===="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error of unexpected type %T", err)
			}
			if len(s) >= 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes its input")
			}
			return
		}
		if strings.Count(tok.value, "&") != 2 || tok.GatewayID == "" {
			t.Fatalf("accepted a token of wrong shape")
		}
		again, err := Parse(tok.SecretValue())
		if err != nil || again.value != tok.value {
			t.Fatalf("SecretValue does not parse back: %v", err)
		}
		// The printable form is exactly the parts that are not secret. (Asking
		// "does it contain the signature?" is wrong: a short signature can
		// be a substring of the expiry; see testdata/fuzz/FuzzParse.)
		exp := "?"
		if tok.HasExpiry {
			exp = tok.Expiry.Format(ExpiryLayout)
		}
		if want := Prefix + tok.GatewayID + "&" + exp + "&<redacted>"; tok.String() != want {
			t.Fatalf("String is %q, want %q", tok.String(), want)
		}
	})
}
