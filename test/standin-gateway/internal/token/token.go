// Package token mints, parses and verifies stand-in gateway tokens.
//
// The real gateway token looks like `GatewayKey <gatewayId>&<yyyyMMddHHmm>&<base64 signature>`.
// Azure does not document how the signature is made, so the stand-in defines its own:
// base64(HMAC-SHA512(key, gatewayId + "\n" + expiry)). Only the stand-in config
// service can check it; the stand-in gateway treats the token as opaque except for
// the expiry field, exactly as a client of the real service would have to.
//
// Errors returned here never contain any part of the token, so callers may log them.
package token

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"strings"
	"time"
)

// Prefix is the scheme word the Azure portal puts in front of the token.
const Prefix = "GatewayKey "

// ExpiryLayout is the Go layout of the token's middle field (yyyyMMddHHmm, UTC).
const ExpiryLayout = "200601021504"

var (
	// ErrMalformed means the token does not have three non-empty fields or the
	// expiry or signature field cannot be decoded.
	ErrMalformed = errors.New("token is malformed: want <gatewayId>&<yyyyMMddHHmm>&<base64 signature>")
	// ErrBadSignature means the token is well formed but was not signed with the key.
	ErrBadSignature = errors.New("token signature does not match the gateway key")
	// ErrNoKey means verification or minting was asked for without a key.
	ErrNoKey = errors.New("no gateway key to sign or verify with")
)

// Token is a parsed token. It deliberately has no String method: printing a
// Token by accident must not print the signature.
type Token struct {
	GatewayID string
	// Expiry is the middle field read as a UTC minute.
	Expiry    time.Time
	expiry    string
	signature []byte
}

// Parse splits a token, with or without the "GatewayKey " prefix, into its
// fields. It does not check the signature.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(StripPrefix(s))
	parts := strings.Split(s, "&")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Token{}, ErrMalformed
	}
	expiry, err := time.ParseInLocation(ExpiryLayout, parts[1], time.UTC)
	if err != nil {
		// The time package error quotes its input; ours does not.
		return Token{}, ErrMalformed
	}
	sig, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return Token{}, ErrMalformed
	}
	return Token{GatewayID: parts[0], Expiry: expiry, expiry: parts[1], signature: sig}, nil
}

// StripPrefix removes a leading "GatewayKey " (any case, any spacing) if present.
func StripPrefix(s string) string {
	s = strings.TrimSpace(s)
	// A bare "GatewayKey" is a prefix with nothing after it: no token at all.
	word, rest, _ := strings.Cut(s, " ")
	if strings.EqualFold(word, strings.TrimSpace(Prefix)) {
		return strings.TrimSpace(rest)
	}
	return s
}

// Verify parses s and checks its signature against key. An expired token with a
// good signature verifies: deciding what expiry means is the gateway's business.
func Verify(key []byte, s string) (Token, error) {
	if len(key) == 0 {
		return Token{}, ErrNoKey
	}
	t, err := Parse(s)
	if err != nil {
		return Token{}, err
	}
	if !hmac.Equal(t.signature, mac(key, t.GatewayID, t.expiry)) {
		return Token{}, ErrBadSignature
	}
	return t, nil
}

// Mint returns a signed token with the "GatewayKey " prefix, expiring at the
// minute containing expiry (UTC).
func Mint(key []byte, gatewayID string, expiry time.Time) (string, error) {
	return MintField(key, gatewayID, expiry.UTC().Format(ExpiryLayout))
}

// MintField is Mint with the expiry field given verbatim, so callers (and the
// mint-token command) can reproduce a token exactly.
func MintField(key []byte, gatewayID, expiry string) (string, error) {
	if len(key) == 0 {
		return "", ErrNoKey
	}
	if gatewayID == "" || strings.ContainsAny(gatewayID, "& \t\r\n") {
		return "", errors.New("gateway id must be non-empty and contain no '&' or spaces")
	}
	if _, err := time.ParseInLocation(ExpiryLayout, expiry, time.UTC); err != nil {
		return "", errors.New("expiry must be yyyyMMddHHmm (UTC)")
	}
	sig := base64.StdEncoding.EncodeToString(mac(key, gatewayID, expiry))
	return Prefix + gatewayID + "&" + expiry + "&" + sig, nil
}

// Expired reports whether the token's expiry minute has been reached at now.
func (t Token) Expired(now time.Time) bool {
	return !now.Before(t.Expiry)
}

func mac(key []byte, gatewayID, expiry string) []byte {
	h := hmac.New(sha512.New, key)
	h.Write([]byte(gatewayID + "\n" + expiry))
	return h.Sum(nil)
}
