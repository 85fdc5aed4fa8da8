package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apimdev/apimdev/internal/testdir"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// deleteKind records deletions; nothing else is called by Delete.
type deleteKind struct{ deleted []string }

func (k *deleteKind) List() ([]string, error)                          { return nil, nil }
func (k *deleteKind) ListNodes(string) ([]nodes.Node, error)           { return nil, nil }
func (k *deleteKind) Create(string, ...kindcluster.CreateOption) error { return nil }
func (k *deleteKind) Delete(name, _ string) error {
	k.deleted = append(k.deleted, name)
	return nil
}
func (k *deleteKind) KubeConfig(string, bool) (string, error) { return "", nil }

const usersOwn = `apiVersion: v1
kind: Config
current-context: %s
contexts:
- name: users-own
  context: {cluster: users-own, user: users-own}
%s
clusters:
- name: users-own
  cluster: {server: 'https://127.0.0.1:1'}
%s
users:
- name: users-own
  user: {}
%s
`

func kubeconfigFile(t *testing.T, path, current, server string) {
	t.Helper()
	ctx, cl, user := "", "", ""
	if server != "" {
		ctx = "- name: kind-apimdev\n  context: {cluster: kind-apimdev, user: kind-apimdev}"
		cl = "- name: kind-apimdev\n  cluster: {server: '" + server + "'}"
		user = "- name: kind-apimdev\n  user: {token: x}"
	}
	body := []byte(fmt.Sprintf(usersOwn, current, ctx, cl, user))
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The user's kubeconfig loses what --merge-kubeconfig added, and only that;
// a file without it is not rewritten at all.
func TestDeleteForgetsMergedContext(t *testing.T) {
	dir := testdir.New(t)
	own := filepath.Join(dir, "apimdev-kubeconfig")
	kubeconfigFile(t, own, "kind-apimdev", "https://127.0.0.1:40000")
	for _, tt := range []struct {
		name, current, server string
		changed               bool
	}{
		{"merged and current", "kind-apimdev", "https://127.0.0.1:40000", true},
		{"merged, not current", "users-own", "https://127.0.0.1:40000", true},
		{"never merged", "users-own", "", false},
		{"same name, another cluster", "kind-apimdev", "https://127.0.0.1:50000", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			user := filepath.Join(dir, tt.name+".config")
			kubeconfigFile(t, user, tt.current, tt.server)
			t.Setenv("KUBECONFIG", user)
			before, _ := os.ReadFile(user)
			k := &deleteKind{}
			m := &Manager{Kind: k, Name: "apimdev", Kubeconfig: own}
			if err := m.Delete(); err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(user)
			if len(k.deleted) != 1 {
				t.Fatalf("kind deletions: %v", k.deleted)
			}
			if !tt.changed {
				if !bytes.Equal(before, after) {
					t.Fatalf("the file changed:\n%s", after)
				}
				return
			}
			s := string(after)
			if strings.Contains(s, "kind-apimdev") || !strings.Contains(s, "users-own") {
				t.Fatalf("after delete:\n%s", s)
			}
			wantCurrent := "current-context: users-own"
			if tt.current == "kind-apimdev" {
				wantCurrent = `current-context: ""`
			}
			if !strings.Contains(s, wantCurrent) {
				t.Fatalf("want %q in:\n%s", wantCurrent, s)
			}
			if info, _ := os.Stat(user); testdir.POSIXModes && info.Mode().Perm() != 0o600 {
				t.Fatalf("mode %o", info.Mode().Perm())
			}
		})
	}
}
