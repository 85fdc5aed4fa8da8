package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/forward"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/gwlink"
	"github.com/apimdev/apimdev/internal/podlogs"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/token"
	"github.com/apimdev/apimdev/internal/traffic"
)

// The offline drill's step names (it shares smoke's).
const (
	StepCut     = "cut"
	StepRestart = "restart"
	StepRestore = "restore"
	StepSync    = "sync"
)

// DrillAnnotation on the gateway's pod template marks an offline drill in
// progress (value DrillOffline): how a later run finds one a crash left.
const (
	DrillAnnotation = "apimdev.io/drill"
	DrillOffline    = "offline"
	// drillAddress is where the drill points the configuration endpoint's
	// host: the pod's own loopback, where nothing listens on its port, so a
	// connection is refused at once and nothing leaves the pod.
	drillAddress = "127.0.0.1"
)

// DrillOptions say how to run `apimdev drill offline`.
type DrillOptions struct {
	// Traffic is what flows through the forward for the whole drill.
	Traffic TrafficOptions
	// Timeout bounds each rollout; 0 means the session's Timeouts.Rollout.
	Timeout time.Duration
	// OnRollout, if set, is told the gateway's pod counts during the rollouts.
	OnRollout func(gateway.RolloutCounts)
}

func (o DrillOptions) rolloutTimeout(t Timeouts) time.Duration {
	return PromoteOptions{Timeout: o.Timeout}.rolloutTimeout(t)
}

// DrillPod is one gateway pod the drill restarted while the configuration
// endpoint was away.
type DrillPod struct {
	Pod  string `json:"pod"`
	Node string `json:"node,omitempty"`
	// ReadyAfter is from the pod's creation to its Ready condition.
	ReadyAfter time.Duration `json:"-"`
	ReadySecs  float64       `json:"readySeconds"`
	// FromBackup says its log says it started from its configuration
	// backup; Log is the entry that says so (or what its log said of the
	// link instead); Link is the link's state as its log says it at the end
	// of the restart (gwlink).
	FromBackup bool   `json:"fromBackup"`
	Log        string `json:"log,omitempty"`
	Link       string `json:"link,omitempty"`
	// Smoke is how many of the smoke calls made to this pod alone passed.
	SmokePassed int      `json:"smokePassed"`
	SmokeTotal  int      `json:"smokeTotal"`
	SmokeFailed []string `json:"smokeFailed,omitempty"`
}

// DrillResult is what `apimdev drill offline` did and proved.
type DrillResult struct {
	Profile string `json:"profile"`
	Image   string `json:"image"`
	// Endpoint is the host taken away from the pods.
	Endpoint string `json:"endpoint"`
	// VersionWarning names the known backup problems of the gateway's version.
	VersionWarning string `json:"versionWarning,omitempty"`
	// Leftover says a drill an earlier run left was found and undone first.
	Leftover bool       `json:"leftoverRestored,omitempty"`
	Pods     []DrillPod `json:"pods"`
	// RestartSecs is the one-pod-at-a-time restart without the endpoint;
	// RestoreSecs the rollout that gave it back.
	RestartSecs float64 `json:"restartSeconds"`
	RestoreSecs float64 `json:"restoreSeconds"`
	// Traffic flowed through the forward for the whole drill.
	Traffic *traffic.Stats `json:"traffic,omitempty"`
	// Restored says the endpoint was given back and the pods are ready with
	// it; Synced how that was judged.
	Restored bool   `json:"restored"`
	Synced   string `json:"synced,omitempty"`
	// Links are the pods' links to the endpoint after it was given back.
	Links []PodLink `json:"links,omitempty"`
	// Drift is what differs from the record after the drill: nothing, unless
	// it differed before.
	Drift []gateway.Change `json:"drift,omitempty"`
}

// DrillRefusal says why a drill cannot run on what is deployed.
type DrillRefusal struct {
	Why, Fix string
}

func (e *DrillRefusal) Error() string { return "drill offline refused: " + e.Why }

// Hint says how to get a gateway the drill can run on.
func (e *DrillRefusal) Hint() string { return e.Fix }

// DrillOffline takes the configuration endpoint away from the gateway's pods
// only, restarts them one at a time (the Deployment's own rollout bounds)
// under traffic through the forward, and reports whether each came back
// ready from its backup and served the smoke calls; then it gives the
// endpoint back and waits for the pods to be ready with it. The record is
// never written, and after it nothing differs from the record. A drill left
// by an earlier run is undone first; an interrupted or failed drill gives
// the endpoint back before it returns. The caller holds the cluster lock.
func (s *Session) DrillOffline(ctx context.Context, o DrillOptions) (*DrillResult, error) {
	d := &drillRun{s: s, o: o, res: &DrillResult{}}
	err := s.runSteps(ctx, d.steps())
	if d.cutApplied && !d.res.Restored {
		// Interrupted (Ctrl-C) or failed with the endpoint away: give it
		// back, on a context of its own, before returning.
		if ctx.Err() != nil {
			s.Rep.Warn(StepRestore, "interrupted: giving the configuration endpoint back before exiting", "")
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.rolloutTimeout(s.Timeouts))
		defer cancel()
		if rerr := s.runStep(rctx, d.restoreStep("giving the configuration endpoint back")); rerr != nil {
			err = fmt.Errorf("%w; the endpoint was not given back (%v): `apimdev drill offline` finds and undoes the drill, as does `apimdev up --yes`", err, rerr)
		}
	}
	if d.spec == nil {
		return nil, err
	}
	return d.res, err
}

// drillRun is one offline drill.
type drillRun struct {
	s    *Session
	o    DrillOptions
	res  *DrillResult
	spec *gateway.Profile // what the cluster records
	tok  token.Token
	host string
	// before is what differed from the record before the drill.
	before     string
	cutApplied bool
}

func (d *drillRun) steps() []step {
	return []step{
		stage(d.prepare),
		stage(d.leftover),
		span(d.underTraffic,
			step{name: StepCut, describe: func() string {
				return fmt.Sprintf("taking %s away from the gateway's pods (it resolves to their own loopback)", d.host)
			}, run: d.cut},
			step{name: StepRestart, detail: "one pod at a time, as the Deployment's rollout bounds allow", run: d.restart},
			step{name: StepSmoke, detail: "the smoke calls, to each restarted pod alone", run: d.smoke},
			d.restoreStep("giving the configuration endpoint back"),
			step{name: StepSync, detail: "the pods ready with the endpoint, the smoke calls, the record", run: d.sync},
		),
	}
}

// prepare reads what the cluster records and refuses what cannot be drilled.
func (d *drillRun) prepare(ctx context.Context) error {
	s := d.s
	if err := s.Connect(); err != nil {
		return err
	}
	if err := s.Resolve(ctx); err != nil {
		return err
	}
	r := s.Recorded
	if r == nil {
		return fmt.Errorf("no gateway %s/%s recorded in cluster %q to drill (run `apimdev up` and `apimdev promote` first)", s.Names.Namespace, s.Names.DeploymentName(), s.Config.Cluster.Name)
	}
	if _, err := s.Client.AppsV1().Deployments(r.Spec.Namespace).Get(ctx, r.Spec.DeploymentName(), metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("no gateway %s/%s in cluster %q to drill (run `apimdev up` first)", r.Spec.Namespace, r.Spec.DeploymentName(), s.Config.Cluster.Name)
		}
		return err
	}
	spec := r.Spec
	switch {
	case r.Profile != "prod":
		return &DrillRefusal{Why: fmt.Sprintf("the gateway runs the %s profile, which keeps no configuration backup: its pods cannot start without the endpoint", r.Profile),
			Fix: "run `apimdev promote` first: the prod profile keeps a backup of the configuration on a volume at " + gateway.BackupPath}
	case spec.Backup == nil:
		return &DrillRefusal{Why: "the prod profile runs without its backup volume (prod.backup.enabled is false): its pods cannot start without the endpoint",
			Fix: "turn the backup on and apply it: `apimdev promote --yes --set prod.backup.enabled=true` (or APIMDEV_PROD_BACKUP_ENABLED=true)"}
	case spec.Proxy.HTTP != "" || spec.Proxy.HTTPS != "":
		return &DrillRefusal{Why: "the gateway reaches its configuration endpoint through a proxy, which resolves the host itself: taking the host away in the pods would not cut it",
			Fix: "drill where the gateway reaches the endpoint directly, or take the endpoint away at the proxy"}
	}
	d.host = endpointHost(spec.Endpoint)
	if d.host == "" {
		return &DrillRefusal{Why: "the record names no configuration endpoint", Fix: "run `apimdev up` with --endpoint"}
	}
	tok, err := s.ClusterToken(ctx)
	if err != nil {
		return fmt.Errorf("reading the gateway's credential from Secret %s/%s: %w", spec.Namespace, spec.SecretName(), err)
	}
	d.spec, d.tok = &spec, tok
	d.res.Profile, d.res.Image, d.res.Endpoint = r.Profile, spec.Image, d.host
	if w := backupWarning(spec.Image); w != "" {
		d.res.VersionWarning = w
		s.Rep.Warn(StepCut, w, "")
	}
	return nil
}

// backupWarning is what the known-problems table says of the image's
// version and the backup, "" when nothing.
func backupWarning(image string) string {
	v := gateway.VersionOf(image)
	var ls []string
	for _, p := range gateway.ProblemsOf(v) {
		if p.Backup {
			ls = append(ls, p.Summary+" ("+p.Source+")")
		}
	}
	if len(ls) == 0 {
		return ""
	}
	return fmt.Sprintf("gateway %s has a known backup problem: %s; expect pods that do not come ready (the drill then gives the endpoint back)", v, strings.Join(ls, "; "))
}

// endpointHost is the host name of config.service.endpoint.
func endpointHost(e string) string {
	h := config.EndpointHost(e)
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

// leftover undoes a drill an earlier run left (it crashed, or the machine
// stopped), saying so, before anything else.
func (d *drillRun) leftover(ctx context.Context) error {
	dep, err := d.deployment(ctx)
	if err != nil {
		return err
	}
	if !drilled(dep, d.host) {
		return nil
	}
	d.res.Leftover = true
	d.s.Rep.Warn(StepRestore, fmt.Sprintf("Deployment %s/%s still carries a drill an earlier run left (%s=%s, %s → %s): giving the endpoint back first",
		dep.Namespace, dep.Name, DrillAnnotation, dep.Spec.Template.Annotations[DrillAnnotation], d.host, drillAddress), "")
	if err := d.s.runStep(ctx, d.restoreStep("undoing the drill left by an earlier run")); err != nil {
		return err
	}
	d.res.Restored = false // the drill proper is still to run
	return nil
}

func (d *drillRun) deployment(ctx context.Context) (*appsv1.Deployment, error) {
	p := d.spec
	dep, err := d.s.Client.AppsV1().Deployments(p.Namespace).Get(ctx, p.DeploymentName(), metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading Deployment %s/%s: %w", p.Namespace, p.DeploymentName(), err)
	}
	return dep, nil
}

// drilled says a Deployment's pod template carries a drill: the annotation,
// or the host pointed at the loopback.
func drilled(dep *appsv1.Deployment, host string) bool {
	if _, ok := dep.Spec.Template.Annotations[DrillAnnotation]; ok {
		return true
	}
	for _, a := range dep.Spec.Template.Spec.HostAliases {
		if a.IP == drillAddress && slices.Contains(a.Hostnames, host) {
			return true
		}
	}
	return false
}

// underTraffic runs the drill with traffic flowing through the forward.
func (d *drillRun) underTraffic(ctx context.Context, inner func() error) error {
	ts, _, err := d.s.underTraffic(ctx, d.o.Traffic, StepRestart, inner)
	d.res.Traffic = &ts
	return err
}

// recordedDeployment is the Deployment as the record renders it.
func (d *drillRun) recordedDeployment() (*appsv1.Deployment, error) {
	for _, o := range d.spec.Objects(d.tok, false) {
		if dep, ok := o.(*appsv1.Deployment); ok && dep.Name == d.spec.DeploymentName() {
			return dep.DeepCopy(), nil
		}
	}
	return nil, fmt.Errorf("the record renders no Deployment %s", d.spec.DeploymentName())
}

// differences is what applying the record would change now, as text.
func (d *drillRun) differences(ctx context.Context) ([]gateway.Change, string, error) {
	plan, err := gateway.Plan(ctx, d.s.Client, *d.spec, d.spec.Objects(d.tok, false))
	if err != nil {
		return nil, "", err
	}
	var out []gateway.Change
	for _, c := range plan {
		if c.Changed() {
			c.Lines = changedLines(c.Lines)
			out = append(out, c)
		}
	}
	return out, gateway.FormatPlan(out, 0), nil
}

// cut applies the record's Deployment with the endpoint's host pointed at
// the pods' loopback and the drill's mark: the Deployment then restarts its
// pods within its own rollout bounds.
func (d *drillRun) cut(ctx context.Context, st *events.Step) (string, error) {
	diff, text, err := d.differences(ctx)
	if err != nil {
		return "", err
	}
	for _, c := range diff {
		if c.Kind == "Deployment" && c.Name == d.spec.DeploymentName() {
			return "", &DrillRefusal{Why: fmt.Sprintf("Deployment %s/%s differs from what the cluster records:\n%s", d.spec.Namespace, c.Name, text),
				Fix: "`apimdev up` shows the difference and puts it back (--yes); the drill would put it back without asking"}
		}
	}
	if len(diff) > 0 {
		st.Warn("the cluster already differs from its record (the drill leaves this as it is):\n"+text, "")
	}
	d.before = text
	dep, err := d.recordedDeployment()
	if err != nil {
		return "", err
	}
	t := &dep.Spec.Template
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	t.Annotations[DrillAnnotation] = DrillOffline
	t.Spec.HostAliases = append(t.Spec.HostAliases, corev1.HostAlias{IP: drillAddress, Hostnames: []string{d.host}})
	d.cutApplied = true // from here on, whatever happens, the endpoint is given back
	if _, err := gateway.Apply(ctx, d.s.Client, []runtime.Object{dep}); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s → %s in the pods of %s/%s (annotation %s=%s)", d.host, drillAddress, dep.Namespace, dep.Name, DrillAnnotation, DrillOffline), nil
}

// restart waits for the Deployment to replace its pods, one at a time, with
// the endpoint away, then reads each new pod: when it was ready and what
// its log says of the backup.
func (d *drillRun) restart(ctx context.Context, st *events.Step) (string, error) {
	s := d.s
	start := time.Now()
	err := s.waitRollout(ctx, &ProfilePlan{Target: *d.spec, token: d.tok}, d.o.rolloutTimeout(s.Timeouts), d.o.OnRollout)
	d.res.RestartSecs = time.Since(start).Seconds()
	pods, perr := d.pods(ctx, true)
	if perr != nil && err == nil {
		err = perr
	}
	for _, p := range pods {
		dp := DrillPod{Pod: p.Name, Node: p.Spec.NodeName}
		if at := readySince(p); !at.IsZero() && !p.CreationTimestamp.IsZero() {
			dp.ReadyAfter = at.Sub(p.CreationTimestamp.Time)
			dp.ReadySecs = dp.ReadyAfter.Round(100 * time.Millisecond).Seconds()
		}
		link, backup, lerr := d.podLink(ctx, p.Name)
		dp.Link = string(link.State)
		switch {
		case backup != nil:
			dp.FromBackup, dp.Log = true, d.said(*backup)
		case lerr != nil:
			dp.Log = "its log could not be read: " + lerr.Error()
		default:
			dp.Log = d.said(link)
		}
		if !dp.FromBackup {
			st.Warn(fmt.Sprintf("pod %s is ready, but its log does not say it started from its backup (%s)", p.Name, dp.Log), "")
		} else {
			st.Progress("pod %s ready after %.1fs from its backup: %s", p.Name, dp.ReadySecs, dp.Log)
		}
		d.res.Pods = append(d.res.Pods, dp)
	}
	if err != nil {
		return "", err
	}
	n := 0
	for _, p := range d.res.Pods {
		if p.FromBackup {
			n++
		}
	}
	return fmt.Sprintf("%d pod(s) restarted without the endpoint, ready in %.1fs; %d say they started from their backup", len(d.res.Pods), d.res.RestartSecs, n), nil
}

// pods are the gateway's pods that are not terminating, those of the drill
// (drill) or those without its mark.
func (d *drillRun) pods(ctx context.Context, drill bool) ([]corev1.Pod, error) {
	p := d.spec
	l, err := d.s.Client.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(p.Selector()).String()})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, x := range l.Items {
		if x.DeletionTimestamp == nil && (x.Annotations[DrillAnnotation] != "") == drill {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// readySince is when the pod's Ready condition became true, zero if not.
func readySince(p corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// podLink reads a pod's log into its link to the configuration endpoint
// (gwlink), and the entry that says it started from its backup, if one does
// (the gateway may log the endpoint's failures after it).
func (d *drillRun) podLink(ctx context.Context, pod string) (gwlink.Link, *gwlink.Link, error) {
	byPod, err := d.s.logEntries(ctx, pod, func(*corev1.PodLogOptions) {})
	entries := byPod[pod]
	var backup *gwlink.Link
	for _, e := range entries {
		if l := gwlink.Classify([]podlogs.Logged{e}, time.Time{}); l.State == gwlink.FromBackup {
			backup = &l
		}
	}
	return gwlink.Classify(entries, time.Time{}), backup, err
}

// said is a link in a few words: its state and its evidence.
func (d *drillRun) said(l gwlink.Link) string {
	if l.Evidence == "" {
		return string(l.State) + ": " + l.Cause()
	}
	return string(l.State) + ": " + Redactor(d.tok)(l.Evidence)
}

// smoke runs the smoke calls to each restarted pod alone, through a forward
// of this process to that pod only.
func (d *drillRun) smoke(ctx context.Context, st *events.Step) (string, error) {
	s := d.s
	s.addDemoSmoke(ctx)
	failed := 0
	for i := range d.res.Pods {
		p := &d.res.Pods[i]
		results, err := d.smokePod(ctx, p.Pod)
		if err != nil {
			return "", fmt.Errorf("smoke calls to pod %s: %w", p.Pod, err)
		}
		p.SmokeTotal = len(results)
		for _, r := range results {
			if r.Pass {
				p.SmokePassed++
			} else {
				p.SmokeFailed = append(p.SmokeFailed, fmt.Sprintf("%s %s: %s", r.Method, r.Name, r.Reason))
			}
		}
		st.Progress("pod %s: %d of %d smoke call(s) passed", p.Pod, p.SmokePassed, p.SmokeTotal)
		if p.SmokePassed != p.SmokeTotal {
			failed++
		}
	}
	if failed > 0 {
		return "", fmt.Errorf("%d of %d pod(s) failed smoke calls without the endpoint (see the pods' rows)", failed, len(d.res.Pods))
	}
	return fmt.Sprintf("every smoke call passed on each of %d pod(s), served from the backup", len(d.res.Pods)), nil
}

// smokePod runs the smoke calls through a forward of its own to one pod.
func (d *drillRun) smokePod(ctx context.Context, pod string) ([]smoke.Result, error) {
	s := d.s
	free, err := listenFree()
	if err != nil {
		return nil, err
	}
	f := &forward.Forwarder{Host: "127.0.0.1", Backends: onePod(pod), Dialer: s.dialer(d.spec.Namespace), WaitReady: 5 * time.Second,
		Mappings: []forward.Mapping{{LocalPort: free[0], ServicePort: gateway.ServiceHTTP}, {LocalPort: free[1], ServicePort: gateway.ServiceHTTPS}}}
	ls, err := f.Listen()
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = f.Serve(fctx, ls); close(done) }()
	defer func() { cancel(); <-done }()
	return s.Smoke(ctx, d.tok, free[0], free[1])
}

// onePod is the one pod a forward goes to, always ready.
type onePod string

func (p onePod) Ready(servicePort int) []forward.Backend {
	port := gateway.ContainerHTTP
	if servicePort == gateway.ServiceHTTPS {
		port = gateway.ContainerHTTPS
	}
	return []forward.Backend{{Pod: string(p), Port: port}}
}

// Changed never fires: the one pod is all there is.
func (onePod) Changed() <-chan struct{} { return nil }

// restoreStep gives the endpoint back: the record's Deployment applied
// again (the field manager that set the drill's fields no longer sets
// them, so they go), then the rollout, one pod at a time.
func (d *drillRun) restoreStep(detail string) step {
	return step{name: StepRestore, detail: detail, run: func(ctx context.Context, st *events.Step) (string, error) {
		s := d.s
		dep, err := d.recordedDeployment()
		if err != nil {
			return "", err
		}
		if _, err := gateway.Apply(ctx, s.Client, []runtime.Object{dep}); err != nil {
			return "", err
		}
		live, err := d.deployment(ctx)
		if err != nil {
			return "", err
		}
		if drilled(live, d.host) {
			// Another field manager owns the marks (a hand-made drill):
			// take them out by name.
			if err := d.unmark(ctx, live); err != nil {
				return "", err
			}
			st.Progress("removed the drill's marks that another field manager set")
		}
		start := time.Now()
		if err := s.waitRollout(ctx, &ProfilePlan{Target: *d.spec, token: d.tok}, d.o.rolloutTimeout(s.Timeouts), d.o.OnRollout); err != nil {
			return "", err
		}
		d.res.RestoreSecs = time.Since(start).Seconds()
		d.res.Restored = true
		d.cutApplied = false
		return fmt.Sprintf("%s resolves as the cluster's DNS says again; %s/%s %d/%d ready after %.1fs", d.host, d.spec.Namespace, d.spec.DeploymentName(), d.spec.Replicas, d.spec.Replicas, d.res.RestoreSecs), nil
	}}
}

// unmark removes the drill's annotation and host alias with a JSON patch.
func (d *drillRun) unmark(ctx context.Context, dep *appsv1.Deployment) error {
	type op struct {
		Op   string `json:"op"`
		Path string `json:"path"`
	}
	var ops []op
	if _, ok := dep.Spec.Template.Annotations[DrillAnnotation]; ok {
		ops = append(ops, op{"remove", "/spec/template/metadata/annotations/" + strings.ReplaceAll(DrillAnnotation, "/", "~1")})
	}
	for i := len(dep.Spec.Template.Spec.HostAliases) - 1; i >= 0; i-- {
		a := dep.Spec.Template.Spec.HostAliases[i]
		if a.IP == drillAddress && slices.Contains(a.Hostnames, d.host) {
			ops = append(ops, op{"remove", fmt.Sprintf("/spec/template/spec/hostAliases/%d", i)})
		}
	}
	b, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	if _, err := d.s.Client.AppsV1().Deployments(dep.Namespace).Patch(ctx, dep.Name, types.JSONPatchType, b, metav1.PatchOptions{FieldManager: gateway.FieldManager + "-drill"}); err != nil {
		return fmt.Errorf("removing the drill from Deployment %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	return nil
}

// sync proves the endpoint is back: no pod of the drill is left, the smoke
// calls pass through the forward, and nothing differs from the record that
// did not before. The drill's ReplicaSet goes too, so that no `kubectl
// rollout undo` brings the drill back.
func (d *drillRun) sync(ctx context.Context, st *events.Step) (string, error) {
	s := d.s
	left, err := d.pods(ctx, true)
	if err != nil {
		return "", err
	}
	if len(left) > 0 {
		return "", fmt.Errorf("%d pod(s) of the drill still run after the endpoint was given back: %s", len(left), left[0].Name)
	}
	pods, err := d.pods(ctx, false)
	if err != nil {
		return "", err
	}
	ready := 0
	for _, p := range pods {
		if podReady(p) {
			ready++
		}
	}
	links, err := d.links(ctx)
	if err != nil {
		return "", err
	}
	d.res.Links = links
	for _, l := range links {
		switch l.State {
		case gwlink.Refused, gwlink.Unreachable, gwlink.Untrusted, gwlink.FromBackup:
			return "", fmt.Errorf("pod %s after the endpoint was given back: %s: %s", l.Pod, l.State, Redactor(d.tok)(l.Evidence))
		case gwlink.Unknown:
			if l.Evidence != "" {
				st.Warn(fmt.Sprintf("pod %s after the endpoint was given back: %s", l.Pod, Redactor(d.tok)(l.Evidence)), "")
			}
		}
	}
	if err := d.pruneReplicaSets(ctx); err != nil {
		st.Warn(err.Error(), "")
	}
	ports, err := s.UseForward(ctx)
	if err != nil {
		return "", err
	}
	results, err := s.Smoke(ctx, d.tok, ports.HTTP, ports.HTTPS)
	ports.Stop()
	if err != nil {
		return "", err
	}
	passed := 0
	for _, r := range results {
		if r.Pass {
			passed++
		}
	}
	if passed != len(results) {
		return "", &SmokeError{Failed: len(results) - passed, Total: len(results)}
	}
	diff, text, err := d.differences(ctx)
	if err != nil {
		return "", err
	}
	d.res.Drift = diff
	if text != d.before {
		return "", fmt.Errorf("the drill left a trace: applying the record would change\n%s", text)
	}
	// Not "synced" unless the logs say it: a gateway logging at warn (the
	// prod profile) says nothing while all is well, and the summary says so.
	link := "link " + LinkSummary(links, s.now())
	d.res.Synced = fmt.Sprintf("%d/%d pod(s) ready with the endpoint back, %s; %d smoke call(s) passed through the forward", ready, len(pods), link, passed)
	return d.res.Synced + "; nothing differs from the record", nil
}

// links waits, at most the session's Read timeout, for every running
// pod's log to say its link is synced (Session.Links), and returns what the
// logs say then: a gateway that logs at warn never says it.
func (d *drillRun) links(ctx context.Context) ([]PodLink, error) {
	t := d.s.Timeouts.orDefault()
	deadline := time.Now().Add(t.Read)
	for {
		links, err := d.s.Links(ctx)
		if err != nil {
			return nil, err
		}
		synced := 0
		for _, l := range links {
			if l.State == gwlink.Synced {
				synced++
			}
		}
		if synced == len(links) || time.Now().After(deadline) {
			return links, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(t.Tick):
		}
	}
}

// pruneReplicaSets deletes the Deployment's ReplicaSets whose template is
// the drill's, now scaled to nothing.
func (d *drillRun) pruneReplicaSets(ctx context.Context) error {
	p := d.spec
	l, err := d.s.Client.AppsV1().ReplicaSets(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(p.Selector()).String()})
	if err != nil {
		return fmt.Errorf("listing the gateway's ReplicaSets: %w", err)
	}
	var errs []error
	for _, rs := range l.Items {
		if rs.Spec.Template.Annotations[DrillAnnotation] == "" || rs.Spec.Replicas != nil && *rs.Spec.Replicas > 0 {
			continue
		}
		if err := d.s.Client.AppsV1().ReplicaSets(p.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting the drill's ReplicaSet %s: %w", rs.Name, err))
		}
	}
	return errors.Join(errs...)
}
