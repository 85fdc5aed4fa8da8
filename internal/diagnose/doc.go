// Package diagnose writes `apimdev doctor`'s diagnostics bundle: a tar.gz
// (0600) with the tool's version, the preflight results, what the state
// directory holds, the gateway namespace's events, a describe-like summary of
// its pods and workloads, their logs, and the nodes' logs (journal, kubelet,
// containerd, /var/log, the node containers' inspect).
//
// Every byte that goes into the bundle passes through a Redactor first: the
// gateway token and the client secret it is told, in every encoding a log
// quotes them in, and whatever has a secret's shape (tokens, PEM private
// keys, JWTs, Entra client secrets, URL passwords, kubeconfig credentials,
// credential headers), whichever log quoted it. The node logs are streamed
// from the nodes into the bundle: nothing unredacted is written to disk, and
// a timeout or Ctrl-C leaves nothing running and nothing behind but, on a
// timeout, the bundle, which says the node logs were cut short.
//
// It reads; it never changes the cluster or the state files. It must not
// import cli, pipeline or tui.
package diagnose
