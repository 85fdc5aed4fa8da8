//go:build !windows

package relay

import "syscall"

// dialControl prepares the socket of a dial to a target: nothing to do
// where a refused loopback connect fails at once.
func dialControl(_, _ string, _ syscall.RawConn) error { return nil }
