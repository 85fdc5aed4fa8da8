package scripts

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestPrivateWritesFreshExecutableScriptsAndRemovesThem(t *testing.T) {
	t.Parallel()
	dir, remove, err := Private()
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || testdir.POSIXModes && st.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v %v (want a private directory)", dir, st, err)
	}
	for _, f := range []string{"e2e/node-image.sh", "e2e/lib/common.sh", "ci/lib-capdrop.sh", "e2e/node/usr/local/bin/entrypoint"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || testdir.POSIXModes && fi.Mode().Perm()&0o100 == 0 {
			t.Errorf("%s: %v %v (want an executable)", f, fi, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "e2e/_gosrc/pause/main.go")); err != nil || testdir.POSIXModes && fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("_gosrc (kept by all:): %v %v", fi, err)
	}
	again, removeAgain, err := Private()
	if err != nil {
		t.Fatal(err)
	}
	defer removeAgain()
	if again == dir {
		t.Errorf("two runs share %s: a second run must not trust what the first left", dir)
	}
	remove()
	if _, err := os.Stat(dir); !os.IsNotExist(err) && !testdir.UnderWine() {
		// (Wine cannot delete files the way Go asks Windows to: see testdir.)
		t.Errorf("%s is still there after remove: %v", dir, err)
	}
}
