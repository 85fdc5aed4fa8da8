package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/enginefake"
	"github.com/docker/docker/api/types/container"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/exec"
)

// script is what one command in a node does with its context and stdout.
type script func(ctx context.Context, stdout io.Writer) error

func prints(s string) script {
	return func(_ context.Context, w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

// hanging writes a first line, then waits for its context, as a command
// on a stuck node would.
func hanging(first string) script {
	return func(ctx context.Context, w io.Writer) error {
		if _, err := io.WriteString(w, first); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	}
}

// endless writes until a write fails or its context ends.
func endless(ctx context.Context, w io.Writer) error {
	line := []byte(strings.Repeat("x", 99) + "\n")
	for ctx.Err() == nil {
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// scriptNode is a kind node whose commands follow scripts, keyed by the
// command line. It counts the commands running, so a test can prove that
// none is left behind.
type scriptNode struct {
	name    string
	scripts map[string]script

	mu      sync.Mutex
	running int
	ran     []string
	noCtx   int // commands made without a context: nothing could kill them
}

func (n *scriptNode) String() string              { return n.name }
func (n *scriptNode) Role() (string, error)       { return "control-plane", nil }
func (n *scriptNode) IP() (string, string, error) { return "172.18.0.2", "", nil }
func (n *scriptNode) SerialLogs(io.Writer) error  { return errors.New("not in this test") }
func (n *scriptNode) Command(name string, args ...string) exec.Cmd {
	n.mu.Lock()
	n.noCtx++
	n.mu.Unlock()
	return n.CommandContext(context.Background(), name, args...)
}
func (n *scriptNode) CommandContext(ctx context.Context, name string, args ...string) exec.Cmd {
	return &scriptCmd{node: n, ctx: ctx, line: strings.Join(append([]string{name}, args...), " ")}
}

func (n *scriptNode) state() (running int, ran []string, noCtx int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running, slices.Clone(n.ran), n.noCtx
}

type scriptCmd struct {
	node           *scriptNode
	ctx            context.Context
	line           string
	stdout, stderr io.Writer
}

func (c *scriptCmd) Run() error {
	n := c.node
	n.mu.Lock()
	n.running++
	n.ran = append(n.ran, c.line)
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.running--
		n.mu.Unlock()
	}()
	stdout, stderr := c.stdout, c.stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	s := n.scripts[c.line]
	if s == nil {
		fmt.Fprintf(stderr, "sh: 1: %s: not found\n", strings.Fields(c.line)[0])
		return errors.New("exit status 127")
	}
	return s(c.ctx, stdout)
}
func (c *scriptCmd) SetEnv(...string) exec.Cmd      { return c }
func (c *scriptCmd) SetStdin(io.Reader) exec.Cmd    { return c }
func (c *scriptCmd) SetStdout(w io.Writer) exec.Cmd { c.stdout = w; return c }
func (c *scriptCmd) SetStderr(w io.Writer) exec.Cmd { c.stderr = w; return c }

// nodesKind lists the given nodes for the cluster.
type nodesKind struct{ nodes []nodes.Node }

func (k *nodesKind) List() ([]string, error)                          { return []string{"apimdev"}, nil }
func (k *nodesKind) ListNodes(string) ([]nodes.Node, error)           { return k.nodes, nil }
func (k *nodesKind) Create(string, ...kindcluster.CreateOption) error { return nil }
func (k *nodesKind) Delete(string, string) error                      { return nil }
func (k *nodesKind) KubeConfig(string, bool) (string, error)          { return "", errors.New("not here") }

// namedDocker inspects a node container as the engine would, with the
// proxy its environment was given.
type namedDocker struct{ *enginefake.Engine }

func (d *namedDocker) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{Name: "/" + id},
		Config: &container.Config{Env: []string{"HTTPS_PROXY=http://proxy.example:3128"}}}, nil
}

// varLog is a node's /var/log as `tar -cf - .` writes it: a directory, a
// pod log, kubelet's symlink to it, and names that leave the tree.
func varLog(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./pods/apim-gateway_gw-1_uid/gw/0.log", Typeflag: tar.TypeReg, Mode: 0o640}, "2026-01-02T03:04:05Z stdout F gateway started\n")
	add(&tar.Header{Name: "./containers/gw-1_apim-gateway_gw-abc.log", Typeflag: tar.TypeSymlink, Linkname: "/var/log/pods/apim-gateway_gw-1_uid/gw/0.log"}, "")
	add(&tar.Header{Name: "../outside.log", Typeflag: tar.TypeReg, Mode: 0o644}, "not from /var/log\n")
	add(&tar.Header{Name: "./pods/../../etc/shadow", Typeflag: tar.TypeReg, Mode: 0o600}, "root:x\n")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	// GNU tar pads its output to whole records.
	return append(b.Bytes(), make([]byte, 10240-b.Len()%10240)...)
}

var (
	kubeletLine  = "journalctl --no-pager --lines=100000 -u kubelet.service"
	journalLine  = "journalctl --no-pager --lines=100000"
	varLogLine   = strings.Join(varLogTar, " ")
	versionLine  = "cat /kind/version"
	imagesLine   = "crictl images"
	containerdLn = "journalctl --no-pager --lines=100000 -u containerd.service"
)

func healthyNode(t *testing.T, name string) *scriptNode {
	return &scriptNode{name: name, scripts: map[string]script{
		versionLine:  prints("v1.34.0\n"),
		kubeletLine:  prints("kubelet started on " + name + "\n"),
		containerdLn: prints("containerd started\n"),
		imagesLine:   prints("IMAGE TAG\nmcr.microsoft.com/azure-api-management/gateway v2\n"),
		journalLine:  prints("systemd booted\n"),
		varLogLine:   prints(string(varLog(t))),
	}}
}

// collected is what NodeLogs handed to add, in order.
type collected struct {
	names []string
	files map[string]string
}

func (c *collected) add(name string, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		b = append(b, "(read: "+err.Error()+")"...)
	}
	if c.files == nil {
		c.files = map[string]string{}
	}
	c.names = append(c.names, name)
	c.files[name] = string(b)
	return nil
}

// runNodeLogs runs m.NodeLogs and fails the test if it does not return
// within a bound.
func runNodeLogs(t *testing.T, ctx context.Context, m *Manager, add func(string, io.Reader) error) (error, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- m.NodeLogs(ctx, add) }()
	select {
	case err := <-done:
		return err, time.Since(start)
	case <-time.After(10 * time.Second):
		t.Fatal("NodeLogs did not return")
		return nil, 0
	}
}

func assertNothingRunning(t *testing.T, ns ...*scriptNode) {
	t.Helper()
	for _, n := range ns {
		running, _, noCtx := n.state()
		if running != 0 {
			t.Errorf("%s: %d command(s) still running after NodeLogs returned", n.name, running)
		}
		if noCtx != 0 {
			t.Errorf("%s: %d command(s) made without a context", n.name, noCtx)
		}
	}
}

func TestNodeLogsStreamsEachNodesFiles(t *testing.T) {
	t.Parallel()
	n1, n2 := healthyNode(t, "apimdev-control-plane"), healthyNode(t, "apimdev-worker")
	m := &Manager{Kind: &nodesKind{nodes: []nodes.Node{n1, n2}}, Docker: &namedDocker{engine(4, 0)}, Name: "apimdev"}
	var got collected
	err, _ := runNodeLogs(t, context.Background(), m, got.add)
	if err != nil {
		t.Fatalf("NodeLogs: %v", err)
	}
	assertNothingRunning(t, n1, n2)
	want := []string{"engine-info.json"}
	for _, n := range []string{"apimdev-control-plane", "apimdev-worker"} {
		want = append(want, n+"/inspect.json", n+"/kubernetes-version.txt", n+"/kubelet.log", n+"/containerd.log", n+"/images.log", n+"/journal.log",
			n+"/var/log/pods/apim-gateway_gw-1_uid/gw/0.log")
	}
	if !slices.Equal(got.names, want) {
		t.Errorf("files:\n got %q\nwant %q", got.names, want)
	}
	if f := got.files["apimdev-worker/kubelet.log"]; f != "kubelet started on apimdev-worker\n" {
		t.Errorf("kubelet.log = %q", f)
	}
	if f := got.files["apimdev-control-plane/var/log/pods/apim-gateway_gw-1_uid/gw/0.log"]; f != "2026-01-02T03:04:05Z stdout F gateway started\n" {
		t.Errorf("pod log = %q", f)
	}
	if f := got.files["apimdev-control-plane/inspect.json"]; !strings.Contains(f, `"Name": "/apimdev-control-plane"`) || !strings.Contains(f, "HTTPS_PROXY") {
		t.Errorf("inspect.json = %s", f)
	}
	if f := got.files["engine-info.json"]; !strings.Contains(f, `"NCPU": 4`) {
		t.Errorf("engine-info.json = %s", f)
	}
}

// A node that stops answering: NodeLogs returns soon after its context
// ends, with the context's error, having waited for the command it
// started, and starts nothing after it.
func TestNodeLogsStopsWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	n1, n2 := healthyNode(t, "apimdev-control-plane"), healthyNode(t, "apimdev-worker")
	n1.scripts[kubeletLine] = hanging("kubelet: first line\n")
	m := &Manager{Kind: &nodesKind{nodes: []nodes.Node{n1, n2}}, Docker: &namedDocker{engine(4, 0)}, Name: "apimdev"}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var got collected
	err, took := runNodeLogs(t, ctx, m, got.add)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("NodeLogs = %v, want the context's deadline", err)
	}
	if took > 2*time.Second {
		t.Errorf("NodeLogs took %s after a 200ms deadline", took)
	}
	assertNothingRunning(t, n1, n2)
	if _, ran, _ := n1.state(); slices.Contains(ran, journalLine) || slices.Contains(ran, varLogLine) {
		t.Errorf("commands ran after the deadline: %q", ran)
	}
	if _, ran, _ := n2.state(); len(ran) != 0 {
		t.Errorf("the second node was asked after the deadline: %q", ran)
	}
	if f := got.files["apimdev-control-plane/kubelet.log"]; !strings.HasPrefix(f, "kubelet: first line\n") || !strings.Contains(f, "deadline exceeded") {
		t.Errorf("the reader of the stuck stream saw %q, want its first line and the deadline", f)
	}
}

// A reader that has read enough: the command is killed, and that is no
// failure; the next one runs.
func TestNodeLogsKillsACommandWhoseOutputIsNotRead(t *testing.T) {
	t.Parallel()
	n := healthyNode(t, "apimdev-control-plane")
	n.scripts[journalLine] = endless
	m := &Manager{Kind: &nodesKind{nodes: []nodes.Node{n}}, Name: "apimdev"}
	var names []string
	err, _ := runNodeLogs(t, context.Background(), m, func(name string, r io.Reader) error {
		names = append(names, name)
		_, err := io.ReadFull(r, make([]byte, 4096)) // then stop reading
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("NodeLogs: %v", err)
	}
	assertNothingRunning(t, n)
	if !slices.Contains(names, "apimdev-control-plane/var/log/pods/apim-gateway_gw-1_uid/gw/0.log") {
		t.Errorf("nothing after the endless journal: %q", names)
	}
}

func TestNodeLogsReportsAFailedCommandAndGoesOn(t *testing.T) {
	t.Parallel()
	n := healthyNode(t, "apimdev-control-plane")
	delete(n.scripts, imagesLine)
	m := &Manager{Kind: &nodesKind{nodes: []nodes.Node{n}}, Name: "apimdev"}
	var got collected
	err, _ := runNodeLogs(t, context.Background(), m, got.add)
	if err == nil || !strings.Contains(err.Error(), "crictl images on node apimdev-control-plane") || !strings.Contains(err.Error(), "crictl: not found") {
		t.Errorf("NodeLogs = %v, want crictl's failure with its stderr", err)
	}
	if _, ok := got.files["apimdev-control-plane/journal.log"]; !ok {
		t.Errorf("the commands after the failed one did not run: %q", got.names)
	}
	assertNothingRunning(t, n)
}

// The bundle cannot take a file: NodeLogs stops there, with that error.
func TestNodeLogsStopsWhenAddFails(t *testing.T) {
	t.Parallel()
	n := healthyNode(t, "apimdev-control-plane")
	m := &Manager{Kind: &nodesKind{nodes: []nodes.Node{n}}, Name: "apimdev"}
	full := errors.New("no space left on device")
	err, _ := runNodeLogs(t, context.Background(), m, func(name string, r io.Reader) error {
		if strings.HasSuffix(name, "/kubelet.log") {
			return full
		}
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if !errors.Is(err, full) {
		t.Errorf("NodeLogs = %v, want the bundle's error", err)
	}
	if _, ran, _ := n.state(); slices.Contains(ran, containerdLn) {
		t.Errorf("commands ran after add failed: %q", ran)
	}
	assertNothingRunning(t, n)
}
