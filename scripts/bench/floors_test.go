//go:build !windows

package main

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLoopbackAddr(t *testing.T) {
	t.Parallel()
	got, err := loopbackAddr("0.0.0.0:1234\n127.0.0.1:41234\n[::1]:41234\n")
	if err != nil || got != "127.0.0.1:41234" {
		t.Errorf("loopbackAddr = %q, %v", got, err)
	}
	if _, err := loopbackAddr("0.0.0.0:1234\n"); err == nil {
		t.Error("a binding on every address is not the direct path's loopback port")
	}
}

func testPod(name string, started time.Time, ready bool) corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}},
			ContainerStatuses: []corev1.ContainerStatus{{
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}},
			}},
		},
	}
}

func TestPodsBack(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	before, after := since.Add(-time.Hour), since.Add(5*time.Second)
	other := testPod("kube-proxy-x", before, true)
	for _, c := range []struct {
		name string
		pods []corev1.Pod
		want bool
	}{
		{"none", []corev1.Pod{other}, false},
		{"stale: Ready with the containers from before the restart", []corev1.Pod{testPod("contoso-gw-1", before, true), other}, false},
		{"started again, not Ready yet", []corev1.Pod{testPod("contoso-gw-1", after, false)}, false},
		{"back", []corev1.Pod{testPod("contoso-gw-1", after, true), other}, true},
		{"one of two still stale", []corev1.Pod{testPod("contoso-gw-1", after, true), testPod("contoso-gw-2", before, true)}, false},
		{"a container not running", []corev1.Pod{func() corev1.Pod {
			p := testPod("contoso-gw-1", after, true)
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}
			return p
		}()}, false},
	} {
		if got := podsBack(c.pods, "contoso-gw-", since); got != c.want {
			t.Errorf("%s: podsBack = %v, want %v", c.name, got, c.want)
		}
	}
	// A terminating pod of the old generation does not hold the clock.
	gone := testPod("contoso-gw-0", before, true)
	gone.DeletionTimestamp = &metav1.Time{Time: after}
	if !podsBack([]corev1.Pod{gone, testPod("contoso-gw-1", after, true)}, "contoso-gw-", since) {
		t.Error("a terminating pod counted")
	}
}

func TestFloorTable(t *testing.T) {
	t.Parallel()
	s := time.Second
	rr := func(direct, up time.Duration) *restartRun {
		return &restartRun{API: 5 * s, Forward: direct + s, Up: up,
			floorClocks: floorClocks{Direct: direct, GwReady: direct - s/2, ProxyBack: 7 * s, DNSBack: 8 * s, UpFirstStep: 2 * s,
				UpSteps: []stage{{"cluster", up - 2*s}, {"forward", 0}}}}
	}
	b := &bench{o: options{compare: "/old", compareLabel: "old"}, rounds: []*round{
		{Restart: rr(10*s, 11*s), CmpRestart: rr(10*s, 20*s), Down: 4 * s, CmpDown: 5 * s, KindDelete: 4 * s},
		{Restart: rr(20*s, 21*s), CmpRestart: rr(20*s, 21*s), Down: 6 * s, CmpDown: 5 * s, KindDelete: 5 * s},
		{Restart: rr(12*s, 13*s), CmpRestart: &restartRun{Err: "up: smoke failed"}, Down: 4 * s, CmpDown: 5 * s, KindDelete: 4 * s},
	}}
	out := b.floorTable()
	for _, want := range []string{
		"| measure | this build | vs floor | [old] | vs floor | target | |",
		"| … `up` after the restart: rounds that failed (not in the figures) | 0 of 3 |  | 1 of 3 |  |  |  |",
		// this build: medians of 1.10, 1.05, 1.08 and of +1 s each round; old: 2.0 and 1.05 → 1.525
		"| … `up` (started when the engine answers) green | 13.0 s | 1.08× (+1.0 s) | 20.5 s | 1.52× (+5.5 s) | ≤ 1.2× floor | met |",
		"| … **the floor**: a call straight to the node's port answers | 12.0 s |  | 15.0 s |  |  |  |",
		"| … `up`'s forward step after the restart | 0.0 s |  | 0.0 s |  |  |  |",
		"| … `up`'s first step starts (process start, session) | 2.0 s |  | 2.0 s |  |  |  |",
		// down per round: 4/4, 6/5, 4/4 → 1.00×; old 5/4, 5/5, 5/4 → 1.25×
		"| `apimdev down` against `kind delete cluster` (4.0 s) | 4.0 s | 1.00× | 5.0 s | 1.25× | ≤ 2 s or ≤ 1.1× floor | met |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("floor table lacks %q:\n%s", want, out)
		}
	}
	// A failed restart in this build's arm misses the target whatever the ratio.
	b.rounds[0].Restart.Err = "up: smoke failed"
	if out := b.floorTable(); !strings.Contains(out, "≤ 1.2× floor | **missed** |") {
		t.Errorf("a failed up after the restart still met the target:\n%s", out)
	}
	if (&bench{}).floorTable() != "" {
		t.Error("a run without a restart or a kind delete has no floor table")
	}
}

func TestFirstEvent(t *testing.T) {
	t.Parallel()
	out := "not json\n{\"step\":\"preflight\",\"state\":\"start\",\"time\":\"2026-12-06T20:05:15.5Z\",\"elapsed\":0}\n{\"time\":\"2026-12-06T20:06:00Z\"}\n"
	if got := firstEvent(out); !got.Equal(time.Date(2026, 12, 6, 20, 5, 15, 500_000_000, time.UTC)) {
		t.Errorf("firstEvent = %v", got)
	}
}

func TestLastStart(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	got := lastStart([]corev1.Pod{testPod("contoso-gw-1", t0.Add(3*time.Second), true), testPod("contoso-gw-2", t0.Add(7*time.Second), false),
		testPod("coredns-1", t0.Add(9*time.Second), true)}, "contoso-gw-")
	if !got.Equal(t0.Add(7 * time.Second)) {
		t.Errorf("lastStart = %v", got)
	}
}

// With -skip-restart the table has down's row alone.
func TestFloorTableWithoutARestart(t *testing.T) {
	t.Parallel()
	b := &bench{rounds: []*round{{Down: 4 * time.Second, KindDelete: 4 * time.Second}}}
	out := b.floorTable()
	if !strings.Contains(out, "| `apimdev down` against `kind delete cluster` (4.0 s) | 4.0 s | 1.00× |") || strings.Contains(out, "| engine restart: API server") {
		t.Errorf("floor table without a restart:\n%s", out)
	}
}
