//go:build !windows

package state

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// tryLock takes an exclusive lock on f without waiting; busy says another
// process holds it. The lock dies with the process.
func tryLock(f *os.File) (busy bool, err error) {
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}

func unlock(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

// terminate asks the process to stop (the forward drains its connections).
func terminate(pid int) { _ = syscall.Kill(pid, syscall.SIGTERM) }

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie or a reused pid of another program is not our forward.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return true // no /proc (macOS): trust kill(0)
	}
	return strings.Contains(string(b), "forward")
}
