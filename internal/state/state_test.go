package state

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestLockExcludesASecondHolder(t *testing.T) {
	t.Parallel()
	c, err := ForCluster(t.TempDir(), "apimdev")
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire("apimdev", 0)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description, so a second open in this process
	// stands in for a second process.
	_, err = c.Acquire("apimdev", 150*time.Millisecond)
	var le *LockedError
	if !errors.As(err, &le) || le.Holder == "" || le.Hint() == "" {
		t.Fatalf("second acquire: %v", err)
	}
	l.Release()
	l2, err := c.Acquire("apimdev", 0)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

func TestFilesArePrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := ForCluster(filepath.Join(dir, "state"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(c.Kubeconfig(), []byte("k")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{c.Dir: 0o700, filepath.Join(dir, "state"): 0o700, c.Kubeconfig(): 0o600} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v", p, st.Mode().Perm(), err)
		}
	}
}

func TestForwardRecordOfDeadProcess(t *testing.T) {
	t.Parallel()
	c, _ := ForCluster(t.TempDir(), "x")
	if err := c.SaveForward(ForwardRecord{PID: 1 << 22, HTTPPort: 8080}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Forward(); ok {
		t.Fatal("a dead pid reported alive")
	}
}

// A background forward whose record was lost with the state directory is
// found by its command line, recorded again, and stopped by StopForward.
func TestForwardFindsAForwardWhoseRecordWasLost(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("no /proc here: not Linux")
	}
	dir := t.TempDir()
	// sh runs ./forward (a script that sleeps), so the process's arguments
	// read "apimdev forward --cluster-name lost-state ...", as apimdev's do.
	os.WriteFile(filepath.Join(dir, "forward"), []byte("sleep 30\n"), 0o700)
	cmd := exec.Command("/bin/sh")
	cmd.Args = []string{"apimdev", "forward", "--cluster-name", "lost-state", "--http-port", "18999", "--https-port", "18998"}
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	c, err := ForCluster(t.TempDir(), "lost-state")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var r ForwardRecord
	ok := false
	for !ok && time.Now().Before(deadline) {
		r, ok = c.Forward()
		time.Sleep(20 * time.Millisecond)
	}
	if !ok || r.PID != cmd.Process.Pid || r.HTTPPort != 18999 || r.HTTPSPort != 18998 {
		t.Fatalf("found %+v %v, want pid %d on 18999/18998", r, ok, cmd.Process.Pid)
	}
	if _, err := os.Stat(c.forwardFile()); err != nil {
		t.Fatalf("not recorded again: %v", err)
	}
	if other, _ := ForCluster(t.TempDir(), "another-cluster"); true {
		if _, ok := other.Forward(); ok {
			t.Fatal("another cluster's forward was taken for this one's")
		}
	}
	if _, ok := c.StopForward(); !ok {
		t.Fatal("StopForward did not stop it")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the forward still runs after StopForward")
	}
}
