package forward

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock moves only when told; After's channels fire when it passes
// their time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// pending is how many After channels wait.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// Advance moves the clock and fires what is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// pendingWithin is how many After channels fire within d from now.
func (c *fakeClock) pendingWithin(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, w := range c.waiters {
		if !w.at.After(c.now.Add(d)) {
			n++
		}
	}
	return n
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// sleepRig is a Sleep on a fake clock with a fake cluster: Pause and Wake
// count their calls and flip the cluster's state, as the real ones do
// through the pause record.
type sleepRig struct {
	clock         *fakeClock
	s             *Sleep
	pauses, wakes atomic.Int32
	paused, held  atomic.Bool
	wakeGate      chan struct{} // Wake blocks until it is closed
	cancel        context.CancelFunc
	done          chan struct{}
}

func newSleepRig(t *testing.T, idle time.Duration) *sleepRig {
	r := &sleepRig{clock: newFakeClock(), wakeGate: make(chan struct{}), done: make(chan struct{})}
	close(r.wakeGate)
	r.s = &Sleep{Idle: idle, Poll: time.Minute, Clock: r.clock,
		Pause: func(context.Context) error { r.pauses.Add(1); r.paused.Store(true); return nil },
		Wake: func(context.Context) error {
			<-r.wakeGate
			r.wakes.Add(1)
			r.paused.Store(false)
			r.held.Store(false)
			return nil
		},
		State: func() (bool, bool) { return r.paused.Load(), r.held.Load() },
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.s.Run(ctx); close(r.done) }()
	t.Cleanup(r.stop)
	return r
}

func (r *sleepRig) stop() {
	r.cancel()
	<-r.done
}

// tick advances the clock by d once Run waits on it.
func (r *sleepRig) tick(t *testing.T, d time.Duration) {
	t.Helper()
	eventually(t, "the idle loop to wait on the clock", func() bool { return r.clock.pending() > 0 })
	r.clock.Advance(d)
}

// settle waits until Run has taken the last tick and waits again.
func (r *sleepRig) settle(t *testing.T) {
	t.Helper()
	eventually(t, "the idle loop to wait again", func() bool { return r.clock.pending() > 0 })
}

func TestSleepPausesAfterTheIdleTime(t *testing.T) {
	r := newSleepRig(t, 15*time.Minute)
	for range 14 {
		r.tick(t, time.Minute)
	}
	r.settle(t)
	if n := r.pauses.Load(); n != 0 {
		t.Fatalf("paused %d time(s) after 14 of 15 idle minutes", n)
	}
	r.tick(t, time.Minute)
	eventually(t, "the pause", func() bool { return r.pauses.Load() == 1 })
	r.settle(t)
	if !r.s.Paused() {
		t.Fatal("the forward does not know the cluster is paused")
	}
	for range 30 {
		r.tick(t, time.Minute)
	}
	r.settle(t)
	if n := r.pauses.Load(); n != 1 {
		t.Fatalf("paused %d times; a paused cluster is not paused again", n)
	}
}

func TestSleepAConnectionResetsTheIdleTime(t *testing.T) {
	r := newSleepRig(t, 15*time.Minute)
	for range 10 {
		r.tick(t, time.Minute)
	}
	if err := r.s.Enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A connection that lasts keeps the cluster awake however long it is.
	for range 20 {
		r.tick(t, time.Minute)
	}
	r.s.Leave()
	for range 14 {
		r.tick(t, time.Minute)
	}
	r.settle(t)
	if n := r.pauses.Load(); n != 0 {
		t.Fatalf("paused %d time(s) within 15 minutes of the last connection", n)
	}
	r.tick(t, time.Minute)
	eventually(t, "the pause", func() bool { return r.pauses.Load() == 1 })
}

func TestSleepConnectionsWhilePausedShareOneWake(t *testing.T) {
	r := newSleepRig(t, time.Minute)
	r.tick(t, time.Minute)
	eventually(t, "the pause", func() bool { return r.pauses.Load() == 1 && r.s.Paused() })
	r.wakeGate = make(chan struct{})
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { errs <- r.s.Enter(context.Background()) })
	}
	eventually(t, "every connection to wait for the wake", func() bool {
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		return r.s.waiters == n
	})
	if r.wakes.Load() != 0 {
		t.Fatal("the wake ended before it was let through")
	}
	close(r.wakeGate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a connection failed instead of waiting: %v", err)
		}
	}
	if w := r.wakes.Load(); w != 1 {
		t.Fatalf("%d wakes for %d connections; want one", w, n)
	}
	for range n {
		r.s.Leave()
	}
	if r.s.Paused() {
		t.Fatal("still paused after the wake")
	}
}

// heldPauseWithAConnection is a rig paused by `apimdev pause` (no
// auto-pause) that the forward has seen, and a connection entering it; its
// Enter's result comes on the channel.
func heldPauseWithAConnection(t *testing.T) (*sleepRig, chan error) {
	t.Helper()
	r := newSleepRig(t, 0)
	r.paused.Store(true)
	r.held.Store(true)
	r.tick(t, time.Minute)
	eventually(t, "the forward to see the pause", r.s.Paused)
	entered := make(chan error, 1)
	go func() { entered <- r.s.Enter(context.Background()) }()
	return r, entered
}

func TestSleepHeldByTheCommandWaitsForResume(t *testing.T) {
	r, entered := heldPauseWithAConnection(t)
	eventually(t, "the connection to wait", func() bool {
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		return r.s.waiters == 1
	})
	select {
	case err := <-entered:
		t.Fatalf("a connection went through a held pause (%v)", err)
	default:
	}
	r.paused.Store(false) // `apimdev resume`
	r.held.Store(false)
	r.tick(t, time.Minute)
	if err := <-entered; err != nil {
		t.Fatal(err)
	}
	r.s.Leave()
	if w, p := r.wakes.Load(), r.pauses.Load(); w != 0 || p != 0 {
		t.Fatalf("%d wakes, %d pauses: a held pause is the command's to end", w, p)
	}
}

// `apimdev resume`'s own calls come through the forward: a connection
// waiting for a held pause makes the forward read the record at once and
// then every WaitPoll, not once a Poll (a minute here).
func TestSleepAWaitingConnectionSeesTheResumeWithinWaitPoll(t *testing.T) {
	r, entered := heldPauseWithAConnection(t)
	// The connection's arrival alone has the loop wait WaitPoll, not Poll.
	eventually(t, "the loop to poll quickly for the waiting connection", func() bool { return r.clock.pendingWithin(20*time.Millisecond) > 0 })
	r.paused.Store(false) // `apimdev resume`
	r.held.Store(false)
	r.clock.Advance(20 * time.Millisecond)
	select {
	case err := <-entered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection did not go through 20 ms (fake) after the resume")
	}
	r.s.Leave()
}

func TestSleepAFailedWakeFailsTheConnection(t *testing.T) {
	r := newSleepRig(t, time.Minute)
	r.s.Wake = func(context.Context) error { return errors.New("engine gone") }
	r.tick(t, time.Minute)
	eventually(t, "the pause", r.s.Paused)
	if err := r.s.Enter(context.Background()); err == nil || err.Error() != "engine gone" {
		t.Fatalf("Enter = %v; want the wake's error", err)
	}
	// A connection that gives up while held leaves no waiter behind.
	r.held.Store(true)
	r.tick(t, time.Minute)
	eventually(t, "the forward to see the held pause", func() bool {
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		return r.s.held
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.s.Enter(ctx) }()
	eventually(t, "the connection to wait", func() bool {
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		return r.s.waiters == 1
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Enter = %v; want canceled", err)
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.waiters != 0 || r.s.active != 0 {
		t.Fatalf("waiters %d, active %d after the connection gave up", r.s.waiters, r.s.active)
	}
}
