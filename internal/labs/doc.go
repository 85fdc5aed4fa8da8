// Package labs owns the workshop's self-checking labs: for each lab in the
// repository's labs/ directory, the checks `apimdev lab check N` runs on the
// cluster, each with a hint when it fails. A check is designed to fail
// before the lab's commands and pass after them.
//
// It reads the cluster through kubernetes.Interface and everything else
// (cluster state, the forward, smoke calls, pod logs) through Env's functions,
// so tests use client-go's fake clientset. It must not import cli, tui or
// pipeline.
package labs
