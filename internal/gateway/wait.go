package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/apimdev/apimdev/internal/podlogs"
)

// RolloutError explains why the gateway did not become ready, in the pod's
// own words: its waiting reason, the last log lines and recent events.
type RolloutError struct {
	Reason  string   // ImagePullBackOff, CrashLoopBackOff, NotReady, ...
	Pod     string   // the pod it is about, if any
	Message string   // what Kubernetes said
	Logs    []string // last log lines of the gateway container
	Events  []string // recent warning events of the pod
	Fix     string
}

func (e *RolloutError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gateway not ready: %s", e.Reason)
	if e.Pod != "" {
		fmt.Fprintf(&b, " (pod %s)", e.Pod)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if len(e.Logs) > 0 {
		b.WriteString("\nlast log lines:")
		for _, l := range e.Logs {
			b.WriteString("\n  | " + l)
		}
	}
	if len(e.Events) > 0 {
		b.WriteString("\nevents:")
		for _, l := range e.Events {
			b.WriteString("\n  - " + l)
		}
	}
	return b.String()
}

// Hint is what the user can do about it.
func (e *RolloutError) Hint() string { return e.Fix }

// Waiter waits for the gateway Deployment to be rolled out and ready.
type Waiter struct {
	Client  kubernetes.Interface
	Profile Profile
	Timeout time.Duration // whole wait; 0 means 3 minutes
	// Interval is the longest time between two looks; 0 means 1s (tests use
	// 1ms). A look happens at once whenever a watch on the Deployment or its
	// pods sees a change, so readiness is seen when it happens, not at the
	// next tick.
	Interval time.Duration
	LogLines int64 // log lines to quote; 0 means 12
	// Redact scrubs text quoted from logs and events (the token, should a
	// gateway ever print it). Nil means no scrubbing.
	Redact   func(string) string
	Progress func(string)
	// OnStatus, if set, is called with the pod counts whenever they change,
	// and once more when the rollout is done: what a live view draws.
	OnStatus func(RolloutCounts)
}

// RolloutCounts are a Deployment's pods during a rollout, from its status.
type RolloutCounts struct {
	Desired int // replicas wanted
	Old     int // pods of earlier revisions still running
	New     int // pods of the current revision
	Ready   int // pods ready, of any revision
}

// Desired is the replicas a Deployment asks for (1 when unset, as the API
// server defaults it).
func Desired(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas != nil {
		return *d.Spec.Replicas
	}
	return 1
}

func countsOf(d *appsv1.Deployment) RolloutCounts {
	want := Desired(d)
	s := d.Status
	return RolloutCounts{Desired: int(want), Old: int(max(0, s.Replicas-s.UpdatedReplicas)), New: int(s.UpdatedReplicas), Ready: int(s.ReadyReplicas)}
}

// fatalText says, in the user's terms, why a gateway container that
// ClassifyWaiting says cannot start will not (by reason where the class
// has several).
var fatalText = map[string]string{
	"ImagePullBackOff":           "the node cannot pull the gateway image",
	"ErrImageNeverPull":          "the image is not on the node and the pull policy forbids pulling it",
	"InvalidImageName":           "the image name is not valid",
	"CreateContainerConfigError": "the container's configuration is wrong (a missing Secret or ConfigMap key?)",
	"CreateContainerError":       "the container could not be created",
	"CrashLoopBackOff":           "the gateway process keeps exiting",
	"RunContainerError":          "the container could not be started",
}

// Wait returns nil when the Deployment's new pods are all ready and no old
// pods remain, and a *RolloutError explaining the state of the pods otherwise.
func (w *Waiter) Wait(ctx context.Context) error {
	timeout, interval := w.Timeout, w.Interval
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	if interval == 0 {
		interval = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	ns, name := w.Profile.Namespace, w.Profile.DeploymentName()
	last, lastCounts := "", RolloutCounts{Desired: -1}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	changed := w.changes(ctx)
	for {
		d, err := w.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return &RolloutError{Reason: "NotFound", Message: fmt.Sprintf("Deployment %s/%s does not exist", ns, name), Fix: "run `apimdev up` to deploy the gateway"}
		case err != nil && ctx.Err() == nil && time.Until(deadline) > 2*time.Second:
			return fmt.Errorf("reading Deployment %s/%s: %w", ns, name, err)
		case err == nil:
			if c := countsOf(d); w.OnStatus != nil && c != lastCounts {
				w.OnStatus(c)
				lastCounts = c
			}
			if rolledOut(d) {
				return nil
			}
			pods, _ := w.pods(ctx)
			if rerr := w.fatalPod(ctx, pods); rerr != nil {
				return rerr
			}
			if msg := progressLine(d, pods); msg != last && w.Progress != nil {
				w.Progress(msg)
				last = msg
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			return w.timedOut(timeout)
		case <-tick.C:
		case <-changed:
		}
	}
}

// changes signals (coalesced) whenever a watch on the Deployment or its pods
// delivers an event, until ctx ends. A watch that cannot start or that
// closes only leaves the looks to the interval.
func (w *Waiter) changes(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	follow := func(wi watch.Interface, err error) {
		if err != nil {
			return
		}
		go func() {
			defer wi.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case _, ok := <-wi.ResultChan():
					if !ok {
						return
					}
					select {
					case ch <- struct{}{}:
					default: // a look is already due
					}
				}
			}
		}()
	}
	ns := w.Profile.Namespace
	follow(w.Client.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", w.Profile.DeploymentName()).String()}))
	follow(w.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(w.Profile.Selector()).String()}))
	return ch
}

func rolledOut(d *appsv1.Deployment) bool {
	want := Desired(d)
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.ReadyReplicas == want &&
		s.AvailableReplicas == want && s.Replicas == want
}

func progressLine(d *appsv1.Deployment, pods []corev1.Pod) string {
	want := Desired(d)
	msg := fmt.Sprintf("pods ready %d/%d", d.Status.ReadyReplicas, want)
	if old := d.Status.Replicas - d.Status.UpdatedReplicas; old > 0 {
		msg = fmt.Sprintf("new pods %d/%d, old pods %d, ready %d", d.Status.UpdatedReplicas, want, old, d.Status.ReadyReplicas)
	}
	for _, p := range pods {
		if r := waitingReason(&p); r != "" {
			return msg + fmt.Sprintf(" (%s: %s)", p.Name, r)
		}
	}
	return msg
}

func waitingReason(p *corev1.Pod) string {
	if p.Status.Phase == corev1.PodPending && len(p.Status.ContainerStatuses) == 0 {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				return "unschedulable: " + c.Message
			}
		}
		return "pending"
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			return cs.State.Waiting.Reason
		case cs.State.Running != nil && !cs.Ready:
			return "running, readiness probe not passing yet"
		}
	}
	return ""
}

func (w *Waiter) pods(ctx context.Context) ([]corev1.Pod, error) {
	sel := labels.SelectorFromSet(w.Profile.Selector()).String()
	l, err := w.Client.CoreV1().Pods(w.Profile.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].CreationTimestamp.After(l.Items[j].CreationTimestamp.Time) })
	return l.Items, nil
}

func (w *Waiter) fatalPod(ctx context.Context, pods []corev1.Pod) *RolloutError {
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Waiting == nil {
				continue
			}
			// The gateway's image comes from a registry: one failed pull
			// is the kubelet's to retry.
			if !ClassifyWaiting(cs.State.Waiting).CannotStart(true) {
				continue
			}
			what := fatalText[cs.State.Waiting.Reason]
			e := &RolloutError{Reason: cs.State.Waiting.Reason, Pod: p.Name, Message: what}
			if m := strings.TrimSpace(cs.State.Waiting.Message); m != "" {
				e.Message += ": " + w.scrub(m)
			}
			if ClassifyWaiting(cs.State.Waiting) == WaitingCrash {
				if t := cs.LastTerminationState.Terminated; t != nil {
					e.Message += fmt.Sprintf(" (last exit code %d, %s)", t.ExitCode, t.Reason)
				}
				e.Logs = w.logs(ctx, p.Name, true)
			}
			e.Events = w.events(ctx, p.Name)
			e.Fix = w.fixFor(e.Reason)
			if fix := w.certFix(e.Logs); fix != "" {
				e.Fix = fix
			}
			return e
		}
	}
	return nil
}

func (w *Waiter) timedOut(timeout time.Duration) *RolloutError {
	// The wait's context is spent; explain with a fresh, short one.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := &RolloutError{Reason: "NotReady", Message: fmt.Sprintf("not ready after %s", timeout), Fix: w.fixFor("NotReady")}
	pods, err := w.pods(ctx)
	if err != nil || len(pods) == 0 {
		e.Message += "; no gateway pod exists"
		return e
	}
	p := &pods[0]
	e.Pod = p.Name
	if r := waitingReason(p); r != "" {
		e.Message += "; " + r
	}
	if m := transientMessage(p); m != "" {
		// The kubelet's start-up race, waited out until now: it did not
		// pass, so it is the reason, and what it says is the account.
		e.Message += ": " + w.scrub(m)
		e.Fix = w.fixFor("CreateContainerConfigError")
	}
	e.Logs = w.logs(ctx, p.Name, false)
	e.Events = w.events(ctx, p.Name)
	if fix := authFix(e.Logs); fix != "" {
		e.Fix = fix
	} else if fix := w.certFix(e.Logs); fix != "" {
		e.Fix = fix
	}
	return e
}

// Log phrases of a TLS certificate the gateway does not trust: .NET's (the
// gateway) and Go's (the stand-in, and the sidecars people add).
var (
	untrustedCA = []string{"UntrustedRoot", "PartialChain", "RemoteCertificateChainErrors", "x509: certificate signed by unknown authority"}
	wrongName   = []string{"RemoteCertificateNameMismatch", "x509: certificate is valid for"}
)

// certFix reads the gateway's log lines for a configuration endpoint whose
// certificate it does not trust, and names the flag that makes it trust it;
// "" when there is no such line.
func (w *Waiter) certFix(logs []string) string {
	text := strings.Join(logs, "\n")
	has := func(phrases []string) string {
		for _, p := range phrases {
			if strings.Contains(text, p) {
				return p
			}
		}
		return ""
	}
	p := w.Profile
	if m := has(wrongName); m != "" {
		return fmt.Sprintf("this is a certificate problem: the TLS certificate %s presents is not for that host name (%s). Use the host name the certificate names as --endpoint, or have the certificate reissued for %s", p.Endpoint, m, p.Endpoint)
	}
	m := has(untrustedCA)
	if m == "" {
		return ""
	}
	if len(p.CACerts) == 0 {
		return fmt.Sprintf("this is a certificate problem: the gateway does not trust the TLS certificate of %s (%s): a CA the image does not know signed it, such as your company's private CA. Give that CA's certificate in PEM: `apimdev up --ca-cert ca.pem` (repeatable; gateway.caCertificates in apimdev.yaml)", p.Endpoint, m)
	}
	names := make([]string, 0, len(p.CACerts))
	for _, c := range p.CACerts {
		names = append(names, c.Name)
	}
	return fmt.Sprintf("this is a certificate problem: the gateway does not trust the TLS certificate of %s (%s) even with the private CA(s) given (%s): none of them signed its chain. Give the root CA of the endpoint's chain with --ca-cert (`openssl s_client -connect %s -showcerts` shows the chain), or --ca-cert none to remove them", p.Endpoint, m, strings.Join(names, ", "), p.Endpoint)
}

// authFix reads the gateway's log lines for Microsoft Entra ID's refusals
// (its AADSTS codes) and says which input is wrong; "" when none is there.
func authFix(logs []string) string {
	text := strings.Join(logs, "\n")
	switch {
	case strings.Contains(text, "AADSTS7000215"), strings.Contains(text, "AADSTS7000222"):
		return "Microsoft Entra ID refused the app's client secret (" + firstCode(text) + "): it is wrong or expired, or the secret's ID was copied instead of its Value. Put the Value in a file and run `apimdev up --client-secret-file FILE` (on a running gateway: `apimdev credentials rotate --client-secret-file FILE`)"
	case strings.Contains(text, "AADSTS700016"):
		return "Microsoft Entra ID does not know the application (AADSTS700016): check --client-id (the app's Application (client) ID) and that the app is in tenant --tenant-id"
	case strings.Contains(text, "AADSTS90002"), strings.Contains(text, "AADSTS900023"):
		return "Microsoft Entra ID does not know the tenant (" + firstCode(text) + "): check --tenant-id (the Directory (tenant) ID) and --authority"
	}
	return ""
}

func firstCode(text string) string {
	i := strings.Index(text, "AADSTS")
	if i < 0 {
		return "AADSTS"
	}
	j := i + len("AADSTS")
	for j < len(text) && text[j] >= '0' && text[j] <= '9' {
		j++
	}
	return text[i:j]
}

func (w *Waiter) fixFor(reason string) string {
	p := w.Profile
	switch reason {
	case "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName":
		return fmt.Sprintf("check the image name %q; if the image is on this machine (`docker image ls`), apimdev loads it into the node for you, otherwise the node must be able to reach its registry", p.Image)
	case "CrashLoopBackOff", "RunContainerError", "CreateContainerError":
		return "read the log lines above; common causes are a wrong --endpoint or a wrong or expired token (generate a new one in the portal's Deployment tab)"
	case "CreateContainerConfigError":
		return fmt.Sprintf("check that Secret %s and ConfigMap %s exist in namespace %s; re-run `apimdev up` to recreate them", p.SecretName(), p.ConfigMapName(), p.Namespace)
	default:
		return fmt.Sprintf("the readiness probe %s has not passed: the gateway has not loaded its configuration. Check that %s is reachable from the cluster (DNS, proxy, outbound 443) and that the token is valid; `kubectl logs` shows the gateway's own account", p.ProbePath, p.Endpoint)
	}
}

func (w *Waiter) scrub(s string) string {
	if w.Redact != nil {
		return w.Redact(s)
	}
	return s
}

func (w *Waiter) logs(ctx context.Context, pod string, previous bool) []string {
	n := w.LogLines
	if n == 0 {
		n = 12
	}
	req := w.Client.CoreV1().Pods(w.Profile.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: w.Profile.Gateway, TailLines: &n, Previous: previous})
	rc, err := req.Stream(ctx)
	if err != nil {
		return nil
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		// The gateway colours its text entries: its escapes are not
		// for apimdev's output, where they would recolour the terminal.
		if l = strings.TrimRight(podlogs.StripANSI(l), "\r"); l != "" {
			out = append(out, w.scrub(l))
		}
	}
	return out
}

func (w *Waiter) events(ctx context.Context, pod string) []string {
	sel := fields.Set{"involvedObject.name": pod}.AsSelector().String()
	l, err := w.Client.CoreV1().Events(w.Profile.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil
	}
	items := l.Items
	sort.Slice(items, func(i, j int) bool { return eventTime(items[i]).Before(eventTime(items[j])) })
	var out []string
	for _, e := range items {
		if e.Type != corev1.EventTypeWarning {
			continue
		}
		line := e.Reason + ": " + w.scrub(e.Message)
		if e.Count > 1 {
			line += fmt.Sprintf(" (x%d)", e.Count)
		}
		out = append(out, line)
	}
	if len(out) > 6 {
		out = out[len(out)-6:]
	}
	return out
}

func eventTime(e corev1.Event) time.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp.Time
	}
	return e.EventTime.Time
}

// RestartPullFailures deletes the pods in namespace whose container waits on
// pulling image, so they start at once from the image apimdev has just loaded
// into the node instead of after the kubelet's back-off.
func RestartPullFailures(ctx context.Context, cs kubernetes.Interface, namespace, image string) ([]string, error) {
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			w := c.State.Waiting
			if w == nil || c.Image != image || (w.Reason != "ImagePullBackOff" && w.Reason != "ErrImagePull") {
				continue
			}
			if err := cs.CoreV1().Pods(namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err == nil {
				out = append(out, p.Name)
			}
			break
		}
	}
	return out, nil
}

// transientMessage is the waiting message of p's first container that waits
// on the kubelet's start-up race, "" when none does.
func transientMessage(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && TransientWaiting(w.Message) {
			return strings.TrimSpace(w.Message)
		}
	}
	return ""
}
