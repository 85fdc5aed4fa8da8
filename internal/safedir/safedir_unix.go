//go:build !windows

package safedir

import (
	"fmt"
	"os"
	"syscall"
)

// untrusted says why someone other than this process's user (or root)
// could change p; "" when nobody could.
func untrusted(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return err.Error()
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	uid := uint32(os.Geteuid())
	if sys.Uid != 0 && sys.Uid != uid {
		return fmt.Sprintf("%s is owned by uid %d", p, sys.Uid)
	}
	sticky := st.Mode()&os.ModeSticky != 0
	if st.Mode().Perm()&0o022 != 0 && !sticky {
		return fmt.Sprintf("%s can be written by its group or by others (mode %o)", p, st.Mode().Perm())
	}
	return ""
}
