package forward

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// startDirect is startForwarder with a direct path to node (an httptest
// server standing in for the node's published port) whose probe fails
// while probeFails is set, and counts its calls in probes.
func startDirect(t *testing.T, be Backends, d Dialer, node string, probeFails *atomic.Bool, probes *atomic.Int64) (*Forwarder, string, func()) {
	t.Helper()
	f := &Forwarder{Host: "127.0.0.1", Mappings: []Mapping{{LocalPort: 0, ServicePort: 80}}, Backends: be, Dialer: d, WaitReady: 3 * time.Second,
		Direct: &Direct{Addr: map[int]string{80: node}, Settle: 150 * time.Millisecond, Retry: 50 * time.Millisecond, Recheck: time.Hour,
			Probe: func(context.Context) error {
				probes.Add(1)
				if probeFails.Load() {
					return errors.New("connection reset")
				}
				return nil
			}}}
	url, stop := serve(t, f)
	return f, url, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDirectPathWhenKnownGood(t *testing.T) {
	t.Parallel()
	pod, node := podServer(t, "via-tunnel"), podServer(t, "via-node")
	d := &fakeDialer{pods: map[string]string{"pod-a": pod.Listener.Addr().String(), "pod-b": pod.Listener.Addr().String()}, broken: map[string]bool{}, dials: map[string]int{}}
	be := newFakeBackends(Backend{"pod-a", 8080})
	var probeFails atomic.Bool
	var probes atomic.Int64
	f, url, _ := startDirect(t, be, d, node.Listener.Addr().String(), &probeFails, &probes)

	waitFor(t, "the direct path up", f.DirectUp)
	for range 3 {
		if got := get(t, url); got != "via-node" {
			t.Fatalf("with the direct path up, a connection went %s", got)
		}
	}
	if n := f.Stats.Direct.Load(); n != 3 {
		t.Fatalf("Stats.Direct = %d, want 3", n)
	}

	// The ready pods change (a rollout): until they have been quiet for
	// Settle and a probe answered, connections take the tunnel.
	be.set(Backend{"pod-a", 8080}, Backend{"pod-b", 8080})
	waitFor(t, "the direct path paused", func() bool { return !f.DirectUp() })
	if got := get(t, url); got != "via-tunnel" {
		t.Fatalf("during a change, a connection went %s", got)
	}
	waitFor(t, "the direct path back", f.DirectUp)
	if got := get(t, url); got != "via-node" {
		t.Fatalf("after the change settled, a connection went %s", got)
	}

	// A probe that fails after a change keeps it on the tunnel. The path
	// is up, so its next probe is the recheck's (an hour): every probe from
	// here is one after the change. The path is probed one at a time, so a
	// second probe means the first one's failure has been acted on.
	probeFails.Store(true)
	before := probes.Load()
	be.set(Backend{"pod-b", 8080})
	waitFor(t, "the direct path paused", func() bool { return !f.DirectUp() })
	waitFor(t, "two probes after the change settled", func() bool { return probes.Load() >= before+2 })
	if f.DirectUp() {
		t.Fatal("the direct path came up although its probe fails")
	}
	if got := get(t, url); got != "via-tunnel" {
		t.Fatalf("with a failing probe, a connection went %s", got)
	}
	probeFails.Store(false)
	waitFor(t, "the direct path back after the probe answers", f.DirectUp)

	// No ready pod: the path is not used, whatever the probe says. After
	// the change settles the path is looked at every Retry, each look
	// reading the ready pods: a second look means the first one's outcome
	// has been acted on.
	before = probes.Load()
	looks := be.readyCalls.Load()
	be.set()
	waitFor(t, "two looks at the ready pods after the change settled", func() bool { return be.readyCalls.Load() >= looks+2 })
	if f.DirectUp() {
		t.Fatal("the direct path is up with no ready pod")
	}
	if n := probes.Load() - before; n != 0 {
		t.Fatalf("the path was probed %d time(s) with no ready pod", n)
	}
	if f.Stats.Failed.Load() != 0 {
		t.Fatalf("failed connections: %d", f.Stats.Failed.Load())
	}
}

func TestDirectPathDialFailureFallsBack(t *testing.T) {
	t.Parallel()
	pod, node := podServer(t, "via-tunnel"), podServer(t, "via-node")
	d := &fakeDialer{pods: map[string]string{"pod-a": pod.Listener.Addr().String()}, broken: map[string]bool{}, dials: map[string]int{}}
	be := newFakeBackends(Backend{"pod-a", 8080})
	var probeFails atomic.Bool
	f, url, stop := startDirect(t, be, d, node.Listener.Addr().String(), &probeFails, new(atomic.Int64))
	waitFor(t, "the direct path up", f.DirectUp)
	// The node's port goes away (the engine restarts): the dial fails, the
	// connection takes the tunnel, and the path stays down while probes fail.
	probeFails.Store(true)
	node.Close()
	if got := get(t, url); got != "via-tunnel" {
		t.Fatalf("with the node's port gone, a connection went %s", got)
	}
	if f.DirectUp() {
		t.Fatal("the direct path stayed up after a failed dial")
	}
	if f.Stats.Failed.Load() != 0 {
		t.Fatalf("failed connections: %d", f.Stats.Failed.Load())
	}
	// The failed dial asked for a probe on the retry schedule (50 ms here),
	// not the recheck's (an hour): once probes answer, the path is back.
	probeFails.Store(false)
	waitFor(t, "the direct path back after a failed dial", f.DirectUp)
	stop()
	if f.DirectUp() {
		t.Fatal("the direct path is up after Serve returned")
	}
}

func TestWaitingConnectionTakesTheDirectPathWhenItComesUp(t *testing.T) {
	t.Parallel()
	pod, node := podServer(t, "via-tunnel"), podServer(t, "via-node")
	// The pod's tunnel is broken (its node restarting) and the direct path's
	// probe fails: a new connection waits.
	d := &fakeDialer{pods: map[string]string{"pod-a": pod.Listener.Addr().String()}, broken: map[string]bool{"pod-a": true}, dials: map[string]int{}}
	be := newFakeBackends(Backend{"pod-a", 8080})
	var probeFails atomic.Bool
	probeFails.Store(true)
	f, url, _ := startDirect(t, be, d, node.Listener.Addr().String(), &probeFails, new(atomic.Int64))
	got := make(chan string, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		r, err := c.Get(url)
		if err != nil {
			got <- err.Error()
			return
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}()
	// The connection is waiting once it has found the pod's tunnel broken
	// twice (it looks again every 200 ms).
	waitFor(t, "the connection to retry the broken tunnel", func() bool { return f.Stats.Retried.Load() >= 2 })
	probeFails.Store(false) // the node's port answers again
	select {
	case g := <-got:
		if g != "via-node" {
			t.Fatalf("the waiting connection went %s", g)
		}
	case <-time.After(2500 * time.Millisecond): // before WaitReady (3 s) would fail it
		t.Fatal("the waiting connection did not take the direct path once it was up")
	}
	if f.Stats.Failed.Load() != 0 {
		t.Fatalf("failed connections: %d", f.Stats.Failed.Load())
	}
}
