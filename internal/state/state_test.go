package state

import (
	"errors"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestLockExcludesASecondHolder(t *testing.T) {
	t.Parallel()
	c, err := ForCluster(testdir.New(t), "apimdev")
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
