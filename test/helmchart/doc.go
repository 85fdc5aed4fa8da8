// Package helmchart renders Microsoft's Helm chart for the self-hosted
// gateway (azure-api-management-gateway) with the Helm SDK, applies the
// kustomize overlay apimdev exports beside its values, and compares the
// result with apimdev's own prod render.
//
// It is a module of its own: the Helm SDK brings Kubernetes modules newer
// than apimdev's, which must not enter apimdev's go.mod. It does not import
// apimdev: apimdev writes what is compared into testdata/ (go test
// ./internal/helmvalues -run TestHelmchartTestdataIsCurrent -update).
package helmchart
