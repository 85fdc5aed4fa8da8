package cluster

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/docker/go-connections/nat"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/apimdev/apimdev/internal/testdir"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// readKind counts how often the kubeconfig is read out of the node.
type readKind struct{ reads int }

func (k *readKind) List() ([]string, error)                          { return nil, nil }
func (k *readKind) ListNodes(string) ([]nodes.Node, error)           { return nil, nil }
func (k *readKind) Create(string, ...kindcluster.CreateOption) error { return nil }
func (k *readKind) Delete(string, string) error                      { return nil }
func (k *readKind) KubeConfig(string, bool) (string, error) {
	k.reads++
	return "apiVersion: v1\nkind: Config\n", nil
}

// An API server that has (or has not) apimdev's marker.
func markerServer(t *testing.T, marked bool) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if marked && r.URL.Path == "/api/v1/namespaces/kube-system/configmaps/apimdev" {
			fmt.Fprint(w, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"apimdev","namespace":"kube-system"}}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"apiVersion":"v1","kind":"Status","status":"Failure","reason":"NotFound","code":404}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestOwnKubeconfigSparesTheNodeRead(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		marked bool
		file   bool
		want   bool
	}{
		{"the file reaches our cluster", true, true, true},
		{"no marker through the file: ask kind", false, true, false},
		{"no file: ask kind", true, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(testdir.New(t), "kubeconfig")
			if tt.file {
				kc := fmt.Sprintf("apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  cluster: {server: %q}\nusers:\n- name: u\n  user: {}\n", markerServer(t, tt.marked))
				if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			k := &readKind{}
			m := &Manager{Kind: k, Name: "apimdev", Kubeconfig: path}
			if got := m.ownFileAnswers(context.Background()); got != tt.want {
				t.Fatalf("ownFileAnswers = %v, want %v", got, tt.want)
			}
			_ = m.writeKubeconfig()
			_ = m.writeKubeconfig() // the second refresh always asks kind
			if want := map[bool]int{true: 1, false: 2}[tt.want]; k.reads != want {
				t.Errorf("kubeconfig read out of the node %d time(s), want %d", k.reads, want)
			}
		})
	}
}

func TestLoopbackBindings(t *testing.T) {
	pm := nat.PortMap{
		"31080/tcp": {{HostIP: "0.0.0.0", HostPort: "1234"}, {HostIP: "127.0.0.1", HostPort: "43039"}},
		"31443/tcp": {{HostIP: "127.0.0.1", HostPort: "46861"}},
		"6443/tcp":  {{HostIP: "127.0.0.1", HostPort: "44279"}},
	}
	got, err := loopbackBindings(pm, DirectNodePorts[:])
	if err != nil {
		t.Fatal(err)
	}
	if got[31080] != "127.0.0.1:43039" || got[31443] != "127.0.0.1:46861" || len(got) != 2 {
		t.Fatalf("bindings: %v", got)
	}
	// Only a non-loopback binding, or none: no direct path, and the error
	// names the port and the fix.
	_, err = loopbackBindings(nat.PortMap{"31080/tcp": {{HostIP: "0.0.0.0", HostPort: "1234"}}}, DirectNodePorts[:])
	if err == nil || !strings.Contains(err.Error(), "31080, 31443") || !strings.Contains(err.Error(), "--recreate") {
		t.Fatalf("error: %v", err)
	}
}

func TestNewClusterPublishesTheDirectPath(t *testing.T) {
	for _, workers := range []int{0, 2} {
		m := &Manager{Shape: Shape{Workers: workers}, SharedDir: testdir.New(t)}
		ns := m.nodes("img")
		if got := ns[0].ExtraPortMappings; len(got) != 2 || got[0].ContainerPort != 31080 || got[1].ContainerPort != 31443 ||
			got[0].ListenAddress != "127.0.0.1" || got[0].HostPort != 0 {
			t.Fatalf("workers=%d: control plane's mappings %+v", workers, got)
		}
		for _, w := range ns[1:] {
			if len(w.ExtraPortMappings) != 0 {
				t.Fatalf("a worker publishes ports: %+v", w.ExtraPortMappings)
			}
		}
	}
	if !HasDirect(map[string]string{"directNodePorts": "31080,31443"}) || HasDirect(map[string]string{"workers": "0"}) {
		t.Fatal("HasDirect")
	}
}

func TestKubeadmPatches(t *testing.T) {
	dir := filepath.Join(testdir.New(t), "patches")
	m := &Manager{PatchesDir: dir}
	cfg := &v1alpha4.Cluster{Nodes: m.nodes("img"), KubeadmConfigPatches: []string{controlPlaneTuning}}
	if err := m.withKubeadmPatches(cfg); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "corednsdeployment+strategic.yaml"))
	if err != nil || !strings.Contains(string(b), "name: coredns") || !strings.Contains(string(b), "periodSeconds: 1") {
		t.Fatalf("CoreDNS patch: %q, %v", b, err)
	}
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "corednsdeployment+strategic.yaml"): 0o600} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
			}
		}
	}
	mounts := cfg.Nodes[0].ExtraMounts
	if len(mounts) != 1 || mounts[0].ContainerPath != "/kind/apimdev-patches" || !mounts[0].Readonly || !filepath.IsAbs(mounts[0].HostPath) {
		t.Fatalf("mounts: %+v", mounts)
	}
	if got := cfg.KubeadmConfigPatches; len(got) != 2 || !strings.Contains(got[1], "kind: InitConfiguration") || !strings.Contains(got[1], "directory: /kind/apimdev-patches") {
		t.Fatalf("kubeadm config patches: %q", got)
	}
	// No directory, no patches (and nothing mounted).
	cfg = &v1alpha4.Cluster{Nodes: (&Manager{}).nodes("img")}
	if err := (&Manager{}).withKubeadmPatches(cfg); err != nil || len(cfg.Nodes[0].ExtraMounts) != 0 || len(cfg.KubeadmConfigPatches) != 0 {
		t.Fatalf("without PatchesDir: %+v, %v", cfg, err)
	}
}
