package scripts

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestExtractWritesTheScriptsOnceAndExecutable(t *testing.T) {
	t.Parallel()
	parent := testdir.New(t)
	dir, err := Extract(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"e2e/node-image.sh", "e2e/lib/common.sh", "ci/ensure-docker.sh", "e2e/node/usr/local/bin/entrypoint"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || testdir.POSIXModes && fi.Mode().Perm()&0o100 == 0 {
			t.Errorf("%s: %v %v (want an executable)", f, fi, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "e2e/_gosrc/pause/main.go")); err != nil || testdir.POSIXModes && fi.Mode().Perm() != 0o644 {
		t.Errorf("_gosrc (kept by all:): %v %v", fi, err)
	}
	again, err := Extract(parent)
	if err != nil || again != dir {
		t.Fatalf("second extract: %s %v, want %s", again, err, dir)
	}
}
