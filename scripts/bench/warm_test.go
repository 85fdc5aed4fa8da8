//go:build !windows

package main

import (
	"strings"
	"testing"
	"time"
)

func TestWarmTableSetsStepsBesideTheCompareBuildAndRSSAboveTheFloor(t *testing.T) {
	ms := time.Millisecond
	b := &bench{o: options{compare: "/old", compareLabel: "before"}}
	b.rounds = []*round{{N: 1,
		Up: upRun{Warm: []time.Duration{200 * ms, 220 * ms, 210 * ms}, WarmRSSKB: 51 << 10,
			WarmSteps: []stage{{"preflight", 30 * ms}, {"image", 5 * ms}, {"preflight", 40 * ms}, {"image", 7 * ms}}},
		Cmp:         upRun{Warm: []time.Duration{400 * ms}, WarmSteps: []stage{{"preflight", 60 * ms}, {"image", 100 * ms}}},
		StatusRSSKB: 49 << 10}}
	rssFloorKB = map[int]int64{1: 39 << 10}
	defer func() { rssFloorKB = map[int]int64{} }()
	got := b.warmTable()
	for _, want := range []string{
		"| step | this build | [before] |",
		"| preflight | 35 ms | 60 ms |",
		"| image | 6 ms | 100 ms |",
		"| whole command | 210 ms | 400 ms |",
		"`apimdev version` (39 MiB",
		"| `up` warm | 51 MiB | 12 MiB |",
		"| `status` | 49 MiB | 10 MiB |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "promote") {
		t.Errorf("a run without promote has no promote row:\n%s", got)
	}
	if (&bench{}).warmTable() != "" {
		t.Error("no warm runs: no table")
	}
}
