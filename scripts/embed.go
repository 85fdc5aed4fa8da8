// Package scripts carries the shell scripts apimdev runs itself, so a binary
// without the repository can: the offline kind node image build
// (e2e/node-image.sh with its lib/, node/, images/ and _gosrc/ files, the same
// scripts the e2e rig uses) and the Docker engine set-up (ci/).
package scripts

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FS holds e2e/ and ci/ as they are in the repository.
//
//go:embed all:e2e ci
var FS embed.FS

// Extract writes the embedded scripts under parent/<hash of them>, once,
// and returns that directory; shell scripts are made executable (the embed
// keeps no modes).
func Extract(parent string) (string, error) {
	h := sha256.New()
	var files []string
	err := fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := FS.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n%d\n", f, len(b))
		h.Write(b)
	}
	dir := filepath.Join(parent, hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	for _, f := range files {
		b, _ := FS.ReadFile(f)
		mode := os.FileMode(0o644)
		if executable(f, b) {
			mode = 0o755
		}
		p := filepath.Join(tmp, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// executable says which embedded files run as programs: scripts with a
// shebang (the embed keeps no modes).
func executable(name string, b []byte) bool {
	return strings.HasSuffix(name, ".sh") || strings.HasPrefix(string(b), "#!")
}
