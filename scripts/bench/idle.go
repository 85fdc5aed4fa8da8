//go:build !windows

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The idle phase (round 1 of arm A, unless -skip-idle): what an environment
// that nobody calls costs, per minute, and pause, resume and auto-pause.
const clusterPlain = "apimdev-bench-plain"

// cpuSpan is one sampling interval of an idle window: how long it lasted and
// the CPU time the node containers (all of the cluster's, summed) and the
// background forward used in it.
type cpuSpan struct {
	Dur, Node, Fwd time.Duration
}

// idleWindow is one window with no calls.
type idleWindow struct {
	Name   string
	Spans  []cpuSpan
	HasFwd bool
	Pods   []podUse // at the end of the window (apimdev top --once -o json)
	Note   string   // what went wrong measuring it
	Goal   bool     // the paused window: ≤ 1 % of one core
}

// podUse is one pod's CPU and memory as the kubelet's summary gives them.
type podUse struct {
	Pod       string
	MilliCPU  float64
	MemoryMiB float64
}

// pauseRun is the pause phase: resume of a paused cluster with a call
// waiting, and auto-pause.
type pauseRun struct {
	PausedFor   time.Duration // from `apimdev pause` to `apimdev resume`
	ResumeWall  time.Duration // `apimdev resume -o json`, start to exit
	ResumeGreen float64       // its own count: start to green smoke (s)
	Restarted   int           // containers resume found restarted
	Waiting     time.Duration // the call started while paused: answered after, since resume started
	WaitingCode int
	After       loadResult // the calls after resume
	AutoAfter   string     // the auto-pause setting used
	AutoPaused  time.Duration
	AutoFirst   time.Duration // the first call after the auto-pause: its latency
	AutoCode    int
	Notes       []string
}

// idleRun is everything the idle phase measured.
type idleRun struct {
	Windows []idleWindow
	Pause   *pauseRun
	Plain   *coldRun // the reference cluster's own creation, time-to-k8s marks
}

func (b *bench) idleOn(rd *round) bool {
	return rd.N == 1 && !b.o.skipIdle && !b.o.onlyBackends && b.o.idle > 0
}

// spanRates are the CPU-seconds per minute of each span, of the node
// containers (or the forward).
func spanRates(ss []cpuSpan, fwd bool) []float64 {
	var out []float64
	for _, s := range ss {
		if s.Dur <= 0 {
			continue
		}
		c := s.Node
		if fwd {
			c = s.Fwd
		}
		out = append(out, c.Seconds()/s.Dur.Minutes())
	}
	return out
}

// nodeIDs are the full ids of a cluster's node containers.
func nodeIDs(ctx context.Context, cluster string) ([]string, error) {
	res, err := run(ctx, 30*time.Second, os.Environ(), "docker", "ps", "-q", "--no-trunc", "--filter", "label=io.x-k8s.kind.cluster="+cluster)
	if err != nil {
		return nil, err
	}
	ids := strings.Fields(res.Out)
	if len(ids) == 0 {
		return nil, fmt.Errorf("no node container of %s runs", cluster)
	}
	return ids, nil
}

// cgroupRoot is where the cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// containerCPU is the CPU time a container's cgroup has used (its children's
// included: a kind node's pods are cgroups below it), cgroup v1 or v2, with
// Docker's cgroupfs or systemd driver.
func containerCPU(root, id string) (time.Duration, error) {
	for _, p := range []string{"cpuacct/docker/" + id + "/cpuacct.usage", "cpu,cpuacct/docker/" + id + "/cpuacct.usage",
		"cpuacct/system.slice/docker-" + id + ".scope/cpuacct.usage"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err == nil {
			ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			return time.Duration(ns), err
		}
	}
	for _, p := range []string{"system.slice/docker-" + id + ".scope/cpu.stat", "docker/" + id + "/cpu.stat"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err == nil {
			return cpuStatUsage(string(b))
		}
	}
	return 0, fmt.Errorf("no cgroup CPU counter for container %.12s under %s", id, root)
}

// cpuStatUsage reads usage_usec from a cgroup v2 cpu.stat.
func cpuStatUsage(s string) (time.Duration, error) {
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
			us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Duration(us) * time.Microsecond, err
		}
	}
	return 0, errors.New("cpu.stat has no usage_usec")
}

// measureIdle samples the node containers' and the forward's CPU counters
// every minute (the last span shorter when d is not whole minutes) for d.
// fwdPID 0: no forward.
func measureIdle(ctx context.Context, name, cluster string, fwdPID int, d time.Duration) (idleWindow, error) {
	w := idleWindow{Name: name, HasFwd: fwdPID > 0}
	ids, err := nodeIDs(ctx, cluster)
	if err != nil {
		return w, err
	}
	read := func() (time.Time, time.Duration, time.Duration, error) {
		var sum time.Duration
		for _, id := range ids {
			c, err := containerCPU(cgroupRoot, id)
			if err != nil {
				return time.Time{}, 0, 0, err
			}
			sum += c
		}
		var fwd time.Duration
		if fwdPID > 0 {
			fwd = cpuTime(fwdPID)
		}
		return time.Now(), sum, fwd, nil
	}
	t0, n0, f0, err := read()
	if err != nil {
		return w, err
	}
	end := t0.Add(d)
	for time.Now().Before(end) {
		next := min(time.Until(end), time.Minute)
		select { // the measuring interval itself, not a wait for a condition
		case <-ctx.Done():
			return w, ctx.Err()
		case <-time.After(next):
		}
		t1, n1, f1, err := read()
		if err != nil {
			return w, err
		}
		w.Spans = append(w.Spans, cpuSpan{Dur: t1.Sub(t0), Node: n1 - n0, Fwd: f1 - f0})
		t0, n0, f0 = t1, n1, f1
	}
	r := spanRates(w.Spans, false)
	logf("idle: %s: node containers %s CPU-s/min per minute; forward %s", name, floats(r), floats(spanRates(w.Spans, true)))
	return w, nil
}

func floats(fs []float64) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%.2f", f))
	}
	return strings.Join(parts, " ")
}

// forwardPID is the background forward's pid as apimdev recorded it.
func (b *bench) forwardPID(home string) int {
	var rec struct {
		PID int `json:"pid"`
	}
	raw, err := os.ReadFile(filepath.Join(home, "state", "clusters", clusterUp, "forward.json"))
	if err != nil || json.Unmarshal(raw, &rec) != nil {
		return 0
	}
	return rec.PID
}

// topPods reads each pod's CPU and memory through `apimdev top --once -o json`.
func (b *bench) topPods(ctx context.Context, env []string) ([]podUse, error) {
	res, err := run(ctx, time.Minute, env, b.r.apimdev, "top", "--once", "-o", "json")
	if err != nil {
		return nil, err
	}
	return parseTopPods(res.Out)
}

func parseTopPods(out string) ([]podUse, error) {
	var s struct {
		Resources []struct {
			Pod    string   `json:"pod"`
			CPU    *float64 `json:"cpuMillicores"`
			Memory *float64 `json:"memoryMiB"`
		} `json:"resources"`
		Missing string `json:"resourcesMissing"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &s); err != nil {
		return nil, fmt.Errorf("top -o json: %w", err)
	}
	if len(s.Resources) == 0 {
		return nil, fmt.Errorf("top gave no pod resources: %s", s.Missing)
	}
	var ps []podUse
	for _, r := range s.Resources {
		u := podUse{Pod: r.Pod, MilliCPU: -1, MemoryMiB: -1}
		if r.CPU != nil {
			u.MilliCPU = *r.CPU
		}
		if r.Memory != nil {
			u.MemoryMiB = *r.Memory
		}
		ps = append(ps, u)
	}
	return ps, nil
}

// idleDev is the idle phase on the dev profile, right after the cold `up`
// and its warm runs: the idle window, the same paused, resume with a call
// waiting through the pause, then auto-pause. The cluster is running, with
// auto-pause off, when it returns.
func (b *bench) idleDev(ctx context.Context, rd *round, env []string) error {
	if !b.idleOn(rd) {
		return nil
	}
	ir := &idleRun{}
	rd.Idle = ir
	home := b.upHome(rd.N)
	w, err := measureIdle(ctx, "apimdev, dev profile", clusterUp, b.forwardPID(home), b.o.idle)
	if err != nil {
		w.Note = err.Error()
	}
	if w.Pods, err = b.topPods(ctx, env); err != nil {
		w.Note = strings.TrimSpace(w.Note + "; top: " + err.Error())
	}
	ir.Windows = append(ir.Windows, w)

	paused := time.Now()
	if _, err := run(ctx, 2*time.Minute, env, b.r.apimdev, "pause"); err != nil {
		return fmt.Errorf("apimdev pause: %w", err)
	}
	w, err = measureIdle(ctx, "apimdev, dev profile, paused (`apimdev pause`)", clusterUp, b.forwardPID(home), b.o.idle)
	if err != nil {
		w.Note = err.Error()
	}
	w.Goal = true
	ir.Windows = append(ir.Windows, w)
	pr := &pauseRun{}
	ir.Pause = pr
	if err := b.resumeWithCall(ctx, pr, env, paused); err != nil {
		return err
	}
	return b.autoPause(ctx, pr, env)
}

// resumeWithCall starts a call through the forward while the cluster is
// paused, then `apimdev resume`; the call must answer 200, and 200 calls
// after it too.
func (b *bench) resumeWithCall(ctx context.Context, pr *pauseRun, env []string, paused time.Time) error {
	var (
		wg      sync.WaitGroup
		sent    = make(chan struct{})
		done    = make(chan struct{})
		resumed time.Time
		mu      sync.Mutex
		callErr error
		code    int
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		c := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
		var once sync.Once
		tr := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(func() { close(sent) }) }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, tr), http.MethodGet, echoURL(portUpHTTP), nil)
		req.Header = keyHeader.Clone()
		resp, err := c.Do(req)
		once.Do(func() { close(sent) })
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			callErr = err
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		code = resp.StatusCode
		if !resumed.IsZero() {
			pr.Waiting = time.Since(resumed)
		}
	}()
	defer wg.Wait()
	select { // the request is on its way to the forward
	case <-sent:
	case <-time.After(30 * time.Second):
		pr.Notes = append(pr.Notes, "the waiting call was not sent within 30 s")
	}
	select {
	case <-done:
		pr.Notes = append(pr.Notes, "the call made during the pause answered before resume started")
	default:
	}
	mu.Lock()
	resumed = time.Now()
	mu.Unlock()
	pr.PausedFor = time.Since(paused)
	res, err := run(ctx, 2*time.Minute, env, b.r.apimdev, "resume", "-o", "json")
	pr.ResumeWall = res.Dur
	if err != nil {
		return fmt.Errorf("apimdev resume: %w", err)
	}
	var v struct {
		Green     float64  `json:"greenSeconds"`
		Restarted []string `json:"restarted"`
	}
	for _, l := range strings.Split(res.Out, "\n") {
		if json.Unmarshal([]byte(l), &v) == nil && v.Green > 0 {
			break
		}
	}
	pr.ResumeGreen, pr.Restarted = v.Green, len(v.Restarted)
	wg.Wait()
	mu.Lock()
	pr.WaitingCode = code
	if callErr != nil {
		pr.Notes = append(pr.Notes, "the waiting call: "+callErr.Error())
	}
	mu.Unlock()
	pr.After, err = load(ctx, echoURL(portUpHTTP), keyHeader, 200, 4, true, time.Minute)
	if err != nil {
		pr.Notes = append(pr.Notes, "calls after resume: "+err.Error())
	}
	logf("idle: resume: green after %.2fs (command %.2fs), the waiting call %d after %.2fs, then %d calls, %d failed",
		pr.ResumeGreen, pr.ResumeWall.Seconds(), pr.WaitingCode, pr.Waiting.Seconds(), pr.After.Sent, pr.After.Failed)
	return nil
}

// autoPauseAfter is the setting the auto-pause step uses (the rig figure).
const autoPauseAfter = 20 * time.Second

// autoPause runs `up --auto-pause 20s`, waits for the engine to say the node
// is paused, makes one call (it wakes the cluster) and runs `up` again
// without the setting, which turns it off.
func (b *bench) autoPause(ctx context.Context, pr *pauseRun, env []string) error {
	pr.AutoAfter = autoPauseAfter.String()
	if _, err := run(ctx, 2*time.Minute, env, b.r.apimdev, append(b.upArgs("up"), "--auto-pause", pr.AutoAfter)...); err != nil {
		return fmt.Errorf("apimdev up --auto-pause: %w", err)
	}
	since := time.Now()
	node := clusterUp + "-control-plane"
	for deadline := since.Add(autoPauseAfter + 90*time.Second); ; {
		res, err := run(ctx, 30*time.Second, os.Environ(), "docker", "inspect", "-f", "{{.State.Paused}}", node)
		if err == nil && strings.TrimSpace(res.Out) == "true" {
			pr.AutoPaused = time.Since(since)
			break
		}
		if time.Now().After(deadline) {
			pr.Notes = append(pr.Notes, fmt.Sprintf("auto-pause: the node was not paused %s after up", time.Since(since).Round(time.Second)))
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if pr.AutoPaused > 0 {
		c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, echoURL(portUpHTTP), nil)
		req.Header = keyHeader.Clone()
		t0 := time.Now()
		resp, err := c.Do(req)
		pr.AutoFirst = time.Since(t0)
		if err != nil {
			pr.Notes = append(pr.Notes, "auto-pause: the first call: "+err.Error())
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			pr.AutoCode = resp.StatusCode
		}
		logf("idle: auto-pause %s: paused %.1fs after up; the first call %d after %.2fs", pr.AutoAfter, pr.AutoPaused.Seconds(), pr.AutoCode, pr.AutoFirst.Seconds())
	}
	if _, err := run(ctx, 2*time.Minute, env, b.r.apimdev, b.upArgs("up")...); err != nil {
		return fmt.Errorf("apimdev up (auto-pause off again): %w", err)
	}
	return green(ctx, portUpHTTP)
}

// idleProd is the idle window of the prod profile, after promote (its
// traffic has stopped when the command returns).
func (b *bench) idleProd(ctx context.Context, rd *round, env []string) error {
	if !b.idleOn(rd) || rd.Idle == nil || rd.Promote == nil {
		return nil
	}
	w, err := measureIdle(ctx, "apimdev, prod profile (after `promote`)", clusterUp, b.forwardPID(b.upHome(rd.N)), b.o.idle)
	if err != nil {
		w.Note = err.Error()
	}
	if w.Pods, err = b.topPods(ctx, env); err != nil {
		w.Note = strings.TrimSpace(w.Note + "; top: " + err.Error())
	}
	rd.Idle.Windows = append(rd.Idle.Windows, w)
	return nil
}

// idlePlain is the reference: a plain `kind create cluster` with the rig's
// node image, nothing deployed, no forward, idle for the same window once
// its DNS is ready. Its creation is timed in the time-to-k8s form too.
func (b *bench) idlePlain(ctx context.Context, rd *round) error {
	if !b.idleOn(rd) || rd.Idle == nil {
		return nil
	}
	b.r.deleteCluster(clusterPlain)
	defer b.r.deleteCluster(clusterPlain)
	start := time.Now()
	watch := b.watchK8s(ctx, clusterPlain, start, 5*time.Minute)
	defer watch.stop()
	res, err := run(ctx, 5*time.Minute, os.Environ(), b.r.kind, "create", "cluster", "--name", clusterPlain, "--image", b.r.nodeImage,
		"--kubeconfig", filepath.Join(b.r.tmp, clusterPlain+".kubeconfig"))
	if err != nil {
		return fmt.Errorf("kind create cluster (plain): %w", err)
	}
	plain := &coldRun{Cmd: res.Dur}
	plain.K8s = watch.finish(3 * time.Minute) // the window starts once its DNS is ready
	rd.Idle.Plain = plain
	logf("idle: plain kind create %.1fs, API server %.1fs, DNS %.1fs %s", plain.Cmd.Seconds(), plain.K8s.API.Seconds(), plain.K8s.DNS.Seconds(), plain.K8s.Err)
	w, err := measureIdle(ctx, "plain `kind create cluster` (nothing deployed, no forward: the reference)", clusterPlain, 0, b.o.idle)
	if err != nil {
		w.Note = err.Error()
	}
	rd.Idle.Windows = append(rd.Idle.Windows, w)
	return nil
}

// idleReport is the idle, pause and time-to-k8s tables.
func (b *bench) idleReport() string {
	var ir *idleRun
	for _, r := range b.rounds {
		if r.Idle != nil {
			ir = r.Idle
		}
	}
	var w strings.Builder
	if ir != nil {
		w.WriteString(idleTable(ir, b.o.idle))
		w.WriteString(pauseTable(ir.Pause))
	}
	var plain *coldRun
	if ir != nil {
		plain = ir.Plain
	}
	w.WriteString(b.ttk8sTable(plain))
	return w.String()
}

func pct(cpuPerMin float64) float64 { return cpuPerMin / 60 * 100 }

func idleTable(ir *idleRun, d time.Duration) string {
	if len(ir.Windows) == 0 {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("Idle cost: %s with no calls per window, once (round 1); CPU from the node containers' cgroup counters and the forward's /proc/<pid>/stat, per minute, the median of the minutes:", d)
	p("")
	p("| window | node containers: CPU-s per minute | %% of one core | each minute (CPU-s) | background forward: CPU-s per minute | target | |")
	p("| --- | --- | --- | --- | --- | --- | --- |")
	for _, x := range ir.Windows {
		node := spanRates(x.Spans, false)
		cells := []string{"—", "—", "—", "—"}
		if len(node) > 0 {
			m := medianF(node)
			cells = []string{fmt.Sprintf("%.2f", m), fmt.Sprintf("%.1f %%", pct(m)), floats(node), "none"}
			if x.HasFwd {
				cells[3] = fmt.Sprintf("%.3f", medianF(spanRates(x.Spans, true)))
			}
		}
		target, v := "", ""
		if x.Goal {
			target = "≤ 1 % of one core"
			v = verdict(len(node) > 0 && pct(medianF(node)) <= 1)
		}
		name := x.Name
		if x.Note != "" {
			name += " (" + x.Note + ")"
		}
		p("| %s | %s | %s | %s | %s | %s | %s |", name, cells[0], cells[1], cells[2], cells[3], target, v)
	}
	p("")
	var pods bool
	for _, x := range ir.Windows {
		pods = pods || len(x.Pods) > 0
	}
	if pods {
		p("Each pod at the end of the window (`apimdev top --once -o json`: the kubelet's stats summary):")
		p("")
		p("| window | pod | CPU | memory (working set) |")
		p("| --- | --- | --- | --- |")
		for _, x := range ir.Windows {
			for _, u := range x.Pods {
				cpu, mem := "—", "—"
				if u.MilliCPU >= 0 {
					cpu = fmt.Sprintf("%.1f m", u.MilliCPU)
				}
				if u.MemoryMiB >= 0 {
					mem = fmt.Sprintf("%.1f MiB", u.MemoryMiB)
				}
				p("| %s | %s | %s | %s |", x.Name, u.Pod, cpu, mem)
			}
		}
		p("")
	}
	return w.String()
}

func pauseTable(pr *pauseRun) string {
	if pr == nil {
		return ""
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("Pause and resume (dev profile, after the paused window: paused for %s):", pr.PausedFor.Round(time.Second))
	p("")
	p("| measure | figure | target | |")
	p("| --- | --- | --- | --- |")
	p("| `apimdev resume` → green smoke (its own count; the command's wall) | %.2f s (%.2f s) | ≤ 0.5 s | %s |", pr.ResumeGreen, pr.ResumeWall.Seconds(),
		verdict(pr.ResumeGreen > 0 && pr.ResumeGreen <= 0.5))
	p("| containers resume found restarted | %d | 0 | %s |", pr.Restarted, verdict(pr.Restarted == 0))
	waiting := "no answer"
	if pr.WaitingCode != 0 {
		waiting = fmt.Sprintf("%d, %.2f s after resume started", pr.WaitingCode, pr.Waiting.Seconds())
	}
	p("| a call started through the forward while paused | %s | answers 200 | %s |", waiting, verdict(pr.WaitingCode == 200))
	p("| calls after resume (keep-alive, concurrency 4) | %d sent, %d failed | 0 failed | %s |", pr.After.Sent, pr.After.Failed,
		verdict(pr.After.Sent == 200 && pr.After.Failed == 0))
	if pr.AutoAfter != "" {
		paused := "not paused"
		if pr.AutoPaused > 0 {
			paused = fmt.Sprintf("%.1f s after `up` returned", pr.AutoPaused.Seconds())
		}
		p("| `up --auto-pause %s`: the engine says the node is paused | %s | | |", pr.AutoAfter, paused)
		first := "—"
		if pr.AutoCode != 0 {
			first = fmt.Sprintf("%d after %.2f s", pr.AutoCode, pr.AutoFirst.Seconds())
		}
		p("| auto-pause: the first call (it wakes the cluster) | %s | ≤ 3 s | %s |", first,
			verdict(pr.AutoCode == 200 && pr.AutoFirst <= 3*time.Second))
	}
	p("")
	if len(pr.Notes) > 0 {
		p("Notes: %s.", strings.Join(pr.Notes, "; "))
		p("")
	}
	return w.String()
}
