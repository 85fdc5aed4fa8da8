package diagnose

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
)

// clientSecret is a canary Entra client secret the Collector is told about;
// not shaped like one, so only the told forms can catch it.
const clientSecret = "canary-client-secret/0123+4567=89abcdef"

// quotings are the ways a log quotes a secret s: as is, in JSON, in a
// query, in base64 at each alignment (a Secret's data), as a URL's
// password, in a header, as a kubeconfig's token.
func quotings(s string) string {
	j, _ := json.Marshal(map[string]string{"value": s})
	lines := []string{
		"plain " + s,
		string(j),
		"GET /x?auth=" + url.QueryEscape(s),
		"data: " + base64.StdEncoding.EncodeToString([]byte(s)),
		"data: " + base64.StdEncoding.EncodeToString([]byte("x"+s+"tail")),
		"data: " + base64.StdEncoding.EncodeToString([]byte("xy"+s)),
		"HTTPS_PROXY=http://alice:" + url.PathEscape(s) + "@proxy.example:3128",
		"Authorization: GatewayKey " + s,
		"    token: " + s,
	}
	return strings.Join(lines, "\n") + "\n"
}

// Every input of the bundle quotes the canary token and client secret, in
// every way quotings knows: no form Forms lists is in any file.
func TestWriteBundleHoldsNoCanaryAnywhere(t *testing.T) {
	t.Parallel()
	dir := testdir.New(t)
	files, err := state.ForCluster(filepath.Join(dir, "state"), "apimdev")
	if err != nil {
		t.Fatal(err)
	}
	tok := canaryToken(t)
	value := strings.TrimPrefix(tok.SecretValue(), "GatewayKey ")
	both := quotings(value) + quotings(clientSecret)
	if err := os.WriteFile(files.ForwardLog(), []byte(both), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Gateway.Name, cfg.Gateway.Endpoint = "contoso-gw", "contoso.configuration.azure-api.net"
	cfg.Gateway.TokenFile = tok.SecretValue() // a token pasted where its file's path belongs
	profile := gateway.Dev(cfg)
	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "apimdev-control-plane"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Message: both}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "contoso-gw-1", Namespace: profile.Namespace},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "contoso-gw", Image: "gw:v2"}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "contoso-gw",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: both}}}}}},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: profile.Namespace}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "contoso-gw-1"},
			Type: corev1.EventTypeWarning, Reason: "Failed", Message: both},
	)
	nodes := &fakeNodes{state: cluster.ClusterOurs, files: []nodeFile{
		{name: "engine-info.json", body: both},
		{name: "apimdev-control-plane/inspect.json", body: both},
		{name: "apimdev-control-plane/journal.log", body: both},
		{name: "apimdev-control-plane/var/log/pods/apim-gateway_gw-1_uid/gw/0.log", body: both},
		{name: "apimdev-control-plane/var/log/pods/apim-gateway_gw-1_uid/gw/1.log.gz", body: gzipped(t, both)},
	}}
	c := &Collector{Version: "v-test", Config: cfg, Files: files, Docker: enginefake.New(), Client: cs, Profile: profile,
		Cluster: nodes, Token: tok, Secrets: []string{clientSecret}, NodeLogs: true,
		LookPath: func(string) (string, error) { return "/usr/bin/docker", nil }}
	dest := filepath.Join(dir, "bundle.tar.gz")
	if _, err := c.Write(context.Background(), dest); err != nil {
		t.Fatal(err)
	}
	got := readBundle(t, dest)
	for _, name := range []string{"forward.log", "config.json", "kubernetes/nodes.txt", "apim-gateway/events.txt", "apim-gateway/pods.txt",
		"kind-logs/engine-info.json", "kind-logs/apimdev-control-plane/journal.log", "kind-logs/apimdev-control-plane/var/log/pods/apim-gateway_gw-1_uid/gw/1.log"} {
		if !strings.Contains(got[name], Redacted) {
			t.Errorf("%s: the canary was not planted there, or nothing was scrubbed:\n%s", name, got[name])
		}
	}
	for name, body := range got {
		for _, secret := range []string{sig, value, clientSecret} {
			for _, f := range Forms(secret) {
				if strings.Contains(body, f) {
					t.Errorf("%s holds %q, a form of a canary", name, f)
				}
			}
		}
	}
}

// snapshot lists every file under dir with its size and time: what a test
// compares before and after to prove nothing was left or changed.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+" "+info.ModTime().String()+" "+strings.Repeat("+", int(min(info.Size(), 64))))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// privateTemp points the temporary directory at an empty one of the test's
// (every variable an OS reads it from), so a test can prove nothing went
// there.
func privateTemp(t *testing.T, dir string) string {
	t.Helper()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"TMPDIR", "TMP", "TEMP"} {
		t.Setenv(v, tmp)
	}
	return tmp
}

func stuckCollector(t *testing.T, dir string, nodes *fakeNodes) *Collector {
	t.Helper()
	files, err := state.ForCluster(filepath.Join(dir, "state"), "apimdev")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files.ForwardLog(), []byte("forwarding\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	return &Collector{Version: "v-test", Config: cfg, Files: files, Docker: enginefake.New(), Profile: gateway.Dev(cfg),
		ClientErr: errors.New("no kubeconfig"), Cluster: nodes, Token: canaryToken(t), NodeLogs: true, NodeLogTimeout: 300 * time.Millisecond,
		LookPath: func(string) (string, error) { return "/usr/bin/docker", nil }}
}

// A node whose logs never end: Write returns soon after the node logs'
// time, with the bundle committed, saying they were cut short; the stream
// cut mid-line keeps its whole lines only, and nothing but the bundle is
// left on disk.
func TestWriteCutsStuckNodeLogsShort(t *testing.T) { // not parallel: it sets the temporary directory
	dir := testdir.New(t)
	tmp := privateTemp(t, dir)
	nodes := &fakeNodes{state: cluster.ClusterOurs, block: true, files: []nodeFile{
		{name: "apimdev-control-plane/kubelet.log", body: "kubelet: started\nauth GatewayKey contoso-gw&202612301200&" + sig[:6], stall: true},
	}}
	c := stuckCollector(t, dir, nodes)
	before := snapshot(t, c.Files.Dir)
	dest := filepath.Join(dir, "bundle.tar.gz")
	start := time.Now()
	sum, err := c.Write(context.Background(), dest)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if took > 3*time.Second {
		t.Errorf("Write took %s with 300ms for the node logs", took)
	}
	if nodes.stillRunning() != 0 {
		t.Error("NodeLogs had not returned when Write did")
	}
	got := readBundle(t, dest)
	kubelet := got["kind-logs/apimdev-control-plane/kubelet.log"]
	if !strings.HasPrefix(kubelet, "kubelet: started\n") || strings.Contains(kubelet, sig[:6]) || !strings.Contains(kubelet, "reading stopped") {
		t.Errorf("kubelet.log = %q, want its whole lines and why it stops", kubelet)
	}
	var names []string
	for n := range got {
		if strings.HasPrefix(n, "kind-logs/") {
			names = append(names, n)
		}
	}
	if !slices.Equal(names, []string{"kind-logs/apimdev-control-plane/kubelet.log"}) {
		t.Errorf("node files: %q", names)
	}
	readme := got["README.txt"]
	if !strings.Contains(readme, "node logs") || !strings.Contains(readme, "the node logs were cut short: reading them took longer than 300ms") {
		t.Errorf("README does not say the node logs were cut short:\n%s", readme)
	}
	if last := sum.Sections[len(sum.Sections)-1]; last.Name != "node logs" || last.Error == "" {
		t.Errorf("summary's node logs: %+v", last)
	}
	if after := snapshot(t, c.Files.Dir); !slices.Equal(before, after) {
		t.Errorf("the state directory changed:\nbefore %q\nafter  %q", before, after)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the temporary directory holds %v", left)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 { // state, tmp, the bundle
		t.Errorf("the bundle's directory holds %v", entries)
	}
}

// Ctrl-C while the node logs are read: no bundle, no temporary file,
// nothing changed in the state directory.
func TestWriteInterruptedDuringNodeLogs(t *testing.T) { // not parallel: it sets the temporary directory
	dir := testdir.New(t)
	tmp := privateTemp(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nodes := &fakeNodes{state: cluster.ClusterOurs, block: true, after: cancel, files: []nodeFile{
		{name: "apimdev-control-plane/kubelet.log", body: "kubelet: started\n"},
	}}
	c := stuckCollector(t, dir, nodes)
	c.NodeLogTimeout = time.Minute
	before := snapshot(t, c.Files.Dir)
	dest := filepath.Join(dir, "bundle.tar.gz")
	start := time.Now()
	_, err := c.Write(ctx, dest)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write = %v, want the cancellation", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Write took %s after Ctrl-C", took)
	}
	if nodes.stillRunning() != 0 {
		t.Error("NodeLogs had not returned when Write did")
	}
	if after := snapshot(t, c.Files.Dir); !slices.Equal(before, after) {
		t.Errorf("the state directory changed:\nbefore %q\nafter  %q", before, after)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the temporary directory holds %v", left)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"state", "tmp"}) {
		t.Errorf("left next to the bundle's path: %q", names)
	}
}
