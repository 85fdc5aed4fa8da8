package forward

import (
	"context"
	"sync"
	"time"
)

// Clock is the time Sleep reads; tests give a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Sleep is the forward's side of a paused cluster. Paused by a command, the
// forward holds new connections until the cluster is resumed; paused by
// itself (auto-pause, after Idle with no connection through it), the next
// connection resumes the cluster first and is then served, and every
// connection that comes while that wake is under way waits for the same
// one.
type Sleep struct {
	// Idle is how long the forward goes without a connection before it
	// pauses the cluster; 0 never does. IdleNow, if set, is read with State
	// and changes it (a setting that reaches a forward that runs).
	Idle    time.Duration
	IdleNow func() time.Duration
	// Poll is how often State is read; 0 means 1 s. WaitPoll is how often
	// while a connection waits for a held pause to end (the resume's own
	// calls come through the forward: each Poll of delay is theirs); 0
	// means 20 ms.
	Poll, WaitPoll time.Duration
	// Clock is nil for the real one.
	Clock Clock
	// Pause pauses the cluster (and records it as auto-paused); Wake
	// resumes it and returns once the gateway answers again.
	Pause func(ctx context.Context) error
	Wake  func(ctx context.Context) error
	// State says whether the cluster is paused now and whether by a
	// command (held: connections wait for its resume); nil is never.
	State func() (paused, held bool)
	Log   func(format string, args ...any)

	mu      sync.Mutex
	active  int
	last    time.Time
	paused  bool
	held    bool
	busy    chan struct{} // a pause or a wake under way: closed when it ends
	changed chan struct{} // closed and replaced when paused or held change
	kick    chan struct{} // a connection began to wait: read State now
	waiters int           // connections waiting in Enter
	wakes   int           // wakes done, for tests
}

func (s *Sleep) clock() Clock {
	if s.Clock == nil {
		return realClock{}
	}
	return s.Clock
}

func (s *Sleep) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log(format, args...)
	}
}

// init readies the zero fields; the caller holds the lock.
func (s *Sleep) init() {
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	if s.kick == nil {
		s.kick = make(chan struct{}, 1)
	}
	if s.last.IsZero() {
		s.last = s.clock().Now()
	}
}

// set changes the state and wakes whoever waits on it; the caller holds the
// lock.
func (s *Sleep) set(paused, held bool) {
	if s.paused == paused && s.held == held {
		return
	}
	s.paused, s.held = paused, held
	close(s.changed)
	s.changed = make(chan struct{})
}

// Paused says whether the cluster is paused as the forward knows it (its
// probes are not made meanwhile).
func (s *Sleep) Paused() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused || s.busy != nil
}

// Enter is called when a connection comes, before it is forwarded: it
// returns at once while the cluster runs, waits while a command holds it
// paused, and wakes an auto-paused cluster (one wake for every connection
// that waits meanwhile). Each Enter that returns nil needs a Leave.
func (s *Sleep) Enter(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	counted := false
	defer func() {
		if counted {
			s.waiters--
		}
		s.mu.Unlock()
	}()
	for {
		if s.busy == nil && !s.paused {
			s.active++
			return nil
		}
		if !counted {
			s.waiters++
			counted = true
		}
		var wait <-chan struct{}
		switch {
		case s.busy != nil:
			wait = s.busy
		case s.held:
			wait = s.changed
			select { // Run reads State now, and often while anyone waits
			case s.kick <- struct{}{}:
			default:
			}
		default:
			// Auto-paused: this connection wakes the cluster.
			busy := make(chan struct{})
			s.busy = busy
			s.mu.Unlock()
			s.logf("a connection came: resuming the auto-paused cluster")
			start := time.Now()
			err := s.Wake(context.WithoutCancel(ctx))
			s.mu.Lock()
			s.busy = nil
			close(busy)
			if err != nil {
				s.logf("resuming the cluster: %v", err)
				return err
			}
			s.wakes++
			s.last = s.clock().Now()
			s.set(false, false)
			s.logf("resumed the cluster in %s", time.Since(start).Round(time.Millisecond))
			continue
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			s.mu.Lock()
			return ctx.Err()
		case <-wait:
		}
		s.mu.Lock()
	}
}

// Leave is called when a connection Enter let through has ended.
func (s *Sleep) Leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	s.last = s.clock().Now()
}

// Run follows the cluster's state (State, every Poll; at once when a
// connection begins to wait for a held pause, then every WaitPoll while
// any waits) and pauses it after Idle without a connection, until ctx is
// done.
func (s *Sleep) Run(ctx context.Context) {
	poll, waitPoll := s.Poll, s.WaitPoll
	if poll <= 0 {
		poll = time.Second
	}
	if waitPoll <= 0 {
		waitPoll = 20 * time.Millisecond
	}
	s.mu.Lock()
	s.init()
	kick := s.kick
	s.mu.Unlock()
	for {
		wait := poll
		s.mu.Lock()
		if s.held && s.waiters > 0 {
			wait = min(wait, waitPoll)
		}
		if s.Idle > 0 && !s.paused && s.busy == nil && s.active == 0 {
			if left := s.Idle - s.clock().Now().Sub(s.last); left < wait {
				wait = left
			}
		}
		s.mu.Unlock()
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			case <-s.clock().After(wait):
			}
		}
		s.follow()
		s.pauseIfIdle(ctx)
	}
}

// follow reads State, unless a pause or a wake of the forward's own is
// under way.
func (s *Sleep) follow() {
	var paused, held bool
	if s.State != nil {
		paused, held = s.State()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.IdleNow != nil {
		s.Idle = s.IdleNow()
	}
	if s.busy != nil {
		return
	}
	if !paused && s.paused {
		s.last = s.clock().Now() // resumed: the idle time starts again
	}
	s.set(paused, paused && held)
}

func (s *Sleep) pauseIfIdle(ctx context.Context) {
	s.mu.Lock()
	if s.Idle <= 0 || s.paused || s.busy != nil || s.active > 0 || s.clock().Now().Sub(s.last) < s.Idle {
		s.mu.Unlock()
		return
	}
	busy := make(chan struct{})
	s.busy = busy
	idle := s.Idle
	s.mu.Unlock()
	s.logf("no connection for %s: pausing the cluster", idle)
	err := s.Pause(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy = nil
	close(busy)
	if err != nil {
		s.logf("pausing the cluster: %v", err)
		s.last = s.clock().Now() // try again after another idle time
		return
	}
	s.set(true, false)
}
