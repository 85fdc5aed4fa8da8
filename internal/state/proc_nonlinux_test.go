//go:build !linux

package state

import (
	"strconv"
	"strings"
	"testing"
)

// A record from an older apimdev (no start time) whose pid runs cannot be
// proven outside Linux: it is not reported running, never signalled, kept,
// and the note says the pid and how to stop it by hand.
func TestOldRecordIsNeverSignalledWhereArgumentsCannotBeRead(t *testing.T) {
	t.Parallel()
	fwd := startHelper(t, forwardArgs("old", 18993, 18992)...)
	c := cluster(t, "old")
	save(t, c, ForwardRecord{PID: fwd.Pid, HTTPPort: 18993, HTTPSPort: 18992})
	chk, ok := c.StopForward()
	if ok || chk.Running {
		t.Fatal("StopForward acted on a record it cannot prove")
	}
	for _, want := range []string{"pid " + strconv.Itoa(fwd.Pid), stopByHand(fwd.Pid), "older apimdev"} {
		if !strings.Contains(chk.Note, want) {
			t.Errorf("note %q lacks %q", chk.Note, want)
		}
	}
	fwd.stillRuns(t)
	if !recorded(c) {
		t.Fatal("the record was dropped: nothing would say the pid any more")
	}
}
