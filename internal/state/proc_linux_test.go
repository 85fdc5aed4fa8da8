package state

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
)

// onDisk is the record as the file has it.
func onDisk(t *testing.T, c ClusterDir) ForwardRecord {
	t.Helper()
	b, err := os.ReadFile(c.forwardFile())
	if err != nil {
		t.Fatalf("no record: %v", err)
	}
	var r ForwardRecord
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// A background forward whose record was lost with the state directory is
// found by its arguments, recorded again with its start time, and stopped
// by StopForward; another cluster does not take it for its own.
func TestForwardFindsAForwardWhoseRecordWasLost(t *testing.T) {
	t.Parallel()
	fwd := startHelper(t, forwardArgs("lost-state", 18999, 18998)...)
	c := cluster(t, "lost-state")
	r, ok := c.Forward()
	if !ok || r.PID != fwd.Pid || r.HTTPPort != 18999 || r.HTTPSPort != 18998 {
		t.Fatalf("found %+v %v, want pid %d on 18999/18998", r, ok, fwd.Pid)
	}
	if got := onDisk(t, c); got.PID != fwd.Pid || got.Process != fwd.id {
		t.Fatalf("recorded again as %+v, want pid %d with identity %+v", got, fwd.Pid, fwd.id)
	}
	if _, ok := cluster(t, "another-cluster").Forward(); ok {
		t.Fatal("another cluster's forward was taken for this one's")
	}
	if _, ok := c.StopForward(); !ok {
		t.Fatal("StopForward did not stop it")
	}
	fwd.ends(t)
}

// A record from an older apimdev (no start time) is believed on Linux when
// the process's arguments are this cluster's forward's: it is completed
// with the start time, and StopForward stops the forward.
func TestOldRecordOfTheForwardIsProvenByItsArguments(t *testing.T) {
	t.Parallel()
	fwd := startHelper(t, forwardArgs("old", 18997, 18996)...)
	c := cluster(t, "old")
	save(t, c, ForwardRecord{PID: fwd.Pid, HTTPPort: 18997, HTTPSPort: 18996})
	if _, ok := c.Forward(); !ok {
		t.Fatal("the old record of a running forward was not believed")
	}
	if got := onDisk(t, c); got.Process != fwd.id {
		t.Fatalf("the old record was not completed: %+v, want identity %+v", got, fwd.id)
	}
	if _, ok := c.StopForward(); !ok {
		t.Fatal("StopForward did not stop it")
	}
	fwd.ends(t)
}

// A record from an older apimdev whose pid another program has now is
// stale: that program is not signalled, even with "forward" in its
// arguments (what the older check looked for), or when it is the forward
// of another cluster.
func TestOldRecordOfAnotherProcessIsStale(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"ssh", "-N", "forward", "--cluster-name", "old-other"},
		forwardArgs("someone-elses", 18995, 18994),
	} {
		other := startHelper(t, args...)
		c := cluster(t, "old-other")
		save(t, c, ForwardRecord{PID: other.Pid, HTTPPort: 18995, HTTPSPort: 18994})
		chk, ok := c.StopForward()
		if ok || chk.Note != "the recorded background forward (pid "+strconv.Itoa(other.Pid)+") is gone" {
			t.Fatalf("%q: StopForward %v %q", args, ok, chk.Note)
		}
		other.stillRuns(t)
		if recorded(c) {
			t.Fatalf("%q: the stale record was kept", args)
		}
	}
}
