// Package cluster checks the machine before anything is created (preflight),
// and creates, reuses or repairs the kind cluster (one node, or a control plane
// and workers over zones), using kind as a
// Go library and the Docker Engine API.
//
// It writes the cluster's kubeconfig only to the path it is given (apimdev's
// own file), never to ~/.kube/config, and deletes a cluster only when told to.
// It must not import gateway, forward, cli or tui.
package cluster
