package token

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var key = []byte("test-gateway-key")

func TestMintVerify(t *testing.T) {
	t.Parallel()
	expiry := time.Date(2030, 1, 2, 3, 4, 59, 0, time.UTC)
	good, err := Mint(key, "gw-1", expiry)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(good, "GatewayKey gw-1&203001020304&") {
		t.Fatalf("minted token has unexpected shape: %q", good)
	}
	sigStart := strings.LastIndex(good, "&") + 1
	flipped := good[:sigStart] + flip(good[sigStart:])

	tests := []struct {
		name    string
		key     []byte
		token   string
		wantErr error
	}{
		{"good with prefix", key, good, nil},
		{"good without prefix", key, strings.TrimPrefix(good, Prefix), nil},
		{"good with lower-case prefix and spaces", key, "  gatewaykey   " + strings.TrimPrefix(good, Prefix) + " ", nil},
		{"wrong key", []byte("other-key"), good, ErrBadSignature},
		{"tampered signature", key, flipped, ErrBadSignature},
		{"tampered id", key, strings.Replace(good, "gw-1", "gw-2", 1), ErrBadSignature},
		{"tampered expiry", key, strings.Replace(good, "203001020304", "209901020304", 1), ErrBadSignature},
		{"no key", nil, good, ErrNoKey},
		{"empty", key, "", ErrMalformed},
		{"prefix only", key, "GatewayKey ", ErrMalformed},
		{"bare prefix word", key, "GatewayKey", ErrMalformed},
		{"two fields", key, "gw-1&203001020304", ErrMalformed},
		{"empty id", key, "&203001020304&" + good[sigStart:], ErrMalformed},
		{"empty signature", key, "gw-1&203001020304&", ErrMalformed},
		{"four fields", key, strings.TrimPrefix(good, Prefix) + "&x", ErrMalformed},
		{"bad expiry", key, "gw-1&2030-01-02&" + good[sigStart:], ErrMalformed},
		{"bad base64", key, "gw-1&203001020304&%%%", ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok, err := Verify(tc.key, tc.token)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify() error = %v, want %v", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), good[sigStart:sigStart+8]) {
				t.Fatalf("error message leaks the signature: %v", err)
			}
			if tc.wantErr == nil && (tok.GatewayID != "gw-1" || !tok.Expiry.Equal(time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC))) {
				t.Fatalf("Verify() = %+v, want gw-1 expiring 2030-01-02T03:04Z", tok)
			}
		})
	}
}

func TestExpiredTokenStillVerifies(t *testing.T) {
	t.Parallel()
	past := time.Date(2020, 5, 1, 12, 0, 0, 0, time.UTC)
	s, err := Mint(key, "gw-old", past)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Verify(key, s)
	if err != nil {
		t.Fatalf("an expired but well-signed token must verify, got %v", err)
	}
	tests := []struct {
		now  time.Time
		want bool
	}{
		{past.Add(-time.Second), false},
		{past, true},
		{past.Add(time.Hour), true},
	}
	for _, tc := range tests {
		if got := tok.Expired(tc.now); got != tc.want {
			t.Errorf("Expired(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
}

func TestStripPrefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"GatewayKey a&b&c":    "a&b&c",
		"a&b&c":               "a&b&c",
		"gatewaykey  a&b&c\n": "a&b&c",
		"GatewayKey":          "",
		"Bearer a&b&c":        "Bearer a&b&c",
	} {
		if got := StripPrefix(in); got != want {
			t.Errorf("StripPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMintRejectsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id, expiry string
		key              []byte
	}{
		{"no key", "gw", "203001010000", nil},
		{"empty id", "", "203001010000", key},
		{"id with ampersand", "a&b", "203001010000", key},
		{"id with space", "a b", "203001010000", key},
		{"short expiry", "gw", "2030010100", key},
		{"expiry not a date", "gw", "203013010000", key},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if s, err := MintField(tc.key, tc.id, tc.expiry); err == nil {
				t.Fatalf("MintField() = %q, want an error", s)
			}
		})
	}
}

// flip changes the first character of a base64 string to another valid one.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}
