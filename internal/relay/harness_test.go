package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastTiming makes dead sessions show within a second in tests.
var fastTiming = timing{pingEvery: 50 * time.Millisecond, deadAfter: 400 * time.Millisecond}

// rig is a relay and an agent on 127.0.0.1, the relay's backend ports
// mapped to ephemeral ones.
type rig struct {
	t         testing.TB
	control   string
	mu        sync.Mutex
	ports     map[int]string // declared port → address the relay listens on
	relayEnd  chan error
	stopRelay context.CancelFunc
	agent     *Agent
	agentEnd  chan error
	stopAgent context.CancelFunc
	logs      []string
	key       string // the relay's key, which the agent sends
}

func newRig(t testing.TB, bs ...Backend) *rig {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, control: l.Addr().String(), ports: map[int]string{}, relayEnd: make(chan error, 1), key: "k3y-" + t.Name()}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopRelay = cancel
	o := ServerOptions{
		Logf: r.logf("relay: "),
		Listen: func(port int) (net.Listener, error) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err == nil {
				r.mu.Lock()
				r.ports[port] = l.Addr().String()
				r.mu.Unlock()
			}
			return l, err
		},
		Key:    r.key,
		timing: fastTiming,
	}
	go func() { r.relayEnd <- Serve(ctx, l, o) }()
	t.Cleanup(r.stop)
	t.Cleanup(func() {
		if t.Failed() {
			r.mu.Lock()
			t.Logf("relay and agent logs:\n%s", strings.Join(r.logs, "\n"))
			r.mu.Unlock()
		}
	})
	r.startAgent(bs...)
	return r
}

func (r *rig) logf(prefix string) func(string, ...any) {
	return func(f string, args ...any) {
		r.mu.Lock()
		r.logs = append(r.logs, prefix+fmt.Sprintf(f, args...))
		r.mu.Unlock()
	}
}

func (r *rig) dialControl(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", r.control)
}

func (r *rig) startAgent(bs ...Backend) {
	r.agent = NewAgent(r.dialControl, AgentOptions{Key: r.key, Logf: r.logf("agent: "), ProbeEvery: 100 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, timing: fastTiming})
	r.agent.SetBackends(bs)
	ctx, cancel := context.WithCancel(context.Background())
	r.stopAgent, r.agentEnd = cancel, make(chan error, 1)
	go func() { r.agentEnd <- r.agent.Run(ctx) }()
}

// endAgent stops the agent and waits for Run to return.
func (r *rig) endAgent() {
	r.t.Helper()
	if r.stopAgent == nil {
		return
	}
	r.stopAgent()
	r.stopAgent = nil
	select {
	case err := <-r.agentEnd:
		if err != nil {
			r.t.Errorf("agent: %v", err)
		}
	case <-time.After(5 * time.Second):
		r.t.Fatal("the agent's Run did not return 5 s after its context was cancelled")
	}
}

func (r *rig) stop() {
	r.endAgent()
	if r.stopRelay == nil {
		return
	}
	r.stopRelay()
	r.stopRelay = nil
	select {
	case err := <-r.relayEnd:
		if err != nil {
			r.t.Errorf("relay: %v", err)
		}
	case <-time.After(5 * time.Second):
		r.t.Fatal("Serve did not return 5 s after its context was cancelled")
	}
}

// addr is where the relay listens for the declared port, once it does.
func (r *rig) addr(port int) string {
	r.t.Helper()
	var a string
	eventually(r.t, 5*time.Second, func() bool {
		r.mu.Lock()
		a = r.ports[port]
		r.mu.Unlock()
		return a != ""
	}, "the relay listening on port %d", port)
	return a
}

func (r *rig) stats() Stats {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := FetchStats(ctx, r.dialControl, r.key)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: "+format, append([]any{within}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// goroutinesBack waits until no more goroutines run than before.
func goroutinesBack(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines still running, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// local is a backend on 127.0.0.1 running handle for each
// connection, joined at cleanup.
type local struct {
	l  net.Listener
	wg sync.WaitGroup
}

func serve(t testing.TB, handle func(net.Conn)) *local {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, handle)
}

func serveOn(t testing.TB, l net.Listener, handle func(net.Conn)) *local {
	s := &local{l: l}
	s.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(s.close)
	return s
}

func (s *local) close() {
	s.l.Close()
	s.wg.Wait()
}

func (s *local) addr() string { return s.l.Addr().String() }

// echo writes back what it reads and half-closes at EOF.
func echo(c net.Conn) {
	b := make([]byte, 32<<10)
	io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, b)
	c.(*net.TCPConn).CloseWrite()
}

// freePort is a loopback address nobody listens on.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func isReset(err error) bool {
	return err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed)
}
