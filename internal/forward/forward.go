package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apimdev/apimdev/internal/ports"
)

// Backend is one ready pod and the container port a Service port maps to on it.
type Backend struct {
	Pod  string
	Port int
}

// Backends tells which pods are ready for a Service port right now.
type Backends interface {
	// Ready returns the ready backends for the Service port (e.g. 80).
	Ready(servicePort int) []Backend
	// Changed is closed and replaced whenever the ready set changes.
	Changed() <-chan struct{}
}

// Stream is one forwarded TCP connection inside a pod tunnel.
type Stream interface {
	io.ReadWriter
	CloseWrite() error // we send no more
	Close() error      // tear the stream down
}

// Tunnel is a multiplexed connection to one pod.
type Tunnel interface {
	Open(port int) (Stream, error)
	Close() error
	Done() <-chan struct{}
}

// Dialer opens a tunnel to a pod.
type Dialer interface {
	Dial(ctx context.Context, pod string) (Tunnel, error)
}

// Mapping is one local port forwarded to a Service port.
type Mapping struct {
	LocalPort   int
	ServicePort int
	Flag        string // the flag that sets LocalPort, for error messages
}

// Stats counts what the forwarder did; all fields are read atomically.
type Stats struct {
	Accepted  atomic.Int64
	Failed    atomic.Int64 // connections closed without reaching any pod
	Retried   atomic.Int64 // pod attempts that failed and moved to another pod
	Redials   atomic.Int64 // tunnels opened after the first
	Active    atomic.Int64
	Direct    atomic.Int64 // connections sent by the direct path
	tunnelsUp atomic.Int64
}

// Forwarder listens locally and forwards each connection to a ready pod.
type Forwarder struct {
	Host     string // local address; always a loopback address
	Mappings []Mapping
	Backends Backends
	Dialer   Dialer
	// WaitReady is how long a new connection waits for a ready pod before it
	// is closed (a restarting gateway is back within it). 0 means 30s.
	WaitReady time.Duration
	// OpenTimeout bounds opening a stream in a tunnel; 0 means 3 s. A
	// tunnel whose far end stopped answering (the kubelet behind it
	// restarted with its engine) keeps its connection open, and the SPDY
	// library waits 30 s for a reply that never comes; the connection is
	// then dropped and the next try dials afresh or takes the direct path.
	OpenTimeout time.Duration
	Log         func(format string, args ...any)
	Stats       Stats
	// Direct, if set, is a path to the Service that skips the API server;
	// connections take it while it is up (see Direct) and the tunnels
	// otherwise.
	Direct *Direct
	// Sleep, if set, follows a paused cluster: connections wait for a
	// resume, or wake an auto-paused cluster (see Sleep).
	Sleep *Sleep

	directUp   atomic.Bool   // written by watchDirect (and open, on a failed dial)
	directKick chan struct{} // a failed dial asks watchDirect to probe again soon

	mu      sync.Mutex
	tunnels map[string]Tunnel
	next    int
	// shunned holds pods a tunnel to which just failed, until when: a pod
	// on a node that stopped answering stays "ready" in its EndpointSlice
	// for the node monitor's grace period (40 s or more), and every new
	// connection would otherwise try it first and wait on it.
	shunned map[string]time.Time
}

// shunFor is how long a pod that failed a dial or a stream is passed over
// while others are ready.
const shunFor = 10 * time.Second

// Listen binds every local port first, so a busy port fails before anything
// else happens and names its holder.
func (f *Forwarder) Listen() ([]net.Listener, error) {
	host := f.Host
	if host == "" {
		host = "127.0.0.1"
	}
	var ls []net.Listener
	for _, m := range f.Mappings {
		l, err := ports.Listen(host, m.LocalPort, m.Flag)
		if err != nil {
			for _, o := range ls {
				o.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// Serve forwards connections from listeners (as returned by Listen, in the
// order of Mappings) until ctx is done, then closes them and every tunnel.
func (f *Forwarder) Serve(ctx context.Context, ls []net.Listener) error {
	if len(ls) != len(f.Mappings) {
		return fmt.Errorf("forward: %d listeners for %d mappings", len(ls), len(f.Mappings))
	}
	var wg sync.WaitGroup
	if f.Direct != nil {
		f.directKick = make(chan struct{}, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.watchDirect(ctx)
		}()
	}
	if f.Sleep != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Sleep.Run(ctx)
		}()
	}
	for i, l := range ls {
		wg.Add(1)
		go func(l net.Listener, m Mapping) {
			defer wg.Done()
			f.acceptLoop(ctx, l, m)
		}(l, f.Mappings[i])
	}
	<-ctx.Done()
	for _, l := range ls {
		l.Close()
	}
	wg.Wait()
	f.mu.Lock()
	for pod, t := range f.tunnels {
		t.Close()
		delete(f.tunnels, pod)
	}
	f.mu.Unlock()
	return nil
}

func (f *Forwarder) logf(format string, args ...any) {
	if f.Log != nil {
		f.Log(format, args...)
	}
}

func (f *Forwarder) acceptLoop(ctx context.Context, l net.Listener, m Mapping) {
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		f.Stats.Accepted.Add(1)
		go f.handle(ctx, c, m)
	}
}

func (f *Forwarder) handle(ctx context.Context, c net.Conn, m Mapping) {
	defer c.Close()
	f.Stats.Active.Add(1)
	defer f.Stats.Active.Add(-1)
	if f.Sleep != nil {
		if err := f.Sleep.Enter(ctx); err != nil {
			f.Stats.Failed.Add(1)
			f.logf("forward %d: %v", m.LocalPort, err)
			return
		}
		defer f.Sleep.Leave()
	}
	s, pod, err := f.open(ctx, m)
	if err != nil {
		f.Stats.Failed.Add(1)
		f.logf("forward %d: %v", m.LocalPort, err)
		return
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		// Remote to local; when the pod side ends, the local side ends.
		_, _ = io.Copy(c, s)
		if tc, ok := c.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(s, c)
	_ = s.CloseWrite()
	select {
	case <-done:
	case <-ctx.Done():
	}
	_ = pod
}

// open picks a ready pod (round robin) and opens a stream to it, moving on to
// the next pod when a tunnel is broken and waiting for one to be ready.
func (f *Forwarder) open(ctx context.Context, m Mapping) (Stream, string, error) {
	wait := f.WaitReady
	if wait == 0 {
		wait = 30 * time.Second
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	var lastErr error
	for attempt := 0; ; attempt++ {
		// The direct path first, on every look: a connection that waits for
		// a ready pod takes it as soon as it is up again (after an engine
		// restart it is often up before the tunnels work).
		if s, ok := f.openDirect(m); ok {
			return s, "", nil
		}
		changed := f.Backends.Changed()
		ready := f.healthy(f.Backends.Ready(m.ServicePort))
		for i := 0; i < len(ready); i++ {
			b := f.pick(ready)
			t, err := f.tunnel(ctx, b.Pod)
			if err == nil {
				var s Stream
				if s, err = f.openStream(t, b.Port); err == nil {
					return s, b.Pod, nil
				}
				f.drop(b.Pod, t)
			}
			f.shun(b.Pod)
			lastErr = fmt.Errorf("pod %s: %w", b.Pod, err)
			f.Stats.Retried.Add(1)
		}
		if len(ready) == 0 && attempt == 0 {
			f.logf("forward %d: no ready gateway pod; waiting up to %s", m.LocalPort, wait)
		}
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-deadline.C:
			if lastErr == nil {
				lastErr = errors.New("no ready gateway pod")
			}
			return nil, "", fmt.Errorf("no ready pod could take the connection within %s: %w", wait, lastErr)
		case <-changed:
		case <-time.After(200 * time.Millisecond):
			// Tunnels to a pod that just failed are retried on the next look.
		}
	}
}

// openStream opens a stream in t within OpenTimeout. An open given up on is
// not joined: the SPDY library ends it with its own 30 s reply timeout,
// which closing the tunnel does not cut short, and joining it would hold
// the forward's stop (and `down`) that long. It holds nothing but the
// closed tunnel's memory meanwhile; a stream it gets after all is closed.
func (f *Forwarder) openStream(t Tunnel, port int) (Stream, error) {
	limit := f.OpenTimeout
	if limit <= 0 {
		limit = 3 * time.Second
	}
	type opened struct {
		s   Stream
		err error
	}
	ch, gaveUp := make(chan opened), make(chan struct{})
	go func() {
		s, err := t.Open(port)
		select {
		case ch <- opened{s, err}:
		case <-gaveUp:
			if s != nil {
				_ = s.Close()
			}
		}
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-timer.C:
		close(gaveUp)
		return nil, fmt.Errorf("opening a stream: no answer through the tunnel in %s", limit)
	}
}

// healthy is ready without the pods shunned now, unless that leaves none.
func (f *Forwarder) healthy(ready []Backend) []Backend {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.shunned) == 0 {
		return ready
	}
	now := time.Now()
	var out []Backend
	for _, b := range ready {
		if until, ok := f.shunned[b.Pod]; ok && now.Before(until) {
			continue
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return ready
	}
	return out
}

func (f *Forwarder) shun(pod string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shunned == nil {
		f.shunned = map[string]time.Time{}
	}
	f.shunned[pod] = time.Now().Add(shunFor)
}

func (f *Forwarder) pick(ready []Backend) Backend {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := ready[f.next%len(ready)]
	f.next++
	return b
}

func (f *Forwarder) tunnel(ctx context.Context, pod string) (Tunnel, error) {
	f.mu.Lock()
	if f.tunnels == nil {
		f.tunnels = map[string]Tunnel{}
	}
	t, ok := f.tunnels[pod]
	f.mu.Unlock()
	if ok {
		select {
		case <-t.Done():
			// The tunnel broke under us: the pod went, or its node did.
			// Try another pod first (the caller shuns this one); a dial
			// to a node that stopped answering only waits.
			f.drop(pod, t)
			return nil, errors.New("its tunnel closed")
		default:
			return t, nil
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nt, err := f.Dialer.Dial(dctx, pod)
	if err != nil {
		return nil, err
	}
	if f.Stats.tunnelsUp.Add(1) > 1 {
		f.Stats.Redials.Add(1)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.tunnels[pod]; ok {
		// Another connection dialled the same pod meanwhile; keep one.
		nt.Close()
		return old, nil
	}
	f.tunnels[pod] = nt
	return nt, nil
}

func (f *Forwarder) drop(pod string, t Tunnel) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur, ok := f.tunnels[pod]; ok && cur == t {
		delete(f.tunnels, pod)
	}
	t.Close()
}

// Prune closes tunnels to pods that have left the Service entirely. Pods that
// are only terminating keep theirs: they are draining in-flight requests.
func (f *Forwarder) Prune(keep map[string]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for pod, t := range f.tunnels {
		if !keep[pod] {
			t.Close()
			delete(f.tunnels, pod)
		}
	}
}
