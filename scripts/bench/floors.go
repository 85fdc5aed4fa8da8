//go:build !windows

package main

import (
	"context"
	"encoding/json"
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
	Direct      time.Duration // a call straight to the node's direct-path port answers 200: the floor
	GwReady     time.Duration // every gateway pod Ready again, as its kubelet reports it (containers started after the restart)
	GwStarted   time.Duration // when the last of those containers started (the API's whole seconds)
	ProxyBack   time.Duration // kube-proxy's pod(s) running and Ready again
	DNSBack     time.Duration // CoreDNS's pod(s) Ready again
	UpSteps     []stage       // up's steps on the restarted cluster
	UpFirstStep time.Duration // when up's first step started (its process start and session before it)
}

// firstEvent is the time of the first of up's JSON events that has one.
func firstEvent(out string) time.Time {
	for _, l := range strings.Split(out, "\n") {
		var e struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(l), &e) == nil && !e.Time.IsZero() {
			return e.Time
		}
	}
	return time.Time{}
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
	_, err := pollHTTP(ctx, "http://"+addr+"/echo/bench", keyHeader, http.StatusOK, limit, 500*time.Millisecond)
	return err
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

func secsOr(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return secs(d)
}

// floorTable sets the engine restart and `down` against their measured
// floors, for this build and (-compare) the other one. Each figure is the
// median over the rounds whose restart succeeded; the ratios and the
// differences to the floor are medians of each round's own (the floor moves
// from round to round by seconds, with the engine's and the pods' start).
func (b *bench) floorTable() string {
	type arm struct {
		label        string
		rrs          []*restartRun
		tried        int
		downs, kinds []time.Duration // down and the same round's kind delete
	}
	pick := func(label string, rr func(*round) *restartRun, down func(*round) time.Duration) arm {
		a := arm{label: label}
		for _, r := range b.rounds {
			if x := rr(r); x != nil {
				a.tried++
				if x.Err == "" {
					a.rrs = append(a.rrs, x)
				}
			}
			if d := down(r); d > 0 {
				a.downs = append(a.downs, d)
				a.kinds = append(a.kinds, r.KindDelete)
			}
		}
		return a
	}
	arms := []arm{pick("this build", func(r *round) *restartRun { return r.Restart }, func(r *round) time.Duration { return r.Down })}
	if b.o.compare != "" {
		arms = append(arms, pick("["+b.o.compareLabel+"]", func(r *round) *restartRun { return r.CmpRestart }, func(r *round) time.Duration { return r.CmpDown }))
	}
	kd := median(collect(b.rounds, func(r *round) (time.Duration, bool) { return r.KindDelete, r.KindDelete > 0 }))
	if arms[0].tried == 0 && (kd == 0 || len(arms[0].downs) == 0) {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("Against the floors (an engine restart's clocks run from the moment the restarted engine answers; the floor is a call straight to the node's direct-path port, no forward; `down`'s floor is `kind delete cluster` of the manual arm's cluster in the same round; medians of the rounds, and of each round's own ratio and difference to its floor):")
	p("")
	head, sep := "| measure |", "| --- |"
	for _, a := range arms {
		head += fmt.Sprintf(" %s | vs floor |", a.label)
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
	// vsFloor: the medians of each round's ratio and difference to its floor.
	vsFloor := func(rrs []*restartRun, g func(*restartRun) time.Duration) (float64, time.Duration, bool) {
		var rs []float64
		var ds []time.Duration
		for _, x := range rrs {
			if d := g(x); d > 0 && x.Direct > 0 {
				rs = append(rs, d.Seconds()/x.Direct.Seconds())
				ds = append(ds, d-x.Direct)
			}
		}
		return medianF(rs), median(ds), len(rs) > 0
	}
	row := func(cells ...string) { p("| %s |", strings.Join(cells, " | ")) }
	if arms[0].tried > 0 { // else -skip-restart: down alone
		failed := []string{"… `up` after the restart: rounds that failed (not in the figures)"}
		for _, a := range arms {
			failed = append(failed, fmt.Sprintf("%d of %d", a.tried-len(a.rrs), a.tried), "")
		}
		row(append(failed, "", "")...)
		type line struct {
			name string
			get  func(*restartRun) time.Duration
			vs   bool    // against the floor
			goal float64 // ratio to the floor that this build's figure must meet
		}
		for _, l := range []line{
			{name: "engine restart: API server `/readyz` ok", get: func(x *restartRun) time.Duration { return x.API }},
			{name: "… kube-proxy's pod Ready again (kubelet)", get: func(x *restartRun) time.Duration { return x.ProxyBack }},
			{name: "… CoreDNS Ready again (kubelet)", get: func(x *restartRun) time.Duration { return x.DNSBack }},
			{name: "… the gateway's container(s) started again (kubelet, whole seconds)", get: func(x *restartRun) time.Duration { return x.GwStarted }},
			{name: "… the gateway's pod(s) Ready again (kubelet)", get: func(x *restartRun) time.Duration { return x.GwReady }, vs: true},
			{name: "… **the floor**: a call straight to the node's port answers", get: func(x *restartRun) time.Duration { return x.Direct }},
			{name: "… the background forward answers, untouched", get: func(x *restartRun) time.Duration { return x.Forward }, vs: true},
			{name: "… `up` (started when the engine answers) green", get: func(x *restartRun) time.Duration { return x.Up }, vs: true, goal: 1.2},
		} {
			cells := []string{l.name}
			verdictCell, target := "", ""
			for i, a := range arms {
				cells = append(cells, secsOr(med(a.rrs, l.get)))
				vs := ""
				if l.vs {
					if r, d, ok := vsFloor(a.rrs, l.get); ok {
						vs = fmt.Sprintf("%.2f× (%+.1f s)", r, d.Seconds())
						if i == 0 && l.goal > 0 {
							target, verdictCell = fmt.Sprintf("≤ %.1f× floor", l.goal), verdict(r <= l.goal && a.tried == len(a.rrs))
						}
					}
				}
				cells = append(cells, vs)
			}
			row(append(cells, target, verdictCell)...)
		}
		first := []string{"… `up`'s first step starts (process start, session)"}
		for _, a := range arms {
			first = append(first, secsOr(med(a.rrs, func(x *restartRun) time.Duration { return x.UpFirstStep })), "")
		}
		row(append(first, "", "")...)
		for _, step := range []string{"preflight", "cluster", "deploy", "forward", "smoke"} {
			cells := []string{fmt.Sprintf("… `up`'s %s step after the restart", step)}
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
				cells = append(cells, cell, "")
			}
			row(append(cells, "", "")...)
		}
	}
	if kd > 0 {
		cells := []string{"`apimdev down` against `kind delete cluster` (" + secs(kd) + ")"}
		verdictCell := ""
		for i, a := range arms {
			var rs []float64
			for j, d := range a.downs {
				if a.kinds[j] > 0 {
					rs = append(rs, d.Seconds()/a.kinds[j].Seconds())
				}
			}
			d := median(a.downs)
			vs := "—"
			if len(rs) > 0 {
				vs = fmt.Sprintf("%.2f×", medianF(rs))
			}
			cells = append(cells, secsOr(d), vs)
			if i == 0 && d > 0 && len(rs) > 0 {
				verdictCell = verdict(d <= 2*time.Second || medianF(rs) <= 1.1)
			}
		}
		row(append(cells, "≤ 2 s or ≤ 1.1× floor", verdictCell)...)
	}
	p("")
	return w.String()
}
