// Package smoke runs API calls through the forwarded gateway and judges them:
// the gateway's health path on both ports, then the user's calls from a YAML
// spec. A call passes only when its status AND body checks pass, because a
// gateway with an expired token answers 200 with an empty body.
//
// It imports nothing from the rest of apimdev but config for the file format.
package smoke
