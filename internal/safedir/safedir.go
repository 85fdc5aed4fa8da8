// Package safedir keeps what root runs out of the reach of other users: a
// directory is trusted for a user when neither it nor any directory above it
// can be changed by someone else (owned by that user or root, and not
// writable by group or others, unless sticky as /tmp is: there an entry can
// only be renamed or removed by its owner). MkdirTemp makes a fresh private
// directory (0700, an unpredictable name) under a trusted parent.
//
// It imports nothing of apimdev's.
package safedir

import (
	"fmt"
	"os"
	"path/filepath"
)

// UntrustedError says a directory can be changed by someone other than the
// user who would run what is in it.
type UntrustedError struct {
	Dir    string // the directory asked about
	Reason string // which directory, and why
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("%s is not safe for a program run as root: %s", e.Dir, e.Reason)
}

// Hint says what to do.
func (e *UntrustedError) Hint() string {
	return "use a directory only root can change (e.g. under /var/cache or /root), or run without sudo -E so HOME and TMPDIR are root's"
}

// MkdirTemp makes a new directory, 0700, with an unpredictable name under
// parent ("" is the system's temporary directory), after checking parent is
// trusted for this process's user. The caller removes it.
func MkdirTemp(parent, pattern string) (string, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	if err := Check(parent); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return "", err
	}
	// MkdirTemp makes 0700 already; say it, in case the umask ever widens it.
	if err := os.Chmod(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// Check says whether dir and every directory above it are trusted for this
// process's user (see the package doc). A directory that does not exist yet
// is judged by its nearest existing parent.
func Check(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	real, err := existing(abs)
	if err != nil {
		return err
	}
	for p := real; ; p = filepath.Dir(p) {
		if why := untrusted(p); why != "" {
			return &UntrustedError{Dir: dir, Reason: why}
		}
		if filepath.Dir(p) == p {
			return nil
		}
	}
}

// existing resolves the longest existing prefix of p, symbolic links
// followed (a link could point anywhere).
func existing(p string) (string, error) {
	for q := p; ; q = filepath.Dir(q) {
		r, err := filepath.EvalSymlinks(q)
		if err == nil {
			return r, nil
		}
		if !os.IsNotExist(err) || filepath.Dir(q) == q {
			return "", err
		}
	}
}
