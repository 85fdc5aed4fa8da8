package state

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/testdir"
	"github.com/apimdev/apimdev/internal/testproc"
)

func TestMain(m *testing.M) {
	testproc.MainIfHelper() // a helper process: a background forward, or a process that is not one
	os.Exit(m.Run())
}

// helper is a process a test started, with its identity read as
// StartDetachedForward reads its child's: right after the start, before it
// is waited for.
type helper struct {
	*testproc.Proc
	id Identity
}

// startHelper runs the test binary as a helper whose arguments read args
// (args[0] is what the process calls itself), detached as
// StartDetachedForward detaches the forward.
func startHelper(t *testing.T, args ...string) *helper {
	t.Helper()
	var id Identity
	var idErr error
	p := testproc.StartWith(t, testproc.Options{Started: func(pid int) { id, idErr = ProcessIdentity(pid) }}, args...)
	if idErr != nil || !id.known() {
		t.Fatalf("reading the helper's identity: %+v %v", id, idErr)
	}
	return &helper{Proc: p, id: id}
}

// stillRuns fails the test if h was sent SIGTERM (testproc.StillRuns), or
// is not the process it was any more.
func (h *helper) stillRuns(t *testing.T) {
	t.Helper()
	h.StillRuns(t)
	if !sameProcess(h.Pid, h.id) {
		t.Fatalf("the helper (pid %d) does not run any more", h.Pid)
	}
}

// ends fails the test unless h ends within 5 s.
func (h *helper) ends(t *testing.T) {
	t.Helper()
	h.Ends(t, 5*time.Second)
}

// forwardArgs are the arguments StartDetachedForward gives the forward.
func forwardArgs(cluster string, httpPort, httpsPort int) []string {
	return []string{"apimdev", "forward", "--cluster-name", cluster, "--kubeconfig", "kubeconfig", "--name", "contoso-gw",
		"--http-port", strconv.Itoa(httpPort), "--https-port", strconv.Itoa(httpsPort)}
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
	h.Kill(t)
	h.ends(t) // waited for: its pid is free now
	for _, id := range []Identity{h.id, {}} {
		c := cluster(t, "x")
		save(t, c, ForwardRecord{PID: h.Pid, Process: id, HTTPPort: 18090, HTTPSPort: 18490})
		chk := c.CheckForward()
		if chk.Running {
			t.Fatalf("%+v: the pid of an ended process reported alive", id)
		}
		if chk.Note != "the recorded background forward (pid "+strconv.Itoa(h.Pid)+") is gone" || recorded(c) {
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
	save(t, c, ForwardRecord{PID: other.Pid, Process: mine, HTTPPort: 18080, HTTPSPort: 18443})
	if _, ok := c.Forward(); ok {
		t.Fatal("another process passes for the forward")
	}
	save(t, c, ForwardRecord{PID: other.Pid, Process: mine, HTTPPort: 18080, HTTPSPort: 18443})
	chk, ok := c.StopForward()
	if ok || chk.Note != "the recorded background forward (pid "+strconv.Itoa(other.Pid)+") is gone" {
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
	save(t, c, ForwardRecord{PID: fwd.Pid, Process: fwd.id, HTTPPort: 18081, HTTPSPort: 18444, Started: time.Now()})
	if r, ok := c.Forward(); !ok || r.PID != fwd.Pid || r.HTTPPort != 18081 {
		t.Fatalf("Forward: %+v %v", r, ok)
	}
	chk, ok := c.StopForward()
	if !ok || chk.PID != fwd.Pid || chk.Note != "" {
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
	save(t, c, ForwardRecord{PID: fwd.Pid, Process: off, HTTPPort: 18082, HTTPSPort: 18445})
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
	if stopped, err := terminateIf(p.Pid, off); stopped || err != nil {
		t.Fatalf("terminateIf with another identity: %v %v", stopped, err)
	}
	p.stillRuns(t)
	if stopped, err := terminateIf(p.Pid, p.id); !stopped || err != nil {
		t.Fatalf("terminateIf with its identity: %v %v", stopped, err)
	}
	p.ends(t)
}
