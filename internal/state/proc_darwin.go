package state

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// sZomb is p_stat of a process that has ended and waits to be reaped
// (<sys/proc.h>).
const sZomb = 5

// identityOf reads pid's start time from the kernel's process table
// (sysctl kern.proc.pid, p_starttime), in microseconds since the epoch. A
// zombie has ended: it is no one.
func identityOf(pid int) (Identity, error) {
	k, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return Identity{}, fmt.Errorf("no process %d: %w", pid, err)
	}
	if int(k.Proc.P_pid) != pid || k.Proc.P_stat == sZomb {
		return Identity{}, fmt.Errorf("process %d has ended", pid)
	}
	t := k.Proc.P_starttime
	return Identity{Start: uint64(t.Sec)*1_000_000 + uint64(t.Usec)}, nil
}

// terminateIf sends SIGTERM (the forward drains its connections) to pid if
// it is still the process id names; false when it is not (nothing is
// signalled). macOS has no handle that pins a process, so the check comes
// right before the signal: a pid is reused only after the kernel has handed
// out every other one (up to 99999) since.
func terminateIf(pid int, id Identity) (bool, error) {
	if !sameProcess(pid, id) {
		return false, nil
	}
	err := unix.Kill(pid, unix.SIGTERM)
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	return err == nil, err
}

// commandLine: apimdev does not read another process's arguments on macOS.
func commandLine(int) ([]string, error) { return nil, errNoCommandLine }

// processes: there is no list to look through for a lost forward on macOS.
func processes() []int { return nil }
