package cluster

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/apimdev/apimdev/internal/state"
)

// apimdev writes a kubeconfig file only when it is its own: a file that
// does not exist yet, or one that holds nothing but this cluster's entries
// (kind names them kind-<cluster>), so writing it loses nothing. Into any
// other file it merges, and only when asked (--merge-kubeconfig): one
// context, with its cluster and user, added or updated as kind and k3d do,
// the file's other entries and its current context kept unless asked,
// written atomically under the lock kubectl and kind take (<file>.lock),
// with a backup beside it (<file>.apimdev.bak). What it merged is recorded
// in apimdev's state directory, and down takes out exactly that.

// contextName is what kind calls the context, cluster and user of a cluster.
func contextName(cluster string) string { return "kind-" + cluster }

// mergedName is this cluster's context name.
func (m *Manager) mergedName() string { return contextName(m.Name) }

// KubeconfigError says a kubeconfig file is not apimdev's to write.
type KubeconfigError struct {
	Path   string
	Others []string // the entries of others in it
}

func (e *KubeconfigError) Error() string {
	return fmt.Sprintf("%s holds other entries than this cluster's (%s): apimdev writes only kubeconfig files it created", e.Path, strings.Join(e.Others, ", "))
}

// Hint says the ways out.
func (e *KubeconfigError) Hint() string {
	return "leave --kubeconfig (cluster.kubeconfig) out and apimdev keeps its own file in its state directory, name a file that does not exist, " +
		"or add --merge-kubeconfig to put this cluster's context into " + e.Path + " (your other entries and current context are kept; a backup is written beside it)"
}

// CheckOwnKubeconfig returns a *KubeconfigError when path exists and holds
// entries other than cluster's: apimdev may not write it as its own.
func CheckOwnKubeconfig(path, cluster string) error {
	cfg, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w (apimdev writes only kubeconfig files it created)", path, err)
	}
	if others := othersIn(cfg, contextName(cluster)); len(others) > 0 {
		return &KubeconfigError{Path: path, Others: others}
	}
	return nil
}

// othersIn lists the entries of cfg that are not name's, as "context x",
// "cluster y", "user z" (sorted).
func othersIn(cfg *clientcmdapi.Config, name string) []string {
	var out []string
	add := func(kind string, names []string) {
		for _, n := range names {
			if n != name {
				out = append(out, kind+" "+n)
			}
		}
	}
	add("context", keys(cfg.Contexts))
	add("cluster", keys(cfg.Clusters))
	add("user", keys(cfg.AuthInfos))
	if cfg.CurrentContext != "" && cfg.CurrentContext != name && cfg.Contexts[cfg.CurrentContext] == nil {
		out = append(out, "current-context "+cfg.CurrentContext)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// EmptyKubeconfig says path is a kubeconfig with no entries at all (what
// kind leaves of apimdev's own file when it deletes the cluster).
func EmptyKubeconfig(path string) bool {
	cfg, err := clientcmd.LoadFromFile(path)
	return err == nil && len(cfg.Contexts) == 0 && len(cfg.Clusters) == 0 && len(cfg.AuthInfos) == 0
}

// apiServer is the cluster's API server URL as apimdev's own kubeconfig
// knows it, or "" when that file says nothing.
func (m *Manager) apiServer() string {
	cfg, err := clientcmd.LoadFromFile(m.Kubeconfig)
	if err != nil {
		return ""
	}
	if c, ok := cfg.Clusters[m.mergedName()]; ok {
		return c.Server
	}
	return ""
}

// KubeconfigMerge is what --merge-kubeconfig put into a user's kubeconfig,
// as apimdev's state directory records it.
type KubeconfigMerge struct {
	Path    string `json:"path"`
	Context string `json:"context"`
	Server  string `json:"server"`
	// Previous is the file's current context before the merge switched it
	// (Switched); down puts it back.
	Switched bool   `json:"switched,omitempty"`
	Previous string `json:"previousContext,omitempty"`
}

// DefaultKubeconfig is the file kubectl uses: the first of $KUBECONFIG, else
// ~/.kube/config.
func DefaultKubeconfig() string {
	return clientcmd.NewDefaultClientConfigLoadingRules().GetDefaultFilename()
}

// MergeKubeconfig adds this cluster's context (with its cluster and user)
// to target, a kubeconfig of the user's ("" is DefaultKubeconfig), from
// apimdev's own file. The file's other entries are kept, and its current
// context too unless switchContext (or the file had none). It returns what
// it did, in a few words.
func (m *Manager) MergeKubeconfig(target string, switchContext bool) (string, error) {
	if target == "" {
		target = DefaultKubeconfig()
	}
	if samePath(target, m.Kubeconfig) {
		return "", fmt.Errorf("--merge-kubeconfig names apimdev's own kubeconfig %s: name your kubeconfig (cluster.kubeconfig), or leave it out for %s", target, DefaultKubeconfig())
	}
	own, err := clientcmd.LoadFromFile(m.Kubeconfig)
	if err != nil {
		return "", fmt.Errorf("reading apimdev's kubeconfig: %w", err)
	}
	name := m.mergedName()
	ctx, cl, user := own.Contexts[name], own.Clusters[name], own.AuthInfos[name]
	if ctx == nil || cl == nil || user == nil {
		return "", fmt.Errorf("apimdev's kubeconfig %s has no complete %s entry", m.Kubeconfig, name)
	}
	rec := KubeconfigMerge{Path: target, Context: name, Server: cl.Server}
	what := ""
	err = editKubeconfig(target, func(cfg *clientcmdapi.Config) {
		cfg.Contexts[name], cfg.Clusters[name], cfg.AuthInfos[name] = ctx, cl, user
		switch {
		case cfg.CurrentContext == name:
			what = "context " + name + " updated; it was already the current context"
		case switchContext || cfg.CurrentContext == "":
			rec.Switched, rec.Previous = true, cfg.CurrentContext
			cfg.CurrentContext = name
			what = "context " + name + " added and made current"
		default:
			what = "context " + name + " added; the current context stays " + cfg.CurrentContext
		}
	})
	if err != nil {
		return "", err
	}
	if m.MergeRecord != "" {
		if old, ok := readMerge(m.MergeRecord); ok && old.Path == target && old.Switched && !rec.Switched {
			rec.Switched, rec.Previous = true, old.Previous // a re-run keeps what the first merge replaced
		}
		b, _ := json.Marshal(rec)
		if err := state.WriteFile(m.MergeRecord, b); err != nil {
			return "", fmt.Errorf("recording the merge: %w", err)
		}
	}
	return what + " in " + target, nil
}

func readMerge(path string) (KubeconfigMerge, bool) {
	var r KubeconfigMerge
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &r) != nil || r.Path == "" {
		return r, false
	}
	return r, true
}

// forgetMerged takes out of the user's kubeconfig what --merge-kubeconfig
// put there for this cluster, once the cluster is gone, as `kind delete
// cluster` does: the file the state directory records, else (the state
// directory was lost) the user's kubeconfig the settings name, else the
// default one. Only entries named kind-<name> whose
// server is this cluster's are removed; a current context that pointed at
// them goes back to what it was before the merge when that still exists.
// A file without them is not touched.
func (m *Manager) forgetMerged(server string) error {
	rec, recorded := KubeconfigMerge{}, false
	if m.MergeRecord != "" {
		rec, recorded = readMerge(m.MergeRecord)
	}
	path := rec.Path
	if !recorded {
		path = cmp.Or(m.UserKubeconfig, DefaultKubeconfig())
	}
	if server == "" {
		server = rec.Server
	}
	if path == "" || server == "" || samePath(path, m.Kubeconfig) {
		return nil
	}
	name := m.mergedName()
	cur, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if c, ok := cur.Clusters[name]; !ok || c.Server != server {
		return nil
	}
	err = editKubeconfig(path, func(cfg *clientcmdapi.Config) {
		delete(cfg.Clusters, name)
		delete(cfg.AuthInfos, name)
		delete(cfg.Contexts, name)
		if cfg.CurrentContext == name {
			cfg.CurrentContext = ""
			if recorded && rec.Previous != "" && cfg.Contexts[rec.Previous] != nil {
				cfg.CurrentContext = rec.Previous
			}
		}
	})
	if err != nil {
		return fmt.Errorf("removing context %s from %s: %w", name, path, err)
	}
	if m.MergeRecord != "" {
		_ = os.Remove(m.MergeRecord)
	}
	return nil
}

// editKubeconfig changes a user's kubeconfig as kubectl and kind do: under
// <file>.lock, read, edit, and when anything changed, a backup of what was
// there (<file>.apimdev.bak) then the new file through a temporary one
// renamed into place (the file a symbolic link points at, when it is one),
// keeping its mode (0600 for a new file).
func editKubeconfig(path string, edit func(*clientcmdapi.Config)) error {
	real := path
	if r, err := filepath.EvalSymlinks(path); err == nil {
		real = r
	}
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		return err
	}
	unlock, err := lockKubeconfig(real)
	if err != nil {
		return err
	}
	defer unlock()
	old, err := os.ReadFile(real)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	mode := os.FileMode(0o600)
	if err == nil {
		if cfg, err = clientcmd.Load(old); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if st, err := os.Stat(real); err == nil {
			mode = st.Mode().Perm()
		}
	}
	edit(cfg)
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	if old != nil && bytes.Equal(old, out) {
		return nil
	}
	if old != nil {
		if err := os.WriteFile(real+".apimdev.bak", old, 0o600); err != nil {
			return fmt.Errorf("backing up %s: %w", path, err)
		}
	}
	return state.WriteFileMode(real, out, mode)
}

// kubeconfigLockWait is how long lockKubeconfig waits for another holder.
var kubeconfigLockWait = 5 * time.Second

// lockKubeconfig takes <path>.lock the way kubectl and kind do (a file made
// with O_EXCL, removed to release), waiting up to kubeconfigLockWait for
// another holder.
func lockKubeconfig(path string) (func(), error) {
	lock := path + ".lock"
	deadline := time.Now().Add(kubeconfigLockWait)
	for {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { _ = os.Remove(lock) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s is locked (%s exists): kubectl or kind is writing it; if none is, remove %s and run this again", path, lock, lock)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func samePath(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	ai, aerr := os.Stat(a)
	bi, berr := os.Stat(b)
	if aerr == nil && berr == nil {
		return os.SameFile(ai, bi)
	}
	ca, _ := filepath.Abs(a)
	cb, _ := filepath.Abs(b)
	return ca == cb
}
