//go:build windows

package state

import (
	"fmt"
	"testing"
	"time"
)

// helperMain is the helper process: it runs until it is ended.
func helperMain() {
	fmt.Println("ready")
	time.Sleep(2 * time.Minute)
}

// stillRuns fails the test if h has ended, or ends within a moment. Windows
// has no signal the helper could answer to show none came before it; what
// ends a forward there (TerminateProcess) takes effect at once.
func (h *helper) stillRuns(t *testing.T) {
	t.Helper()
	select {
	case <-h.exited:
		t.Fatalf("the helper (pid %d) was stopped", h.pid)
	case <-time.After(300 * time.Millisecond):
	}
	if !sameProcess(h.pid, h.id) {
		t.Fatalf("the helper (pid %d) does not run any more", h.pid)
	}
}
