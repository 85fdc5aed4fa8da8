//go:build !windows

package testproc

import (
	"slices"
	"syscall"
)

// winch is what the helper prints for a SIGWINCH.
var winch = syscall.SIGWINCH.String()

// endedByTerm says whether the helper ended on SIGTERM: killed by it (on
// Linux, its default action) or having printed its name.
func endedByTerm(p *Proc) bool {
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM || slices.Contains(p.Lines(), syscall.SIGTERM.String())
}
