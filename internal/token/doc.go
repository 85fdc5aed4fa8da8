// Package token parses and guards the self-hosted gateway's access token.
//
// The token is a secret. A Token never prints its signature: String, GoString,
// Format and MarshalJSON all give a redacted form, so a Token that slips into a
// log line, an error or a JSON document leaks nothing. Only SecretValue returns
// the real text, and the only caller that should need it is the code that
// builds the Kubernetes Secret.
//
// This package must not import anything from the rest of apimdev.
package token
