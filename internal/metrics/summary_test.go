package metrics

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readSummary(t *testing.T) Summary {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSummary(data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A kubelet's summary (stats/v1alpha1 field names): the node's figures, and
// each pod's own CPU and memory, or its containers' sums when the pod has
// none; the cumulative usage gives a rate when the kubelet's is missing.
func TestUsages(t *testing.T) {
	t.Parallel()
	s := readSummary(t)
	if s.Node.NodeName != "apimdev-control-plane" || s.Node.CPU == nil || *s.Node.CPU.UsageNanoCores != 310000000 || *s.Node.Memory.WorkingSetBytes != 1610612736 {
		t.Fatalf("node: %+v", s.Node)
	}
	us := Usages(s, func(ns, _ string) bool { return ns == "apim" })
	if len(us) != 4 {
		t.Fatalf("want the 4 pods in apim, got %+v", us)
	}
	gw, fresh, statsd, echo := us[0], us[1], us[2], us[3]
	if gw.Pod != "contoso-gw-7d9c6b5f4-2dvl5" || statsd.Pod != "contoso-gw-statsd-6f7b8c9d-x2x7q" || echo.Pod != "echo-5c8d7f6b9-abcde" {
		t.Fatalf("pods: %+v", us)
	}
	// The pod's own figures, not its container's.
	if mc, ok := Millicores(nil, gw); !ok || mc != 12.5 {
		t.Errorf("gateway CPU %v %v, want 12.5 millicores", mc, ok)
	}
	if mib, ok := MiB(gw.WorkingSetBytes); !ok || mib != 213 {
		t.Errorf("gateway memory %v %v, want 213 MiB", mib, ok)
	}
	if want := time.Date(2026, 12, 1, 9, 0, 3, 0, time.UTC); !gw.Time.Equal(want) {
		t.Errorf("reading time %v, want %v", gw.Time, want)
	}
	// Just started, not measured yet: a working set of 0 is no figure (a
	// reading of 0 would pull the memory's slope).
	if fresh.Pod != "contoso-gw-7d9c6b5f4-zz9k1" || fresh.WorkingSetBytes != nil {
		t.Errorf("a pod not measured yet: %+v", fresh)
	}
	// No pod-level figures: the containers'.
	if mc, ok := Millicores(nil, echo); !ok || mc != 1 {
		t.Errorf("echo CPU %v %v, want 1 millicore from its container", mc, ok)
	}
	if mib, ok := MiB(echo.WorkingSetBytes); !ok || mib != 8 {
		t.Errorf("echo memory %v %v, want 8 MiB from its container", mib, ok)
	}
	// No usageNanoCores: no rate from one reading, a rate from two.
	if _, ok := Millicores(nil, statsd); ok {
		t.Error("a CPU rate from one cumulative reading")
	}
	later := statsd
	later.CPUTime = statsd.CPUTime.Add(10 * time.Second)
	v := *statsd.CoreNanoSeconds + 150_000_000 // 0.15 s of CPU in 10 s
	later.CoreNanoSeconds = &v
	if mc, ok := Millicores(&statsd, later); !ok || math.Abs(mc-15) > 1e-9 {
		t.Errorf("statsd CPU %v %v, want 15 millicores", mc, ok)
	}
	if _, ok := Millicores(&later, statsd); ok {
		t.Error("a rate from a counter that went down (the container restarted)")
	}
	if all := Usages(s, nil); len(all) != 5 {
		t.Errorf("nil keeps every pod: %d", len(all))
	}
	if _, err := ParseSummary([]byte("<html>")); err == nil {
		t.Error("no error for a body that is not JSON")
	}
}

func at(min float64) time.Time {
	return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(min * float64(time.Minute)))
}

// line is n readings every 10 s from v0 rising by perMin, plus noise(i).
func line(n int, v0, perMin float64, noise func(i int) float64) []Point {
	ps := make([]Point, n)
	for i := range ps {
		m := float64(i) / 6
		ps[i] = Point{T: at(m), V: v0 + perMin*m + noise(i)}
	}
	return ps
}

func none(int) float64 { return 0 }

func TestSlopePerMinute(t *testing.T) {
	t.Parallel()
	if s, ok := SlopePerMinute(line(31, 200, 2, none)); !ok || math.Abs(s-2) > 1e-9 {
		t.Errorf("a straight line of 2 MiB/min: %v %v", s, ok)
	}
	if s, ok := SlopePerMinute(line(31, 200, 0, none)); !ok || s != 0 {
		t.Errorf("a flat line: %v %v", s, ok)
	}
	// GC-like noise of ±4 MiB, alternating: the fit still finds the trend.
	zigzag := func(i int) float64 { return float64(4 * (1 - 2*(i%2))) }
	if s, ok := SlopePerMinute(line(31, 200, 2, zigzag)); !ok || math.Abs(s-2) > 0.2 {
		t.Errorf("noisy 2 MiB/min: %v %v", s, ok)
	}
	if _, ok := SlopePerMinute(line(2, 200, 2, none)); ok {
		t.Error("a slope from two readings")
	}
	same := []Point{{at(0), 1}, {at(0), 2}, {at(0), 3}}
	if _, ok := SlopePerMinute(same); ok {
		t.Error("a slope from readings at one time")
	}
}

// The warning rule: memory growing over the whole window while the load
// did not rise warns; under rising load, or as one step, or over part of
// the window, it does not.
func TestGrowthOf(t *testing.T) {
	t.Parallel()
	const span = 5 * time.Minute
	grow := line(31, 200, 3, func(i int) float64 { return float64(i%3) - 1 })
	steady := line(300, 40, 0, func(i int) float64 { return float64(i % 2) })
	for i := range steady {
		steady[i].T = at(float64(i) / 60)
	}
	rising := make([]Point, len(steady))
	for i, p := range steady {
		rising[i] = Point{T: p.T, V: 10 + float64(i)/3}
	}
	falling := make([]Point, len(steady))
	for i, p := range steady {
		falling[i] = Point{T: p.T, V: 100 - float64(i)/5}
	}
	step := line(31, 200, 0, func(i int) float64 {
		if i >= 15 {
			return 40
		}
		return 0
	})
	for _, c := range []struct {
		name      string
		mem, load []Point
		warn      bool
		known     bool
	}{
		{"growth under steady load", grow, steady, true, true},
		{"growth under falling load", grow, falling, true, true},
		{"growth, load not measured", grow, nil, true, false},
		{"growth under rising load", grow, rising, false, true},
		{"flat memory", line(31, 200, 0, none), steady, false, true},
		{"one step, not growth", step, steady, false, true},
		{"half a window", grow[:16], steady, false, true},
		{"slow growth", line(31, 200, 0.5, none), steady, false, true},
	} {
		g := GrowthOf(c.mem, c.load, span, 1)
		if g.Warn() != c.warn || g.LoadKnown != c.known {
			t.Errorf("%s: %+v, want warn %v, load known %v", c.name, g, c.warn, c.known)
		}
	}
	if g := GrowthOf(grow[:2], steady, span, 1); g.Growing || g.Slope != 0 {
		t.Errorf("too few readings: %+v", g)
	}
}
