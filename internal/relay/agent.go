package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// AgentOptions tune an Agent.
type AgentOptions struct {
	// Logf gets a line when the tunnel comes up or is lost. Nil is silent.
	Logf func(format string, args ...any)
	// ProbeEvery is how often each target is probed (default 2 s).
	ProbeEvery time.Duration
	// DialTimeout bounds a dial to a target (default 5 s).
	DialTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before redialling the relay
	// (defaults 200 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
	// Key is the relay's key (ServerOptions.Key), sent with the upgrade.
	Key string

	timing timing // tests: faster pings
}

// Agent is the laptop's end of the tunnel.
type Agent struct {
	dial func(context.Context) (net.Conn, error)
	o    AgentOptions

	mu       sync.Mutex
	backends []*agentBackend
	sess     *session

	declareMu sync.Mutex // one declaration at a time, in order
	probeNow  chan struct{}
	wg        sync.WaitGroup // stream goroutines
}

type agentBackend struct {
	b         Backend
	answering bool
	reason    string
	c         *counters
}

// NewAgent makes an agent that reaches the relay's control port with dial.
func NewAgent(dial func(context.Context) (net.Conn, error), o AgentOptions) *Agent {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = 2 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	return &Agent{dial: dial, o: o, probeNow: make(chan struct{}, 1)}
}

// SetBackends replaces the backends, at any time; the relay is told at once
// when the tunnel is up, and on every connect. A target is taken as
// ValidateTarget writes it; one it refuses is kept, shown in Stats and never
// dialled.
func (a *Agent) SetBackends(bs []Backend) {
	bs = slices.Clone(bs)
	for i := range bs {
		if t, err := ValidateTarget(bs[i].Target); err == nil {
			bs[i].Target = t
		}
	}
	a.mu.Lock()
	old := map[string]*agentBackend{}
	for _, ab := range a.backends {
		old[ab.b.Name] = ab
	}
	a.backends = nil
	for _, b := range bs {
		ab := old[b.Name]
		if ab == nil || ab.b != b {
			ab = &agentBackend{b: b, reason: "not probed yet", c: &counters{}}
		}
		a.backends = append(a.backends, ab)
	}
	a.mu.Unlock()
	a.declare()
	a.probeSoon()
}

// Stats are the backends as this end sees them.
func (a *Agent) Stats() []BackendStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]BackendStats, 0, len(a.backends))
	for _, ab := range a.backends {
		bs := BackendStats{Name: ab.b.Name, Port: ab.b.Port, Target: ab.b.Target, Answering: ab.answering, Reason: ab.reason}
		ab.c.fill(&bs)
		out = append(out, bs)
	}
	return out
}

// declare sends the backends and their health to the relay, if connected.
func (a *Agent) declare() {
	a.declareMu.Lock()
	defer a.declareMu.Unlock()
	a.mu.Lock()
	sess := a.sess
	var d declaration
	d.Backends = []declared{}
	for _, ab := range a.backends {
		d.Backends = append(d.Backends, declared{Name: ab.b.Name, Port: ab.b.Port, Target: ab.b.Target, Answering: ab.answering, Reason: ab.reason})
	}
	a.mu.Unlock()
	if sess == nil {
		return
	}
	p, err := json.Marshal(d)
	if err != nil || len(p) > maxPayload {
		sess.closeWith(fmt.Errorf("too many backends to declare in one frame (%d bytes)", len(p)))
		return
	}
	sess.write(newFrame(frameDeclare, 0, p))
}

func (a *Agent) probeSoon() {
	select {
	case a.probeNow <- struct{}{}:
	default:
	}
}

// Run keeps the tunnel up until ctx is done, redialling with capped
// backoff, and returns nil once ctx is done and every goroutine it started
// has ended.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { a.probeLoop(ctx) })
	backoff := a.o.MinBackoff
	for ctx.Err() == nil {
		start := time.Now()
		err := a.session(ctx)
		if ctx.Err() != nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			backoff = a.o.MinBackoff
		}
		a.o.Logf("tunnel to the relay lost (%v); redialling in %s", err, backoff.Round(time.Millisecond))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		backoff = min(backoff*2, a.o.MaxBackoff)
	}
	wg.Wait()
	a.wg.Wait()
	return nil
}

// session dials the relay, upgrades to the tunnel and serves it until it
// ends.
func (a *Agent) session(ctx context.Context) error {
	conn, err := a.dial(ctx)
	if err != nil {
		return fmt.Errorf("dialling the relay: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://relay/tunnel", nil)
	req.Header.Set("Upgrade", upgradeToken)
	req.Header.Set("Connection", "Upgrade")
	if a.o.Key != "" {
		req.Header.Set(KeyHeader, a.o.Key)
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return fmt.Errorf("asking the relay for the tunnel: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return fmt.Errorf("asking the relay for the tunnel: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return fmt.Errorf("the relay answered %s to the tunnel's upgrade", resp.Status)
	}
	conn.SetDeadline(time.Time{})

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sess := newSession(conn, br, false, a.o.timing)
	sess.onOpen = func(st *stream, name string) { a.wg.Go(func() { a.serve(sctx, st, name) }) }
	a.mu.Lock()
	a.sess = sess
	a.mu.Unlock()
	stopSess := context.AfterFunc(ctx, func() { sess.closeWith(ctx.Err()) })
	defer stopSess()
	a.o.Logf("tunnel to the relay up")
	a.declare()
	err = sess.run()
	a.mu.Lock()
	a.sess = nil
	a.mu.Unlock()
	return err
}

func (a *Agent) lookup(name string) *agentBackend {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ab := range a.backends {
		if ab.b.Name == name {
			return ab
		}
	}
	return nil
}

// serve dials the named backend's declared target for one stream and
// pipes the two.
func (a *Agent) serve(ctx context.Context, st *stream, name string) {
	ab := a.lookup(name)
	if ab == nil {
		st.Reset(resetRefused, "no backend "+name+" on the developer's machine")
		st.Close()
		return
	}
	ab.c.total.Add(1)
	if !loopbackLiteral(ab.b.Target) {
		// SetBackends takes what it is given; the agent still dials
		// nothing but this machine's loopback.
		ab.c.fail(ab.b.Target + " is not a loopback address: refused")
		st.Reset(resetRefused, "the target is not on the developer machine's loopback")
		st.Close()
		return
	}
	ab.c.active.Add(1)
	defer ab.c.active.Add(-1)
	d := net.Dialer{Timeout: a.o.DialTimeout, Control: dialControl}
	c, err := d.DialContext(ctx, "tcp", ab.b.Target)
	if err != nil {
		code := resetRefused
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			code = resetTimeout
		}
		ab.c.fail(errText(err))
		a.setHealth(ab, false, errText(err))
		st.Reset(code, errText(err))
		st.Close()
		a.probeSoon()
		return
	}
	a.setHealth(ab, true, "")
	pipe(st, c, &ab.c.fromBackend, &ab.c.toBackend)
}

// setHealth records whether a backend answers, and tells the relay when
// that changed.
func (a *Agent) setHealth(ab *agentBackend, ok bool, reason string) {
	a.mu.Lock()
	changed := ab.answering != ok || ab.reason != reason
	ab.answering, ab.reason = ok, reason
	a.mu.Unlock()
	if changed {
		a.declare()
	}
}

func (a *Agent) probeLoop(ctx context.Context) {
	t := time.NewTicker(a.o.ProbeEvery)
	defer t.Stop()
	for {
		a.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.probeNow:
		}
	}
}

// probe connects to every target once, at the same time.
func (a *Agent) probe(ctx context.Context) {
	a.mu.Lock()
	bs := append([]*agentBackend(nil), a.backends...)
	a.mu.Unlock()
	type result struct {
		ok     bool
		reason string
	}
	results := make([]result, len(bs))
	var wg sync.WaitGroup
	for i, ab := range bs {
		wg.Go(func() {
			if !loopbackLiteral(ab.b.Target) {
				results[i] = result{false, "not a loopback address: the agent does not dial it"}
				return
			}
			d := net.Dialer{Timeout: time.Second, Control: dialControl}
			c, err := d.DialContext(ctx, "tcp", ab.b.Target)
			if err != nil {
				results[i] = result{false, errText(err)}
				return
			}
			c.Close()
			results[i] = result{ok: true}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	changed := false
	a.mu.Lock()
	for i, ab := range bs {
		if ab.answering != results[i].ok || ab.reason != results[i].reason {
			ab.answering, ab.reason = results[i].ok, results[i].reason
			changed = true
		}
	}
	a.mu.Unlock()
	if changed {
		a.declare()
	}
}
