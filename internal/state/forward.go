package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Identity tells one process apart from every other process that has had,
// or will have, its pid: the process's start time as the OS reports it. On
// Linux that is clock ticks since boot, with the boot's id (so a reboot
// cannot alias it); on macOS microseconds since the epoch; on Windows the
// creation time in 100 ns intervals since 1601. The zero Identity is unknown
// (a record written by an older apimdev).
type Identity struct {
	Start  uint64 `json:"start"`
	BootID string `json:"bootId,omitempty"`
}

func (i Identity) known() bool { return i.Start != 0 }

// ProcessIdentity is the identity of the process that runs as pid now. It
// fails when no process runs there (a zombie does not run) or the OS does not
// say. Read a child's right after starting it, before it is waited for:
// until then its pid cannot name another process.
func ProcessIdentity(pid int) (Identity, error) {
	if pid <= 0 {
		return Identity{}, fmt.Errorf("no process has pid %d", pid)
	}
	return identityOf(pid)
}

// sameProcess says pid runs and is the process id names.
func sameProcess(pid int, id Identity) bool {
	now, err := identityOf(pid)
	return err == nil && id.known() && now == id
}

// errNoCommandLine says this OS gives apimdev no other process's arguments.
var errNoCommandLine = errors.New("this OS does not show another process's arguments")

// errNotForward says a pid is not a running background forward of the cluster.
var errNotForward = errors.New("not a background forward of this cluster")

// ForwardRecord describes a detached forward process.
type ForwardRecord struct {
	PID int `json:"pid"`
	// Process is the identity of the process at PID when it was recorded
	// (zero in a record written by an older apimdev).
	Process   Identity  `json:"process,omitzero"`
	HTTPPort  int       `json:"httpPort"`
	HTTPSPort int       `json:"httpsPort"`
	Started   time.Time `json:"started"`
}

// ForwardCheck is what the record of the background forward proves.
type ForwardCheck struct {
	ForwardRecord
	// Running says the recorded process runs and is provably the forward
	// apimdev started (its pid and start time match the record).
	Running bool
	// Note says, in one line, why a record that was there is not used
	// ("" when there was none or it is used).
	Note string
}

func (c ClusterDir) forwardFile() string { return filepath.Join(c.Dir, "forward.json") }

// SaveForward records a detached forward (0600).
func (c ClusterDir) SaveForward(r ForwardRecord) error {
	b, _ := json.Marshal(r)
	return WriteFile(c.forwardFile(), b)
}

func (c ClusterDir) forgetForward() { _ = os.Remove(c.forwardFile()) }

// Forward returns the recorded detached forward if it provably still runs
// (see CheckForward).
func (c ClusterDir) Forward() (ForwardRecord, bool) {
	chk := c.CheckForward()
	return chk.ForwardRecord, chk.Running
}

// CheckForward tells whether the recorded detached forward still runs. The
// record is believed only when the process with its pid has the start time
// it recorded. A record from an older apimdev (no start time) is believed on
// Linux when the process's arguments are `apimdev forward --cluster-name
// <this cluster> ...` (and is then completed with the start time); on other
// OSes it is kept but not believed. A record that fails the check is stale
// and forgotten. Without a record (the state directory was lost) a
// background forward of this cluster that still runs is found by its
// arguments (Linux only) and recorded again.
func (c ClusterDir) CheckForward() ForwardCheck {
	var r ForwardRecord
	b, err := os.ReadFile(c.forwardFile())
	if err == nil && json.Unmarshal(b, &r) == nil && r.PID > 0 {
		chk, stale := c.checkRecord(r)
		if !stale {
			return chk
		}
		c.forgetForward()
		if stray, ok := c.findForward(); ok {
			return ForwardCheck{ForwardRecord: stray, Running: true}
		}
		return chk
	}
	if stray, ok := c.findForward(); ok {
		return ForwardCheck{ForwardRecord: stray, Running: true}
	}
	return ForwardCheck{ForwardRecord: r}
}

func goneNote(pid int) string {
	return fmt.Sprintf("the recorded background forward (pid %d) is gone", pid)
}

// checkRecord proves r, or says why not; stale says the record no longer
// names a running forward.
func (c ClusterDir) checkRecord(r ForwardRecord) (chk ForwardCheck, stale bool) {
	if r.Process.known() {
		if sameProcess(r.PID, r.Process) {
			return ForwardCheck{ForwardRecord: r, Running: true}, false
		}
		return ForwardCheck{ForwardRecord: r, Note: goneNote(r.PID)}, true
	}
	found, err := c.forwardAt(r.PID)
	switch {
	case err == nil:
		r.Process = found.Process
		_ = c.SaveForward(r)
		return ForwardCheck{ForwardRecord: r, Running: true}, false
	case errors.Is(err, errNoCommandLine):
		return ForwardCheck{ForwardRecord: r, Note: fmt.Sprintf(
			"pid %d, recorded as the background forward by an older apimdev, runs but cannot be proven to be it, so apimdev leaves it alone: if it is the forward, stop it with `%s`; if not, delete %s",
			r.PID, stopByHand(r.PID), c.forwardFile())}, false
	default:
		return ForwardCheck{ForwardRecord: r, Note: goneNote(r.PID)}, true
	}
}

// forwardAt proves that pid is a background forward of this cluster by its
// arguments, `apimdev forward --cluster-name <cluster> ...` (as
// StartDetachedForward has always started it), and returns it with the
// ports from its arguments and its identity. The identity is read before
// and after the arguments, so a pid reused in between is not taken.
// errNoCommandLine says this OS cannot tell; errNotForward that pid is
// not such a process.
func (c ClusterDir) forwardAt(pid int) (ForwardRecord, error) {
	if pid == os.Getpid() {
		return ForwardRecord{}, errNotForward
	}
	before, err := identityOf(pid)
	if err != nil {
		return ForwardRecord{}, errNotForward
	}
	args, err := commandLine(pid)
	if errors.Is(err, errNoCommandLine) {
		return ForwardRecord{}, err
	}
	if err != nil || !sameProcess(pid, before) {
		return ForwardRecord{}, errNotForward
	}
	r, ok := parseForwardArgs(args, filepath.Base(c.Dir))
	if !ok {
		return ForwardRecord{}, errNotForward
	}
	r.PID, r.Process = pid, before
	return r, nil
}

// parseForwardArgs reads the ports of `apimdev forward --cluster-name
// <cluster> ...`; false for any other command line.
func parseForwardArgs(args []string, cluster string) (ForwardRecord, bool) {
	if len(args) < 4 || !strings.HasPrefix(filepath.Base(args[0]), "apimdev") ||
		args[1] != "forward" || args[2] != "--cluster-name" || args[3] != cluster {
		return ForwardRecord{}, false
	}
	var r ForwardRecord
	for i := 4; i+1 < len(args); i++ {
		switch args[i] {
		case "--http-port":
			r.HTTPPort, _ = strconv.Atoi(args[i+1])
		case "--https-port":
			r.HTTPSPort, _ = strconv.Atoi(args[i+1])
		}
	}
	return r, r.HTTPPort > 0
}

// findForward looks through the running processes for a background forward
// of this cluster and records it, with its identity (Linux only: elsewhere
// there is no list of other processes' arguments).
func (c ClusterDir) findForward() (ForwardRecord, bool) {
	for _, pid := range processes() {
		r, err := c.forwardAt(pid)
		if err != nil {
			continue
		}
		r.Started = time.Now()
		_ = c.SaveForward(r)
		return r, true
	}
	return ForwardRecord{}, false
}

// StopForward ends the detached forward when its record proves it is the
// forward apimdev started (see CheckForward), waits for it to end, and
// forgets it; ok says it was stopped. No other process is ever signalled:
// a stale record is forgotten, and Note says what happened to a record that
// was not acted on.
func (c ClusterDir) StopForward() (ForwardCheck, bool) {
	chk := c.CheckForward()
	if !chk.Running {
		return chk, false
	}
	stopped, err := terminateIf(chk.PID, chk.Process)
	switch {
	case err != nil:
		chk.Running = false
		chk.Note = fmt.Sprintf("could not stop the background forward (pid %d): %v; stop it with `%s`", chk.PID, err, stopByHand(chk.PID))
		return chk, false
	case !stopped: // it ended between the check and the signal
		c.forgetForward()
		chk.Running, chk.Note = false, goneNote(chk.PID)
		return chk, false
	}
	for i := 0; i < 50 && sameProcess(chk.PID, chk.Process); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	c.forgetForward()
	chk.Running = false
	return chk, true
}
