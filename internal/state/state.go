// Package state owns apimdev's files on the user's machine: the state
// directory (0700), each cluster's kubeconfig (0600), the lock that keeps two
// runs on one cluster apart, and the record of a detached forward (its pid
// and start time: only the process it names is ever signalled).
//
// Nothing here ever writes to ~/.kube/config. It imports nothing from the
// rest of apimdev.
package state

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Dir is apimdev's state directory: $APIMDEV_HOME, else <user config dir>/apimdev.
func Dir(getenv func(string) string) (string, error) {
	if d := getenv("APIMDEV_HOME"); d != "" {
		return d, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding a place for apimdev's files: %w (set APIMDEV_HOME)", err)
	}
	return filepath.Join(base, "apimdev"), nil
}

// ClusterDir is the files of one cluster: its directory under the state
// directory.
type ClusterDir struct {
	Dir string // <state>/clusters/<name>
}

// ClusterFiles is the state directory's files of the cluster name, without
// creating them (zero when there is no state directory).
func ClusterFiles(getenv func(string) string, name string) ClusterDir {
	if dir, err := Dir(getenv); err == nil {
		return ClusterDir{Dir: filepath.Join(dir, "clusters", name)}
	}
	return ClusterDir{}
}

// ForCluster returns the paths for a cluster, creating its directory 0700.
func ForCluster(stateDir, name string) (ClusterDir, error) {
	d := filepath.Join(stateDir, "clusters", name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return ClusterDir{}, fmt.Errorf("creating %s: %w", d, err)
	}
	// MkdirAll keeps an existing directory's mode; make sure nobody else reads it.
	for _, p := range []string{stateDir, filepath.Join(stateDir, "clusters"), d} {
		_ = os.Chmod(p, 0o700)
	}
	return ClusterDir{Dir: d}, nil
}

// Others are the other clusters apimdev made that this state directory
// keeps (a kubeconfig of apimdev's each), sorted: what a command run
// without --cluster-name can point to when the default has none.
func (c ClusterDir) Others() []string {
	if c.Dir == "" {
		return nil
	}
	entries, err := os.ReadDir(filepath.Dir(c.Dir))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() || e.Name() == filepath.Base(c.Dir) {
			continue
		}
		if _, err := os.Stat(ClusterDir{Dir: filepath.Join(filepath.Dir(c.Dir), e.Name())}.Kubeconfig()); err == nil {
			out = append(out, e.Name())
		}
	}
	return out // os.ReadDir sorts by name
}

// Kubeconfig is the tool's own kubeconfig for the cluster.
func (c ClusterDir) Kubeconfig() string { return filepath.Join(c.Dir, "kubeconfig") }

// ForwardLog is where a detached forward writes its lines.
func (c ClusterDir) ForwardLog() string { return filepath.Join(c.Dir, "forward.log") }

func (c ClusterDir) lockFile() string { return filepath.Join(c.Dir, "lock") }

// LockedError says another apimdev holds the cluster.
type LockedError struct {
	Cluster string
	Holder  string
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("another apimdev is working on cluster %q (%s)", e.Cluster, e.Holder)
}

// Hint says what to do.
func (e *LockedError) Hint() string {
	return "wait for it to finish (or stop it with Ctrl-C in its terminal), then run this again"
}

// Lock is held for as long as a command changes the cluster.
type Lock struct{ f *os.File }

// Acquire takes the cluster's lock, waiting up to wait for another holder to
// finish. The lock dies with the process, so a crash never leaves it stuck.
func (c ClusterDir) Acquire(name string, wait time.Duration) (*Lock, error) {
	f, err := os.OpenFile(c.lockFile(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		busy, err := tryLock(f)
		if err == nil && !busy {
			_ = f.Truncate(0)
			_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d, %s %s\n", os.Getpid(), filepath.Base(os.Args[0]), strings.Join(firstArg(os.Args), " "))), 0)
			return &Lock{f: f}, nil
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", c.lockFile(), err)
		}
		if time.Now().After(deadline) {
			holder, _ := os.ReadFile(c.lockFile())
			f.Close()
			return nil, &LockedError{Cluster: name, Holder: strings.TrimSpace(string(holder))}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func firstArg(a []string) []string {
	if len(a) > 1 {
		return a[1:2]
	}
	return nil
}

// Release lets the next run in.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		unlock(l.f)
		l.f.Close()
	}
}

// SaveRecord keeps a copy of what the cluster records apimdev applied (its
// JSON; never a secret), so commands know the gateway while the cluster is
// stopped or starting. The cluster's record is the truth; this is a cache.
func (c ClusterDir) SaveRecord(b []byte) error {
	return WriteFile(filepath.Join(c.Dir, "record.json"), b)
}

// ForgetRecord removes that copy.
func (c ClusterDir) ForgetRecord() { _ = os.Remove(filepath.Join(c.Dir, "record.json")) }

// CachedRecord is the copy SaveRecord kept, if any.
func (c ClusterDir) CachedRecord() ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(c.Dir, "record.json"))
	return b, err == nil
}

// LegacyConfig is what apimdev before the cluster record remembered: the
// configuration `up` last applied, as JSON.
func (c ClusterDir) LegacyConfig() ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(c.Dir, "config.json"))
	return b, err == nil
}

// Remove deletes the cluster's files.
func (c ClusterDir) Remove() error { return os.RemoveAll(c.Dir) }

// WriteFile writes data atomically with mode 0600.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return WriteFileMode(path, data, 0o600)
}

// WriteFileMode writes data to path in an existing directory through a
// temporary file there renamed into place, so a half-written file never
// has the name; the file gets mode (set before any byte is written).
func WriteFileMode(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// SaveRuntime remembers which container runtime the cluster runs on
// ("docker", "podman"), so a later command with cluster.runtime auto looks
// there first.
func (c ClusterDir) SaveRuntime(r string) error {
	if old, _ := c.Runtime(); old == r {
		return nil
	}
	return os.WriteFile(filepath.Join(c.Dir, "runtime"), []byte(r+"\n"), 0o600)
}

// Runtime is the runtime SaveRuntime remembered; "" when none.
func (c ClusterDir) Runtime() (string, bool) {
	if c.Dir == "" {
		return "", false
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, "runtime"))
	if err != nil {
		return "", false
	}
	r := strings.TrimSpace(string(b))
	return r, r != ""
}
