package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// nodeCommands are what runs in each node for NodeLogs, with the file each
// one's output goes to: what `kind export logs` gathers that matters for a
// gateway problem, the units' own logs before the whole journal. The
// journal's last 100000 lines (about 20 MB) are the ones that matter, and
// the bound keeps what is held in memory small.
var nodeCommands = []struct {
	file string
	argv []string
}{
	{"kubernetes-version.txt", []string{"cat", "/kind/version"}},
	{"kubelet.log", []string{"journalctl", "--no-pager", "--lines=100000", "-u", "kubelet.service"}},
	{"containerd.log", []string{"journalctl", "--no-pager", "--lines=100000", "-u", "containerd.service"}},
	{"images.log", []string{"crictl", "images"}},
	{"journal.log", []string{"journalctl", "--no-pager", "--lines=100000"}},
}

// varLogTar writes the node's /var/log as a tar to stdout. GNU tar exits 1
// when a log grew while it was read, which is no failure here. The
// journal's binary files are left out: journal.log has them as text.
var varLogTar = []string{"sh", "-c", "tar -C /var/log --exclude=./journal -cf - . || [ $? -eq 1 ]"}

// maxVarLog bounds what is read of one node's /var/log: the node command's
// output is held in memory while it runs.
const maxVarLog = 256 << 20

// NodeLogs streams each node's logs to add, one file at a time and nothing
// on disk: the engine's info, then per node its container's inspect, the
// Kubernetes version, the kubelet's and containerd's logs, the images,
// the journal, and the files of /var/log (pod logs included) as
// "<node>/var/log/<path>". Each command runs through kind's node handle
// (docker exec or podman exec) and is killed as soon as its stream is not
// read any more. When ctx ends it stops what it started, waits for it, and
// returns ctx's error; an error of add ends it too. Other failures are
// joined into the error it returns once every node was tried.
func (m *Manager) NodeLogs(ctx context.Context, add func(name string, r io.Reader) error) error {
	ns, err := m.listNodes()
	if err != nil {
		return fmt.Errorf("listing the cluster's nodes: %w", err)
	}
	if len(ns) == 0 {
		return fmt.Errorf("cluster %q has no nodes", m.Name)
	}
	put := func(name string, r io.Reader) error {
		if err := add(name, r); err != nil {
			return &addError{err}
		}
		return nil
	}
	var errs []error
	if m.Docker != nil {
		errs = append(errs, m.engineInfo(ctx, put))
	}
	for _, n := range ns {
		errs = append(errs, m.oneNode(ctx, n, put))
		if err := stopping(ctx, errs); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// addError is an error of NodeLogs' caller: it ends NodeLogs.
type addError struct{ err error }

func (e *addError) Error() string { return e.err.Error() }
func (e *addError) Unwrap() error { return e.err }

// stopping is the error that ends NodeLogs early: ctx's, or add's.
func stopping(ctx context.Context, errs []error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, err := range errs {
		var ae *addError
		if errors.As(err, &ae) {
			return ae.err
		}
	}
	return nil
}

func (m *Manager) engineInfo(ctx context.Context, add func(string, io.Reader) error) error {
	info, err := m.Docker.Info(ctx)
	if err != nil {
		return fmt.Errorf("%s info: %w", m.Runtime.CLI(), err)
	}
	return addJSON(add, "engine-info.json", info)
}

// oneNode streams one node's files, each command after the other.
func (m *Manager) oneNode(ctx context.Context, n nodes.Node, add func(string, io.Reader) error) error {
	name := n.String()
	var errs []error
	if m.Docker != nil {
		if info, err := m.Docker.ContainerInspect(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("inspecting node %s: %w", name, err))
		} else {
			errs = append(errs, addJSON(add, name+"/inspect.json", info))
		}
	}
	for _, c := range nodeCommands {
		if err := stopping(ctx, errs); err != nil {
			return err
		}
		file := name + "/" + c.file
		errs = append(errs, streamCommand(ctx, n, func(r io.Reader) error { return add(file, r) }, c.argv...))
	}
	if err := stopping(ctx, errs); err != nil {
		return err
	}
	errs = append(errs, streamCommand(ctx, n, func(r io.Reader) error { return untar(r, name+"/var/log/", add) }, varLogTar...))
	return errors.Join(errs...)
}

func addJSON(add func(string, io.Reader) error, name string, v any) error {
	j, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return add(name, bytes.NewReader(append(j, '\n')))
}

// errTooMuch ends the read of a node's /var/log past maxVarLog.
var errTooMuch = fmt.Errorf("more than %d MiB: the rest was left out", maxVarLog>>20)

// untar hands each regular file of the tar stream r to add as prefix+its
// path; links, directories and paths that leave the tree are skipped.
// It reads the stream to its end, where the command's failure shows.
func untar(r io.Reader, prefix string, add func(string, io.Reader) error) error {
	tr := tar.NewReader(&limitReader{r: r, left: maxVarLog})
	for {
		h, err := tr.Next()
		if err == io.EOF {
			_, err = io.Copy(io.Discard, r) // the tar's padding, then the command's end
			return err
		}
		if err != nil {
			return fmt.Errorf("reading /var/log: %w", err)
		}
		rel := path.Clean(strings.TrimPrefix(h.Name, "/"))
		if h.Typeflag != tar.TypeReg || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		if err := add(prefix+rel, tr); err != nil {
			return err
		}
	}
}

// limitReader fails with errTooMuch once it has read left bytes.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errTooMuch
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// streamCommand runs argv in node n with its stdout streamed to consume,
// through a pipe: nothing is written to disk. When consume returns, the
// command is killed if it still runs, and waited for. Its failure is
// returned only when consume read its output to the end (a command stopped
// because its output was not wanted any more did not fail).
func streamCommand(ctx context.Context, n nodes.Node, consume func(io.Reader) error, argv ...string) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var stderr headBuffer
	cmd := n.CommandContext(cctx, argv[0], argv[1:]...).SetStdout(pw).SetStderr(&stderr)
	ran := make(chan error, 1)
	go func() {
		err := cmd.Run()
		pw.CloseWithError(err) // nil: the reader sees io.EOF
		ran <- err
	}()
	// ctx's end unblocks a consumer waiting for output that will not come:
	// it reads ctx's error.
	unblock := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	out := &endReader{r: pr}
	err := consume(out)
	unblock()
	cancel()
	pr.Close() // the command's writes fail from now on
	runErr := <-ran
	var ae *addError
	switch {
	case errors.As(err, &ae):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case out.ended && runErr != nil:
		what := strings.Join(argv, " ")
		if line := stderr.firstLine(); line != "" {
			return fmt.Errorf("%s on node %s: %w: %s", what, n.String(), runErr, line)
		}
		return fmt.Errorf("%s on node %s: %w", what, n.String(), runErr)
	case err != nil:
		return fmt.Errorf("%s on node %s: %w", strings.Join(argv, " "), n.String(), err)
	}
	return nil
}

// endReader notes whether its reader came to an end (io.EOF or an error).
type endReader struct {
	r     io.Reader
	ended bool
}

func (e *endReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.ended = true
	}
	return n, err
}

// headBuffer keeps the first 4 KiB written to it: enough of a command's
// stderr to say why it failed.
type headBuffer struct{ b []byte }

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := 4<<10 - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuffer) firstLine() string {
	s := strings.TrimSpace(string(h.b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
