//go:build !windows

package pipeline

import (
	"os"
	"strconv"
	"syscall"
)

// closeInheritedOnExec marks every descriptor above stderr close-on-exec.
// Go opens its own files that way, but descriptors this process inherited
// (a shell's redirections, the lock file of `flock FILE apimdev up`) are not,
// and a long-lived child such as the background forward would hold them
// open for as long as it runs: a lock that is never released, a pipe that
// never reaches EOF.
func closeInheritedOnExec() {
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
				syscall.CloseOnExec(fd)
			}
		}
		return
	}
}

// detached starts the background forward in a session of its own, so it
// outlives the terminal that started it.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
