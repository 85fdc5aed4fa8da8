//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const pauseCluster = "apimdev-pause"

// nodePaused asks the engine whether the suite's node container is paused.
func nodePaused(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Paused}}", pauseCluster+"-control-plane").Output()
	if err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	return strings.TrimSpace(string(out)) == "true"
}

// oneShot closes its connection after each call: a connection kept open
// (a keep-alive pool's) is a connection through the forward, and keeps the
// cluster from auto-pausing.
var oneShot = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// probe calls the gateway's health path through the background forward.
func probe(ctx context.Context, port string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/status-0123456789abcdef", nil)
	resp, err := oneShot.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// nodeCPU is the node container's CPU over d, in percent of one core, from
// its cgroup's usage counter (cgroup v1 cpuacct, or v2 cpu.stat).
func nodeCPU(t *testing.T, d time.Duration) float64 {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", "{{.Id}}", pauseCluster+"-control-plane").Output()
	if err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	id := strings.TrimSpace(string(out))
	read := func() (time.Duration, bool) {
		if b, err := os.ReadFile("/sys/fs/cgroup/cpuacct/docker/" + id + "/cpuacct.usage"); err == nil {
			var ns int64
			fmt.Sscan(string(b), &ns)
			return time.Duration(ns), true
		}
		b, err := os.ReadFile("/sys/fs/cgroup/system.slice/docker-" + id + ".scope/cpu.stat")
		if err != nil {
			return 0, false
		}
		var us int64
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
				fmt.Sscan(v, &us)
			}
		}
		return time.Duration(us) * time.Microsecond, true
	}
	a, ok := read()
	if !ok {
		t.Logf("no cgroup CPU counter for the node here")
		return -1
	}
	start := time.Now()
	<-time.After(d) // the measuring window itself, not a wait for a condition
	b, _ := read()
	return 100 * float64(b-a) / float64(time.Since(start))
}

// TestPause is a developer's idle afternoon: the demo up, paused by hand
// with a call waiting through the pause, resumed green; then auto-pause
// after 20 s without a call, and the next call wakes it.
func TestPause(t *testing.T) {
	tl := buildTools(t)
	r := newRig(t, tl, rigOptions{cluster: pauseCluster, httpPort: "18380", httpsPort: "18743"})
	t.Cleanup(func() {
		if _, err := os.Stat(r.kubeconfig); err == nil {
			if code, out, errs := r.apimdev(t, "down"); code != 0 {
				t.Errorf("down (of a cluster that may be paused) exited %d\n%s%s", code, out, errs)
			}
		}
		if t.Failed() {
			os.MkdirAll("artifacts", 0o755)
			os.WriteFile("artifacts/pause-transcript.txt", r.transcript.Bytes(), 0o644)
		}
		t.Logf("\n%s", r.table())
	})
	up := func(t *testing.T, extra ...string) {
		t.Helper()
		start := time.Now()
		args := append([]string{"up", "--demo", "--detach", "--node-image", r.nodeImage, "--http-port", r.httpPort, "--https-port", r.httpsPort}, extra...)
		if code, out, errs := r.apimdev(t, args...); code != 0 {
			t.Fatalf("up exited %d\n%s\n%s", code, out, errs)
		}
		r.time("up "+strings.Join(extra, " "), start)
	}
	up(t)

	t.Run("pause, a call waits, resume", func(t *testing.T) {
		t.Logf("node CPU, running and idle: %.1f %% of one core", nodeCPU(t, 30*time.Second))
		code, out, errs := r.apimdev(t, "pause")
		if code != 0 || !strings.Contains(out, "paused") || !strings.Contains(out, "apimdev resume") {
			t.Fatalf("pause exited %d\n%s\n%s", code, out, errs)
		}
		t.Logf("pause:\n%s", out)
		if !nodePaused(t) {
			t.Fatal("the engine does not say the node is paused")
		}
		code, out, _ = r.apimdev(t, "status", "-o", "json")
		var st struct {
			State  string
			Paused *struct{ Since time.Time }
		}
		if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &st) != nil || st.State != "paused" || st.Paused == nil || st.Paused.Since.IsZero() {
			t.Fatalf("status -o json while paused (exit %d): %s", code, out)
		}
		if code, out, _ := r.apimdev(t, "status"); code != 0 || !strings.Contains(out, "(paused)") || !strings.Contains(out, "since") {
			t.Errorf("status while paused (exit %d):\n%s", code, out)
		} else {
			t.Logf("status while paused:\n%s", out)
		}
		t.Logf("node CPU, paused: %.1f %% of one core", nodeCPU(t, 30*time.Second))

		// A call started during the pause waits for the resume.
		type answer struct {
			code int
			err  error
			at   time.Time
		}
		got := make(chan answer, 1)
		go func() {
			c, err := probe(context.Background(), r.httpPort)
			got <- answer{c, err, time.Now()}
		}()
		select {
		case a := <-got:
			t.Fatalf("a call through a paused cluster answered %d (%v) before the resume", a.code, a.err)
		case <-time.After(3 * time.Second):
		}
		start := time.Now()
		code, out, errs = r.apimdev(t, "resume")
		r.time("resume", start)
		if code != 0 || !strings.Contains(out, "no pod restarted") {
			t.Fatalf("resume exited %d\n%s\n%s", code, out, errs)
		}
		t.Logf("resume:\n%s", out)
		a := <-got
		if a.err != nil || a.code != http.StatusOK {
			t.Fatalf("the call that waited through the pause: %d, %v", a.code, a.err)
		}
		t.Logf("the waiting call answered %s after resume started", a.at.Sub(start).Round(time.Millisecond))
		if nodePaused(t) {
			t.Fatal("the node is still paused after resume")
		}
	})

	t.Run("auto-pause after 20s, a call wakes it", func(t *testing.T) {
		// up again with the setting: the forward that runs takes it.
		up(t, "--auto-pause", "20s")
		deadline := time.Now().Add(90 * time.Second)
		for !nodePaused(t) {
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(r.state + "/clusters/" + pauseCluster + "/forward.log")
				t.Fatalf("not paused 90 s after the last call; forward log:\n%s", log)
			}
			time.Sleep(time.Second)
		}
		if code, out, _ := r.apimdev(t, "status", "-o", "json"); !strings.Contains(out, `"state":"paused"`) {
			t.Errorf("status after auto-pause (exit %d): %s", code, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		code, err := probe(ctx, r.httpPort)
		took := time.Since(start)
		r.time("auto-pause: first call", start)
		if err != nil || code != http.StatusOK {
			t.Fatalf("the first call after auto-pause: %d, %v", code, err)
		}
		t.Logf("the first call after auto-pause answered in %s (goal ≤ 3 s)", took.Round(time.Millisecond))
		if took > 3*time.Second {
			t.Errorf("the first call after auto-pause took %s; goal ≤ 3 s", took)
		}
		if nodePaused(t) {
			t.Error("the node is paused after the call that woke it")
		}
		if code, out, errs := r.apimdev(t, "smoke"); code != 0 {
			t.Errorf("smoke after the wake: exit %d\n%s%s", code, out, errs)
		}
		if log, err := os.ReadFile(r.state + "/clusters/" + pauseCluster + "/forward.log"); err == nil {
			t.Logf("the forward's log:\n%s", log)
		}
	})

	t.Run("up on a paused cluster resumes it, down deletes a paused one", func(t *testing.T) {
		if code, out, errs := r.apimdev(t, "pause"); code != 0 {
			t.Fatalf("pause exited %d\n%s%s", code, out, errs)
		}
		start := time.Now()
		args := []string{"up", "--demo", "--detach", "--node-image", r.nodeImage, "--http-port", r.httpPort, "--https-port", r.httpsPort}
		code, out, errs := r.apimdev(t, args...)
		r.time("up on a paused cluster", start)
		if code != 0 || !strings.Contains(errs, "was paused: resumed it first") {
			t.Fatalf("up on a paused cluster exited %d\n%s\n%s", code, out, errs)
		}
		if nodePaused(t) {
			t.Fatal("the node is paused after up")
		}
		// resume -o json: one object, the smoke calls and the resume's figures.
		if code, out, errs := r.apimdev(t, "pause"); code != 0 {
			t.Fatalf("pause exited %d\n%s%s", code, out, errs)
		}
		code, out, errs = r.apimdev(t, "resume", "-o", "json")
		var rj struct {
			Resumed      bool
			GreenSeconds float64
			Passed       int
			Failed       int
			Smoke        []json.RawMessage
		}
		dec := json.NewDecoder(strings.NewReader(out))
		if code != 0 || dec.Decode(&rj) != nil || dec.More() || !rj.Resumed || rj.GreenSeconds <= 0 || rj.Failed != 0 || rj.Passed != len(rj.Smoke) || len(rj.Smoke) == 0 {
			t.Fatalf("resume -o json exited %d, want one object (resumed, greenSeconds, the smoke calls):\n%s\n%s", code, out, errs)
		}
		if code, out, errs := r.apimdev(t, "pause"); code != 0 {
			t.Fatalf("pause exited %d\n%s%s", code, out, errs)
		}
		start = time.Now()
		code, out, errs = r.apimdev(t, "down")
		r.time("down of a paused cluster", start)
		if code != 0 {
			t.Fatalf("down of a paused cluster exited %d\n%s\n%s", code, out, errs)
		}
		if err := exec.Command("docker", "inspect", pauseCluster+"-control-plane").Run(); err == nil {
			t.Fatal("the node container is still there after down")
		}
	})
}
