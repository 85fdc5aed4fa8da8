package testproc

import (
	"syscall"
	"unsafe"
)

// termByDefault gives SIGTERM back its default action (SIG_DFL: end the
// process) in place of the Go runtime's handler, which would hand it to a
// goroutine, and reports whether it did. Go has no call for that, so it is
// rt_sigaction itself: a struct sigaction of zeros is SIG_DFL with no flags
// and an empty mask on every Linux architecture (sigset_t is 8 bytes).
func termByDefault() bool {
	var act [4]uint64
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGTERM), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	return errno == 0
}
