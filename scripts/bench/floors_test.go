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
			floorClocks: floorClocks{Direct: direct, GwReady: direct - s/2, ProxyBack: 7 * s, DNSBack: 8 * s,
				UpSteps: []stage{{"cluster", up - 2*s}, {"smoke", s / 10}}}}
	}
	b := &bench{o: options{compare: "/old", compareLabel: "old"}, rounds: []*round{
		{Restart: rr(10*s, 11*s), CmpRestart: rr(10*s, 20*s), Down: 4 * s, CmpDown: 5 * s, KindDelete: 4 * s},
		{Restart: rr(12*s, 13*s), CmpRestart: rr(12*s, 21*s), Down: 4 * s, CmpDown: 5 * s, KindDelete: 4 * s},
		{Restart: &restartRun{Err: "up: failed"}, Down: 4 * s, KindDelete: 4 * s},
	}}
	out := b.floorTable()
	for _, want := range []string{
		"| … **the floor**: a call straight to the node's port answers | 11.0 s | 1.00× (+0.0 s) | 11.0 s | 1.00× (+0.0 s) |",
		"| … `up` (started when the engine answers) green | 12.0 s | 1.09× (+1.0 s) | 20.5 s | 1.86× (+9.5 s) | ≤ 1.2× floor | met |",
		"| … `up`'s cluster step after the restart | 10.0 s | | 18.5 s | | | |",
		"| `apimdev down` against `kind delete cluster` (4.0 s) | 4.0 s | 1.00× | 5.0 s | 1.25× | ≤ 2 s or ≤ 1.1× floor | met |",
		"| measure | this build (3) | vs floor | [old] (2) | vs floor | target | |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("floor table lacks %q:\n%s", want, out)
		}
	}
	if (&bench{}).floorTable() != "" {
		t.Error("a run without a restart or a kind delete has no floor table")
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
