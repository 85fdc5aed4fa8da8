//go:build !windows

package state

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"
	"time"
)

// helperMain is the helper process: it prints the name of each SIGWINCH it
// gets and goes on, and on SIGTERM (what stopping a forward sends) prints
// its name and exits.
func helperMain() {
	c := make(chan os.Signal, 8)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGWINCH)
	fmt.Println("ready")
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case s := <-c:
			fmt.Println(s)
			if s == syscall.SIGTERM {
				return
			}
		case <-deadline:
			return
		}
	}
}

// stillRuns fails the test if h was sent SIGTERM. It sends h a SIGWINCH and
// waits for h to print it: a SIGTERM sent before would have come first (the
// kernel delivers pending signals lowest number first, SIGTERM is 15 and
// SIGWINCH 28, and Go's signal queue hands them on in the same order), so
// h's lines are "ready" then only SIGWINCH's name.
func (h *helper) stillRuns(t *testing.T) {
	t.Helper()
	n := len(h.out.lines())
	if err := h.cmd.Process.Signal(syscall.SIGWINCH); err != nil {
		t.Fatalf("the helper (pid %d) does not run any more: %v (it printed %q)", h.pid, err, h.out.lines())
	}
	got := h.waitLines(t, n+1)
	if slices.Contains(got, syscall.SIGTERM.String()) || got[len(got)-1] != syscall.SIGWINCH.String() {
		t.Fatalf("the helper (pid %d) was sent SIGTERM: it printed %q", h.pid, got)
	}
	if !sameProcess(h.pid, h.id) {
		t.Fatalf("the helper (pid %d) does not run any more", h.pid)
	}
}
