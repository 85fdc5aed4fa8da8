package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/errdefs"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/forward"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/token"
	"github.com/apimdev/apimdev/internal/traffic"
)

// Promote step names.
const (
	StepPlan    = "plan"
	StepApply   = "apply"
	StepRollout = "rollout"
	StepChecks  = "checks"
)

// PromoteOptions say where to promote and how to prove it.
type PromoteOptions struct {
	To string // "prod" (default) or "dev"
	// Context, when set, targets that context of the user's kubeconfig
	// instead of the local kind cluster: production requests, unfitted.
	Context string
	// Token overrides the token; zero keeps the one in the cluster's Secret.
	Token token.Token
	// Confirm is shown the diff and says whether to go on.
	Confirm func(diff string) bool
	// TrafficPath is requested during the rollout; "" is the health path.
	TrafficPath   string
	TrafficHeader map[string]string
	Rate          int
	Timeout       time.Duration
	// RegistryTags lists an image repository's tags (nil: the registry's
	// v2 API over HTTPS). Tests and offline machines replace it.
	RegistryTags func(ctx context.Context, repo string) ([]string, error)
	// OnRollout, if set, is told the gateway's pod counts whenever they
	// change during the rollout; OnTraffic the traffic figures so far, about
	// once a second. Both are called from other goroutines: a live view.
	OnRollout func(gateway.RolloutCounts)
	OnTraffic func(traffic.Stats)
}

// PromoteResult is what a promotion did and proved.
type PromoteResult struct {
	Profile     string         `json:"profile"`
	Image       string         `json:"image"`
	PinnedHow   string         `json:"pinnedHow,omitempty"`
	FitNote     string         `json:"fitNote,omitempty"`
	Diff        string         `json:"diff"`
	Rollout     time.Duration  `json:"-"`
	RolloutSecs float64        `json:"rolloutSeconds"`
	Traffic     *traffic.Stats `json:"traffic,omitempty"`
	Checks      []CheckResult  `json:"checks"`
	Declined    bool           `json:"declined,omitempty"`

	fresh bool // no gateway ran before: nothing to keep traffic on
}

// CheckResult is one proof on the cluster.
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// ErrDeclined is returned when the user did not confirm.
var ErrDeclined = errors.New("promotion declined: nothing was changed")

// ConnectContext points the session at a context of the user's kubeconfig
// (read, never written).
func (s *Session) ConnectContext(name string) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: name}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig context %q: %w", name, err)
	}
	rc.QPS, rc.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	s.Client, s.REST = cs, rc
	return nil
}

// Promote moves the gateway to the prod profile (or back to dev) in place,
// with traffic flowing through a forward the whole time, then proves each
// production feature on the cluster. The caller holds the cluster lock.
func (s *Session) Promote(ctx context.Context, o PromoteOptions) (res *PromoteResult, err error) {
	if o.To == "" {
		o.To = "prod"
	}
	local := o.Context == ""
	s.localCluster = local
	if local {
		err = s.Connect()
	} else {
		err = s.ConnectContext(o.Context)
	}
	if err != nil {
		return nil, err
	}
	res = &PromoteResult{Profile: o.To}
	st := s.Rep.Start(StepPlan, "reading what runs and planning "+o.To)
	s.current = st
	tok := o.Token
	if tok.IsZero() {
		if tok, err = s.ClusterToken(ctx); err != nil {
			return nil, st.Fail(fmt.Errorf("reading the gateway token from Secret %s/%s: %w (pass --token-file to supply it)", s.Profile.Namespace, s.Profile.SecretName(), err))
		}
	}
	from, to, err := s.plan(ctx, o, local, res, st)
	if err != nil {
		return nil, st.Fail(err)
	}
	diffs, err := gateway.Diff(from.Objects(tok, true), to.Objects(tok, true))
	if err != nil {
		return nil, st.Fail(err)
	}
	res.Diff = gateway.FormatDiff(diffs, 1)
	changed := 0
	for _, d := range diffs {
		if d.Change != "unchanged" {
			changed++
		}
	}
	st.Done(fmt.Sprintf("%s → %s: %d of %d object(s) change; image %s", from.Name, to.Name, changed, len(diffs), to.Image))
	if res.FitNote != "" {
		s.Rep.Warn("resources", res.FitNote, "")
	}
	if o.Confirm != nil && !o.Confirm(res.Diff) {
		res.Declined = true
		return res, ErrDeclined
	}

	if local && o.To == "prod" {
		// The node never pulls what this machine already has.
		for _, img := range []string{to.Image, to.StatsdImage} {
			if img == "" {
				continue
			}
			what, _, err := s.Cluster.LoadImage(ctx, img, s.progress)
			if err != nil {
				return res, err
			}
			s.Rep.Info(StepPlan, img+": "+what)
			if restarted, err := gateway.RestartPullFailures(ctx, s.Client, s.Profile.Namespace, img); err == nil && len(restarted) > 0 {
				s.Rep.Info(StepPlan, "restarted pod(s) that could not pull it: "+strings.Join(restarted, ", "))
			}
		}
	}

	if res.fresh {
		// Nothing runs yet, so there is no traffic to keep alive.
		start := time.Now()
		err = s.rollout(ctx, to, tok, o)
		res.Rollout = time.Since(start)
		res.RolloutSecs = res.Rollout.Seconds()
		if err == nil {
			// A short burst through a forward, so the checks see the new
			// gateway answer and its metrics arrive.
			ts, _, terr := s.underTraffic(ctx, o, local, func() error { return nil })
			res.Traffic, err = &ts, terr
		}
	} else {
		var ts traffic.Stats
		ts, res.Rollout, err = s.underTraffic(ctx, o, local, func() error { return s.rollout(ctx, to, tok, o) })
		res.Traffic, res.RolloutSecs = &ts, res.Rollout.Seconds()
	}
	if err != nil {
		return res, err
	}
	if o.To == "dev" {
		gone, derr := gateway.DeleteProdOnly(ctx, s.Client, to)
		if derr != nil {
			return res, derr
		}
		if len(gone) > 0 {
			s.Rep.Info(StepApply, "removed what only prod has: "+strings.Join(gone, ", "))
		}
	}
	res.Checks = s.check(ctx, to, local, tok)
	return res, nil
}

// plan works out the current and target profiles: the image pinned, the
// requests fitted to a local node, the backup volume made to work on kind.
func (s *Session) plan(ctx context.Context, o PromoteOptions, local bool, res *PromoteResult, st interface{ Progress(string, ...any) }) (from, to gateway.Profile, err error) {
	dev := gateway.Dev(s.Config)
	prod, err := gateway.Prod(s.Config)
	if err != nil {
		return from, to, err
	}
	if o.To == "dev" {
		from, to = prod, dev
	} else {
		from, to = dev, prod
	}
	// What runs now decides "from" and the image that was really deployed.
	d, err := s.Client.AppsV1().Deployments(s.Profile.Namespace).Get(ctx, s.Profile.DeploymentName(), metav1.GetOptions{})
	switch {
	case err == nil:
		if d.Labels[gateway.LabelProfile] == to.Name {
			st.Progress("the gateway already runs the %s profile: applying it again changes only what differs", to.Name)
			defer func() { from = to }() // after pinning and fitting, below
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "" {
			dev.Image = img
			if o.To == "prod" {
				from.Image = img
			}
		}
	case apierrors.IsNotFound(err) && !local:
		st.Progress("no gateway in this cluster yet: the prod profile is created from scratch")
		res.fresh = true
	case err != nil:
		return from, to, fmt.Errorf("reading Deployment %s/%s: %w (run `apimdev up` first)", s.Profile.Namespace, s.Profile.DeploymentName(), err)
	}
	if o.To == "prod" {
		img, how, err := s.pin(ctx, to.Image, o)
		if err != nil {
			return from, to, err
		}
		to.Image, res.Image, res.PinnedHow = img, img, how
		st.Progress("image %s (%s)", img, how)
		if local {
			if to.Backup != nil {
				// kind's storage is a host path on its one node: ReadWriteOnce
				// is what it can provision, and every replica is on that node.
				to.Backup.AccessMode, to.Backup.StorageClass = corev1.ReadWriteOnce, ""
			}
			free, err := s.freeOnNode(ctx)
			if err != nil {
				return from, to, err
			}
			to, res.FitNote = to.Fit(free[corev1.ResourceCPU], free[corev1.ResourceMemory])
		}
	} else {
		res.Image = to.Image
	}
	return from, to, nil
}

// pin resolves a floating tag (v2, latest, beta) to major.minor.patch: from
// the registry's tag list when it answers, else from the tags or digest of
// the local image the dev profile runs; else it refuses with the fix.
func (s *Session) pin(ctx context.Context, image string, o PromoteOptions) (string, string, error) {
	if gateway.Pinned(image) {
		return image, "already pinned", nil
	}
	repo, tag := gateway.Repo(image), gateway.Tag(image)
	list := o.RegistryTags
	if list == nil {
		list = registryTags
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	tags, regErr := list(lctx, repo)
	cancel()
	if regErr == nil {
		if best := newestPatch(tags, tag); best != "" {
			return repo + ":" + best, "newest " + strings.TrimPrefix(tag, "v") + ".x.y in the registry's tag list", nil
		}
	}
	if s.Docker != nil {
		if info, err := s.Docker.ImageInspect(ctx, image); err == nil {
			for _, t := range info.RepoTags {
				if gateway.Repo(t) == repo && gateway.Pinned(t) {
					return t, "the tag of the same local image " + image, nil
				}
			}
			for _, d := range info.RepoDigests {
				if gateway.Repo(d) == repo || strings.HasPrefix(d, repo+"@") {
					return d, "the digest of the local image " + image, nil
				}
			}
		} else if !errdefs.IsNotFound(err) {
			regErr = errors.Join(regErr, err)
		}
	}
	why := "the registry's tag list is out of reach"
	if regErr == nil {
		why = "the registry lists no " + tag + " version"
	}
	return "", "", &pinError{image: image, why: why}
}

type pinError struct{ image, why string }

func (e *pinError) Error() string {
	return fmt.Sprintf("cannot pin %s to a major.minor.patch tag: %s, and no local image says which version it is", e.image, e.why)
}

func (e *pinError) Hint() string {
	return "name the version yourself, e.g. --image " + gateway.Repo(e.image) + ":2.11.1 (the tags are listed at https://mcr.microsoft.com/v2/azure-api-management/gateway/tags/list)"
}

// registryTags asks a registry's v2 API for a repository's tags (anonymous).
func registryTags(ctx context.Context, repo string) ([]string, error) {
	host, path, ok := strings.Cut(repo, "/")
	if !ok || !strings.Contains(host, ".") {
		return nil, fmt.Errorf("%s has no registry host", repo)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/v2/"+path+"/tags/list", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("tag list: %s", resp.Status)
	}
	var body struct{ Tags []string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&body); err != nil {
		return nil, err
	}
	return body.Tags, nil
}

// newestPatch picks the highest major.minor.patch tag within the floating
// tag's major version ("v2" → 2.x.y; "latest"/"beta" → any).
func newestPatch(tags []string, floating string) string {
	major := strings.TrimPrefix(floating, "v")
	if _, err := strconv.Atoi(major); err != nil {
		major = ""
	}
	best, bestV := "", [3]int{-1}
	for _, t := range tags {
		if !gateway.Pinned("image:"+t) || strings.Contains(t, "-") {
			continue
		}
		var v [3]int
		for i, p := range strings.SplitN(strings.TrimPrefix(t, "v"), ".", 3) {
			v[i], _ = strconv.Atoi(p)
		}
		if major != "" && strconv.Itoa(v[0]) != major {
			continue
		}
		if v[0] > bestV[0] || v[0] == bestV[0] && (v[1] > bestV[1] || v[1] == bestV[1] && v[2] > bestV[2]) {
			best, bestV = t, v
		}
	}
	return best
}

// freeOnNode is the first node's allocatable minus what pods other than the
// gateway's request: what the gateway's replicas can have.
func (s *Session) freeOnNode(ctx context.Context) (corev1.ResourceList, error) {
	nodes, err := s.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		return nil, fmt.Errorf("reading the node's capacity: %v", err)
	}
	n := nodes.Items[0]
	cpu, mem := n.Status.Allocatable.Cpu().DeepCopy(), n.Status.Allocatable.Memory().DeepCopy()
	pods, err := s.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name})
	if err != nil {
		return nil, err
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed ||
			p.Namespace == s.Profile.Namespace && (p.Labels["app"] == s.Profile.Gateway || p.Labels["app"] == s.Profile.StatsdName()) {
			continue
		}
		for _, c := range p.Spec.Containers {
			cpu.Sub(*c.Resources.Requests.Cpu())
			mem.Sub(*c.Resources.Requests.Memory())
		}
	}
	// The statsd exporter's own small request comes out of the same node.
	cpu.Sub(resource.MustParse("10m"))
	mem.Sub(resource.MustParse("32Mi"))
	return corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}, nil
}

// trafficForward finds the forward to send traffic through: apimdev's
// background forward when it runs, else one of this process's own.
func (s *Session) trafficForward(ctx context.Context, local bool) (int, func(), string, error) {
	if rec, ok := s.Files.Forward(); ok && local {
		return rec.HTTPPort, func() {}, fmt.Sprintf("the background forward on 127.0.0.1:%d", rec.HTTPPort), nil
	}
	l, err := listenFree()
	if err != nil {
		return 0, nil, "", err
	}
	httpPort := l[0]
	stop, _, err := s.StartForward(ctx, l[0], l[1])
	if err != nil {
		return 0, nil, "", err
	}
	return httpPort, stop, fmt.Sprintf("a forward on 127.0.0.1:%d", httpPort), nil
}

// underTraffic runs change (an apply and rollout) while steady traffic flows
// through a forward, and returns the traffic's figures and the change's time.
func (s *Session) underTraffic(ctx context.Context, o PromoteOptions, local bool, change func() error) (traffic.Stats, time.Duration, error) {
	httpPort, stopFwd, how, err := s.trafficForward(ctx, local)
	if err != nil {
		return traffic.Stats{}, 0, err
	}
	defer stopFwd()
	path, hdr, what := s.trafficTarget(ctx, o, local)
	s.Rep.Info(StepRollout, fmt.Sprintf("traffic: GET %s at %d/s (%s)", path, o.Rate, what))
	tctx, stopTraffic := context.WithCancel(ctx)
	trafficDone := make(chan traffic.Stats, 1)
	go func() {
		trafficDone <- traffic.Run(tctx, traffic.Options{URL: fmt.Sprintf("http://127.0.0.1:%d%s", httpPort, path), Header: hdr, Rate: o.Rate, Limit: 15 * time.Minute,
			OnSample: func(ts traffic.Stats) {
				s.progress("traffic %s (through %s)", ts, how)
				if o.OnTraffic != nil {
					o.OnTraffic(ts)
				}
			}})
	}()
	// Let traffic settle on the old pods first so the figures cover the switch.
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
	}
	start := time.Now()
	err = change()
	took := time.Since(start)
	// A short tail after the rollout, so requests to the new pods count too.
	if err == nil {
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
	}
	stopTraffic()
	ts := <-trafficDone
	s.Rep.Info(StepRollout, fmt.Sprintf("traffic during the rollout: %s", ts))
	return ts, took, err
}

// trafficTarget picks what the rollout traffic requests: --traffic-path, else
// on a local demo its echo API with the demo's key (which the stand-in counts
// in its metrics), else the first GET of the smoke spec (a real API call
// through the gateway), else the health path, which a draining gateway fails
// on purpose.
func (s *Session) trafficTarget(ctx context.Context, o PromoteOptions, local bool) (string, http.Header, string) {
	hdr := http.Header{}
	if o.TrafficPath != "" {
		for k, v := range o.TrafficHeader {
			hdr.Set(k, v)
		}
		return o.TrafficPath, hdr, "--traffic-path"
	}
	if local && s.Config.Gateway.Endpoint == demo.Endpoint && s.Client != nil {
		if st, err := demo.Read(ctx, s.Client); err == nil && st.Found {
			hdr.Set(demo.SubscriptionHeader, st.Keys.Subscription)
			return demo.SmokePath + "/rollout", hdr, "the demo's echo API"
		}
	}
	if spec, err := smoke.Load(s.Config.Smoke.File); err == nil {
		for _, c := range spec.Calls {
			if (c.Method == "" || strings.EqualFold(c.Method, http.MethodGet)) && (c.Port == "" || c.Port == "http") &&
				(c.Expect.Status == 0 || c.Expect.Status == http.StatusOK) {
				for k, v := range c.Headers {
					hdr.Set(k, os.ExpandEnv(v))
				}
				return c.Path, hdr, "the smoke spec's call " + strconv.Quote(c.Name)
			}
		}
	}
	return s.Profile.ProbePath, hdr, "the health path: a gateway fails it on purpose while it drains, so give --traffic-path an API call for a truer figure"
}

// rollout applies the profile and waits for it, reporting pods old/new/ready.
func (s *Session) rollout(ctx context.Context, p gateway.Profile, tok token.Token, o PromoteOptions) error {
	st := s.Rep.Start(StepApply, p.Name)
	s.current = st
	applied, err := gateway.Apply(ctx, s.Client, p.Objects(tok, false))
	if err != nil {
		return st.Fail(err)
	}
	var changed []string
	for _, a := range applied {
		if a.Created || a.Changed {
			changed = append(changed, a.String())
		}
	}
	st.Done(fmt.Sprintf("%d object(s) created or configured, %d unchanged", len(changed), len(applied)-len(changed)))
	if p.Backup != nil && s.Cluster != nil && s.localCluster {
		go s.fixBackupPermissions(ctx, p)
	}
	st = s.Rep.Start(StepRollout, "")
	s.current = st
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	w := &gateway.Waiter{Client: s.Client, Profile: p, Timeout: timeout, Redact: Redactor(tok), Progress: func(m string) { s.progress("%s", m) }, OnStatus: o.OnRollout}
	if err := w.Wait(ctx); err != nil {
		return st.Fail(err)
	}
	if p.StatsdImage != "" {
		sw := &gateway.Waiter{Client: s.Client, Profile: statsdProfile(p), Timeout: timeout}
		if err := sw.Wait(ctx); err != nil {
			return st.Fail(fmt.Errorf("statsd exporter: %w", err))
		}
	}
	st.Done(fmt.Sprintf("%s/%s %d/%d ready", p.Namespace, p.DeploymentName(), p.Replicas, p.Replicas))
	return nil
}

// fixBackupPermissions makes the backup volume's directory on the kind node
// writable by GID 1001 once the claim is bound. kind's host-path volumes
// ignore fsGroup, which on a real cluster's storage does this job; without it
// the gateway cannot write its backup (UnauthorizedAccessException).
func (s *Session) fixBackupPermissions(ctx context.Context, p gateway.Profile) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		pvc, err := s.Client.CoreV1().PersistentVolumeClaims(p.Namespace).Get(ctx, p.BackupClaimName(), metav1.GetOptions{})
		if err == nil && pvc.Status.Phase == corev1.ClaimBound {
			path, err := s.hostPath(ctx, pvc.Spec.VolumeName)
			if err == nil {
				err = s.onNode(ctx, nil, "sh", "-c", fmt.Sprintf("mkdir -p %q && chgrp %d %q && chmod 2775 %q", path, gateway.GatewayUID, path, path))
			}
			if err != nil {
				s.Rep.Warn("backup", "could not make the backup volume writable for GID 1001: "+err.Error(), "")
			}
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// statsdProfile lets the rollout waiter watch the exporter's Deployment.
func statsdProfile(p gateway.Profile) gateway.Profile {
	q := p
	q.Gateway, q.Image, q.Replicas = p.StatsdName(), p.StatsdImage, 1
	return q
}

// check proves each production feature on the cluster.
func (s *Session) check(ctx context.Context, p gateway.Profile, local bool, tok token.Token) []CheckResult {
	st := s.Rep.Start(StepChecks, "")
	var out []CheckResult
	add := func(name string, ok bool, format string, args ...any) {
		out = append(out, CheckResult{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
		mark := "✓"
		if !ok {
			mark = "✗"
		}
		st.Progress("%s %s: %s", mark, name, fmt.Sprintf(format, args...))
	}
	d, err := s.Client.AppsV1().Deployments(p.Namespace).Get(ctx, p.DeploymentName(), metav1.GetOptions{})
	if err != nil {
		add("replicas", false, "%v", err)
	} else {
		add("replicas", d.Status.ReadyReplicas == p.Replicas, "%d/%d ready", d.Status.ReadyReplicas, p.Replicas)
		img := d.Spec.Template.Spec.Containers[0].Image
		if p.Name == "dev" {
			add("image", true, "%s (dev keeps the configured tag)", img)
		} else {
			add("image pinned", gateway.Pinned(img), "%s", img)
		}
	}
	if p.PDB {
		pdb, err := s.Client.PolicyV1().PodDisruptionBudgets(p.Namespace).Get(ctx, p.Gateway, metav1.GetOptions{})
		if err != nil {
			add("disruption budget", false, "%v", err)
		} else {
			add("disruption budget", true, "maxUnavailable %s, %d disruption(s) allowed now", pdb.Spec.MaxUnavailable.String(), pdb.Status.DisruptionsAllowed)
		}
	}
	if p.Backup != nil {
		ok, detail := s.checkBackup(ctx, p, local)
		add("config backup", ok, "%s", detail)
	}
	if p.StatsdImage != "" {
		m, err := s.ScrapeMetrics(ctx)
		if err != nil {
			add("local metrics", false, "%v", err)
		} else {
			add("local metrics", m.Requests > 0, "%s", m)
		}
	}
	e := tok.ExpiryAt(time.Now())
	add("token expiry", e.State != token.ExpiryPast, "%s", e.Describe())
	failed := 0
	for _, c := range out {
		if !c.OK {
			failed++
		}
	}
	if failed > 0 {
		st.Fail(fmt.Errorf("%d of %d check(s) failed", failed, len(out)))
	} else {
		st.Done(fmt.Sprintf("%d check(s) passed", len(out)))
	}
	return out
}

func (s *Session) checkBackup(ctx context.Context, p gateway.Profile, local bool) (bool, string) {
	pvc, err := s.Client.CoreV1().PersistentVolumeClaims(p.Namespace).Get(ctx, p.BackupClaimName(), metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	if pvc.Status.Phase != corev1.ClaimBound {
		return false, fmt.Sprintf("claim %s is %s", pvc.Name, pvc.Status.Phase)
	}
	pods, err := s.Client.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(p.Selector()).String()})
	if err != nil {
		return false, err.Error()
	}
	mounted := 0
	for _, pod := range pods.Items {
		for _, v := range pod.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name && pod.DeletionTimestamp == nil {
				mounted++
			}
		}
	}
	detail := fmt.Sprintf("claim %s bound (%s, %s), mounted at %s by %d pod(s)", pvc.Name, pvc.Spec.AccessModes[0], pvc.Status.Capacity.Storage(), gateway.BackupPath, mounted)
	if !local {
		return mounted > 0, detail
	}
	files, err := s.backupFiles(ctx, pvc.Spec.VolumeName)
	if err != nil {
		return false, detail + "; cannot look inside: " + err.Error()
	}
	if len(files) == 0 {
		return false, detail + "; nothing written yet"
	}
	return mounted > 0, detail + "; written: " + strings.Join(files, ", ")
}

// backupFiles lists the backup volume's files from inside the kind node (the
// gateway image has no shell to ask).
func (s *Session) backupFiles(ctx context.Context, volume string) ([]string, error) {
	path, err := s.hostPath(ctx, volume)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := s.onNode(ctx, &buf, "ls", "-A", path); err != nil {
		return nil, err
	}
	return strings.Fields(buf.String()), nil
}

func (s *Session) hostPath(ctx context.Context, volume string) (string, error) {
	pv, err := s.Client.CoreV1().PersistentVolumes().Get(ctx, volume, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path, nil
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path, nil
	}
	return "", errors.New("the volume is not a host path")
}

// onNode runs a command in the (single) kind node container.
func (s *Session) onNode(ctx context.Context, out io.Writer, name string, args ...string) error {
	nodes, err := s.Cluster.Kind.ListNodes(s.Config.Cluster.Name)
	if err != nil || len(nodes) == 0 {
		return fmt.Errorf("no kind node: %v", err)
	}
	cmd := nodes[0].CommandContext(ctx, name, args...)
	if out != nil {
		cmd.SetStdout(out)
	}
	return cmd.Run()
}

// Metrics is what the statsd exporter has seen from the gateway.
type Metrics struct {
	Requests float64 `json:"requests"`
	P50MS    float64 `json:"p50Ms"`
	P99MS    float64 `json:"p99Ms"`
}

func (m Metrics) String() string {
	return fmt.Sprintf("%.0f requests seen by the statsd exporter, latency p50 %.1fms p99 %.1fms", m.Requests, m.P50MS, m.P99MS)
}

// ScrapeMetrics reads the exporter's Prometheus endpoint through a
// port-forward to its pod.
func (s *Session) ScrapeMetrics(ctx context.Context) (Metrics, error) {
	p := s.Profile
	pods, err := s.Client.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + p.StatsdName()})
	if err != nil {
		return Metrics{}, err
	}
	pod := ""
	for _, x := range pods.Items {
		for _, c := range x.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && x.DeletionTimestamp == nil {
				pod = x.Name
			}
		}
	}
	if pod == "" {
		return Metrics{}, errors.New("no ready statsd exporter pod")
	}
	d := &forward.SPDYDialer{Config: s.REST, Client: s.Client, Namespace: p.Namespace}
	t, err := d.Dial(ctx, pod)
	if err != nil {
		return Metrics{}, err
	}
	defer t.Close()
	stream, err := t.Open(gateway.MetricsPort)
	if err != nil {
		return Metrics{}, err
	}
	defer stream.Close()
	if _, err := io.WriteString(stream, "GET /metrics HTTP/1.0\r\nHost: statsd\r\n\r\n"); err != nil {
		return Metrics{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(stream), nil)
	if err != nil {
		return Metrics{}, fmt.Errorf("reading the exporter's metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return Metrics{}, err
	}
	return ParseMetrics(string(body)), nil
}

// ParseMetrics sums the gateway's request counter and takes the slowest
// series' quantiles from the exporter's text format (timers are in seconds).
func ParseMetrics(text string) Metrics {
	var m Metrics
	var p50s, p99s []float64
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		valStr := line[strings.LastIndex(line, " ")+1:]
		v, err := strconv.ParseFloat(valStr, 64)
		if err != nil {
			continue
		}
		if !strings.Contains(line, "{") {
			name = strings.Fields(line)[0]
		}
		switch name {
		case "requests", "requests_total":
			m.Requests += v
		case "request_duration":
			switch {
			case strings.Contains(rest, `quantile="0.5"`):
				p50s = append(p50s, v*1000)
			case strings.Contains(rest, `quantile="0.99"`):
				p99s = append(p99s, v*1000)
			}
		}
	}
	pick := func(xs []float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		sort.Float64s(xs)
		return xs[len(xs)-1]
	}
	m.P50MS, m.P99MS = pick(p50s), pick(p99s)
	return m
}
