// Package forward forwards local TCP ports to the ready pods behind a
// Kubernetes Service, over the API server's port-forward subresource.
//
// Unlike `kubectl port-forward svc/...`, which pins one pod for its lifetime
// and dies with it, every accepted connection picks a pod that is ready at that
// moment (from the Service's EndpointSlices), so a restarted or rolled pod is
// followed without the user doing anything, and connections are spread over
// all ready pods. One SPDY connection per pod is kept and reused.
//
// It imports nothing from the rest of apimdev except ports.
package forward
