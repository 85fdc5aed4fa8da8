//go:build !windows

package testproc

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"
	"time"
)

// helperMain prints "ready" once it is set up, then the name of each
// SIGWINCH the helper gets, and goes on until lifetime passes. SIGTERM ends
// it: on Linux by the kernel's default action (termByDefault); elsewhere it
// prints SIGTERM's name and returns.
func helperMain(lifetime time.Duration) {
	c := make(chan os.Signal, 8)
	signal.Notify(c, syscall.SIGWINCH)
	if !termByDefault() {
		signal.Notify(c, syscall.SIGTERM)
	}
	fmt.Println("ready")
	deadline := time.After(lifetime)
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

// StillRuns fails the test if the helper was sent SIGTERM, or has ended. It
// sends the helper a SIGWINCH and waits for it to print its name; it waits
// for that echo, not for a time.
//
// On Linux that is a proof. The helper leaves SIGTERM to the kernel's
// default action, and the kernel, when it queues a signal whose action is
// to end the process, marks the whole process as exiting before kill()
// returns; a signal sent to it after that is dropped. So once a SIGTERM was
// sent, the SIGWINCH is never echoed and the helper ends, which StillRuns
// sees as the end of its output.
//
// Elsewhere the helper catches SIGTERM, and StillRuns relies on its order:
// the kernel hands pending signals out lowest number first (SIGTERM is 15,
// SIGWINCH 28), so a SIGTERM sent before is printed first. That holds when
// one thread takes both; two threads of the helper can each take one and
// race to pass it on, so a SIGTERM can, rarely, be missed (2 times in 100
// with -race, in a test that sends one right before).
func (p *Proc) StillRuns(t testing.TB) {
	t.Helper()
	n := len(p.Lines())
	if err := p.cmd.Process.Signal(syscall.SIGWINCH); err != nil {
		t.Fatalf("the helper (pid %d) does not run any more: %v (it printed %q)", p.Pid, err, p.Lines())
	}
	got := p.waitLines(t, n+1, 10*time.Second)
	if slices.Contains(got, syscall.SIGTERM.String()) || got[len(got)-1] != syscall.SIGWINCH.String() {
		t.Fatalf("the helper (pid %d) was sent SIGTERM: it printed %q", p.Pid, got)
	}
}

// detachedAttr is how StartDetachedForward detaches the forward: a session
// of its own.
func detachedAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
