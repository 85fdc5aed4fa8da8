//go:build windows

package testproc

// winch: the helper prints nothing for a signal on Windows.
var winch = ""

// endedByTerm: Windows has no SIGTERM; stop ends the helper with
// TerminateProcess, which leaves no mark but the end.
func endedByTerm(*Proc) bool { return true }
