package diagnose

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/state"
	"github.com/apimdev/apimdev/internal/token"
)

// Cluster is the local kind cluster as doctor reads it; *cluster.Manager is
// the real one.
type Cluster interface {
	Inspect(ctx context.Context) (cluster.ClusterState, string)
	KubeconfigPath() string
	// NodeLogs streams the nodes' logs to add, one file at a time, and
	// returns soon after ctx ends, having stopped what it started.
	NodeLogs(ctx context.Context, add func(name string, r io.Reader) error) error
}

var _ Cluster = (*cluster.Manager)(nil)

// Collector gathers the diagnostics of one cluster into a bundle. Every field
// but Config may be missing: a section that cannot be collected says why in
// the bundle, and the others are still written.
type Collector struct {
	Version string
	Config  config.Config
	Files   state.Cluster
	Docker  cluster.Docker // nil: the Docker checks say so
	// Endpoint is where Docker's API (or Podman's compatible one) is, and
	// which runtime it is.
	Endpoint cluster.Endpoint
	Cluster  Cluster // nil: no cluster state, no node logs
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

func (c *Collector) kubernetes(ctx context.Context, add func(string, []byte) error) error {
	if c.Client == nil {
		err := c.ClientErr
		if err == nil {
			err = errors.New("no cluster to talk to")
		}
		return errors.Join(add("kubernetes/unavailable.txt", []byte(err.Error()+"\n")), fmt.Errorf("not collected: %w", err))
	}
	ns := c.Profile.Namespace
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		keep(add("kubernetes/nodes.txt", describeNodes(nodes.Items)))
	} else {
		keep(fmt.Errorf("nodes: %w", err))
	}
	if all, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err == nil {
		keep(add("kubernetes/all-pods.txt", podTable(all.Items, c.now())))
	} else {
		keep(fmt.Errorf("pods: %w", err))
	}
	events, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		keep(fmt.Errorf("events of %s: %w", ns, err))
		events = &corev1.EventList{}
	}
	sortEvents(events.Items)
	keep(add(ns+"/events.txt", eventLines(events.Items, "")))
	keep(c.workloads(ctx, ns, add))
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		keep(fmt.Errorf("pods of %s: %w", ns, err))
		return errors.Join(errs...)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	var desc bytes.Buffer
	for i := range pods.Items {
		describePod(&desc, &pods.Items[i], events.Items)
	}
	if len(pods.Items) == 0 {
		fmt.Fprintf(&desc, "no pods in namespace %s\n", ns)
	}
	keep(add(ns+"/pods.txt", desc.Bytes()))
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			keep(c.podLog(ctx, add, p.Namespace, p.Name, cs.Name, false))
			if cs.RestartCount > 0 {
				keep(c.podLog(ctx, add, p.Namespace, p.Name, cs.Name, true))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *Collector) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Collector) podLog(ctx context.Context, add func(string, []byte) error, ns, pod, container string, previous bool) error {
	n := c.LogLines
	if n == 0 {
		n = 2000
	}
	limit := int64(4 << 20)
	req := c.Client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, TailLines: &n, Previous: previous, LimitBytes: &limit, Timestamps: true})
	name := fmt.Sprintf("%s/logs/%s/%s.log", ns, pod, container)
	if previous {
		name = fmt.Sprintf("%s/logs/%s/%s.previous.log", ns, pod, container)
	}
	rc, err := req.Stream(ctx)
	if err != nil {
		return add(name, []byte("logs not available: "+err.Error()+"\n"))
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		b = append(b, []byte("\n(reading the log stopped: "+err.Error()+")\n")...)
	}
	return add(name, b)
}

func (c *Collector) workloads(ctx context.Context, ns string, add func(string, []byte) error) error {
	var b bytes.Buffer
	var errs []error
	if ds, err := c.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range ds.Items {
			describeDeployment(&b, &d)
		}
		if len(ds.Items) == 0 {
			fmt.Fprintf(&b, "no Deployments in namespace %s\n\n", ns)
		}
	} else {
		errs = append(errs, fmt.Errorf("deployments: %w", err))
	}
	if rss, err := c.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, rs := range rss.Items {
			want := int32(0)
			if rs.Spec.Replicas != nil {
				want = *rs.Spec.Replicas
			}
			fmt.Fprintf(&b, "ReplicaSet %s: %d desired, %d ready, revision %s\n", rs.Name, want, rs.Status.ReadyReplicas, rs.Annotations["deployment.kubernetes.io/revision"])
		}
	} else {
		errs = append(errs, fmt.Errorf("replicasets: %w", err))
	}
	if svcs, err := c.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, s := range svcs.Items {
			var ports []string
			for _, p := range s.Spec.Ports {
				ports = append(ports, fmt.Sprintf("%d>%s/%s", p.Port, p.TargetPort.String(), p.Protocol))
			}
			fmt.Fprintf(&b, "Service %s: %s %s ports %s selector %s\n", s.Name, s.Spec.Type, s.Spec.ClusterIP, strings.Join(ports, " "), labelsText(s.Spec.Selector))
		}
	} else {
		errs = append(errs, fmt.Errorf("services: %w", err))
	}
	if eps, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, es := range eps.Items {
			var addrs []string
			for _, e := range es.Endpoints {
				ready := e.Conditions.Ready != nil && *e.Conditions.Ready
				target := ""
				if e.TargetRef != nil {
					target = " " + e.TargetRef.Name
				}
				addrs = append(addrs, fmt.Sprintf("%s%s ready=%v", strings.Join(e.Addresses, ","), target, ready))
			}
			fmt.Fprintf(&b, "EndpointSlice %s (service %s): %s\n", es.Name, es.Labels["kubernetes.io/service-name"], strings.Join(addrs, "; "))
		}
	} else {
		errs = append(errs, fmt.Errorf("endpointslices: %w", err))
	}
	errs = append(errs, add(ns+"/workloads.txt", b.Bytes()))
	return errors.Join(errs...)
}

func describeDeployment(b *bytes.Buffer, d *appsv1.Deployment) {
	want := gateway.Desired(d)
	fmt.Fprintf(b, "Deployment %s: %d desired, %d updated, %d ready, %d available (generation %d, observed %d)\n",
		d.Name, want, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Generation, d.Status.ObservedGeneration)
	for _, ct := range d.Spec.Template.Spec.Containers {
		fmt.Fprintf(b, "  container %s: image %s (pull %s)\n", ct.Name, ct.Image, ct.ImagePullPolicy)
	}
	for _, cond := range d.Status.Conditions {
		fmt.Fprintf(b, "  %s=%s %s: %s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
	}
	b.WriteString("\n")
}

func describeNodes(ns []corev1.Node) []byte {
	var b bytes.Buffer
	for _, n := range ns {
		fmt.Fprintf(&b, "Node %s\n  kubelet %s, %s, %s\n", n.Name, n.Status.NodeInfo.KubeletVersion, n.Status.NodeInfo.OSImage, n.Status.NodeInfo.ContainerRuntimeVersion)
		fmt.Fprintf(&b, "  allocatable: cpu %s, memory %s, pods %s\n", n.Status.Allocatable.Cpu(), n.Status.Allocatable.Memory(), n.Status.Allocatable.Pods())
		for _, c := range n.Status.Conditions {
			fmt.Fprintf(&b, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return b.Bytes()
}

func podTable(ps []corev1.Pod, now time.Time) []byte {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tREADY\tSTATUS\tRESTARTS\tAGE\tNODE")
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Namespace != ps[j].Namespace {
			return ps[i].Namespace < ps[j].Namespace
		}
		return ps[i].Name < ps[j].Name
	})
	for i := range ps {
		p := &ps[i]
		ready, restarts := 0, int32(0)
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
		}
		age := now.Sub(p.CreationTimestamp.Time).Truncate(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%d\t%s\t%s\n", p.Namespace, p.Name, ready, len(p.Spec.Containers), podStatus(p), restarts, age, p.Spec.NodeName)
	}
	tw.Flush()
	return b.Bytes()
}

// podStatus is the one word kubectl get pods shows.
func podStatus(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			return cs.State.Waiting.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
			return cs.State.Terminated.Reason
		}
	}
	return string(p.Status.Phase)
}

func describePod(b *bytes.Buffer, p *corev1.Pod, events []corev1.Event) {
	fmt.Fprintf(b, "Pod %s/%s\n", p.Namespace, p.Name)
	fmt.Fprintf(b, "  Status:     %s (phase %s)\n", podStatus(p), p.Status.Phase)
	fmt.Fprintf(b, "  Node:       %s\n", p.Spec.NodeName)
	fmt.Fprintf(b, "  IP:         %s\n", p.Status.PodIP)
	if p.Status.StartTime != nil {
		fmt.Fprintf(b, "  Started:    %s\n", p.Status.StartTime.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(b, "  Labels:     %s\n", labelsText(p.Labels))
	var conds []string
	for _, c := range p.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s", c.Type, c.Status))
	}
	fmt.Fprintf(b, "  Conditions: %s\n", strings.Join(conds, " "))
	statuses := map[string]corev1.ContainerStatus{}
	for _, cs := range p.Status.ContainerStatuses {
		statuses[cs.Name] = cs
	}
	for _, ct := range p.Spec.Containers {
		cs := statuses[ct.Name]
		fmt.Fprintf(b, "  Container %s\n", ct.Name)
		fmt.Fprintf(b, "    Image:      %s %s\n", ct.Image, cs.ImageID)
		fmt.Fprintf(b, "    State:      %s\n", stateText(cs.State))
		if cs.LastTerminationState.Terminated != nil {
			fmt.Fprintf(b, "    Last state: %s\n", stateText(cs.LastTerminationState))
		}
		fmt.Fprintf(b, "    Ready:      %v, restarts %d\n", cs.Ready, cs.RestartCount)
		if pr := ct.ReadinessProbe; pr != nil && pr.HTTPGet != nil {
			fmt.Fprintf(b, "    Readiness:  http-get %s on port %s every %ds (timeout %ds, failure threshold %d)\n", pr.HTTPGet.Path, pr.HTTPGet.Port.String(), pr.PeriodSeconds, pr.TimeoutSeconds, pr.FailureThreshold)
		}
		// Names and sources only: an env value may be a secret.
		for _, e := range ct.Env {
			src := "value set in the spec (not shown)"
			if vf := e.ValueFrom; vf != nil {
				switch {
				case vf.SecretKeyRef != nil:
					src = fmt.Sprintf("from Secret %s key %s", vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
				case vf.ConfigMapKeyRef != nil:
					src = fmt.Sprintf("from ConfigMap %s key %s", vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key)
				default:
					src = "from the pod's fields"
				}
			}
			fmt.Fprintf(b, "    Env:        %s %s\n", e.Name, src)
		}
		for _, ef := range ct.EnvFrom {
			switch {
			case ef.ConfigMapRef != nil:
				fmt.Fprintf(b, "    Env from:   ConfigMap %s\n", ef.ConfigMapRef.Name)
			case ef.SecretRef != nil:
				fmt.Fprintf(b, "    Env from:   Secret %s\n", ef.SecretRef.Name)
			}
		}
	}
	b.WriteString("  Events:\n")
	b.Write(eventLines(events, p.Name))
	b.WriteString("\n")
}

func stateText(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running since " + s.Running.StartedAt.UTC().Format(time.RFC3339)
	case s.Waiting != nil:
		return fmt.Sprintf("Waiting (%s) %s", s.Waiting.Reason, s.Waiting.Message)
	case s.Terminated != nil:
		t := s.Terminated
		return fmt.Sprintf("Terminated (%s, exit code %d, at %s) %s", t.Reason, t.ExitCode, t.FinishedAt.UTC().Format(time.RFC3339), t.Message)
	}
	return "unknown"
}

func labelsText(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func sortEvents(es []corev1.Event) {
	sort.SliceStable(es, func(i, j int) bool { return eventTime(es[i]).Before(eventTime(es[j])) })
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// eventLines lists events, all of them or only those about object.
func eventLines(es []corev1.Event, object string) []byte {
	var b bytes.Buffer
	n := 0
	for _, e := range es {
		if object != "" && e.InvolvedObject.Name != object {
			continue
		}
		n++
		line := fmt.Sprintf("  %s %-7s %-20s %s/%s: %s", eventTime(e).UTC().Format(time.RFC3339), e.Type, e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, strings.TrimSpace(e.Message))
		if e.Count > 1 {
			line += fmt.Sprintf(" (x%d)", e.Count)
		}
		b.WriteString(line + "\n")
	}
	if n == 0 {
		b.WriteString("  (none)\n")
	}
	return b.Bytes()
}

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
