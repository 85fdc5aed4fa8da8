package labs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/apimdev/apimdev/internal/cluster"
	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/gateway"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/token"
)

// CallPath is the path lab 2 asks the attendee to call, so the checks can
// tell their call from apimdev's own smoke calls.
const CallPath = "/echo/lab2"

// Check is one verified outcome.
type Check struct {
	Name    string        `json:"name"`
	OK      bool          `json:"ok"`
	Detail  string        `json:"detail"`
	Hint    string        `json:"hint,omitempty"`
	Elapsed time.Duration `json:"-"`
}

// Result is one lab's checks.
type Result struct {
	Lab     int     `json:"lab"`
	Title   string  `json:"title"`
	Passed  bool    `json:"passed"`
	Checks  []Check `json:"checks"`
	Gateway string  `json:"gateway,omitempty"` // demo.Label when the gateway is the stand-in
}

// Failed counts the failed checks.
func (r Result) Failed() int {
	n := 0
	for _, c := range r.Checks {
		if !c.OK {
			n++
		}
	}
	return n
}

// Env is what the checks may look at.
type Env struct {
	// Inspect says what exists under the cluster's name.
	Inspect func(ctx context.Context) (cluster.ClusterState, string)
	// Client is the cluster's client; called only once Inspect says ours.
	Client func() (kubernetes.Interface, error)
	// Profile names the gateway's objects (namespace, Deployment, Secret).
	Profile gateway.Profile
	// ProdReplicas is the replica count the prod profile asks for.
	ProdReplicas int32
	// Forward says whether apimdev's background forward runs, and its port.
	Forward func() (running bool, httpPort int)
	// Kubeconfig is apimdev's kubeconfig file for the cluster.
	Kubeconfig string
	// Smoke runs the smoke calls through the forward.
	Smoke func(ctx context.Context) ([]smoke.Result, error)
	// Logs returns a gateway pod's log.
	Logs func(ctx context.Context, pod string) (string, error)
	// Answer is what the attendee found (lab 3's --answer).
	Answer string
	// Baseline fingerprints the token the labs started with (demo.TokenSHA256
	// of the Secret's value); "" when nothing recorded it.
	Baseline string
	// Demo is the demo's state when the gateway is the stand-in; nil otherwise.
	Demo *demo.State
	Now  func() time.Time
}

// Lab is one lab of labs/.
type Lab struct {
	N     int
	Title string
	File  string // in labs/
	// Does is the one-line summary `apimdev lab list` shows.
	Does  string
	check func(ctx context.Context, e *Env, r *recorder)
}

// All lists the labs in order.
func All() []Lab {
	return []Lab{
		{1, "Bring the gateway up", "01-bring-up.md", "up --demo (offline with --kit): cluster, gateway ready, forward in the background", lab1},
		{2, "Smoke and your first call", "02-smoke.md", "smoke passes and you called the echo API yourself", lab2},
		{3, "Inspect what runs", "03-inspect.md", "you found the pod that answered your call", lab3},
		{4, "Promote to the production profile", "04-promote.md", "prod profile: every replica ready, a PodDisruptionBudget", lab4},
		{5, "Rotate the token", "05-rotate-token.md", "a new token in the Secret and every gateway pod restarted since", lab5},
		{6, "Tear down", "06-tear-down.md", "the cluster, the forward and apimdev's kubeconfig are gone", lab6},
	}
}

// Get returns lab n.
func Get(n int) (Lab, error) {
	for _, l := range All() {
		if l.N == n {
			return l, nil
		}
	}
	return Lab{}, fmt.Errorf("there is no lab %d (labs 1 to %d: `apimdev lab list`)", n, len(All()))
}

// Run runs lab n's checks; a check that cannot look is a failed check with
// its reason, never an error.
func Run(ctx context.Context, n int, e Env) (Result, error) {
	l, err := Get(n)
	if err != nil {
		return Result{}, err
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	r := &recorder{now: e.Now, last: e.Now()}
	l.check(ctx, &e, r)
	res := Result{Lab: l.N, Title: l.Title, Checks: r.checks}
	res.Passed = res.Failed() == 0 && len(res.Checks) > 0
	if e.Demo != nil {
		res.Gateway = demo.Label
	}
	return res, nil
}

type recorder struct {
	checks []Check
	now    func() time.Time
	last   time.Time
}

func (r *recorder) add(name string, ok bool, hint, format string, args ...any) bool {
	t := r.now()
	c := Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...), Elapsed: t.Sub(r.last)}
	r.last = t
	if !ok {
		c.Hint = hint
	}
	r.checks = append(r.checks, c)
	return ok
}

// skip records checks that could not run because an earlier one failed, so
// a lab always reports the same checks (an instructor's report lines up).
func (r *recorder) skip(why string, names ...string) {
	for _, n := range names {
		r.add(n, false, "", "not checked: %s", why)
	}
}

const upHint = "run `apimdev up --demo --detach` (in a room without network: `apimdev up --demo --detach --kit kit.tar --trust <the instructor's fingerprint>`)"

// cluster checks the cluster is apimdev's and running, and returns its client.
func (e *Env) cluster(ctx context.Context, r *recorder, rest ...string) kubernetes.Interface {
	st, detail := e.Inspect(ctx)
	name := "cluster"
	switch st {
	case cluster.ClusterOurs:
	case cluster.ClusterAbsent:
		r.add(name, false, upHint, "there is no apimdev cluster")
		r.skip("no cluster", rest...)
		return nil
	case cluster.ClusterStopped:
		r.add(name, false, "run `apimdev up --demo --detach` again: it restarts the stopped node", "the cluster's node is stopped (%s)", detail)
		r.skip("no running cluster", rest...)
		return nil
	default:
		r.add(name, false, "`apimdev status` says more; `apimdev up --recreate` starts over", "the cluster is %s %s", st, detail)
		r.skip("no usable cluster", rest...)
		return nil
	}
	c, err := e.Client()
	if err != nil {
		r.add(name, false, "`apimdev status` says more", "cannot talk to the cluster: %v", err)
		r.skip("no usable cluster", rest...)
		return nil
	}
	r.add(name, true, "", "the apimdev cluster runs")
	return c
}

func (e *Env) deployment(ctx context.Context, c kubernetes.Interface) (*appsv1.Deployment, error) {
	return c.AppsV1().Deployments(e.Profile.Namespace).Get(ctx, e.Profile.DeploymentName(), metav1.GetOptions{})
}

// pods are the gateway's pods that are not going away.
func (e *Env) pods(ctx context.Context, c kubernetes.Interface) ([]corev1.Pod, error) {
	list, err := c.CoreV1().Pods(e.Profile.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(e.Profile.Selector()).String()})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func ready(d *appsv1.Deployment) (int32, int32) {
	return d.Status.ReadyReplicas, gateway.Desired(d)
}

func (e *Env) describe() string {
	return fmt.Sprintf("%s/%s", e.Profile.Namespace, e.Profile.DeploymentName())
}

func lab1(ctx context.Context, e *Env, r *recorder) {
	c := e.cluster(ctx, r, "gateway ready", "forward")
	if c == nil {
		return
	}
	d, err := e.deployment(ctx, c)
	switch {
	case apierrors.IsNotFound(err):
		r.add("gateway ready", false, upHint, "no gateway %s in the cluster", e.describe())
	case err != nil:
		r.add("gateway ready", false, "`apimdev status` says more", "reading %s: %v", e.describe(), err)
	default:
		got, want := ready(d)
		r.add("gateway ready", got >= 1 && got == want, "`apimdev status` and `kubectl -n "+e.Profile.Namespace+" describe pods` say why; `apimdev up` explains a gateway that does not become ready",
			"%s %d/%d ready (%s)", e.describe(), got, want, d.Spec.Template.Spec.Containers[0].Image)
	}
	running, port := e.Forward()
	r.add("forward", running, "run up with --detach: the forward then keeps running in the background after up returns", "%s", pick(running, fmt.Sprintf("in the background on http://127.0.0.1:%d", port), "no background forward: the gateway is not reachable on 127.0.0.1"))
}

func lab2(ctx context.Context, e *Env, r *recorder) {
	c := e.cluster(ctx, r, "smoke", "your call")
	if c == nil {
		return
	}
	rs, err := e.Smoke(ctx)
	switch {
	case err != nil:
		r.add("smoke", false, "`apimdev smoke` shows the calls; `apimdev status` shows the gateway", "could not run the smoke calls: %v", err)
	default:
		var bad []string
		for _, x := range rs {
			if !x.Pass {
				bad = append(bad, fmt.Sprintf("%s (%s)", x.Name, x.Reason))
			}
		}
		r.add("smoke", len(bad) == 0 && len(rs) > 0, "run `apimdev smoke`: each failed row says why",
			"%s", pick(len(bad) == 0, fmt.Sprintf("%d call(s) passed", len(rs)), fmt.Sprintf("%d of %d call(s) failed: %s", len(bad), len(rs), strings.Join(bad, "; "))))
	}
	_, port := e.Forward()
	hint := fmt.Sprintf("call the echo API yourself: curl -H \"%s: $(apimdev demo key)\" http://127.0.0.1:%d%s", demo.SubscriptionHeader, port, CallPath)
	pods, err := e.pods(ctx, c)
	if err != nil {
		r.add("your call", false, hint, "listing the gateway's pods: %v", err)
		return
	}
	for _, p := range pods {
		if log, err := e.Logs(ctx, p.Name); err == nil && servedCall(log) {
			r.add("your call", true, "", "pod %s answered 200 to your call to %s", p.Name, CallPath)
			return
		}
	}
	r.add("your call", false, hint, "no gateway log shows a call to %s answered 200", CallPath)
}

// servedCall finds a request entry for CallPath answered 200 in a gateway's
// log. The gateway logs each request as a GatewayLogs entry, in text
//
//	[Info] 2026-06-3T03:25:13.690 [GatewayLogs], …, url: http://host/echo/lab2, responseCode: 200, …
//
// (in ANSI colours unless telemetry.logs.std.color is false) or in JSON
// ({"eventType":"GatewayLogs",…,"url":"…","responseCode":200}).
func servedCall(log string) bool {
	for _, line := range strings.Split(log, "\n") {
		u, code, ok := requestEntry(stripANSI(line))
		if !ok || code != "200" {
			continue
		}
		if p, err := url.Parse(u); err == nil && p.Path == CallPath {
			return true
		}
	}
	return false
}

// requestEntry reads the URL and response code of a GatewayLogs entry.
func requestEntry(line string) (u, code string, ok bool) {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "{") {
		var e struct {
			EventType    string      `json:"eventType"`
			URL          string      `json:"url"`
			ResponseCode json.Number `json:"responseCode"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.EventType != "GatewayLogs" {
			return "", "", false
		}
		return e.URL, e.ResponseCode.String(), true
	}
	_, fields, found := strings.Cut(line, "[GatewayLogs]")
	if !found {
		return "", "", false
	}
	for _, f := range strings.Split(fields, ", ") {
		switch k, v, _ := strings.Cut(f, ": "); k {
		case "url":
			u = v
		case "responseCode":
			code = v
		}
	}
	return u, code, true
}

// stripANSI removes colour escapes (ESC [ … m).
func stripANSI(s string) string {
	if !strings.Contains(s, "\x1b[") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			break
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], 'm')
		if j < 0 {
			s = ""
			break
		}
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

func lab3(ctx context.Context, e *Env, r *recorder) {
	c := e.cluster(ctx, r, "answer", "served your call")
	if c == nil {
		return
	}
	how := fmt.Sprintf("`kubectl -n %s get pods -l app=%s` lists the gateway's pods, and the echo API's answer names the pod that served it in its \"pod\" field", e.Profile.Namespace, e.Profile.Gateway)
	answer := strings.TrimSpace(e.Answer)
	if answer == "" {
		r.add("answer", false, "find the pod that answered your lab 2 call, then run `apimdev lab check 3 --answer POD`; "+how, "no answer given")
		r.skip("no answer", "served your call")
		return
	}
	pods, err := e.pods(ctx, c)
	if err != nil {
		r.add("answer", false, how, "listing the gateway's pods: %v", err)
		r.skip("no pods", "served your call")
		return
	}
	var found *corev1.Pod
	var names []string
	for i, p := range pods {
		names = append(names, p.Name)
		if p.Name == answer {
			found = &pods[i]
		}
	}
	if found == nil {
		r.add("answer", false, how, "%q is not one of the gateway's %d pod(s)", answer, len(pods))
		r.skip("wrong answer", "served your call")
		return
	}
	img := ""
	if len(found.Spec.Containers) > 0 {
		img = found.Spec.Containers[0].Image
	}
	r.add("answer", true, "", "%s is a gateway pod (image %s, node %s)", answer, img, found.Spec.NodeName)
	log, err := e.Logs(ctx, answer)
	switch {
	case err != nil:
		r.add("served your call", false, "`kubectl logs` the pod to see its calls", "reading the pod's log: %v", err)
	default:
		r.add("served your call", servedCall(log), "that pod has no record of your lab 2 call; after a restart, call "+CallPath+" again and find the pod that answers",
			"%s", pick(servedCall(log), "its log shows your call to "+CallPath, "its log shows no call to "+CallPath+" answered 200"))
	}
}

func lab4(ctx context.Context, e *Env, r *recorder) {
	c := e.cluster(ctx, r, "prod profile", "replicas ready", "disruption budget")
	if c == nil {
		return
	}
	const hint = "run `apimdev promote --yes` (it shows the dev → prod diff, then rolls the gateway with traffic flowing)"
	d, err := e.deployment(ctx, c)
	if err != nil {
		r.add("prod profile", false, upHint, "reading %s: %v", e.describe(), err)
		r.skip("no gateway", "replicas ready", "disruption budget")
		return
	}
	profile := d.Labels[gateway.LabelProfile]
	r.add("prod profile", profile == "prod", hint, "%s runs the %s profile", e.describe(), profile)
	got, want := ready(d)
	r.add("replicas ready", want == e.ProdReplicas && got == want, hint+"; `apimdev status` shows the replicas",
		"%d/%d ready (the prod profile asks for %d)", got, want, e.ProdReplicas)
	pdb, err := c.PolicyV1().PodDisruptionBudgets(e.Profile.Namespace).Get(ctx, e.Profile.Gateway, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.add("disruption budget", false, hint, "no PodDisruptionBudget %s/%s", e.Profile.Namespace, e.Profile.Gateway)
	case err != nil:
		r.add("disruption budget", false, hint, "reading the PodDisruptionBudget: %v", err)
	default:
		r.add("disruption budget", true, "", "PodDisruptionBudget %s: maxUnavailable %s, %d disruption(s) allowed now", pdb.Name, pdb.Spec.MaxUnavailable.String(), pdb.Status.DisruptionsAllowed)
	}
}

func lab5(ctx context.Context, e *Env, r *recorder) {
	c := e.cluster(ctx, r, "token changed", "token valid", "pods restarted")
	if c == nil {
		return
	}
	ns := e.Profile.Namespace
	sec, err := c.CoreV1().Secrets(ns).Get(ctx, e.Profile.SecretName(), metav1.GetOptions{})
	if err != nil {
		r.add("token changed", false, upHint, "reading Secret %s/%s: %v", ns, e.Profile.SecretName(), err)
		r.skip("no Secret", "token valid", "pods restarted")
		return
	}
	value := string(sec.Data["value"])
	mintHint := "get a new token: `apimdev demo token --out new.token` for the demo gateway, the Azure portal (Gateways > Deployment) for a real one; then follow labs/05-rotate-token.md"
	switch {
	case e.Baseline == "":
		r.add("token changed", false, "run `apimdev lab check 1` before rotating, so the labs know the token you started with", "no record of the token the labs started with")
	default:
		r.add("token changed", demo.TokenSHA256(value) != e.Baseline, mintHint, "%s", pick(demo.TokenSHA256(value) != e.Baseline, "Secret "+sec.Name+" holds another token than the one the gateway started with", "Secret "+sec.Name+" still holds the token the gateway started with"))
	}
	tok, err := token.Parse(value)
	switch {
	case err != nil:
		r.add("token valid", false, mintHint, "the Secret's token does not parse: %v", err)
	case e.Demo != nil && e.Demo.Keys.Signing != "":
		if _, verr := demo.Verify(e.Demo.Keys.Signing, value); verr != nil {
			r.add("token valid", false, mintHint, "%v: the stand-in configuration service will refuse it", verr)
			break
		}
		fallthrough
	default:
		x := tok.ExpiryAt(e.Now())
		r.add("token valid", x.State != token.ExpiryPast, mintHint, "gateway %s, %s", tok.GatewayID, x.Describe())
	}
	changed := lastChange(sec)
	d, err := e.deployment(ctx, c)
	if err != nil {
		r.add("pods restarted", false, upHint, "reading %s: %v", e.describe(), err)
		return
	}
	pods, err := e.pods(ctx, c)
	if err != nil {
		r.add("pods restarted", false, "", "listing the gateway's pods: %v", err)
		return
	}
	restart := fmt.Sprintf("the gateway reads its token when it starts: restart it after changing the Secret, `kubectl -n %s rollout restart deployment/%s`, and wait for `kubectl -n %s rollout status deployment/%s`",
		ns, e.Profile.DeploymentName(), ns, e.Profile.DeploymentName())
	var old []string
	for _, p := range pods {
		if p.CreationTimestamp.Time.Before(changed) {
			old = append(old, p.Name)
		}
	}
	got, want := ready(d)
	switch {
	case len(old) > 0:
		r.add("pods restarted", false, restart, "%d pod(s) started before the Secret last changed (%s): %s", len(old), changed.UTC().Format(time.RFC3339), strings.Join(old, ", "))
	case got != want || len(pods) == 0:
		r.add("pods restarted", false, "wait for `kubectl -n "+ns+" rollout status deployment/"+e.Profile.DeploymentName()+"`; `apimdev status` shows the replicas", "%d/%d ready", got, want)
	default:
		r.add("pods restarted", true, "", "all %d pod(s) started after the Secret changed (%s), %d/%d ready", len(pods), changed.UTC().Format(time.RFC3339), got, want)
	}
}

// lastChange is when the Secret was last written: its newest managed-fields
// entry (second precision), else its creation.
func lastChange(s *corev1.Secret) time.Time {
	t := s.CreationTimestamp.Time
	for _, m := range s.ManagedFields {
		if m.Time != nil && m.Time.After(t) {
			t = m.Time.Time
		}
	}
	return t
}

func lab6(ctx context.Context, e *Env, r *recorder) {
	st, detail := e.Inspect(ctx)
	r.add("cluster deleted", st == cluster.ClusterAbsent, "run `apimdev down`", "%s", pick(st == cluster.ClusterAbsent, "there is no apimdev cluster", fmt.Sprintf("the cluster still exists (%s%s)", st, prefixed(" ", detail))))
	running, port := e.Forward()
	r.add("forward stopped", !running, "`apimdev down` stops the background forward", "%s", pick(running, fmt.Sprintf("the background forward still holds 127.0.0.1:%d", port), "no background forward"))
	_, err := os.Stat(e.Kubeconfig)
	gone := errors.Is(err, os.ErrNotExist)
	r.add("kubeconfig removed", gone, "`apimdev down` removes apimdev's kubeconfig for the cluster (your ~/.kube/config is never touched)",
		"%s", pick(gone, "apimdev's kubeconfig for the cluster is gone", "apimdev's kubeconfig for the cluster is still at "+e.Kubeconfig))
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func pick(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}
