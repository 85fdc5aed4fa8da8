// Package gateway renders the self-hosted gateway's Kubernetes objects from a
// typed profile, applies them with server-side apply, and waits for the
// rollout, explaining failures in the user's terms (ImagePullBackOff, a crash
// loop with its last log lines, a probe that never passes).
//
// It talks to Kubernetes only through kubernetes.Interface. It must not import
// cluster, forward, cli or tui.
package gateway
