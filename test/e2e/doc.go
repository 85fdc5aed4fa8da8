// Package e2e drives the real apimdev binary against a real Docker engine, a
// real kind cluster and a real Kubernetes API server, with the stand-in
// gateway (test infrastructure, not Azure API Management). It runs only with
// the e2e build tag, through `make e2e`, which builds the rig first.
package e2e
