package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/apimdev/apimdev/internal/testdir"
)

// threeContexts is a user's kubeconfig with three contexts of their own.
const threeContexts = `apiVersion: v1
kind: Config
current-context: work
contexts:
- name: work
  context: {cluster: work, user: work}
- name: home
  context: {cluster: home, user: home}
- name: staging
  context: {cluster: work, user: work, namespace: staging}
clusters:
- name: work
  cluster: {server: 'https://work.example:6443'}
- name: home
  cluster: {server: 'https://home.example:6443'}
users:
- name: work
  user: {token: work-token}
- name: home
  user: {token: home-token}
`

// configKind is kind with a cluster whose kubeconfig is raw.
type configKind struct {
	deleteKind
	raw string
}

func (k *configKind) KubeConfig(string, bool) (string, error) { return k.raw, nil }

// ownKubeconfig is apimdev's own file for cluster apimdev.
func ownKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "own")
	kubeconfigFile(t, p, "kind-apimdev", "https://127.0.0.1:40000")
	// kubeconfigFile's template always carries users-own: keep only ours.
	cfg, err := clientcmd.LoadFromFile(p)
	if err != nil {
		t.Fatal(err)
	}
	delete(cfg.Contexts, "users-own")
	delete(cfg.Clusters, "users-own")
	delete(cfg.AuthInfos, "users-own")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func contextsOf(t *testing.T, path string) (names []string, current string) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return keys(cfg.Contexts), cfg.CurrentContext
}

func TestCheckOwnKubeconfig(t *testing.T) {
	dir := testdir.New(t)
	if err := CheckOwnKubeconfig(filepath.Join(dir, "absent"), "apimdev"); err != nil {
		t.Errorf("a file that does not exist: %v", err)
	}
	if err := CheckOwnKubeconfig(ownKubeconfig(t, dir), "apimdev"); err != nil {
		t.Errorf("a file of only this cluster's entries: %v", err)
	}
	user := filepath.Join(dir, "config")
	if err := os.WriteFile(user, []byte(threeContexts), 0o600); err != nil {
		t.Fatal(err)
	}
	err := CheckOwnKubeconfig(user, "apimdev")
	var ke *KubeconfigError
	if !errors.As(err, &ke) || !strings.Contains(err.Error(), "context home, context staging, context work") || !strings.Contains(ke.Hint(), "--merge-kubeconfig") {
		t.Fatalf("err = %v", err)
	}
}

// `up --kubeconfig ~/.kube/config` over a file of three contexts: refused,
// the file byte for byte as it was.
func TestApimdevNeverWritesAUsersKubeconfigAsItsOwn(t *testing.T) {
	dir := testdir.New(t)
	user := filepath.Join(dir, "config")
	if err := os.WriteFile(user, []byte(threeContexts), 0o600); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(ownKubeconfig(t, dir))
	m := &Manager{Kind: &configKind{raw: string(raw)}, Name: "apimdev", Kubeconfig: user}
	err := m.RefreshKubeconfig()
	var ke *KubeconfigError
	if !errors.As(err, &ke) {
		t.Fatalf("err = %v", err)
	}
	if after, _ := os.ReadFile(user); !bytes.Equal(after, []byte(threeContexts)) {
		t.Fatalf("the user's kubeconfig changed:\n%s", after)
	}
	// Its own file it keeps writing.
	m.Kubeconfig = filepath.Join(dir, "new", "kubeconfig")
	if err := m.RefreshKubeconfig(); err != nil {
		t.Fatal(err)
	}
	if err := m.RefreshKubeconfig(); err != nil {
		t.Fatalf("a second write to its own file: %v", err)
	}
}

// --merge-kubeconfig: one context added, the other three and the current
// context kept, a backup beside it, the mode kept; down takes out only
// what was added.
func TestMergeAddsOneContextAndDownRemovesOnlyIt(t *testing.T) {
	dir := testdir.New(t)
	user := filepath.Join(dir, "config")
	if err := os.WriteFile(user, []byte(threeContexts), 0o640); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "state", "kubeconfig-merge.json")
	m := &Manager{Kind: &deleteKind{}, Name: "apimdev", Kubeconfig: ownKubeconfig(t, dir), MergeRecord: rec}
	what, err := m.MergeKubeconfig(user, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(what, "current context stays work") {
		t.Errorf("said %q", what)
	}
	names, cur := contextsOf(t, user)
	if strings.Join(names, ",") != "home,kind-apimdev,staging,work" || cur != "work" {
		t.Fatalf("after merge: %v, current %q", names, cur)
	}
	if b, _ := os.ReadFile(user + ".apimdev.bak"); string(b) != threeContexts {
		t.Errorf("backup:\n%s", b)
	}
	if st, _ := os.Stat(user); testdir.POSIXModes && st.Mode().Perm() != 0o640 {
		t.Errorf("mode %o, want the file's own 0640", st.Mode().Perm())
	}
	if _, err := os.Stat(user + ".lock"); !os.IsNotExist(err) {
		t.Errorf("the lock was left: %v", err)
	}
	var r KubeconfigMerge
	if b, err := os.ReadFile(rec); err != nil || json.Unmarshal(b, &r) != nil || r.Path != user || r.Server != "https://127.0.0.1:40000" || r.Switched {
		t.Fatalf("record %+v %v", r, err)
	}
	// A second merge changes nothing.
	merged, _ := os.ReadFile(user)
	if _, err := m.MergeKubeconfig(user, false); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(user); !bytes.Equal(again, merged) {
		t.Error("a second merge rewrote the file")
	}
	if err := m.Delete(); err != nil {
		t.Fatal(err)
	}
	names, cur = contextsOf(t, user)
	if strings.Join(names, ",") != "home,staging,work" || cur != "work" {
		t.Fatalf("after down: %v, current %q", names, cur)
	}
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Errorf("the merge record outlived the cluster: %v", err)
	}
}

// Asked to switch: the context becomes current, and down puts back the one
// it replaced.
func TestMergeSwitchesOnlyWhenAskedAndDownSwitchesBack(t *testing.T) {
	dir := testdir.New(t)
	user := filepath.Join(dir, "config")
	if err := os.WriteFile(user, []byte(threeContexts), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Manager{Kind: &deleteKind{}, Name: "apimdev", Kubeconfig: ownKubeconfig(t, dir), MergeRecord: filepath.Join(dir, "merge.json")}
	if _, err := m.MergeKubeconfig(user, true); err != nil {
		t.Fatal(err)
	}
	if _, cur := contextsOf(t, user); cur != "kind-apimdev" {
		t.Fatalf("current %q", cur)
	}
	// A re-run without the switch keeps what the first one replaced.
	if _, err := m.MergeKubeconfig(user, false); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(); err != nil {
		t.Fatal(err)
	}
	if names, cur := contextsOf(t, user); cur != "work" || len(names) != 3 {
		t.Fatalf("after down: %v, current %q", names, cur)
	}
}

// A kubeconfig that is a link (dotfiles) stays a link; the file it points
// at gets the merge.
func TestMergeWritesThroughALink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a kubeconfig behind a symbolic link is a Unix dotfiles habit; Windows links need privileges and Wine's do not resolve")
	}
	dir := testdir.New(t)
	realFile := filepath.Join(dir, "dotfiles", "kubeconfig")
	if err := os.MkdirAll(filepath.Dir(realFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(realFile, []byte(threeContexts), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config")
	if err := os.Symlink(realFile, link); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	m := &Manager{Kind: &deleteKind{}, Name: "apimdev", Kubeconfig: ownKubeconfig(t, dir)}
	if _, err := m.MergeKubeconfig(link, false); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", st, err)
	}
	if names, _ := contextsOf(t, realFile); len(names) != 4 {
		t.Fatalf("the linked file: %v", names)
	}
}

// Another writer holds the lock: nothing is written, and the error says
// whose lock and what to do.
func TestMergeWaitsForTheLockThenRefuses(t *testing.T) {
	old := kubeconfigLockWait
	kubeconfigLockWait = 300 * time.Millisecond
	t.Cleanup(func() { kubeconfigLockWait = old })
	dir := testdir.New(t)
	user := filepath.Join(dir, "config")
	if err := os.WriteFile(user, []byte(threeContexts), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(user+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Manager{Kind: &deleteKind{}, Name: "apimdev", Kubeconfig: ownKubeconfig(t, dir)}
	_, err := m.MergeKubeconfig(user, false)
	if err == nil || !strings.Contains(err.Error(), "kubectl or kind is writing it") {
		t.Fatalf("err = %v", err)
	}
	if after, _ := os.ReadFile(user); string(after) != threeContexts {
		t.Fatal("written without the lock")
	}
}

// The state directory lost after a merge into a file the settings name
// (not kubectl's default): down still finds the merged context there, and
// takes out only it.
func TestDownFindsAMergeIntoANamedFileAfterTheStateDirectoryIsLost(t *testing.T) {
	dir := testdir.New(t)
	user := filepath.Join(dir, "work-kubeconfig")
	if err := os.WriteFile(user, []byte(threeContexts), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", filepath.Join(dir, "default-kubeconfig"))
	rec := filepath.Join(dir, "state", "kubeconfig-merge.json")
	m := &Manager{Kind: &deleteKind{}, Name: "apimdev", Kubeconfig: ownKubeconfig(t, dir), MergeRecord: rec, UserKubeconfig: user}
	if _, err := m.MergeKubeconfig(user, false); err != nil {
		t.Fatal(err)
	}
	// The state directory is lost: a later apimdev has a fresh one without
	// the record (renamed away rather than deleted, which Wine cannot do).
	if err := os.Rename(filepath.Dir(rec), filepath.Join(dir, "lost-state")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rec); err == nil {
		t.Fatal("the merge record is still there")
	}
	if err := m.Delete(); err != nil {
		t.Fatal(err)
	}
	if names, cur := contextsOf(t, user); strings.Join(names, ",") != "home,staging,work" || cur != "work" {
		t.Fatalf("after down with the record lost: %v, current %q", names, cur)
	}
}
