package state

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// identityOf reads pid's start time (field 22 of /proc/<pid>/stat, clock
// ticks since boot) and the boot's id. A zombie has ended: it is no one.
func identityOf(pid int) (Identity, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Identity{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces and
	// parentheses: the fields that follow start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return Identity{}, fmt.Errorf("reading /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return Identity{}, fmt.Errorf("reading /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	if f[0] == "Z" || f[0] == "X" {
		return Identity{}, fmt.Errorf("process %d has ended", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return Identity{}, fmt.Errorf("reading /proc/%d/stat: start time %q", pid, f[19])
	}
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return Identity{Start: start, BootID: strings.TrimSpace(string(boot))}, nil
}

// terminateIf sends SIGTERM (the forward drains its connections) to pid if
// it is still the process id names; false when it is not (nothing is
// signalled). A pidfd names one process for good: opened first and checked
// after, the pid cannot be reused between the check and the signal. Without
// pidfds (Linux before 5.3, some sandboxes) the check comes right before the
// signal.
func terminateIf(pid int, id Identity) (bool, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	if err != nil {
		if !sameProcess(pid, id) {
			return false, nil
		}
		return signalled(unix.Kill(pid, unix.SIGTERM))
	}
	defer unix.Close(fd)
	if !sameProcess(pid, id) {
		return false, nil
	}
	return signalled(unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0))
}

// signalled reads a signal's error: ESRCH is a process that ended first.
func signalled(err error) (bool, error) {
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	return err == nil, err
}

// commandLine is pid's arguments, from /proc/<pid>/cmdline.
func commandLine(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// processes lists the pids in /proc.
func processes() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}
