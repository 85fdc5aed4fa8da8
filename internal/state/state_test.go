package state

import (
	"errors"
	"os"
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
