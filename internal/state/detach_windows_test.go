//go:build windows

package state

import "syscall"

// detachedAttr is how StartDetachedForward detaches the forward: a detached
// process in a group of its own (CREATE_NEW_PROCESS_GROUP|DETACHED_PROCESS).
func detachedAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: 0x00000200 | 0x00000008, HideWindow: true}
}
