package diagnose

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/testdir"
	"github.com/apimdev/apimdev/internal/token"
)

// sig is a canary signature: it must not survive into any bundle file.
const sig = "Q0FOQVJZLWRpYWdub3NlLXRlc3QtZG8tbm90LWxlYWstOTk5OT8+Pg=="

func canaryToken(t *testing.T) token.Token {
	t.Helper()
	tok, err := token.Parse("contoso-gw&202612301200&" + sig)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRedactorScrubsEveryForm(t *testing.T) {
	t.Parallel()
	tok := canaryToken(t)
	r := NewRedactor(TokenSecrets(tok)...)
	value := strings.TrimPrefix(tok.SecretValue(), token.Prefix)
	secretJSON, _ := json.Marshal(map[string]string{"auth": tok.SecretValue()}) // Go escapes & as \u0026
	in := []string{
		"env config.service.auth=" + tok.SecretValue(),
		string(secretJSON),
		`{"auth":"` + strings.ReplaceAll(value, "/", `\/`) + `"}`,
		"GET /x?auth=" + strings.ReplaceAll(strings.ReplaceAll(value, "&", "%26"), "+", "%2B"),
		"data: " + base64.StdEncoding.EncodeToString([]byte(tok.SecretValue())),
		"other: " + base64.StdEncoding.EncodeToString([]byte("x"+tok.SecretValue()+"tail")),
		"third: " + base64.StdEncoding.EncodeToString([]byte("xy"+value)),
		"unknown token: other-gw&202001010000&c2lnbmF0dXJlLW9mLWFub3RoZXI=",
	}
	for _, line := range in {
		out := r.String(line)
		for _, f := range Forms(sig) {
			if strings.Contains(out, f) {
				t.Errorf("%q survived in %q", f, out)
			}
		}
		if out == line {
			t.Errorf("nothing scrubbed in %q", line)
		}
	}
	if got := r.String("unknown token: other-gw&202001010000&c2lnbmF0dXJlLW9mLWFub3RoZXI="); got != "unknown token: other-gw&202001010000&<redacted>" {
		t.Errorf("token shape: %q", got)
	}
	if got := r.String("nothing secret here: pods ready 1/1"); got != "nothing secret here: pods ready 1/1" {
		t.Errorf("changed plain text: %q", got)
	}
	if r.Count() < len(in) {
		t.Errorf("count %d", r.Count())
	}
}

func TestRedactorIgnoresShortSecrets(t *testing.T) {
	t.Parallel()
	r := NewRedactor("", "abc")
	if got := r.String("abc abc"); got != "abc abc" {
		t.Fatalf("got %q", got)
	}
}

var _ cluster.Docker = (*enginefake.Engine)(nil)

// downEngine is an engine that does not answer.
func downEngine() *enginefake.Engine {
	e := enginefake.New()
	e.SetDown(true)
	return e
}

// nodeFile is one file a fakeNodes hands to add; a stalled one's reader
// waits for the context after its body, as a stuck node's stream would.
type nodeFile struct {
	name, body string
	stall      bool
}

// fakeNodes is the cluster as doctor reads it, its node logs scripted.
type fakeNodes struct {
	state cluster.ClusterState
	files []nodeFile
	// after is called once the files are handed over (a test's Ctrl-C);
	// then, with block, NodeLogs waits for its context to end.
	after func()
	block bool

	mu      sync.Mutex
	running int // NodeLogs calls not returned yet
}

func (f *fakeNodes) Inspect(context.Context) (cluster.ClusterState, string) {
	return f.state, "(1 node)"
}
func (f *fakeNodes) KubeconfigPath() string { return "/nowhere/kubeconfig" }
func (f *fakeNodes) NodeLogs(ctx context.Context, add func(string, io.Reader) error) error {
	f.mu.Lock()
	f.running++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	for _, nf := range f.files {
		var r io.Reader = strings.NewReader(nf.body)
		if nf.stall {
			r = &stallReader{ctx: ctx, data: strings.NewReader(nf.body)}
		}
		if err := add(nf.name, r); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if f.after != nil {
		f.after()
	}
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fakeNodes) stillRunning() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

type stallReader struct {
	ctx  context.Context
	data *strings.Reader
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.data.Len() > 0 {
		return s.data.Read(p)
	}
	<-s.ctx.Done()
	return 0, s.ctx.Err()
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWriteBundle(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	files, err := state.ForCluster(filepath.Join(dir, "state"), "apimdev")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(files.ForwardLog(), []byte("forwarding ... auth GatewayKey contoso-gw&202612301200&"+sig+"\n"), 0o600)
	cfg := config.Default()
	cfg.Gateway.Name, cfg.Gateway.Endpoint = "contoso-gw", "contoso.configuration.azure-api.net"
	profile := gateway.Dev(cfg)
	start := metav1.NewTime(time.Now().Add(-time.Minute))
	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "apimdev-control-plane"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "contoso-gw-1", Namespace: profile.Namespace, Labels: profile.Selector(), CreationTimestamp: start},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "contoso-gw", Image: "gw:v2", Env: []corev1.EnvVar{{Name: "config.service.auth",
				ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "contoso-gw-token"}, Key: "value"}}}, {Name: "LITERAL", Value: "literal-value-not-shown"}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "contoso-gw", RestartCount: 2,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 20s"}}}}}},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: profile.Namespace}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "contoso-gw-1"},
			Type: corev1.EventTypeWarning, Reason: "BackOff", Message: "Back-off restarting failed container", Count: 3, LastTimestamp: start},
	)
	quoted := `level=debug msg="CreateContainer" env="config.service.auth=GatewayKey contoso-gw&202612301200&` + sig + `"` + "\n"
	nodes := &fakeNodes{state: cluster.ClusterOurs, files: []nodeFile{
		{name: "engine-info.json", body: `{"NCPU": 4}` + "\n"},
		{name: "apimdev-control-plane/containerd.log", body: quoted},
		{name: "apimdev-control-plane/var/log/pods/apim-gateway_gw-1_uid/gw/0.log.20260101-000000.gz", body: gzipped(t, "rotated: "+quoted)},
		{name: "apimdev-control-plane/var/log/wtmp", body: "\x00\x00\x01binary"},
	}}
	c := &Collector{
		Version: "v-test", Config: cfg, Files: files, Docker: enginefake.New(), Client: cs, Profile: profile,
		Cluster:  nodes,
		Token:    canaryToken(t),
		NodeLogs: true,
		LookPath: func(string) (string, error) { return "/usr/bin/docker", nil },
	}
	dest := filepath.Join(dir, "bundle.tar.gz")
	sum, err := c.Write(context.Background(), dest)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(dest)
	if err != nil || testdir.POSIXModes && info.Mode().Perm() != 0o600 {
		t.Fatalf("bundle mode: %v %v", info, err)
	}
	got := readBundle(t, dest)
	for _, want := range []string{"version.txt", "config.json", "preflight.txt", "state.txt", "forward.log", "kubernetes/nodes.txt", "kubernetes/all-pods.txt",
		"apim-gateway/events.txt", "apim-gateway/pods.txt", "apim-gateway/workloads.txt", "apim-gateway/logs/contoso-gw-1/contoso-gw.log",
		"apim-gateway/logs/contoso-gw-1/contoso-gw.previous.log", "kind-logs/apimdev-control-plane/containerd.log", "kind-logs/engine-info.json",
		"kind-logs/apimdev-control-plane/var/log/pods/apim-gateway_gw-1_uid/gw/0.log.20260101-000000", "kind-logs/not-included.txt", "README.txt"} {
		if _, ok := got[want]; !ok {
			t.Errorf("bundle lacks %s (has %v)", want, keys(got))
		}
	}
	for name, body := range got {
		for _, f := range Forms(sig) {
			if strings.Contains(body, f) {
				t.Errorf("%s holds the token (%q)", name, f)
			}
		}
	}
	for _, want := range []string{"CrashLoopBackOff", "BackOff", "config.service.auth from Secret contoso-gw-token key value", "LITERAL value set in the spec (not shown)"} {
		if !strings.Contains(got["apim-gateway/pods.txt"], want) {
			t.Errorf("pods.txt lacks %q:\n%s", want, got["apim-gateway/pods.txt"])
		}
	}
	if strings.Contains(got["apim-gateway/pods.txt"], "literal-value-not-shown") {
		t.Error("pods.txt shows an env value")
	}
	if !strings.Contains(got["version.txt"], "apimdev v-test") || !strings.Contains(got["preflight.txt"], "✓ docker") {
		t.Errorf("version/preflight:\n%s\n%s", got["version.txt"], got["preflight.txt"])
	}
	if !strings.Contains(got["kind-logs/apimdev-control-plane/containerd.log"], "contoso-gw&202612301200&<redacted>") {
		t.Errorf("containerd.log: %s", got["kind-logs/apimdev-control-plane/containerd.log"])
	}
	if got := got["kind-logs/apimdev-control-plane/var/log/pods/apim-gateway_gw-1_uid/gw/0.log.20260101-000000"]; !strings.Contains(got, "rotated: level=debug") {
		t.Errorf("the rotated log was not uncompressed: %q", got)
	}
	if _, ok := got["kind-logs/apimdev-control-plane/var/log/wtmp"]; ok || !strings.Contains(got["kind-logs/not-included.txt"], "apimdev-control-plane/var/log/wtmp") {
		t.Errorf("a binary file went into the bundle, or is not listed: %v\n%s", keys(got), got["kind-logs/not-included.txt"])
	}
	if nodes.stillRunning() != 0 {
		t.Error("NodeLogs had not returned when Write did")
	}
	if sum.Redactions < 2 || sum.Files != len(got) {
		t.Errorf("summary %+v", sum)
	}
}

func TestWriteBundleWithoutDockerOrCluster(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	files, _ := state.ForCluster(filepath.Join(dir, "state"), "apimdev")
	cfg := config.Default()
	c := &Collector{Version: "v-test", Config: cfg, Files: files, Docker: downEngine(), Profile: gateway.Dev(cfg),
		ClientErr: errors.New("no kubeconfig"), NodeLogs: true}
	dest := filepath.Join(dir, "b.tar.gz")
	sum, err := c.Write(context.Background(), dest)
	if err != nil {
		t.Fatal(err)
	}
	got := readBundle(t, dest)
	if !strings.Contains(got["preflight.txt"], "✗ docker") || !strings.Contains(got["preflight.txt"], "start Docker") {
		t.Errorf("preflight.txt:\n%s", got["preflight.txt"])
	}
	if !strings.Contains(got["README.txt"], "kubernetes") || !strings.Contains(got["README.txt"], "incomplete") {
		t.Errorf("README:\n%s", got["README.txt"])
	}
	failed := 0
	for _, s := range sum.Sections {
		if s.Error != "" {
			failed++
		}
	}
	if failed == 0 {
		t.Errorf("no section reported a problem: %+v", sum.Sections)
	}
}

func TestWriteCancelled(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	files, _ := state.ForCluster(filepath.Join(dir, "state"), "apimdev")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &Collector{Config: config.Default(), Files: files, Docker: enginefake.New()}
	dest := filepath.Join(dir, "b.tar.gz")
	if _, err := c.Write(ctx, dest); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, l := range left {
		if !strings.HasSuffix(l, "state") {
			t.Errorf("left behind: %s", l)
		}
	}
}

func readBundle(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode != 0o600 {
			t.Errorf("%s has mode %o", h.Name, h.Mode)
		}
		b, _ := io.ReadAll(tr)
		_, rel, _ := strings.Cut(h.Name, "/")
		out[rel] = string(b)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
