// Package scripts carries the shell scripts apimdev runs itself, so a binary
// without the repository can: the offline kind node image build
// (e2e/node-image.sh with its lib/, node/, images/ and _gosrc/ files, the same
// scripts the e2e rig uses, and the runc wrapper's source from ci/).
package scripts

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/apimdev/apimdev/internal/safedir"
)

// FS holds e2e/ and ci/ as they are in the repository.
//
//go:embed all:e2e ci
var FS embed.FS

// Private writes the embedded scripts into a new private directory (0700,
// an unpredictable name, under a temporary directory only this user and
// root can change: see package safedir) and returns it with the function
// that removes it. Every run writes them afresh: nothing a run executes,
// possibly as root, is ever read back from a place someone else could have
// written to.
func Private() (dir string, remove func(), err error) {
	dir, err = safedir.MkdirTemp("", "apimdev-scripts-")
	if err != nil {
		return "", nil, fmt.Errorf("a private directory for apimdev's scripts: %w", err)
	}
	remove = func() { _ = os.RemoveAll(dir) }
	if err := writeAll(dir); err != nil {
		remove()
		return "", nil, err
	}
	return dir, remove, nil
}

// writeAll writes every embedded file under dir; shell scripts are made
// executable (the embed keeps no modes).
func writeAll(dir string) error {
	return fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := FS.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o600)
		if executable(p, b) {
			mode = 0o700
		}
		out := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
			return err
		}
		return os.WriteFile(out, b, mode)
	})
}

// executable says which embedded files run as programs: scripts with a
// shebang (the embed keeps no modes).
func executable(name string, b []byte) bool {
	return strings.HasSuffix(name, ".sh") || strings.HasPrefix(string(b), "#!")
}
