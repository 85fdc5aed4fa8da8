package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/forward"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/relay"
)

// BackendAddOptions say which backend `apimdev backend add` gives the
// gateway.
type BackendAddOptions struct {
	Name string
	// To is a loopback address on this machine ("127.0.0.1:8080"): a
	// program reached through the relay. Image is a container instead.
	To    string
	Image string
	// Port is the port the gateway calls (http://Name:Port); 0 takes To's.
	Port int
}

// BackendState is one backend as the record has it and the relay sees it.
type BackendState struct {
	gateway.Backend
	URL      string `json:"url"`
	ShortURL string `json:"shortUrl"`
	// State: answering, down (the program does not accept connections),
	// no tunnel (no apimdev forward holds the relay's session), starting,
	// ready (an image backend's pods), or unknown.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Connection and byte counts since the relay started (local backends).
	Active   int64 `json:"active"`
	Total    int64 `json:"total"`
	Failed   int64 `json:"failed"`
	BytesIn  int64 `json:"bytesToBackend"`
	BytesOut int64 `json:"bytesFromBackend"`
}

// Line is the backend in one line, as status, up and the wizard show it.
func (b BackendState) Line() string {
	to := "→ " + b.Target + " on this machine"
	if !b.Local() {
		to = "→ image " + b.Image
	}
	line := fmt.Sprintf("%s %s: %s", b.ShortURL, to, b.State)
	if b.Reason != "" {
		line += " (" + b.Reason + ")"
	}
	return line
}

// backendsAfterUp are the backends once the forward up started has had a
// moment (at most 5 s) to take up the relay's session.
func (s *Session) backendsAfterUp(ctx context.Context) []BackendState {
	deadline := time.Now().Add(5 * time.Second)
	for {
		bs, _ := s.Backends(ctx)
		waiting := slices.ContainsFunc(bs, func(b BackendState) bool { return b.State == "no tunnel" })
		if !waiting || time.Now().After(deadline) || !s.Files.CheckForward().Running {
			return bs
		}
		select {
		case <-ctx.Done():
			return bs
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// BackendError is bad input to `backend add` or `remove`, with its fix.
type BackendError struct{ Problem, Fix string }

func (e *BackendError) Error() string { return e.Problem }

// Hint says what to do.
func (e *BackendError) Hint() string { return e.Fix }

// recordedBackends are the backends the cluster's record holds.
func (s *Session) recordedBackends() []gateway.Backend {
	if s.Recorded == nil {
		return nil
	}
	return slices.Clone(s.Recorded.Backends)
}

// checkBackend validates o against the recorded backends and returns the
// backend it asks for.
func (s *Session) checkBackend(ctx context.Context, o BackendAddOptions) (gateway.Backend, error) {
	b := gateway.Backend{Name: o.Name, Port: o.Port, Image: o.Image}
	if err := relay.ValidateName(o.Name); err != nil {
		return b, &BackendError{Problem: fmt.Sprintf("backend name %q: %v", o.Name, err), Fix: "use a lower-case DNS label, such as `orders` or `orders-api`: it becomes http://NAME:PORT"}
	}
	switch {
	case o.To != "" && o.Image != "":
		return b, &BackendError{Problem: "--to and --image both given", Fix: "--to 127.0.0.1:PORT for a program on this machine, or --image IMAGE --port P for a container"}
	case o.To == "" && o.Image == "":
		return b, &BackendError{Problem: "backend add needs where the backend runs", Fix: "--to 127.0.0.1:PORT for a program on this machine, or --image IMAGE --port P for a container"}
	case o.To != "":
		t, err := relay.ValidateTarget(o.To)
		if err != nil {
			return b, &BackendError{Problem: err.Error(), Fix: "run your program on 127.0.0.1 and pass --to 127.0.0.1:PORT"}
		}
		b.Target = t
		if b.Port == 0 {
			b.Port = b.TargetPort()
		}
	case o.Port == 0:
		return b, &BackendError{Problem: "--image needs the port the container listens on", Fix: "add --port P"}
	}
	if b.Port < 1 || b.Port > 65535 {
		return b, &BackendError{Problem: fmt.Sprintf("port %d is not a TCP port", b.Port), Fix: "use --port 1-65535"}
	}
	if b.Local() && b.Port == gateway.RelayControlPort {
		return b, &BackendError{Problem: fmt.Sprintf("port %d is the relay's own control port", b.Port), Fix: fmt.Sprintf("add --port with another port for the gateway to call, e.g. --port %d", b.Port+1)}
	}
	for _, o := range s.recordedBackends() {
		if o.Name != b.Name && b.Local() && o.Local() && o.Port == b.Port {
			return b, &BackendError{Problem: fmt.Sprintf("port %d is taken by backend %q (→ %s): the relay listens on one port per backend", b.Port, o.Name, o.Target),
				Fix: fmt.Sprintf("add --port %d (the gateway then calls http://%s:%d; your program stays on %s)", b.Port+1, b.Name, b.Port+1, b.Target)}
		}
	}
	// A Service of that name that apimdev did not make for a backend (the
	// gateway's own, or someone's) is not taken over.
	svc, err := s.Client.CoreV1().Services(s.Names.Namespace).Get(ctx, b.Name, metav1.GetOptions{})
	if err == nil && svc.Labels[gateway.LabelBackend] != b.Name {
		return b, &BackendError{Problem: fmt.Sprintf("Service %s/%s already exists and is not a backend apimdev made", s.Names.Namespace, b.Name), Fix: "pick another name"}
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return b, fmt.Errorf("reading Service %s/%s: %w", s.Names.Namespace, b.Name, err)
	}
	return b, nil
}

// BackendAdd gives the gateway a backend under a stable name in its
// namespace: the relay's Service for a program on this machine, or a
// Deployment and Service for an image. It is recorded in the cluster with
// the gateway; a backend that cannot start is taken away again, not left
// half-made. The session is connected and resolved; the caller holds the
// cluster lock.
func (s *Session) BackendAdd(ctx context.Context, o BackendAddOptions) (BackendState, error) {
	if s.Recorded == nil {
		return BackendState{}, &NoClusterError{Name: s.Config.Cluster.Name}
	}
	var b gateway.Backend
	var before []gateway.Backend
	var made []string
	steps := []step{
		{name: "backend", detail: o.Name, run: func(ctx context.Context, st *events.Step) (string, error) {
			var err error
			if b, err = s.checkBackend(ctx, o); err != nil {
				return "", err
			}
			if b.Local() {
				return fmt.Sprintf("%s → %s on this machine", b.ShortURL(), b.Target), nil
			}
			return fmt.Sprintf("%s → image %s", b.ShortURL(), b.Image), nil
		}},
		{name: "image", describe: func() string { return imageOf(b) }, run: func(ctx context.Context, st *events.Step) (string, error) {
			if !b.Local() {
				what, _, err := s.Cluster.LoadImage(ctx, b.Image, s.progress)
				if err != nil {
					return "", fmt.Errorf("loading %s into the cluster: %w (build or pull it into your engine first; apimdev never pulls it)", b.Image, err)
				}
				return what, nil
			}
			ref, what, err := s.relayImage(ctx)
			if err != nil {
				return "", err
			}
			s.relayRef = ref
			return what, nil
		}},
		{name: "apply", run: func(ctx context.Context, st *events.Step) (string, error) {
			before = s.recordedBackends()
			after := slices.DeleteFunc(slices.Clone(before), func(x gateway.Backend) bool { return x.Name == b.Name })
			after = append(after, b)
			existed, err := s.backendObjectNames(ctx)
			if err != nil {
				return "", err
			}
			n, err := s.convergeBackends(ctx, after, st.Progress)
			if err != nil {
				return "", err
			}
			for _, name := range n.made {
				if !existed[name] {
					made = append(made, name)
				}
			}
			return fmt.Sprintf("%d object(s) changed", n.changed), nil
		}},
		{name: "ready", run: func(ctx context.Context, st *events.Step) (string, error) {
			app := gateway.RelayName
			if !b.Local() {
				app = b.Name
			}
			wctx, cancel := context.WithTimeout(ctx, s.Timeouts.orDefault().Deploy)
			defer cancel()
			if err := s.waitBackendPods(wctx, app); err != nil {
				// Nothing half-made: what this command created goes, the
				// relay is put back as it was.
				st.Progress("taking back what this command made: %s", strings.Join(made, ", "))
				_, _ = s.convergeBackends(context.WithoutCancel(ctx), before, st.Progress)
				return "", err
			}
			rec := *s.Recorded
			rec.Backends = append(slices.DeleteFunc(slices.Clone(before), func(x gateway.Backend) bool { return x.Name == b.Name }), b)
			slices.SortFunc(rec.Backends, func(x, y gateway.Backend) int { return strings.Compare(x.Name, y.Name) })
			if err := s.writeRecord(ctx, &rec); err != nil {
				return "", err
			}
			return app + " ready", nil
		}},
	}
	if o.Image == "" {
		steps = append(steps, step{name: "tunnel", soft: true, run: func(ctx context.Context, st *events.Step) (string, error) {
			return s.waitTunnel(ctx, b)
		}})
	}
	if err := s.runSteps(ctx, steps); err != nil {
		return BackendState{}, err
	}
	states, _ := s.Backends(ctx)
	for _, x := range states {
		if x.Name == b.Name {
			return x, nil
		}
	}
	return BackendState{Backend: b, URL: b.URL(s.Names.Namespace), ShortURL: b.ShortURL(), State: "unknown"}, nil
}

// BackendLogs selects the pods of backend name for `apimdev logs
// --backend`: an image's own, or the relay's for a program on this
// machine (its log says which connections it relayed).
func (s *Session) BackendLogs(name string) (selector, container, deployment string, err error) {
	for _, b := range s.recordedBackends() {
		if b.Name != name {
			continue
		}
		if b.Local() {
			return "app=" + gateway.RelayName, "relay", gateway.RelayName, nil
		}
		return "app=" + b.Name, b.Name, b.Name, nil
	}
	return "", "", "", &BackendError{Problem: fmt.Sprintf("no backend %q", name), Fix: "`apimdev backend list` shows the backends"}
}

func imageOf(b gateway.Backend) string {
	if b.Local() {
		return "the relay, made from apimdev's own program"
	}
	return b.Image
}

// waitTunnel waits for the background forward to hold the relay's session
// with b declared, and says whether b's program answers.
func (s *Session) waitTunnel(ctx context.Context, b gateway.Backend) (string, error) {
	if fwd := s.Files.CheckForward(); !fwd.Running {
		return "", fmt.Errorf("no background forward holds the tunnel: run `apimdev up --detach` (or keep `apimdev forward` running); the gateway's calls to %s are refused until then", b.ShortURL())
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := s.relayStats(ctx)
		if err == nil && st.AgentConnected {
			for _, x := range st.Backends {
				if x.Name == b.Name {
					if x.Answering {
						return fmt.Sprintf("held by the background forward; %s answers", b.Target), nil
					}
					return fmt.Sprintf("held by the background forward; nothing answers on %s yet (start your program: the next call works)", b.Target), nil
				}
			}
		}
		if time.Now().After(deadline) {
			why := "the forward has not connected to the relay"
			if err != nil {
				why = err.Error()
			}
			return "", fmt.Errorf("the background forward did not take up the tunnel within 15s (%s): its log %s says why", why, s.Files.ForwardLog())
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// BackendRemove takes backend name away: its Service (and Deployment), the
// relay when no program on this machine is left, and its line in the
// record. The session is connected and resolved; the caller holds the
// cluster lock.
func (s *Session) BackendRemove(ctx context.Context, name string) error {
	return s.runSteps(ctx, []step{{name: "backend", detail: "removing " + name, run: func(ctx context.Context, st *events.Step) (string, error) {
		before := s.recordedBackends()
		after := slices.DeleteFunc(slices.Clone(before), func(x gateway.Backend) bool { return x.Name == name })
		if len(after) == len(before) {
			names := []string{}
			for _, b := range before {
				names = append(names, b.Name)
			}
			fix := "`apimdev backend list` shows them"
			if len(names) == 0 {
				fix = "there are none"
			}
			return "", &BackendError{Problem: fmt.Sprintf("no backend %q (backends: %s)", name, strings.Join(names, ", ")), Fix: fix}
		}
		if _, err := s.convergeBackends(ctx, after, st.Progress); err != nil {
			return "", err
		}
		rec := *s.Recorded
		rec.Backends = after
		if err := s.writeRecord(ctx, &rec); err != nil {
			return "", err
		}
		return fmt.Sprintf("removed %s; the gateway's calls to it now fail", name), nil
	}}})
}

// Backends lists the recorded backends with what the relay and the pods
// say of them now.
func (s *Session) Backends(ctx context.Context) ([]BackendState, error) {
	bs := s.recordedBackends()
	if len(bs) == 0 {
		return nil, nil
	}
	var stats *relay.Stats
	var statsErr error
	for _, b := range bs {
		if b.Local() {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			st, err := s.relayStats(sctx)
			cancel()
			stats, statsErr = &st, err
			break
		}
	}
	out := make([]BackendState, 0, len(bs))
	for _, b := range bs {
		x := BackendState{Backend: b, URL: b.URL(s.Names.Namespace), ShortURL: b.ShortURL(), State: "unknown"}
		switch {
		case !b.Local():
			x.State, x.Reason = s.imageBackendState(ctx, b)
		case statsErr != nil:
			x.State, x.Reason = "no tunnel", "the relay does not answer: "+statsErr.Error()
		case !stats.AgentConnected:
			x.State, x.Reason = "no tunnel", "no apimdev forward holds the relay's session: the gateway's calls are refused (`apimdev up --detach` starts it)"
		default:
			x.State, x.Reason = "no tunnel", "the forward has not declared it yet"
			for _, r := range stats.Backends {
				if r.Name != b.Name {
					continue
				}
				x.Active, x.Total, x.Failed, x.BytesIn, x.BytesOut = r.Active, r.Total, r.Failed, r.BytesToBackend, r.BytesFromBackend
				if r.Answering {
					x.State, x.Reason = "answering", ""
				} else {
					x.State, x.Reason = "down", fmt.Sprintf("nothing accepts connections on %s: %s", b.Target, r.Reason)
				}
			}
		}
		out = append(out, x)
	}
	return out, nil
}

func (s *Session) imageBackendState(ctx context.Context, b gateway.Backend) (string, string) {
	d, err := s.Client.AppsV1().Deployments(s.Names.Namespace).Get(ctx, b.Name, metav1.GetOptions{})
	if err != nil {
		return "unknown", err.Error()
	}
	if d.Status.ReadyReplicas > 0 {
		return "ready", ""
	}
	return "starting", "no pod ready yet (`apimdev logs --backend " + b.Name + "`)"
}

// backendSet is what convergeBackends did.
type backendSet struct {
	made    []string // kind/name of every desired object
	changed int
}

// convergeBackends makes the backends' objects in the gateway's namespace
// those of bs, deleting the ones apimdev made for backends that bs does
// not have. The relay's image is the one loaded this run, else the one
// running.
func (s *Session) convergeBackends(ctx context.Context, bs []gateway.Backend, progress func(string, ...any)) (backendSet, error) {
	var out backendSet
	ns := s.Names.Namespace
	ref := s.relayRef
	if ref == "" {
		ref = s.runningRelayImage(ctx)
	}
	hasLocal := slices.ContainsFunc(bs, gateway.Backend.Local)
	if hasLocal && ref == "" {
		r, what, err := s.relayImage(ctx)
		if err != nil {
			return out, err
		}
		progress("relay image: %s", what)
		ref, s.relayRef = r, r
	}
	if err := s.relayKeySecret(ctx, hasLocal, progress); err != nil {
		return out, err
	}
	objs := gateway.BackendObjects(ns, s.gatewaySelector(), s.gatewayHasPolicy(), ref, bs)
	want := map[string]bool{}
	for _, o := range objs {
		key := o.GetObjectKind().GroupVersionKind().Kind + "/" + o.(metav1.Object).GetName()
		want[key] = true
		out.made = append(out.made, key)
	}
	plan, err := gateway.PlanObjects(ctx, s.Client, objs)
	if err != nil {
		return out, err
	}
	applied, err := gateway.Execute(ctx, s.Client, plan)
	if err != nil {
		return out, err
	}
	for _, a := range applied {
		if a.Created || a.Changed {
			out.changed++
			progress("%s", a)
		}
	}
	have, err := s.backendObjectNames(ctx)
	if err != nil {
		return out, err
	}
	bg := metav1.DeletePropagationBackground
	del := metav1.DeleteOptions{PropagationPolicy: &bg}
	for key := range have {
		if want[key] {
			continue
		}
		kind, name, _ := strings.Cut(key, "/")
		var err error
		switch kind {
		case "Service":
			err = s.Client.CoreV1().Services(ns).Delete(ctx, name, del)
		case "Deployment":
			err = s.Client.AppsV1().Deployments(ns).Delete(ctx, name, del)
		case "NetworkPolicy":
			err = s.Client.NetworkingV1().NetworkPolicies(ns).Delete(ctx, name, del)
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return out, fmt.Errorf("removing %s: %w", key, err)
		}
		out.changed++
		progress("%s deleted", strings.ToLower(kind)+"/"+name)
	}
	return out, nil
}

// relayKeySecret makes the relay's key when a relay is wanted and there is
// none (random, kept across runs: a new key would cut the forward's
// session), and removes it with the relay. The key is never shown.
func (s *Session) relayKeySecret(ctx context.Context, want bool, progress func(string, ...any)) error {
	ns := s.Names.Namespace
	_, err := s.Client.CoreV1().Secrets(ns).Get(ctx, gateway.RelayKeySecret, metav1.GetOptions{})
	switch {
	case want && apierrors.IsNotFound(err):
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: gateway.RelayKeySecret, Namespace: ns,
				Labels: map[string]string{gateway.LabelManagedBy: gateway.ManagedBy, gateway.LabelBackend: "relay"}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{gateway.RelayKeyField: []byte(hex.EncodeToString(key))},
		}
		if _, err := s.Client.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("making the relay's key: %w", err)
		}
		progress("secret/%s created (the relay's key)", gateway.RelayKeySecret)
	case want && err != nil:
		return fmt.Errorf("reading the relay's key: %w", err)
	case !want && err == nil:
		if err := s.Client.CoreV1().Secrets(ns).Delete(ctx, gateway.RelayKeySecret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing the relay's key: %w", err)
		}
		progress("secret/%s deleted", gateway.RelayKeySecret)
	}
	return nil
}

// relayKey is the relay's key, read through the API server.
func (s *Session) relayKey(ctx context.Context) (string, error) {
	sec, err := s.Client.CoreV1().Secrets(s.Names.Namespace).Get(ctx, gateway.RelayKeySecret, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading the relay's key: %w", err)
	}
	return string(sec.Data[gateway.RelayKeyField]), nil
}

// backendObjectNames are the objects apimdev made for backends, as
// "Kind/name".
func (s *Session) backendObjectNames(ctx context.Context) (map[string]bool, error) {
	ns := s.Names.Namespace
	opts := metav1.ListOptions{LabelSelector: gateway.BackendSelector}
	out := map[string]bool{}
	svcs, err := s.Client.CoreV1().Services(ns).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing backends' Services in %s: %w", ns, err)
	}
	for _, x := range svcs.Items {
		out["Service/"+x.Name] = true
	}
	deps, err := s.Client.AppsV1().Deployments(ns).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing backends' Deployments in %s: %w", ns, err)
	}
	for _, x := range deps.Items {
		out["Deployment/"+x.Name] = true
	}
	pols, err := s.Client.NetworkingV1().NetworkPolicies(ns).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing backends' NetworkPolicies in %s: %w", ns, err)
	}
	for _, x := range pols.Items {
		out["NetworkPolicy/"+x.Name] = true
	}
	return out, nil
}

func (s *Session) gatewaySelector() map[string]string {
	return map[string]string{"app": s.Names.Gateway}
}

// gatewayHasPolicy says the gateway's pods are held by its NetworkPolicy
// (the prod profile's), so the backends need a rule of their own.
func (s *Session) gatewayHasPolicy() bool {
	return s.Recorded != nil && s.Recorded.Spec.NetworkPolicy != nil
}

func (s *Session) runningRelayImage(ctx context.Context) string {
	d, err := s.Client.AppsV1().Deployments(s.Names.Namespace).Get(ctx, gateway.RelayName, metav1.GetOptions{})
	if err != nil || len(d.Spec.Template.Spec.Containers) == 0 {
		return ""
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// waitBackendPods waits for the Deployment app to have a ready pod, and
// says why not when one cannot start (an image the node does not have, a
// crash).
func (s *Session) waitBackendPods(ctx context.Context, app string) error {
	ns := s.Names.Namespace
	for {
		d, err := s.Client.AppsV1().Deployments(ns).Get(ctx, app, metav1.GetOptions{})
		if err == nil && deploymentReady(d) {
			return nil
		}
		pods, _ := s.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if pods != nil {
			for _, p := range pods.Items {
				if why := podCannotStart(p); why != "" {
					return fmt.Errorf("%s cannot start: %s%s", app, why, s.lastLogLines(ctx, p))
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not become ready: %w", app, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func deploymentReady(d *appsv1.Deployment) bool {
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas >= 1 && d.Status.ReadyReplicas >= 1 &&
		d.Status.Replicas == d.Status.UpdatedReplicas
}

// lastLogLines are the last lines a pod's previous container wrote, to
// show with why it cannot start ("" when there are none).
func (s *Session) lastLogLines(ctx context.Context, p corev1.Pod) string {
	if len(p.Spec.Containers) == 0 {
		return ""
	}
	tail := int64(5)
	b, err := s.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: p.Spec.Containers[0].Name, Previous: true, TailLines: &tail}).DoRaw(ctx)
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return ""
	}
	return "; its last lines:\n  " + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n  ")
}

// podCannotStart is why a pod will not start by waiting, or "". The
// kubelet's start-up race on a new node (the relay's key Secret, made in the
// same apply, not in its cache yet) passes by itself: not a reason.
func podCannotStart(p corev1.Pod) string {
	for _, c := range p.Status.ContainerStatuses {
		// The relay's image is this machine's: a failed pull is final.
		switch cl := gateway.ClassifyWaiting(c.State.Waiting); {
		case cl == gateway.WaitingCrash:
			return "it keeps exiting (CrashLoopBackOff)"
		case cl.CannotStart(false):
			return c.State.Waiting.Reason + ": " + c.State.Waiting.Message
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return "no node has room: " + c.Message
		}
	}
	return ""
}

// relayDial opens a connection to the relay's control port, through the
// API server (the forward's tunnel machinery) to a ready relay pod.
func (s *Session) relayDial(ctx context.Context) (net.Conn, error) {
	ns := s.Names.Namespace
	pods, err := s.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + gateway.RelayName})
	if err != nil {
		return nil, fmt.Errorf("finding the relay: %w", err)
	}
	var pod string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(p) {
			pod = p.Name
			break
		}
	}
	if pod == "" {
		return nil, errors.New("no relay pod is ready")
	}
	t, err := s.dialer(ns).Dial(ctx, pod)
	if err != nil {
		return nil, err
	}
	st, err := t.Open(gateway.RelayControlPort)
	if err != nil {
		t.Close()
		return nil, err
	}
	return forward.Conn(st, t, pod+":"+strconv.Itoa(gateway.RelayControlPort)), nil
}

func (s *Session) relayStats(ctx context.Context) (relay.Stats, error) {
	key, err := s.relayKey(ctx)
	if err != nil {
		return relay.Stats{}, err
	}
	return relay.FetchStats(ctx, s.relayDial, key)
}

// RelayBinaryEnv names a Linux build of apimdev to make the relay's image
// from, for a machine whose own apimdev is not a Linux program (macOS,
// Windows).
const RelayBinaryEnv = "APIMDEV_RELAY_BINARY"

// relayBinary is the Linux program the relay's image is made from: the
// variable's, else this apimdev when it is one, else apimdev-linux next to
// it (a release archive for macOS or Windows).
func relayBinary() (string, error) {
	if p := os.Getenv(RelayBinaryEnv); p != "" {
		return p, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if runtime.GOOS == "linux" {
		return exe, nil
	}
	p := filepath.Join(filepath.Dir(exe), "apimdev-linux")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", &BackendError{Problem: "the relay runs apimdev's own program in the cluster, and this apimdev is not a Linux program",
		Fix: fmt.Sprintf("set %s to a Linux build of the same apimdev (GOOS=linux CGO_ENABLED=0 go build -o apimdev-linux .), or put apimdev-linux next to apimdev", RelayBinaryEnv)}
}

// relayImageRepo names the relay's images, tagged by the program's content.
const relayImageRepo = "apimdev.local/relay"

// relayImage makes the relay's image from apimdev's program (named by the
// program's content: a new apimdev is a new image) and loads it into the
// nodes. Nothing is pulled.
func (s *Session) relayImage(ctx context.Context) (ref, what string, err error) {
	bin, err := relayBinary()
	if err != nil {
		return "", "", err
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return "", "", fmt.Errorf("reading apimdev's program for the relay: %w", err)
	}
	sum := sha256.Sum256(b)
	ref = relayImageRepo + ":" + hex.EncodeToString(sum[:6])
	if s.Docker == nil {
		return "", "", errors.New("no container engine answers: the relay's image is made in it (`apimdev doctor` says why)")
	}
	if _, err := s.Docker.ImageInspect(ctx, ref); err != nil {
		p := programImage{bin: bin, image: ref, what: "the relay's image", program: "apimdev's program", write: relay.WriteImage}
		if err := loadProgramImage(ctx, s.Docker, p); err != nil {
			return "", "", err
		}
		s.removeOlderRelayImages(ctx, ref)
	}
	what, _, err = s.Cluster.LoadImage(ctx, ref, s.progress)
	if err != nil {
		return "", "", err
	}
	return ref, ref + ": " + what, nil
}

// relayImageLabel is the title label relay.WriteImage gives its images.
const relayImageLabel = "org.opencontainers.image.title=apimdev relay"

// removeOlderRelayImages removes from the engine the relay images other
// apimdev programs made (an upgrade makes a new one, ~80 MB each): only
// names apimdev gave (apimdev.local/relay:…) on images with the relay's
// label; an image that also has a name of the user's keeps it. Clusters
// that run an older relay keep it in their nodes; an apimdev that needs its
// image in the engine again makes it again. Failures are only said: this
// is tidying, not the command's work.
func (s *Session) removeOlderRelayImages(ctx context.Context, keep string) {
	l, err := s.Docker.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", relayImageLabel))})
	if err != nil {
		return
	}
	var removed []string
	for _, im := range l {
		for _, tag := range im.RepoTags {
			if tag == keep || !strings.HasPrefix(tag, relayImageRepo+":") {
				continue
			}
			if _, err := s.Docker.ImageRemove(ctx, tag, image.RemoveOptions{PruneChildren: true}); err != nil {
				s.progress("could not remove %s, the relay image of another apimdev: %v", tag, err)
				continue
			}
			removed = append(removed, tag)
		}
	}
	if len(removed) > 0 {
		slices.Sort(removed)
		s.progress("removed the relay image(s) other apimdev programs made: %s", strings.Join(removed, ", "))
	}
}

// holdBackends keeps the relay's session for the programs on this machine
// that the gateway's namespace has backends for, following their Services
// (`backend add` and `remove` reach a running forward with no signal). It
// returns when ctx is done, with the agent stopped.
func (s *Session) holdBackends(ctx context.Context) error {
	ns := s.Names.Namespace
	f := informers.NewSharedInformerFactoryWithOptions(s.Client, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = gateway.BackendSelector }))
	inf := f.Core().V1().Services().Informer()
	changed := make(chan struct{}, 1)
	kick := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: kick, DeleteFunc: kick, UpdateFunc: func(_, n any) { kick(n) }}); err != nil {
		return err
	}
	ictx, stopInformer := context.WithCancel(ctx)
	f.Start(ictx.Done())
	defer func() { stopInformer(); f.Shutdown() }()
	var agent *relay.Agent
	var stopAgent func()
	defer func() {
		if stopAgent != nil {
			stopAgent()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		var bs []relay.Backend
		for _, o := range inf.GetStore().List() {
			svc, ok := o.(*corev1.Service)
			if !ok || svc.Annotations[gateway.AnnotationTarget] == "" || len(svc.Spec.Ports) == 0 {
				continue
			}
			bs = append(bs, relay.Backend{Name: svc.Name, Port: int(svc.Spec.Ports[0].Port), Target: svc.Annotations[gateway.AnnotationTarget]})
		}
		slices.SortFunc(bs, func(a, b relay.Backend) int { return strings.Compare(a.Name, b.Name) })
		switch {
		case len(bs) > 0 && stopAgent == nil:
			key, err := s.relayKey(ctx)
			if err != nil {
				// backend add makes the key before the Services: a
				// moment later the informer kicks again.
				s.Rep.Info("forward", "backends: "+err.Error())
				time.AfterFunc(2*time.Second, func() { kick(nil) })
				continue
			}
			agent = relay.NewAgent(s.relayDial, relay.AgentOptions{Key: key, Logf: func(format string, a ...any) { s.Rep.Info("forward", "backends: "+fmt.Sprintf(format, a...)) }})
			agent.SetBackends(bs)
			actx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { _ = agent.Run(actx); close(done) }()
			stopAgent = func() { cancel(); <-done }
		case len(bs) > 0:
			agent.SetBackends(bs)
		case len(bs) == 0 && stopAgent != nil:
			stopAgent()
			stopAgent = nil
		}
	}
}
