package state

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/testdir"
)

// helperEnv makes the test binary a helper process that sleeps (until a
// test stops it): a background forward, or a process that is not one.
const helperEnv = "APIMDEV_STATE_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		helperMain() // says "ready" on stdout, then as helper_*_test.go says
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper is a process a test started, with its identity read as
// StartDetachedForward reads its child's: right after the start, before it
// is waited for.
type helper struct {
	pid    int
	id     Identity
	cmd    *exec.Cmd
	out    *syncBuffer // what the helper printed
	exited chan struct{}
}

// syncBuffer is a buffer the helper's output is copied into while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSuffix(b.buf.String(), "\n"), "\n")
}

// waitLines waits until h has printed at least n lines, or fails the test.
func (h *helper) waitLines(t *testing.T, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if l := h.out.lines(); len(l) >= n && l[0] != "" {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("the helper (pid %d) printed %q, want %d line(s)", h.pid, h.out.lines(), n)
		}
	}
}

// startHelper runs the test binary as a helper whose arguments read args
// (args[0] is what the process calls itself), detached as
// StartDetachedForward detaches the forward.
func startHelper(t *testing.T, args ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Args = args
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.SysProcAttr = detachedAttr()
	out := &syncBuffer{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id, err := ProcessIdentity(cmd.Process.Pid)
	h := &helper{pid: cmd.Process.Pid, id: id, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-h.exited })
	if err != nil || !id.known() {
		t.Fatalf("reading the helper's identity: %+v %v", id, err)
	}
	if l := h.waitLines(t, 1); l[0] != "ready" {
		t.Fatalf("the helper printed %q", l)
	}
	return h
}

// forwardArgs are the arguments StartDetachedForward gives the forward.
func forwardArgs(cluster string, httpPort, httpsPort int) []string {
	return []string{"apimdev", "forward", "--cluster-name", cluster, "--kubeconfig", "kubeconfig", "--name", "contoso-gw",
		"--http-port", strconv.Itoa(httpPort), "--https-port", strconv.Itoa(httpsPort)}
}

// ends fails the test unless h ends within 5 s.
func (h *helper) ends(t *testing.T) {
	t.Helper()
	select {
	case <-h.exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("the helper (pid %d) still runs", h.pid)
	}
}

func cluster(t *testing.T, name string) ClusterDir {
	t.Helper()
	c, err := ForCluster(testdir.New(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func save(t *testing.T, c ClusterDir, r ForwardRecord) {
	t.Helper()
	if err := c.SaveForward(r); err != nil {
		t.Fatal(err)
	}
}

func recorded(c ClusterDir) bool {
	_, err := os.Stat(c.forwardFile())
	return err == nil
}

// A record of a forward that has ended (a process that ran, was recorded
// with its identity, and exited), from this apimdev or an older one (no
// start time), is stale on every OS: called gone and forgotten.
func TestForwardRecordOfDeadProcess(t *testing.T) {
	t.Parallel()
	h := startHelper(t, forwardArgs("x", 18090, 18490)...)
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	h.ends(t) // waited for: its pid is free now
	for _, id := range []Identity{h.id, {}} {
		c := cluster(t, "x")
		save(t, c, ForwardRecord{PID: h.pid, Process: id, HTTPPort: 18090, HTTPSPort: 18490})
		chk := c.CheckForward()
		if chk.Running {
			t.Fatalf("%+v: the pid of an ended process reported alive", id)
		}
		if chk.Note != "the recorded background forward (pid "+strconv.Itoa(h.pid)+") is gone" || recorded(c) {
			t.Fatalf("%+v: note %q, record kept %v: want it called gone and forgotten", id, chk.Note, recorded(c))
		}
	}
}

// The forward's record names a pid that another process has now (the
// identity recorded is another process's): that process is never
// signalled, and the stale record is forgotten.
func TestStopForwardSparesAProcessThatHasThePidNow(t *testing.T) {
	t.Parallel()
	other := startHelper(t, "unrelated")
	c := cluster(t, "reused")
	mine, err := ProcessIdentity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	save(t, c, ForwardRecord{PID: other.pid, Process: mine, HTTPPort: 18080, HTTPSPort: 18443})
	if _, ok := c.Forward(); ok {
		t.Fatal("another process passes for the forward")
	}
	save(t, c, ForwardRecord{PID: other.pid, Process: mine, HTTPPort: 18080, HTTPSPort: 18443})
	chk, ok := c.StopForward()
	if ok || chk.Note != "the recorded background forward (pid "+strconv.Itoa(other.pid)+") is gone" {
		t.Fatalf("StopForward: %v %q", ok, chk.Note)
	}
	other.stillRuns(t)
	if recorded(c) {
		t.Fatal("the stale record was kept")
	}
}

// A forward started the way StartDetachedForward starts it, recorded with
// its identity, is the forward: Forward reports it and StopForward stops it.
func TestStopForwardStopsTheForwardItRecorded(t *testing.T) {
	t.Parallel()
	fwd := startHelper(t, forwardArgs("mine", 18081, 18444)...)
	c := cluster(t, "mine")
	save(t, c, ForwardRecord{PID: fwd.pid, Process: fwd.id, HTTPPort: 18081, HTTPSPort: 18444, Started: time.Now()})
	if r, ok := c.Forward(); !ok || r.PID != fwd.pid || r.HTTPPort != 18081 {
		t.Fatalf("Forward: %+v %v", r, ok)
	}
	chk, ok := c.StopForward()
	if !ok || chk.PID != fwd.pid || chk.Note != "" {
		t.Fatalf("StopForward: %+v %v", chk, ok)
	}
	fwd.ends(t)
	if recorded(c) {
		t.Fatal("the record of the stopped forward was kept")
	}
}

// A start time one tick off is another process: not signalled, and the
// record is forgotten. (The helper does not call itself apimdev, or on Linux
// the search for a forward whose record was lost would rightly find it.)
func TestStartTimeOneTickOffIsNotTheForward(t *testing.T) {
	t.Parallel()
	fwd := startHelper(t, append([]string{"helper"}, forwardArgs("tick", 18082, 18445)[1:]...)...)
	c := cluster(t, "tick")
	off := fwd.id
	off.Start++
	save(t, c, ForwardRecord{PID: fwd.pid, Process: off, HTTPPort: 18082, HTTPSPort: 18445})
	if _, ok := c.StopForward(); ok {
		t.Fatal("StopForward claims to have stopped a process whose start time differs")
	}
	fwd.stillRuns(t)
	if recorded(c) {
		t.Fatal("the stale record was kept")
	}
}

func TestParseForwardArgs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		ok   bool
	}{
		{forwardArgs("c1", 8080, 8443), true},
		{append([]string{"/usr/local/bin/apimdev"}, forwardArgs("c1", 8080, 8443)[1:]...), true},
		{forwardArgs("c2", 8080, 8443), false}, // another cluster's
		{append([]string{"ssh"}, forwardArgs("c1", 8080, 8443)[1:]...), false},
		{[]string{"apimdev", "forward", "--kubeconfig", "k", "--cluster-name", "c1", "--http-port", "8080"}, false},
		{[]string{"apimdev", "forward", "--cluster-name", "c1"}, false}, // no port
		{[]string{"apimdev", "up", "--cluster-name", "c1", "--http-port", "8080"}, false},
	} {
		r, ok := parseForwardArgs(c.args, "c1")
		if ok != c.ok || ok && (r.HTTPPort != 8080 || r.HTTPSPort != 8443) {
			t.Errorf("%q: %+v %v, want %v", c.args, r, ok, c.ok)
		}
	}
}

// terminateIf checks the identity in the same step as it signals (a pidfd,
// a process handle): with an identity one tick off it signals nothing; with
// the right one it stops the process.
func TestTerminateIfChecksTheIdentity(t *testing.T) {
	t.Parallel()
	p := startHelper(t, "helper")
	off := p.id
	off.Start--
	if stopped, err := terminateIf(p.pid, off); stopped || err != nil {
		t.Fatalf("terminateIf with another identity: %v %v", stopped, err)
	}
	p.stillRuns(t)
	if stopped, err := terminateIf(p.pid, p.id); !stopped || err != nil {
		t.Fatalf("terminateIf with its identity: %v %v", stopped, err)
	}
	p.ends(t)
}
