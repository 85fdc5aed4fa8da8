// Package smoke runs API calls through the forwarded gateway and judges them:
// the gateway's health path on both ports, then the user's calls from a YAML
// spec. A call passes only when its status AND body checks pass, because a
// gateway with an expired token answers 200 with an empty body.
//
// It imports nothing from the rest of apimdev: the spec's file format is its
// own (Spec), and the configuration only names the file.
package smoke
