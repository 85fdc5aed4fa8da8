//go:build windows

package pipeline

import "syscall"

// Windows creation flags for a process of its own, with no console.
const (
	createNewProcessGroup = 0x00000200
	detachedProcess       = 0x00000008
)

// closeInheritedOnExec has nothing to do: Windows hands a child only the
// handles marked inheritable, and Go marks none but the ones it passes.
func closeInheritedOnExec() {}

// detached starts the background forward as a detached process in a group
// of its own, so closing the terminal that started it does not stop it.
func detached() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: createNewProcessGroup | detachedProcess, HideWindow: true}
}
