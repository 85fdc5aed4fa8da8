// Package diagnose writes `apimdev doctor`'s diagnostics bundle: a tar.gz
// (0600) with the tool's version, the preflight results, what the state
// directory holds, the gateway namespace's events, a describe-like summary of
// its pods and workloads, their logs, and kind's exported node logs.
//
// Every byte that goes into the bundle passes through a Redactor first, so the
// gateway token (and anything shaped like one) never leaves the cluster's
// Secret, whichever log quoted it.
//
// It reads; it never changes the cluster or the state files. It must not
// import cli, pipeline or tui.
package diagnose
