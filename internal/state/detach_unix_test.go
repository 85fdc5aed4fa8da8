//go:build !windows

package state

import "syscall"

// detachedAttr is how StartDetachedForward detaches the forward: a session
// of its own.
func detachedAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
