package diagnose

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/apimdev/apimdev/internal/cluster"
)

// nodeLogs adds the nodes' logs as the cluster streams them (see
// cluster.Manager.NodeLogs), each file scrubbed like every other one:
// nothing unredacted is written to disk, and nothing is left running when
// the section's time is up. A gzip file is added uncompressed; binary files
// cannot be scrubbed and are only listed.
func (c *Collector) nodeLogs(ctx context.Context, add func(string, []byte) error) error {
	if !c.NodeLogs {
		return add("kind-logs/skipped.txt", []byte("node logs were not asked for (--node-logs=false)\n"))
	}
	if c.Cluster == nil {
		return errors.New("no cluster manager")
	}
	// An apimdev before this one exported kind's logs, unredacted, into
	// doctor-kind-logs-* directories of the state directory, and an
	// interrupted doctor could leave one behind: never keep them.
	if old, _ := filepath.Glob(filepath.Join(c.Files.Dir, "doctor-kind-logs-*")); len(old) > 0 {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	if c.Docker != nil {
		if _, err := c.Docker.Ping(ctx); err != nil {
			return add("kind-logs/skipped.txt", []byte("no node logs: the "+c.Endpoint.Runs().Title()+" engine does not answer: "+err.Error()+"\n"))
		}
	}
	st, detail := c.Cluster.Inspect(ctx)
	if st == cluster.ClusterAbsent || st == cluster.ClusterUnknown {
		return add("kind-logs/skipped.txt", []byte(fmt.Sprintf("no node logs: cluster %q is %s %s\n", c.Config.Cluster.Name, st, detail)))
	}
	var binary []string
	err := c.Cluster.NodeLogs(ctx, func(name string, r io.Reader) error {
		name, b, ok := readLog(name, r)
		if !ok {
			binary = append(binary, name)
			return nil
		}
		return add("kind-logs/"+name, b)
	})
	var errs []error
	if len(binary) > 0 {
		errs = append(errs, add("kind-logs/not-included.txt", []byte("binary files, left out because they cannot be scrubbed of secrets:\n  "+strings.Join(binary, "\n  ")+"\n")))
	}
	if ctx.Err() != nil {
		why := fmt.Sprintf("reading them took longer than %s", c.nodeLogTimeout())
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			why = "doctor was interrupted"
		}
		return errors.Join(append(errs, fmt.Errorf("the node logs were cut short: %s; the files read before then are in kind-logs/", why))...)
	}
	return errors.Join(append(errs, err)...)
}

// readLog reads one node file for the bundle, uncompressed when it is
// gzip. ok is false for a binary file (or a gzip file that is not one).
func readLog(name string, r io.Reader) (string, []byte, bool) {
	if gzName, isGz := strings.CutSuffix(name, ".gz"); isGz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return name, nil, false
		}
		defer zr.Close()
		name, r = gzName, zr
	}
	b := readCapped(r, maxFile)
	if bytes.IndexByte(b, 0) >= 0 {
		return name, nil, false
	}
	return name, b, true
}

// readCapped reads r up to n bytes. Text cut short (at n bytes, or by an
// error such as the end of the section's time) loses its last, partial
// line, as a secret cut in two might not be recognised, and says so.
func readCapped(r io.Reader, n int64) []byte {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	switch {
	case int64(len(b)) > n:
		return append(wholeLines(b[:n]), "\n(truncated by apimdev doctor)\n"...)
	case err != nil:
		return append(wholeLines(b), "\n(reading stopped: "+err.Error()+")\n"...)
	}
	return b
}

// wholeLines is b up to its last line break.
func wholeLines(b []byte) []byte {
	return b[:bytes.LastIndexByte(b, '\n')+1]
}
