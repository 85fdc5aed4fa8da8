// Package helmvalues reads and writes values files of Microsoft's Helm chart
// for the self-hosted gateway (azure-api-management-gateway): Read maps a
// values file onto apimdev's settings, key by key, saying for each whether
// it is used, adapted for a laptop or not applicable locally; Export writes
// the prod profile back as chart values plus a kustomize overlay for what
// the chart cannot express.
//
// Secrets never come from a values file: a gateway key or client secret in
// one is refused without being read into anything. It must not import cli,
// tui or pipeline.
package helmvalues
