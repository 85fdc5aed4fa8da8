//go:build !windows

package state

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/testdir"
)

// POSIX file modes and process arguments in /proc: what these tests check
// does not exist on Windows.

func TestFilesArePrivate(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
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

// A background forward whose record was lost with the state directory is
// found by its command line, recorded again, and stopped by StopForward.
func TestForwardFindsAForwardWhoseRecordWasLost(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("no /proc here: not Linux")
	}
	dir := testdir.New(t)
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
	c, err := ForCluster(testdir.New(t), "lost-state")
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
	if other, _ := ForCluster(testdir.New(t), "another-cluster"); true {
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
