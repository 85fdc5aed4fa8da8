//go:build windows

package state

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/windows"
)

// tryLock takes an exclusive lock on f without waiting; busy says another
// process holds it. Windows releases it when the process ends.
func tryLock(f *os.File) (busy bool, err error) {
	ol := new(windows.Overlapped)
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		return true, nil
	}
	return false, err
}

func unlock(f *os.File) {
	_ = windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, new(windows.Overlapped))
}

// stillActive is the exit code of a process that runs (STILL_ACTIVE).
const stillActive = 259

// identityOf reads pid's creation time (GetProcessTimes).
func identityOf(pid int) (Identity, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return Identity{}, fmt.Errorf("opening process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	return handleIdentity(h, pid)
}

// handleIdentity is the identity of the process h is open on, while it runs.
func handleIdentity(h windows.Handle, pid int) (Identity, error) {
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return Identity{}, fmt.Errorf("reading process %d: %w", pid, err)
	}
	if code != stillActive {
		return Identity{}, fmt.Errorf("process %d has ended", pid)
	}
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return Identity{}, fmt.Errorf("reading process %d's start: %w", pid, err)
	}
	return Identity{Start: uint64(created.HighDateTime)<<32 | uint64(created.LowDateTime)}, nil
}

// terminateIf ends pid if it is still the process id names; false when it
// is not (nothing is touched). The check and the kill go through one
// handle, and a process's pid is not reused while a handle to it is open,
// so the process checked is the process ended. Windows has no SIGTERM for a
// detached process, so it is terminated; the wait is on the same handle.
func terminateIf(pid int, id Identity) (bool, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION|windows.PROCESS_TERMINATE|windows.SYNCHRONIZE, false, uint32(pid))
	if err != nil {
		if !sameProcess(pid, id) {
			return false, nil
		}
		return false, fmt.Errorf("opening process %d to stop it: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	if now, err := handleIdentity(h, pid); err != nil || now != id {
		return false, nil
	}
	if err := windows.TerminateProcess(h, 1); err != nil {
		return false, fmt.Errorf("stopping process %d: %w", pid, err)
	}
	_, _ = windows.WaitForSingleObject(h, 5000)
	return true, nil
}

// stopByHand is the command that stops pid.
func stopByHand(pid int) string { return "taskkill /PID " + strconv.Itoa(pid) + " /F" }

// commandLine: apimdev does not read another process's arguments on
// Windows.
func commandLine(int) ([]string, error) { return nil, errNoCommandLine }

// processes: there is no list to look through for a lost forward on
// Windows.
func processes() []int { return nil }
