//go:build !windows

package safedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestMkdirTempIsPrivateAndFresh(t *testing.T) {
	parent := testdir.New(t)
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := MkdirTemp(parent, "x-")
	if err != nil {
		t.Fatal(err)
	}
	b, err := MkdirTemp(parent, "x-")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two runs got the same directory %s", a)
	}
	if st, _ := os.Stat(a); st.Mode().Perm() != 0o700 {
		t.Errorf("mode %o", st.Mode().Perm())
	}
}

func TestAWritableParentIsRefused(t *testing.T) {
	parent := testdir.New(t)
	open := filepath.Join(parent, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(open, 0o777)
	_, err := MkdirTemp(open, "x-")
	var ue *UntrustedError
	if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "written by its group or by others") {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := os.ReadDir(open); len(ents) != 0 {
		t.Errorf("made %v anyway", ents)
	}
	// Sticky, as /tmp is: each entry can only be moved by its owner.
	if err := os.Chmod(open, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if _, err := MkdirTemp(open, "x-"); err != nil {
		t.Errorf("a sticky directory was refused: %v", err)
	}
	// A directory that does not exist yet is judged by its parent.
	if err := Check(filepath.Join(parent, "not", "yet")); err != nil {
		t.Errorf("a new directory under a private one: %v", err)
	}
}

// Root must not run what another user could have planted: a directory of
// theirs, anywhere on the path, is refused.
func TestAnotherUsersDirectoryIsRefusedForRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user (CI runs as root)")
	}
	parent := testdir.New(t)
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(parent, "home-of-nobody")
	if err := os.MkdirAll(filepath.Join(theirs, "cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := Check(filepath.Join(theirs, "cache", "scripts"))
	var ue *UntrustedError
	if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "owned by uid 65534") {
		t.Fatalf("err = %v", err)
	}
	link := filepath.Join(parent, "link")
	if err := os.Symlink(theirs, link); err != nil {
		t.Fatal(err)
	}
	if err := Check(link); err == nil {
		t.Error("a link to another user's directory was trusted")
	}
}
