package pipeline

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/state"
)

// detachedForwardEnv makes the test binary, started by StartDetachedForward
// as `<self> forward ...`, stand in for the forward: it holds the two ports
// of its arguments until it is stopped.
const detachedForwardEnv = "APIMDEV_PIPELINE_TEST_FORWARD"

func init() {
	if len(os.Args) < 2 || os.Args[1] != "forward" || os.Getenv(detachedForwardEnv) != "1" {
		return
	}
	for i, a := range os.Args {
		if (a == "--http-port" || a == "--https-port") && i+1 < len(os.Args) {
			l, err := net.Listen("tcp", "127.0.0.1:"+os.Args[i+1])
			if err != nil {
				os.Exit(3)
			}
			defer l.Close()
		}
	}
	time.Sleep(2 * time.Minute)
	os.Exit(0)
}

// The background forward StartDetachedForward starts is recorded with its
// pid and its start time as the OS reports it, and StopForward stops it.
func TestDetachedForwardIsRecordedWithItsStartTime(t *testing.T) {
	t.Setenv(detachedForwardEnv, "1") // the child inherits it
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
	other := exec.Command(os.Args[0], "-test.run=^TestHelperForward$", "--", "forward")
	other.Env = append(os.Environ(), "APIMDEV_HELPER_FORWARD=1")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	id, idErr := state.ProcessIdentity(other.Process.Pid)
	exited := make(chan struct{})
	go func() { _ = other.Wait(); close(exited) }()
	t.Cleanup(func() { _ = other.Process.Kill(); <-exited })
	if idErr != nil {
		t.Fatal(idErr)
	}
	stale := id
	stale.Start++
	rec := state.ForwardRecord{PID: other.Process.Pid, Process: stale, HTTPPort: 18080, HTTPSPort: 18443}
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
	select {
	case <-exited:
		t.Fatal("down signalled the process that has the recorded pid now")
	case <-time.After(300 * time.Millisecond):
	}
}
