package diagnose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
)

// ClusterReader is the local kind cluster as doctor reads it, never
// changing it; *cluster.Manager is the real one.
type ClusterReader interface {
	Inspect(ctx context.Context) (cluster.ClusterState, string)
	KubeconfigPath() string
	// NodeLogs streams the nodes' logs to add, one file at a time, and
	// returns soon after ctx ends, having stopped what it started.
	NodeLogs(ctx context.Context, add func(name string, r io.Reader) error) error
}

var _ ClusterReader = (*cluster.Manager)(nil)

// Collector gathers the diagnostics of one cluster into a bundle. Every field
// but Config may be missing: a section that cannot be collected says why in
// the bundle, and the others are still written.
type Collector struct {
	Version string
	Config  config.Config
	Files   state.ClusterDir
	Docker  cluster.Docker // nil: the Docker checks say so
	// Endpoint is where Docker's API (or Podman's compatible one) is, and
	// which runtime it is.
	Endpoint cluster.Endpoint
	Cluster  ClusterReader // nil: no cluster state, no node logs
	// Client talks to the cluster; nil when there is none, ClientErr says why.
	Client    kubernetes.Interface
	ClientErr error
	Profile   gateway.Profile
	// Token is the gateway token (read back from the cluster's Secret, or the
	// one the user gave): the preflight reads its expiry and every form of it
	// is scrubbed. Secrets are further values to scrub.
	Token    token.Token
	Secrets  []string
	NodeLogs bool // include the nodes' logs (slow: a few seconds)
	Now      func() time.Time
	Progress func(format string, args ...any)
	// Timeout bounds each section but the node logs; 0 means 20 s.
	Timeout time.Duration
	// NodeLogTimeout bounds the node logs; 0 means 3 min. When it passes,
	// the bundle is written with the node logs read until then, and its
	// README says they were cut short.
	NodeLogTimeout time.Duration
	// LogLines is how many lines of each container log to keep; 0 means 2000.
	LogLines int64
	// LookPath finds the docker command for the preflight (nil: exec.LookPath).
	LookPath func(string) (string, error)
}

// Section is the outcome of one part of the bundle.
type Section struct {
	Name  string `json:"name"`
	Files int    `json:"files"`
	Error string `json:"error,omitempty"`
}

// Summary says what the bundle holds.
type Summary struct {
	Path       string    `json:"path"`
	Files      int       `json:"files"`
	Bytes      int64     `json:"bytes"`
	Redactions int       `json:"redactions"`
	Sections   []Section `json:"sections"`
}

// maxFile bounds one file read into the bundle (kind's journal can be large).
const maxFile = 32 << 20

// TokenSecrets are the parts of t to scrub: the token without its prefix, and
// its signature on its own.
func TokenSecrets(t token.Token) []string {
	v := strings.TrimPrefix(t.SecretValue(), token.Prefix)
	if v == "" {
		return nil
	}
	out := []string{v}
	if i := strings.LastIndex(v, "&"); i >= 0 {
		out = append(out, v[i+1:])
	}
	return out
}

// DefaultPath is the bundle's name when the user gives none.
func DefaultPath(clusterName string, now time.Time) string {
	return fmt.Sprintf("apimdev-doctor-%s-%s.tar.gz", clusterName, now.UTC().Format("20060102-150405"))
}

// Write collects every section into a tar.gz at dest (0600). It fails only
// when the bundle itself cannot be written or ctx is cancelled; sections that
// fail are listed in the bundle's README.txt and in the Summary.
func (c *Collector) Write(ctx context.Context, dest string) (Summary, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	at := now()
	red := NewRedactor(c.Secrets...)
	for _, s := range TokenSecrets(c.Token) {
		red.Add(s)
	}
	root := strings.TrimSuffix(filepath.Base(DefaultPath(c.Config.Cluster.Name, at)), ".tar.gz")
	b, err := newBundle(dest, root, red, at)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Path: dest}
	sections := []struct {
		name    string
		timeout time.Duration
		run     func(context.Context, func(string, []byte) error) error
	}{
		{"version", 0, c.version},
		{"config", 0, c.config},
		{"preflight", 0, c.preflight},
		{"state", 0, c.state},
		{"kubernetes", 0, c.kubernetes},
		{"node logs", c.nodeLogTimeout(), c.nodeLogs},
	}
	for _, s := range sections {
		if ctx.Err() != nil {
			b.abort()
			return sum, ctx.Err()
		}
		timeout := s.timeout
		if timeout == 0 {
			timeout = c.Timeout
		}
		if timeout == 0 {
			timeout = 20 * time.Second
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		files := b.files
		err := s.run(sctx, b.add)
		cancel()
		sec := Section{Name: s.name, Files: b.files - files}
		if err != nil {
			sec.Error = red.String(err.Error())
		}
		sum.Sections = append(sum.Sections, sec)
		c.progress(sec)
	}
	if ctx.Err() != nil {
		b.abort()
		return sum, ctx.Err()
	}
	if err := b.add("README.txt", readme(c, sum.Sections, at)); err != nil {
		b.abort()
		return sum, err
	}
	sum.Files, sum.Bytes, sum.Redactions = b.files, b.bytes, red.Count()
	if err := b.commit(dest); err != nil {
		return sum, err
	}
	return sum, nil
}

func (c *Collector) nodeLogTimeout() time.Duration {
	if c.NodeLogTimeout == 0 {
		return 3 * time.Minute
	}
	return c.NodeLogTimeout
}

func (c *Collector) progress(s Section) {
	if c.Progress == nil {
		return
	}
	if s.Error != "" {
		c.Progress("%s: %d file(s); %s", s.Name, s.Files, firstLine(s.Error))
		return
	}
	c.Progress("%s: %d file(s)", s.Name, s.Files)
}

func readme(c *Collector, secs []Section, at time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "apimdev doctor bundle for cluster %q, written %s.\n\n", c.Config.Cluster.Name, at.UTC().Format(time.RFC3339))
	b.WriteString(redactionNote + "\nsections:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, s := range secs {
		res := "ok"
		if s.Error != "" {
			res = "incomplete: " + strings.ReplaceAll(s.Error, "\n", " ")
		}
		fmt.Fprintf(tw, "  %s\t%d file(s)\t%s\n", s.Name, s.Files, res)
	}
	tw.Flush()
	return b.Bytes()
}

// redactionNote opens the README: what was replaced in every file.
const redactionNote = `Before any file was written here, these were replaced by <redacted> in it:
the gateway token and the Entra client secret (as is, escaped, and in base64),
and anything shaped like a secret: gateway tokens (their gateway id and
expiry kept), PEM private keys (their BEGIN and END lines kept), also in
base64 as in a kubeconfig's client-key-data or a Secret's data, JWTs (their
header kept), Entra client secrets (their 3-character hint kept), passwords
in URLs (scheme, user and host kept), kubeconfig credentials (token,
client-key-data, password...), and the values of Authorization and
Ocp-Apim-Subscription-Key headers.
`

func (c *Collector) version(ctx context.Context, add func(string, []byte) error) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "apimdev %s\n%s %s/%s\n", c.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	var errs []error
	if c.Docker != nil {
		if v, err := c.Docker.ServerVersion(ctx); err == nil {
			fmt.Fprintf(&b, "%s engine %s (API %s, %s/%s, kernel %s) at %s\n", c.Endpoint.Runs(), v.Version, v.APIVersion, v.Os, v.Arch, v.KernelVersion, orDefaultHost(c.Endpoint.Host))
		} else {
			fmt.Fprintf(&b, "%s engine: does not answer: %v\n", c.Endpoint.Runs(), firstLine(err.Error()))
			errs = append(errs, fmt.Errorf("docker: %w", err))
		}
	}
	if c.Client != nil {
		if v, err := c.Client.Discovery().ServerVersion(); err == nil {
			fmt.Fprintf(&b, "kubernetes %s\n", v.GitVersion)
		} else {
			fmt.Fprintf(&b, "kubernetes: does not answer: %v\n", firstLine(err.Error()))
		}
	}
	if err := add("version.txt", b.Bytes()); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func (c *Collector) config(_ context.Context, add func(string, []byte) error) error {
	j, err := json.MarshalIndent(c.Config, "", "  ")
	if err != nil {
		return err
	}
	return add("config.json", append(j, '\n'))
}

func (c *Collector) preflight(ctx context.Context, add func(string, []byte) error) error {
	fwd, running := c.Files.Forward()
	pf := &cluster.Preflight{Docker: c.Docker, Endpoint: c.Endpoint, Config: c.Config, Token: c.Token, LookPath: c.LookPath,
		ForwardRunning: running && fwd.HTTPPort == c.Config.Forward.HTTPPort && fwd.HTTPSPort == c.Config.Forward.HTTPSPort}
	if c.Cluster != nil {
		pf.Inspect = c.Cluster.Inspect
	}
	if c.Token.IsZero() {
		pf.TokenErr = errors.New("no token")
	}
	res, err := pf.Run(ctx, nil)
	if err != nil && ctx.Err() != nil {
		return err
	}
	var b bytes.Buffer
	for i, ch := range res.Checks {
		if ch.Name == "token" && c.Token.IsZero() {
			ch = cluster.Check{Name: "token", OK: true, Warn: true, Detail: "not checked: doctor reads the token from the cluster's Secret, which it could not read"}
			res.Checks[i] = ch
		}
		switch {
		case !ch.OK:
			fmt.Fprintf(&b, "✗ %-10s %s\n  %-10s fix: %s\n", ch.Name, ch.Problem, "", ch.Fix)
		case ch.Warn:
			fmt.Fprintf(&b, "! %-10s %s\n", ch.Name, ch.Detail)
		default:
			fmt.Fprintf(&b, "✓ %-10s %s\n", ch.Name, ch.Detail)
		}
	}
	fmt.Fprintf(&b, "\ncluster state: %s\n", res.Cluster)
	j, _ := json.MarshalIndent(res, "", "  ")
	return errors.Join(add("preflight.txt", b.Bytes()), add("preflight.json", append(j, '\n')))
}

func (c *Collector) state(ctx context.Context, add func(string, []byte) error) error {
	var b bytes.Buffer
	if c.Cluster != nil {
		st, detail := c.Cluster.Inspect(ctx)
		fmt.Fprintf(&b, "cluster %q: %s %s\n", c.Config.Cluster.Name, st, detail)
		fmt.Fprintf(&b, "kubeconfig: %s\n", c.Cluster.KubeconfigPath())
	}
	if rec, ok := c.Files.Forward(); ok {
		fmt.Fprintf(&b, "background forward: pid %d running, 127.0.0.1:%d and 127.0.0.1:%d, since %s\n", rec.PID, rec.HTTPPort, rec.HTTPSPort, rec.Started.UTC().Format(time.RFC3339))
	} else if rec.PID > 0 {
		fmt.Fprintf(&b, "background forward: pid %d recorded but not running\n", rec.PID)
	} else {
		b.WriteString("background forward: none recorded\n")
	}
	fmt.Fprintf(&b, "\nstate directory %s:\n", c.Files.Dir)
	var errs []error
	walkErr := filepath.WalkDir(c.Files.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(c.Files.Dir, p)
		fmt.Fprintf(&b, "  %s %8d %s %s\n", info.Mode(), info.Size(), info.ModTime().UTC().Format(time.RFC3339), rel)
		return nil
	})
	errs = append(errs, walkErr, add("state.txt", b.Bytes()))
	if log, err := tail(c.Files.ForwardLog(), 256<<10); err == nil {
		errs = append(errs, add("forward.log", log))
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// tail reads the last n bytes of a file.
func tail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.Size() <= n {
		return io.ReadAll(io.LimitReader(f, n))
	}
	if _, err := f.Seek(info.Size()-n, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, n))
	// The first line is cut: drop it, as a secret cut in two might not
	// be recognised.
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b, err
}

func (c *Collector) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func orDefaultHost(h string) string {
	if h == "" {
		return "the default socket"
	}
	return h
}
