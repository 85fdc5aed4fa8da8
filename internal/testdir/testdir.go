// Package testdir is t.TempDir for tests that also run as Windows programs
// under Wine. Go 1.26 deletes files on Windows with
// FileDispositionInformationEx, which Wine 8 answers with "Invalid
// function" instead of the status that makes Go fall back, so t.TempDir's
// own cleanup fails every test there. New removes its directory the same
// way and fails the test if that fails, except under Wine, where it says so
// and leaves the directory (the Wine prefix is thrown away after the run).
//
// It is for tests only.
package testdir

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

// New makes a directory for the test and removes it when the test ends.
func New(t testing.TB) string {
	t.Helper()
	name := strings.NewReplacer("/", "_", "\\", "_", ":", "_", " ", "_").Replace(t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	dir, err := os.MkdirTemp("", name)
	if err != nil {
		t.Fatalf("making a directory for the test: %v", err)
	}
	t.Cleanup(func() {
		err := os.RemoveAll(dir)
		switch {
		case err == nil:
		case UnderWine():
			t.Logf("left %s: Wine cannot delete files the way Go asks Windows to (%v)", dir, err)
		default:
			t.Errorf("removing the test's directory: %v", err)
		}
	})
	return dir
}

// UnderWine says this is a Windows program under Wine, where deleting
// files fails (see the package comment); a test may then leave what it
// cannot remove, and say so.
func UnderWine() bool {
	return runtime.GOOS == "windows" && (os.Getenv("WINEPREFIX") != "" || os.Getenv("WINELOADERNOEXEC") != "" || os.Getenv("WINEDEBUG") != "")
}

// POSIXModes says file modes mean what they say here: not on Windows, where
// access is by ACL and a file's mode bits are made up.
const POSIXModes = runtime.GOOS != "windows"

// NotFound says an error's text is the OS saying a file does not exist
// (each OS, and Wine, words it its own way).
func NotFound(text string) bool {
	for _, s := range []string{"no such file", "not found", "cannot find"} {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}
