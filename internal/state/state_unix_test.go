//go:build !windows

package state

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

// POSIX file modes: what this test checks does not exist on Windows.

func TestFilesArePrivate(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	c, err := ForCluster(filepath.Join(dir, "state"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(c.Kubeconfig(), []byte("k")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{c.Dir: 0o700, filepath.Join(dir, "state"): 0o700, c.Kubeconfig(): 0o600} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v", p, st.Mode().Perm(), err)
		}
	}
}
