//go:build !windows

package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The floors: what apimdev cannot make faster, measured in the same run as
// what it does.
//
// After an engine restart, the cluster comes back by itself: the node
// container is started again by the engine, its kubelet starts every pod
// anew, kube-proxy writes its rules again, and the gateway serves once it has
// its configuration. The earliest moment the gateway answers by itself is a
// call straight to the node's direct-path port (the NodePort the node
// publishes on 127.0.0.1, no forward, no apimdev process): that is the floor.
// What apimdev adds is `up` green (and the untouched forward's answer) minus
// that floor.
//
// `down`'s floor is `kind delete cluster` of an equivalent cluster: the
// manual arm's own, at the end of its arm, with the rig's kind binary.

// floorClocks are the cluster's own clocks after an engine restart, from the
// moment the restarted engine answers.
type floorClocks struct {
	Direct    time.Duration // a call straight to the node's direct-path port answers 200: the floor
	GwReady   time.Duration // every gateway pod Ready again, as its kubelet reports it (containers started after the restart)
	GwStarted time.Duration // when the last of those containers started (the API's whole seconds)
	ProxyBack time.Duration // kube-proxy's pod(s) running and Ready again
	DNSBack   time.Duration // CoreDNS's pod(s) Ready again
	UpSteps   []stage       // up's steps on the restarted cluster
}

// directNodePort is the gateway's HTTP node port of the direct path (see
// internal/cluster.DirectNodePorts): the control-plane node publishes it on a
// loopback port kind picks at create, the same across restarts.
const directNodePort = 31080

// directHostAddr asks the engine where a node publishes the direct path's
// HTTP node port on 127.0.0.1.
func directHostAddr(ctx context.Context, cluster string) (string, error) {
	res, err := run(ctx, 30*time.Second, os.Environ(), "docker", "port", cluster+"-control-plane", fmt.Sprintf("%d/tcp", directNodePort))
	if err != nil {
		return "", fmt.Errorf("docker port: %w", err)
	}
	return loopbackAddr(res.Out)
}

// loopbackAddr picks the 127.0.0.1 binding out of `docker port`'s lines.
func loopbackAddr(out string) (string, error) {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "127.0.0.1:") {
			return l, nil
		}
	}
	return "", fmt.Errorf("no 127.0.0.1 binding in %q", strings.TrimSpace(out))
}

// waitDirect calls the echo API straight through the node's published port
// until it answers 200. Each try is bounded short: while the node's network
// is coming back, the engine's proxy accepts connections it cannot carry,
// and a long timeout would quantise the clock.
func waitDirect(ctx context.Context, addr string, limit time.Duration) error {
	url := "http://" + addr + "/echo/bench"
	if err := loopback(url); err != nil {
		return err
	}
	c := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(limit)
	last := ""
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		for k, v := range keyHeader {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not answer 200 within %s (last: %s)", url, limit, last)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// podsBack says whether every live pod whose name starts with prefix runs
// containers started at or after since and is Ready: the kubelet has
// reported it afresh. Until it does, the API server shows the pods as they
// were before the restart (Ready, with the old containers). No pod: not back.
func podsBack(pods []corev1.Pod, prefix string, since time.Time) bool {
	n := 0
	for i := range pods {
		p := &pods[i]
		if !strings.HasPrefix(p.Name, prefix) || p.DeletionTimestamp != nil ||
			p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		n++
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Running == nil || c.State.Running.StartedAt.Time.Before(since) {
				return false
			}
		}
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		if !ready {
			return false
		}
	}
	return n > 0
}

// lastStart is when the last running container of the pods named prefix*
// started.
func lastStart(pods []corev1.Pod, prefix string) time.Time {
	var last time.Time
	for _, p := range pods {
		if !strings.HasPrefix(p.Name, prefix) || p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.ContainerStatuses {
			if r := c.State.Running; r != nil && r.StartedAt.Time.After(last) {
				last = r.StartedAt.Time
			}
		}
	}
	return last
}

// watchPodsBack polls the pods through the API server (every 100 ms, once it
// answers) and stamps, from t0, when the gateway's, kube-proxy's and
// CoreDNS's pods are back. since is the moment before the engine stopped.
func watchPodsBack(ctx context.Context, kubeconfig string, since, t0 time.Time, limit time.Duration, fc *floorClocks) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	rc.Timeout = time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	since = since.Truncate(time.Second) // the API's times have whole seconds
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for fc.GwReady == 0 || fc.ProxyBack == 0 || fc.DNSBack == 0 {
		gw, err1 := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		sys, err2 := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
		now := time.Since(t0)
		if err1 == nil && fc.GwReady == 0 && podsBack(gw.Items, gwName+"-", since) {
			fc.GwReady = now
			fc.GwStarted = lastStart(gw.Items, gwName+"-").Sub(t0)
		}
		if err2 == nil && fc.ProxyBack == 0 && podsBack(sys.Items, "kube-proxy-", since) {
			fc.ProxyBack = now
		}
		if err2 == nil && fc.DNSBack == 0 && podsBack(sys.Items, "coredns-", since) {
			fc.DNSBack = now
		}
		select {
		case <-ctx.Done():
			return errors.New("pods not all back within " + limit.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// timedKindDelete deletes the manual arm's cluster with the rig's kind
// binary, as a developer would, and times it: `down`'s floor.
func (b *bench) timedKindDelete(ctx context.Context, rd *round) {
	res, err := run(ctx, 3*time.Minute, os.Environ(), b.r.kind, "delete", "cluster", "--name", clusterManual,
		"--kubeconfig", b.r.tmp+"/deleted-"+clusterManual+".kubeconfig")
	if err != nil {
		logf("round %d: kind delete cluster: %v", rd.N, err)
		return
	}
	rd.KindDelete = res.Dur
	logf("round %d: kind delete cluster (the manual arm's, down's floor) %.2fs", rd.N, res.Dur.Seconds())
}

// ratioCell is a/b as "1.23×", or "—" when either is missing.
func ratioCell(a, b time.Duration) string {
	if a <= 0 || b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a.Seconds()/b.Seconds())
}

func secsOr(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return secs(d)
}

// floorTable sets the engine restart and `down` against their measured
// floors, for this build and (-compare) the other one: medians of the rounds.
func (b *bench) floorTable() string {
	type arm struct {
		label string
		rrs   []*restartRun
		downs []time.Duration
	}
	arms := []arm{{label: "this build"}}
	for _, r := range b.rounds {
		if r.Restart != nil && r.Restart.Err == "" {
			arms[0].rrs = append(arms[0].rrs, r.Restart)
		}
		if r.Down > 0 {
			arms[0].downs = append(arms[0].downs, r.Down)
		}
	}
	if b.o.compare != "" {
		c := arm{label: "[" + b.o.compareLabel + "]"}
		for _, r := range b.rounds {
			if r.CmpRestart != nil && r.CmpRestart.Err == "" {
				c.rrs = append(c.rrs, r.CmpRestart)
			}
			if r.CmpDown > 0 {
				c.downs = append(c.downs, r.CmpDown)
			}
		}
		arms = append(arms, c)
	}
	kd := median(collect(b.rounds, func(r *round) (time.Duration, bool) { return r.KindDelete, r.KindDelete > 0 }))
	if len(arms[0].rrs) == 0 && (kd == 0 || len(arms[0].downs) == 0) {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("Against the floors (medians; an engine restart's clocks run from the moment the restarted engine answers; the floor is a call straight to the node's direct-path port, no forward; `down`'s floor is `kind delete cluster` of the manual arm's cluster):")
	p("")
	head := "| measure |"
	sep := "| --- |"
	for _, a := range arms {
		head += fmt.Sprintf(" %s (%d) | vs floor |", a.label, max(len(a.rrs), len(a.downs)))
		sep += " --- | --- |"
	}
	p("%s target | |", head)
	p("%s --- | --- |", sep)
	med := func(rrs []*restartRun, g func(*restartRun) time.Duration) time.Duration {
		var v []time.Duration
		for _, x := range rrs {
			if d := g(x); d > 0 {
				v = append(v, d)
			}
		}
		return median(v)
	}
	floorOf := func(a arm) time.Duration { return med(a.rrs, func(x *restartRun) time.Duration { return x.Direct }) }
	type line struct {
		name   string
		get    func(*restartRun) time.Duration
		vs     bool   // show against the floor
		target string // on this build's figure
		goal   float64
	}
	lines := []line{
		{name: "engine restart: API server `/readyz` ok", get: func(x *restartRun) time.Duration { return x.API }},
		{name: "… kube-proxy's pod Ready again (kubelet)", get: func(x *restartRun) time.Duration { return x.ProxyBack }},
		{name: "… CoreDNS Ready again (kubelet)", get: func(x *restartRun) time.Duration { return x.DNSBack }},
		{name: "… the gateway's container(s) started again (kubelet, whole seconds)", get: func(x *restartRun) time.Duration { return x.GwStarted }},
		{name: "… the gateway's pod(s) Ready again (kubelet)", get: func(x *restartRun) time.Duration { return x.GwReady }},
		{name: "… **the floor**: a call straight to the node's port answers", get: func(x *restartRun) time.Duration { return x.Direct }, vs: true},
		{name: "… the background forward answers, untouched", get: func(x *restartRun) time.Duration { return x.Forward }, vs: true},
		{name: "… `up` (started when the engine answers) green", get: func(x *restartRun) time.Duration { return x.Up }, vs: true, target: "≤ 1.2× floor", goal: 1.2},
	}
	for _, l := range lines {
		row := "| " + l.name + " |"
		verdictCell := ""
		for i, a := range arms {
			d := med(a.rrs, l.get)
			vs := ""
			if l.vs {
				f := floorOf(a)
				vs = ratioCell(d, f)
				if d > 0 && f > 0 {
					vs += fmt.Sprintf(" (+%.1f s)", (d - f).Seconds())
				}
			}
			row += fmt.Sprintf(" %s | %s |", secsOr(d), vs)
			if i == 0 && l.goal > 0 && d > 0 && floorOf(a) > 0 {
				verdictCell = verdict(d.Seconds() <= l.goal*floorOf(a).Seconds())
			}
		}
		p("%s %s | %s |", row, l.target, verdictCell)
	}
	for _, step := range []string{"preflight", "cluster", "deploy", "forward", "smoke"} {
		row := fmt.Sprintf("| … `up`'s %s step after the restart |", step)
		for _, a := range arms {
			var v []time.Duration
			for _, x := range a.rrs {
				for _, s := range x.UpSteps {
					if s.Name == step {
						v = append(v, s.Dur)
					}
				}
			}
			cell := "—"
			if len(v) > 0 {
				cell = secs(median(v))
			}
			row += fmt.Sprintf(" %s | |", cell)
		}
		p("%s | |", row)
	}
	if kd > 0 {
		row := "| `apimdev down` against `kind delete cluster` (" + secs(kd) + ") |"
		verdictCell := ""
		for i, a := range arms {
			d := median(a.downs)
			row += fmt.Sprintf(" %s | %s |", secsOr(d), ratioCell(d, kd))
			if i == 0 && d > 0 {
				verdictCell = verdict(d <= 2*time.Second || d.Seconds() <= 1.1*kd.Seconds())
			}
		}
		p("%s ≤ 2 s or ≤ 1.1× floor | %s |", row, verdictCell)
	}
	p("")
	return w.String()
}
