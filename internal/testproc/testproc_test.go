package testproc

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	MainIfHelper()
	os.Exit(m.Run())
}

// recorder is a test that a check fails without failing the real one.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure is what check says when it fails the test, or "" if it passes.
func failure(t *testing.T, check func(testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); check(r) }()
	<-done
	return r.msg
}

// stop sends the helper what stopping a forward sends: SIGTERM, or
// TerminateProcess on Windows.
func stop(t *testing.T, p *Proc) {
	t.Helper()
	var err error
	if runtime.GOOS == "windows" {
		err = p.cmd.Process.Kill()
	} else {
		err = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A helper nobody signalled still runs, as often as it is asked; on Unix
// it answered each SIGWINCH.
func TestStillRunsWhenLeftAlone(t *testing.T) {
	t.Parallel()
	var started int
	p := StartWith(t, Options{Started: func(pid int) { started = pid }}, "helper", "arg")
	if started != p.Pid || p.Pid == 0 {
		t.Fatalf("Started was called with %d, the helper's pid is %d", started, p.Pid)
	}
	if msg := failure(t, p.StillRuns); msg != "" {
		t.Fatal(msg)
	}
	p.StillRuns(t)
	want := []string{"ready"}
	if runtime.GOOS != "windows" {
		want = append(want, winch, winch)
	}
	if got := p.Lines(); !slices.Equal(got, want) {
		t.Fatalf("the helper printed %q, want %q", got, want)
	}
	select {
	case <-p.Exited():
		t.Fatal("the helper ended")
	default:
	}
}

// StillRuns fails for a helper that was stopped just before, without
// waiting for it to end: the stop is seen, not raced. (Before the helper
// left SIGTERM to the kernel, 2 of 100 such stops went unseen with -race.)
func TestStillRunsFailsWhenStopped(t *testing.T) {
	t.Parallel()
	for i := range 30 {
		p := Start(t, "helper")
		stop(t, p)
		msg := failure(t, p.StillRuns)
		if msg == "" {
			t.Fatalf("run %d: StillRuns passed for a helper that was stopped (it printed %q)", i, p.Lines())
		}
		p.Ends(t, 10*time.Second)
	}
}

// Ends passes once the helper ends and fails while it runs.
func TestEnds(t *testing.T) {
	t.Parallel()
	p := Start(t, "helper")
	if msg := failure(t, func(tb testing.TB) { p.Ends(tb, 50*time.Millisecond) }); !strings.Contains(msg, "still runs") {
		t.Fatalf("Ends on a running helper: %q", msg)
	}
	stop(t, p)
	p.Ends(t, 10*time.Second)
	if !endedByTerm(p) {
		t.Fatalf("the helper ended (%v) not by SIGTERM; it printed %q", p.cmd.ProcessState, p.Lines())
	}
}

// freePort is a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A helper told to hold ports listens on those its arguments name, from
// before it says it is ready.
func TestHoldPorts(t *testing.T) {
	t.Parallel()
	ports := []int{freePort(t), freePort(t)}
	p := StartWith(t, Options{Mode: HoldPorts}, "apimdev", "forward", "--http-port", strconv.Itoa(ports[0]), "--https-port", strconv.Itoa(ports[1]))
	for _, port := range ports {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
		if err != nil {
			t.Fatalf("port %d: %v", port, err)
		}
		c.Close()
	}
	p.StillRuns(t)
}

// A helper that cannot hold its port ends at once, and Start says why.
func TestHoldPortsFailsOnAPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	msg := failure(t, func(tb testing.TB) { StartWith(tb, Options{Mode: HoldPorts}, "apimdev", "--http-port", port) })
	if !strings.Contains(msg, "ended") {
		t.Fatalf("Start of a helper whose port is taken: %q", msg)
	}
}
