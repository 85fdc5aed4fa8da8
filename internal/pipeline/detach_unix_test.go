//go:build !windows

package pipeline

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

// A descriptor inherited without close-on-exec (as from `flock FILE cmd`)
// reaches a child until closeInheritedOnExec marks it; then it does not.
func TestCloseInheritedOnExec(t *testing.T) {
	path := testdir.New(t) + "/held"
	fd, err := syscall.Open(path, syscall.O_CREAT|syscall.O_RDWR, 0o600) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	sees := func() bool {
		// The shell looks for the descriptor it was (or was not) given.
		return exec.Command("/bin/sh", "-c", "test -e /dev/fd/"+strconv.Itoa(fd)+" || test -e /proc/self/fd/"+strconv.Itoa(fd)).Run() == nil
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Fatalf("no /bin/sh: %v", err)
	}
	if !sees() {
		t.Fatalf("the child did not inherit descriptor %d to begin with: the test proves nothing", fd)
	}
	closeInheritedOnExec()
	if sees() {
		t.Fatalf("the child still inherits descriptor %d", fd)
	}
}
