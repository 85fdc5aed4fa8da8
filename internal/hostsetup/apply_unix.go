//go:build !windows

package hostsetup

import (
	"fmt"
	"os"
	"syscall"
)

// rootOwned refuses a directory a non-root user could write into: a file
// root runs must not be replaceable.
func rootOwned(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
		return fmt.Errorf("%s is not owned by root: a program root runs must not live there", dir)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s can be written by others than root: a program root runs must not live there", dir)
	}
	return nil
}
