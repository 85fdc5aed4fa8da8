package pipeline

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/testproc"
)

// The test binary is also the helper process of testproc: what
// StartDetachedForward starts in TestDetachedForwardIsRecordedWithItsStartTime,
// and a process that has a recorded pid now.
func init() { testproc.MainIfHelper() }

// startHelper runs a helper process whose command line says forward, and
// reads its identity as StartDetachedForward reads the forward's: right
// after the start, before anything waits for it.
func startHelper(t *testing.T) (*testproc.Proc, state.Identity) {
	t.Helper()
	var id state.Identity
	var idErr error
	p := testproc.StartWith(t, testproc.Options{Started: func(pid int) { id, idErr = state.ProcessIdentity(pid) }}, "helper", "forward")
	if idErr != nil {
		t.Fatal(idErr)
	}
	return p, id
}

// The background forward StartDetachedForward starts is recorded with its
// pid and its start time as the OS reports it, and StopForward stops it.
func TestDetachedForwardIsRecordedWithItsStartTime(t *testing.T) {
	t.Setenv(testproc.Env, testproc.HoldPorts) // the child inherits it: it holds the forward's ports
	w := newWorld(t)
	s := w.session()
	s.Timeouts.ForwardStart = 20 * time.Second // a test binary with -race starts slowly on a busy machine
	pid, err := s.StartDetachedForward(context.Background(), os.Args[0], "")
	if err != nil {
		log, _ := os.ReadFile(w.files.ForwardLog())
		t.Fatalf("StartDetachedForward: %v\n%s", err, log)
	}
	t.Cleanup(func() { w.files.StopForward() })
	id, err := state.ProcessIdentity(pid)
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := w.files.Forward()
	if !ok || rec.PID != pid || rec.Process != id || rec.HTTPPort != w.cfg.Forward.HTTPPort {
		t.Fatalf("recorded %+v (running %v), want pid %d with identity %+v", rec, ok, pid, id)
	}
	if st := s.Status(context.Background()); !st.Forward.Running || st.Forward.PID != pid {
		t.Fatalf("status: %+v", st.Forward)
	}
	stopped, ok := w.files.StopForward()
	if !ok || stopped.PID != pid {
		t.Fatalf("StopForward: %+v %v", stopped, ok)
	}
	if now, err := state.ProcessIdentity(pid); err == nil && now == id {
		t.Fatal("the forward still runs after StopForward")
	}
	if st := s.Status(context.Background()); st.Forward.Running || st.Forward.Note != "" {
		t.Fatalf("status after stop: %+v", st.Forward)
	}
}

// A record whose pid another process has now (its start time differs) is
// not the forward: status and down say it is gone, and down signals nothing.
func TestStatusAndDownSayAStaleForwardIsGone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	other, id := startHelper(t)
	stale := id
	stale.Start++
	rec := state.ForwardRecord{PID: other.Pid, Process: stale, HTTPPort: 18080, HTTPSPort: 18443}
	want := "the recorded background forward (pid " + strconv.Itoa(rec.PID) + ") is gone"
	if err := w.files.SaveForward(rec); err != nil {
		t.Fatal(err)
	}
	if st := w.session().Status(context.Background()); st.Forward.Running || st.Forward.Note != want {
		t.Fatalf("status: %+v, want the note %q", st.Forward, want)
	}
	if err := w.files.SaveForward(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.session().Down(context.Background(), false); err != nil {
		t.Fatalf("down: %v\n%s", err, w.log.text())
	}
	if !strings.Contains(w.log.text(), want) {
		t.Fatalf("down did not say the forward is gone:\n%s", w.log.text())
	}
	other.StillRuns(t) // down signalled nothing to the process that has the recorded pid now
}

// down stops a running background forward beside the cluster's deletion and
// joins it: when down returns, the forward has ended, down has said so, and
// the cluster is deleted.
func TestDownStopsTheForwardBesideTheDeletion(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p, id := startHelper(t)
	if err := w.files.SaveForward(state.ForwardRecord{PID: p.Pid, Process: id, HTTPPort: 18080, HTTPSPort: 18443}); err != nil {
		t.Fatal(err)
	}
	w.kind.state = cluster.ClusterOurs
	if err := w.session().Down(context.Background(), false); err != nil {
		t.Fatalf("down: %v\n%s", err, w.log.text())
	}
	if want := "stopped the background forward (pid " + strconv.Itoa(p.Pid) + ")"; !strings.Contains(w.log.text(), want) {
		t.Fatalf("down did not say %q:\n%s", want, w.log.text())
	}
	if now, err := state.ProcessIdentity(p.Pid); err == nil && now == id {
		t.Fatal("the forward still runs after down returned")
	}
	if w.kind.asked("Delete") != 1 {
		t.Fatalf("down did not delete the cluster: %v", w.kind.calls)
	}
}
