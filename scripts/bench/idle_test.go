//go:build !windows

package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestSpanRates(t *testing.T) {
	t.Parallel()
	ss := []cpuSpan{
		{Dur: time.Minute, Node: 6 * time.Second, Fwd: 30 * time.Millisecond},
		{Dur: 30 * time.Second, Node: 6 * time.Second, Fwd: 0}, // a short last span: 12 CPU-s per minute
		{Dur: 0, Node: time.Second},                            // no time: no rate
	}
	if got := floats(spanRates(ss, false)); got != "6.00 12.00" {
		t.Errorf("node rates = %s", got)
	}
	if got := floats(spanRates(ss, true)); got != "0.03 0.00" {
		t.Errorf("forward rates = %s", got)
	}
	if got := pct(0.6); got < 0.999 || got > 1.001 {
		t.Errorf("0.6 CPU-s per minute = %.3f %% of one core, want 1", got)
	}
}

// The container's CPU counter, cgroup v1 (cpuacct, nanoseconds) and v2
// (cpu.stat, microseconds), under Docker's cgroupfs and systemd drivers.
func TestContainerCPU(t *testing.T) {
	t.Parallel()
	root := testdir.New(t)
	write := func(rel, body string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cpuacct/docker/aaa/cpuacct.usage", "1500000000\n")
	write("system.slice/docker-bbb.scope/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
	write("docker/ccc/cpu.stat", "user_usec 1\n")
	for id, want := range map[string]time.Duration{"aaa": 1500 * time.Millisecond, "bbb": 2500 * time.Millisecond} {
		if got, err := containerCPU(root, id); err != nil || got != want {
			t.Errorf("containerCPU(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	if _, err := containerCPU(root, "ccc"); err == nil {
		t.Error("a cpu.stat without usage_usec: no error")
	}
	if _, err := containerCPU(root, "ddd"); err == nil || !strings.Contains(err.Error(), "no cgroup CPU counter") {
		t.Errorf("no counter: %v", err)
	}
}

func TestTTK8sParsing(t *testing.T) {
	t.Parallel()
	if got := apiFromDockerPort("[::1]:40000\n127.0.0.1:41234\n"); got != "https://127.0.0.1:41234" {
		t.Errorf("apiFromDockerPort = %q", got)
	}
	if got := apiFromDockerPort("0.0.0.0:41234\n"); got != "" {
		t.Errorf("apiFromDockerPort of a non-loopback port = %q, want none", got)
	}
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	kc := "apiVersion: v1\nusers:\n- name: kind-x\n  user:\n    client-certificate-data: " + enc("CERT") + "\n    client-key-data: " + enc("KEY") + "\n"
	c, err := parseKubeCred(kc)
	if err != nil || string(c.cert) != "CERT" || string(c.key) != "KEY" {
		t.Errorf("parseKubeCred = %+v, %v", c, err)
	}
	if _, err := parseKubeCred("users:\n- name: x\n  user:\n    token: abc\n"); err == nil {
		t.Error("a kubeconfig without a client certificate: no error")
	}
	if _, err := parseKubeCred("    client-certificate-data: %%%\n"); err == nil {
		t.Error("bad base64: no error")
	}
	for body, want := range map[string]bool{
		`{"items":[]}`: false,
		`{"items":[{"endpoints":[{"conditions":{"ready":false}}]}]}`:                                  false,
		`{"items":[{"endpoints":[{"conditions":{"ready":false}},{"conditions":{"ready":true}}]}]}`:    true,
		`{"items":[{"endpoints":null},{"endpoints":[{"addresses":["10.244.0.2"],"conditions":{}}]}]}`: true,
		`not json`: false,
	} {
		if got := dnsReady([]byte(body)); got != want {
			t.Errorf("dnsReady(%s) = %v", body, got)
		}
	}
}

func TestParseTopPods(t *testing.T) {
	t.Parallel()
	ps, err := parseTopPods(`{"time":"x","gateway":"gw","pods":[],"resources":[{"pod":"gw-1","cpuMillicores":3.5,"memoryMiB":120.25,"time":"x"},{"pod":"gw-2","time":"x"}]}` + "\n")
	if err != nil || len(ps) != 2 || ps[0] != (podUse{"gw-1", 3.5, 120.25}) || ps[1] != (podUse{"gw-2", -1, -1}) {
		t.Errorf("parseTopPods = %+v, %v", ps, err)
	}
	if _, err := parseTopPods(`{"pods":[],"resourcesMissing":"the kubelet said no"}`); err == nil || !strings.Contains(err.Error(), "the kubelet said no") {
		t.Errorf("no resources: %v", err)
	}
}

// tableRows checks that every row of each markdown table has as many cells
// as its header.
func tableRows(t *testing.T, s string) {
	t.Helper()
	cols := 0
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "|") {
			cols = 0
			continue
		}
		if n := strings.Count(l, "|"); cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("row with %d bars in a table of %d:\n%s", n, cols, l)
		}
	}
}

func TestIdleReport(t *testing.T) {
	t.Parallel()
	b := &bench{o: options{idle: 3 * time.Minute, compareLabel: "before"}}
	minute := func(node, fwd time.Duration) cpuSpan { return cpuSpan{Dur: time.Minute, Node: node, Fwd: fwd} }
	ir := &idleRun{
		Windows: []idleWindow{
			{Name: "apimdev, dev profile", HasFwd: true, Spans: []cpuSpan{minute(9*time.Second, 60*time.Millisecond), minute(7*time.Second, 30*time.Millisecond), minute(8*time.Second, 0)},
				Pods: []podUse{{"gw-1", 4, 90}, {"gw-2", -1, -1}}},
			{Name: "paused", HasFwd: true, Goal: true, Spans: []cpuSpan{minute(0, 0), minute(10*time.Millisecond, 0), minute(0, 0)}},
			{Name: "plain", Spans: []cpuSpan{minute(5*time.Second, 0)}},
			{Name: "prod", Note: "no counter"},
		},
		Pause: &pauseRun{PausedFor: 3*time.Minute + 10*time.Second, ResumeWall: 400 * time.Millisecond, ResumeGreen: 0.31, Waiting: 350 * time.Millisecond, WaitingCode: 200,
			After: loadResult{Sent: 200}, AutoAfter: "20s", AutoPaused: 21 * time.Second, AutoFirst: 4 * time.Second, AutoCode: 200,
			Notes: []string{"something odd"}},
		Plain: &coldRun{Cmd: 20 * time.Second, K8s: k8sTimes{API: 12 * time.Second, DNS: 25 * time.Second}},
	}
	for i := 1; i <= 3; i++ {
		rd := &round{N: i}
		rd.Up.coldRun = coldRun{Total: time.Duration(30+i) * time.Second, Cmd: 29 * time.Second, K8s: k8sTimes{API: time.Duration(10+i) * time.Second, DNS: 20 * time.Second}}
		rd.Manual = coldRun{Total: 40 * time.Second, Cmd: 39 * time.Second, K8s: k8sTimes{API: 14 * time.Second}}
		if i == 1 {
			rd.Idle = ir
		}
		b.rounds = append(b.rounds, rd)
	}
	rep := b.idleReport()
	if os.Getenv("BENCH_SHOW") != "" {
		t.Log(rep)
	}
	tableRows(t, rep)
	for _, want := range []string{
		"| apimdev, dev profile | 8.00 | 13.3 % | 9.00 7.00 8.00 | 0.030 |  |  |",
		"| paused | 0.00 | 0.0 % | 0.00 0.01 0.00 | 0.000 | ≤ 1 % of one core | met |",
		"| plain | 5.00 | 8.3 % | 5.00 | none |  |  |",
		"| prod (no counter) | — | — | — | — |  |  |",
		"| apimdev, dev profile | gw-1 | 4.0 m | 90.0 MiB |", "| apimdev, dev profile | gw-2 | — | — |",
		"| `apimdev resume` → green smoke (its own count; the command's wall) | 0.31 s (0.40 s) | ≤ 0.5 s | met |",
		"| a call started through the forward while paused | 200, 0.35 s after resume started | answers 200 | met |",
		"| calls after resume (keep-alive, concurrency 4) | 200 sent, 0 failed | 0 failed | met |",
		"| auto-pause: the first call (it wakes the cluster) | 200 after 4.00 s | ≤ 3 s | **missed** |",
		"Notes: something odd.", "paused for 3m10s):", "| node containers: CPU-s per minute | % of one core | each minute (CPU-s) |",
		"| apimdev: `apimdev up --detach` (A) | 29.0 s | 12.0 s | 20.0 s | 32.0 s | 0 of 3 |",
		"| manual: kind create, kind load, kubectl apply, rollout status, port-forward, curl (B) | 39.0 s | 14.0 s | — | 40.0 s | 3 of 3 |",
		"| plain `kind create cluster` (nothing deployed; round 1 only) | 20.0 s | 12.0 s | 25.0 s | — | 0 of 1 |",
		"| kind v0.29, published total", "| 33.0 s | |", "not measured here",
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("no %q in:\n%s", want, rep)
		}
	}
	// A paused window over 1 % of one core misses its goal.
	ir.Windows[1].Spans = []cpuSpan{minute(time.Second, 0)}
	if rep := b.idleReport(); !strings.Contains(rep, "| paused | 1.00 | 1.7 % | 1.00 | 0.000 | ≤ 1 % of one core | **missed** |") {
		t.Errorf("1.7 %% paused: not missed in:\n%s", rep)
	}
	// The whole report carries the tables; a run without the idle phase has
	// the time-to-k8s table alone.
	if r := b.report([]string{"machine", "versions"}, time.Minute); !strings.Contains(r, "Idle cost:") || !strings.Contains(r, "Time to Kubernetes") {
		t.Error("the report does not carry the idle and time-to-k8s tables")
	}
	b.rounds[0].Idle = nil
	if rep := b.idleReport(); strings.Contains(rep, "Idle cost") || strings.Contains(rep, "Pause and resume") || !strings.Contains(rep, "Time to Kubernetes") {
		t.Errorf("without the idle phase:\n%s", rep)
	}
	if (&bench{}).idleReport() != "" {
		t.Error("a run with no rounds has tables")
	}
}
