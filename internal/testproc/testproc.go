package testproc

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Env is the variable that makes a test binary the helper (MainIfHelper);
// its value is Plain or HoldPorts.
const Env = "APIMDEV_TESTPROC"

const (
	// Plain is the helper that holds nothing.
	Plain = "1"
	// HoldPorts is the helper that also listens, on 127.0.0.1, at the ports
	// its --http-port and --https-port arguments name, as the forward does.
	HoldPorts = "hold-ports"
)

// lifetime is how long a helper runs at most: one that a test binary
// killed before its cleanup left behind does not stay.
const lifetime = 2 * time.Minute

// MainIfHelper runs the helper and exits when Env says this process is
// one, and returns at once when it does not. A test binary calls it before
// anything else, in TestMain or in an init function.
func MainIfHelper() {
	if mode := os.Getenv(Env); mode != "" {
		os.Exit(runHelper(mode))
	}
}

// runHelper is the helper; it returns its exit code.
func runHelper(mode string) int {
	if mode == HoldPorts {
		for i, a := range os.Args {
			if (a == "--http-port" || a == "--https-port") && i+1 < len(os.Args) {
				l, err := net.Listen("tcp", "127.0.0.1:"+os.Args[i+1])
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return 3
				}
				defer l.Close()
			}
		}
	}
	helperMain(lifetime) // prints "ready" once it is
	return 0
}

// Options are how Start runs the helper.
type Options struct {
	// Mode is Env's value for the helper: Plain when empty.
	Mode string
	// Started, when set, is called with the helper's pid right after it
	// starts, before anything waits for it: until then its pid cannot name
	// another process, so this is where a caller reads its identity (as
	// StartDetachedForward reads the forward's).
	Started func(pid int)
}

// Proc is a helper a test started. Its cleanup ends it and waits for it.
type Proc struct {
	Pid int

	cmd    *exec.Cmd
	exited chan struct{} // closed once the helper was waited for
	read   chan struct{} // closed once its output was read to the end
	stderr lockedBuffer

	mu      sync.Mutex
	lines   []string
	printed chan struct{} // closed, and replaced, when it prints a line
}

// Start runs the test binary as a plain helper whose arguments are args
// (args[0] is what the process calls itself), and waits until it is ready.
func Start(t testing.TB, args ...string) *Proc {
	t.Helper()
	return StartWith(t, Options{}, args...)
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options, args ...string) *Proc {
	t.Helper()
	if o.Mode == "" {
		o.Mode = Plain
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Args = args
	cmd.Env = append(os.Environ(), Env+"="+o.Mode)
	cmd.SysProcAttr = detachedAttr()
	cmd.Stdout = w
	p := &Proc{cmd: cmd, exited: make(chan struct{}), read: make(chan struct{}), printed: make(chan struct{})}
	cmd.Stderr = &p.stderr
	err = cmd.Start()
	w.Close() // the helper has its own copy: the pipe ends when it does
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	p.Pid = cmd.Process.Pid
	go p.readLines(r)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		<-p.read
		r.Close()
	})
	func() {
		// Started may end the test: the helper is waited for all the same.
		defer func() { go func() { _ = cmd.Wait(); close(p.exited) }() }()
		if o.Started != nil {
			o.Started(p.Pid)
		}
	}()
	if l := p.waitLines(t, 1, 30*time.Second); l[0] != "ready" {
		t.Fatalf("the helper (pid %d) printed %q", p.Pid, l)
	}
	return p
}

func (p *Proc) readLines(r *os.File) {
	defer close(p.read)
	s := bufio.NewScanner(r)
	for s.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, s.Text())
		close(p.printed)
		p.printed = make(chan struct{})
		p.mu.Unlock()
	}
}

// Lines are the lines the helper printed so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// waitLines waits until the helper has printed at least n lines and
// returns them, or fails the test if it ends or the timeout passes first.
func (p *Proc) waitLines(t testing.TB, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		lines, printed := append([]string(nil), p.lines...), p.printed
		p.mu.Unlock()
		if len(lines) >= n {
			return lines
		}
		select {
		case <-printed:
		case <-p.read:
			if l := p.Lines(); len(l) < n {
				<-p.exited
				t.Fatalf("the helper (pid %d) ended (%v) having printed %q, want %d line(s); stderr: %q", p.Pid, p.cmd.ProcessState, l, n, p.stderr.String())
			}
		case <-deadline.C:
			t.Fatalf("the helper (pid %d) printed %q in %v, want %d line(s)", p.Pid, p.Lines(), timeout, n)
		}
	}
}

// Exited is closed once the helper has ended and was waited for.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Kill ends the helper at once (SIGKILL, TerminateProcess); Ends waits for
// it.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing the helper (pid %d): %v", p.Pid, err)
	}
}

// Ends fails the test unless the helper ends within timeout. Once it
// returns the helper was waited for: its pid is free.
func (p *Proc) Ends(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("the helper (pid %d) still runs after %v; it printed %q", p.Pid, timeout, p.Lines())
	}
}

// lockedBuffer is the helper's stderr, written by exec's copying goroutine
// while a test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
