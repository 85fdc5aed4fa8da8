//go:build windows

package testproc

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// helperMain prints "ready" and runs until the helper is ended, or
// lifetime passes.
func helperMain(lifetime time.Duration) {
	fmt.Println("ready")
	time.Sleep(lifetime)
}

// stillRunsWait is how long StillRuns watches the helper on Windows.
const stillRunsWait = 300 * time.Millisecond

// StillRuns fails the test if the helper has ended, or ends within a
// moment. Windows has no signal the helper could answer to show that none
// came before it, so this is a bounded wait, not a proof; what ends a
// forward there (TerminateProcess) takes effect at once, so a stop that was
// sent shows within it.
func (p *Proc) StillRuns(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("the helper (pid %d) was stopped", p.Pid)
	case <-time.After(stillRunsWait):
	}
}

// detachedAttr is how StartDetachedForward detaches the forward: a detached
// process in a group of its own (CREATE_NEW_PROCESS_GROUP|DETACHED_PROCESS).
func detachedAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: 0x00000200 | 0x00000008, HideWindow: true}
}
