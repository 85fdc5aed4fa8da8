//go:build !windows

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/testdir"
)

func TestQuantileAndMedian(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.50, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := quantile(ds, c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := median([]time.Duration{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]time.Duration{4, 1, 2, 3}); got != 2 {
		t.Errorf("median even = %v (want the mean of 2 and 3, truncated)", got)
	}
	if got := medianF([]float64{5, 1, 3, 2}); got != 2.5 {
		t.Errorf("medianF = %v", got)
	}
}

func TestSteps(t *testing.T) {
	t.Parallel()
	up := `{"step":"preflight","state":"start","time":"x","elapsed":0}
{"step":"preflight","state":"done","detail":"7 checks passed","time":"x","elapsed":0.071}
{"step":"cluster","state":"progress","detail":"kind: Preparing nodes","time":"x","elapsed":1}
{"step":"cluster","state":"done","time":"x","elapsed":24.5}
{"step":"deploy","state":"progress","detail":"cluster DNS ready after 2.5s","time":"x","elapsed":2.5}
{"smoke":[],"passed":2}`
	got := stagesText(upSteps(up))
	if got != "preflight 0.1s, cluster 24.5s, (deploy: waiting for cluster DNS) 2.5s" {
		t.Errorf("upSteps: %q", got)
	}
	man := "manual: kind-create 17.250\nsomething else\nmanual: kind-load 1.5\n"
	if got := stagesText(manualSteps(man)); got != "kind-create 17.2s, kind-load 1.5s" {
		t.Errorf("manualSteps: %q", got)
	}
}

func TestLoopbackOnly(t *testing.T) {
	t.Parallel()
	for url, ok := range map[string]bool{
		"http://127.0.0.1:29080/echo": true, "https://127.0.0.1:29443/": true,
		"http://172.18.0.2:30080/": false, "http://localhost:29080/": false, "http://127.0.0.1/": false,
	} {
		if err := loopback(url); (err == nil) != ok {
			t.Errorf("loopback(%q) = %v", url, err)
		}
	}
}

func TestWriteSection(t *testing.T) {
	t.Parallel()
	p := filepath.Join(testdir.New(t), "B.md")
	os.WriteFile(p, []byte("# Benchmarks\n\nhand-written\n"), 0o644)
	for _, body := range []string{"first\n", "second\n"} {
		if err := writeSection(p, body); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(p)
	s := string(b)
	if !strings.HasPrefix(s, "# Benchmarks\n\nhand-written\n") || strings.Contains(s, "first") ||
		strings.Count(s, beginMark) != 1 || !strings.Contains(s, "second\n"+endMark) {
		t.Errorf("BENCHMARKS.md:\n%s", s)
	}
}

// Every markdown table the report prints has as many cells in each row as in
// its header, with and without the compare arm.
func TestReportTables(t *testing.T) {
	t.Parallel()
	for _, withCmp := range []bool{false, true} {
		b := &bench{o: options{requests: 5000, newConnRequests: 1000, conc: 16, compareLabel: "before"}}
		if withCmp {
			b.o.compare = "/tmp/apimdev-before"
		}
		for i := 1; i <= 3; i++ {
			rd := &round{N: i, Order: "AB", Status: []time.Duration{200 * time.Millisecond}, Ver: []time.Duration{10 * time.Millisecond},
				Promote: &promoteRun{Rollout: 10, Sent: 200, P50: 3, P99: 20, ChecksOK: 6, ChecksTotal: 6}}
			rd.Up.coldRun = coldRun{Total: 25 * time.Second, Stages: []stage{{"preflight", time.Second}, {"cluster", 10 * time.Second}}}
			rd.Up.Warm = []time.Duration{600 * time.Millisecond}
			rd.Restart = &restartRun{API: 8 * time.Second, Forward: 10 * time.Second, Up: 12 * time.Second}
			rd.Down = 1500 * time.Millisecond
			rd.Up.WarmSteps = []stage{{"preflight", 200 * time.Millisecond}}
			if withCmp {
				rd.Cmp = rd.Up
			}
			rd.Manual = coldRun{Total: 30 * time.Second, Stages: []stage{{"kind-create", 11 * time.Second}, {"kind-load", time.Second}, {"rollout-status", 17 * time.Second}}}
			for _, l := range []struct {
				via      string
				p50, dur time.Duration
			}{{viaNodePort, 2 * time.Millisecond, 800 * time.Millisecond}, {viaKubectl, 6 * time.Millisecond, 2500 * time.Millisecond},
				{viaTunnel, 5500 * time.Microsecond, 2 * time.Second}, {viaDirect, 2600 * time.Microsecond, time.Second}} {
				rd.Loads = append(rd.Loads, namedLoad{l.via, loadResult{KeepOpen: true, Sent: 5000, P50: l.p50, Dur: l.dur}})
			}
			b.rounds = append(b.rounds, rd)
		}
		rep := b.report([]string{"machine", "versions"}, time.Minute)
		if os.Getenv("BENCH_SHOW") != "" {
			t.Log(rep)
		}
		cols := 0
		for _, l := range strings.Split(rep, "\n") {
			if !strings.HasPrefix(l, "|") {
				cols = 0
				continue
			}
			n := strings.Count(l, "|")
			if cols == 0 {
				cols = n
			} else if n != cols {
				t.Errorf("compare=%v: row with %d bars in a table of %d:\n%s", withCmp, n, cols, l)
			}
		}
		for _, want := range []string{"| Docker engine restart: engine answering → `up` green smoke | 12.0 s | — | | ≤ 5 s | **missed** |",
			"2.0 s after the API server | — | | ≤ 3 s after | met |", "| `apimdev down` (forward stopped, cluster deleted) | 1.5 s | — | | ≤ 2 s | met |",
			"| cold, against its own cluster step (kind's create, 10.0 s) | 25.0 s | — | 2.50× | ≤ 1.25× | **missed** |",
			"| direct p50 ≤ 1.5 × NodePort | 2.60 ms vs 2.00 ms | 1.30× | met |",
			"| direct req/s ≥ 2 × kubectl port-forward | 5000 vs 2000 | 2.50× | met |",
			"| tunnel p50 ≤ 1.2 × kubectl port-forward | 5.50 ms vs 6.00 ms | 0.92× | met |"} {
			if !strings.Contains(rep, want) {
				t.Errorf("compare=%v: no %q in:\n%s", withCmp, want, rep)
			}
		}
		if !strings.Contains(rep, "0.83×") {
			t.Errorf("compare=%v: no cold ratio 25/30 in:\n%s", withCmp, rep)
		}
	}
}

// The backends table: medians over the rounds, the laptop/in-cluster ratios
// and the goals met or missed, in rows as wide as the header.
func TestBackendTable(t *testing.T) {
	t.Parallel()
	b := &bench{o: options{requests: 5000, newConnRequests: 1000, conc: 16}}
	for i, hwm := range []int64{60 << 10, 80 << 10, 61 << 10} { // growth 10, 30, 11 MiB: median 11
		br := &backendRun{RelayCPU: time.Duration(100*(i+1)) * time.Millisecond, RelayReqs: 1000, RelayRSSKB: 12 << 10,
			Upload: time.Duration(4+i) * time.Second, UploadOK: true, FwdRSSBefore: 50 << 10, FwdHWMAfter: hwm}
		for _, l := range []struct {
			name     string
			keep     bool
			p50, dur time.Duration
		}{{laptopBackend, true, 3 * time.Millisecond, 2 * time.Second}, {inpodBackend, true, 2 * time.Millisecond, time.Second},
			{laptopBackend, false, 5 * time.Millisecond, 1250 * time.Millisecond}, {inpodBackend, false, 4 * time.Millisecond, time.Second}} {
			br.Loads = append(br.Loads, namedLoad{l.name, loadResult{KeepOpen: l.keep, Sent: 5000, P50: l.p50, P99: 2 * l.p50, Dur: l.dur}})
		}
		b.rounds = append(b.rounds, &round{N: i + 1, Backends: br})
	}
	tab := b.backendTable()
	for _, want := range []string{
		"| p50, keep-alive | 3.00 ms | 2.00 ms | 1.50× | ≤ 1.5× | met |",
		"| requests/s, keep-alive | 2500 | 5000 | 0.50× | ≥ 0.7× | **missed** |",
		"| p50, new conn | 5.00 ms | 4.00 ms | 1.25× | ≤ 1.5× | met |",
		"| requests/s, new conn | 4000 | 5000 | 0.80× | ≥ 0.7× | met |",
		"| p99, keep-alive | 6.00 ms | 4.00 ms | 1.50× | | |",
		"| relay CPU per request (keep-alive load, crictl stats) | 200 µs |",
		"| relay working set after the keep-alive load | 12.0 MiB |",
		"(checksum equal in 3/3) | 5.0 s |",
		"(VmRSS 50.0 MiB before → VmHWM 61.0 MiB after) | 11.0 MiB | — | | < 20 MiB | met |",
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("no %q in:\n%s", want, tab)
		}
	}
	cols := 0
	for _, l := range strings.Split(tab, "\n") {
		if !strings.HasPrefix(l, "|") {
			continue
		}
		if n := strings.Count(l, "|"); cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("row with %d bars in a table of %d:\n%s", n, cols, l)
		}
	}
	if !strings.Contains(b.report([]string{"machine", "versions"}, time.Minute), tab) {
		t.Error("the report does not carry the backends table")
	}
	// Growth 40, 30, 11 MiB: the median, 30, misses the goal.
	b.rounds[0].Backends.FwdHWMAfter = 90 << 10
	if tab := b.backendTable(); !strings.Contains(tab, "| 30.0 MiB | — | | < 20 MiB | **missed** |") {
		t.Errorf("growth 40, 30, 11 MiB: want median 30 missed in:\n%s", tab)
	}
	if (&bench{}).backendTable() != "" {
		t.Error("a run without the backends phase has a backends table")
	}
}

func TestParseRelayStats(t *testing.T) {
	t.Parallel()
	out := `{"stats":[
 {"attributes":{"id":"a","metadata":{"name":"inpod"},"labels":{"io.kubernetes.pod.namespace":"apim-gateway"}},
  "cpu":{"usageCoreNanoSeconds":{"value":"999"}},"memory":{"workingSetBytes":{"value":"1"}}},
 {"attributes":{"id":"b","metadata":{"name":"relay"},"labels":{"io.kubernetes.pod.namespace":"apim-gateway"}},
  "cpu":{"timestamp":"1","usageCoreNanoSeconds":{"value":"123456789"}},"memory":{"workingSetBytes":{"value":"8388608"}}}]}`
	s, err := parseRelayStats([]byte(out))
	if err != nil || s.CPUNanos != 123456789 || s.WorkingSet != 8<<20 {
		t.Errorf("parseRelayStats = %+v, %v", s, err)
	}
	if _, err := parseRelayStats([]byte(`{"stats":[]}`)); err == nil {
		t.Error("no relay container: no error")
	}
}

// The config service's APIs: the two backends, no subscription.
func TestBenchAPIs(t *testing.T) {
	t.Parallel()
	want := `[{"backendUrl":"http://laptop:8081","name":"laptop","path":"/laptop","subscriptionRequired":false},` +
		`{"backendUrl":"http://inpod:8080","name":"inpod","path":"/inpod","subscriptionRequired":false}]`
	if got := benchAPIs(); got != want {
		t.Errorf("benchAPIs = %s", got)
	}
}
