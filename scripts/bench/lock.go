//go:build !windows

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// rigLock is the machine-wide lock every suite that makes kind clusters on
// this machine takes for its whole run.
const rigLock = "/tmp/apimdev-rig.lock"

// underLock reports whether an ancestor process is `flock <rigLock> ...`.
func underLock() bool {
	pid := os.Getppid()
	for i := 0; i < 32 && pid > 1; i++ {
		cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		args := strings.Split(string(cmd), "\x00")
		if len(args) > 1 && strings.HasSuffix(args[0], "flock") && strings.Contains(string(cmd), rigLock) {
			return true
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 {
			return false
		}
		pid, _ = strconv.Atoi(f[1])
	}
	return false
}

// keepInheritedFDs marks every file descriptor this process inherited beyond
// stdin, stdout and stderr close-on-exec. `flock` hands its lock to the bench
// as such a descriptor; without this, `apimdev up --detach` would pass it on
// to its background forward, which would then hold the machine's rig lock
// for as long as it runs.
func keepInheritedFDs() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// takeLock holds the rig lock for this process unless a `flock` parent holds
// it already; it waits for another holder, bounded by ctx. The returned
// function releases it.
func takeLock(ctx context.Context) (func(), error) {
	if underLock() {
		return func() {}, nil
	}
	f, err := os.OpenFile(rigLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !said {
			logf("waiting for %s (another suite is using the rig)", rigLock)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s: %w", rigLock, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}
