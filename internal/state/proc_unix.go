//go:build !windows

package state

import (
	"errors"
	"os"
	"strconv"
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

// stopByHand is the command that stops pid.
func stopByHand(pid int) string { return "kill " + strconv.Itoa(pid) }
