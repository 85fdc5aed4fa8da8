//go:build !linux && !windows

package testproc

// termByDefault: outside Linux the helper catches SIGTERM (StillRuns says
// what that costs).
func termByDefault() bool { return false }
