package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFramesRoundTrip(t *testing.T) {
	frames := []struct {
		typ     frameType
		id      uint32
		payload []byte
	}{
		{frameOpen, 1, []byte("my-api")},
		{frameData, 7, bytes.Repeat([]byte{0xab}, dataChunk)},
		{frameWindow, 7, []byte{0, 1, 0, 0}},
		{frameCloseWrite, 7, nil},
		{frameReset, 7, append([]byte{resetRefused}, "connection refused"...)},
		{framePing, 0, []byte("12345678")},
		{framePong, 0, []byte("12345678")},
		{frameDeclare, 0, []byte(`{"backends":[]}`)},
	}
	var wire bytes.Buffer
	for _, f := range frames {
		wire.Write(newFrame(f.typ, f.id, f.payload))
	}
	hdr, buf := make([]byte, headerLen), make([]byte, maxPayload)
	for _, f := range frames {
		h, p, err := readFrame(&wire, hdr, buf)
		if err != nil || h.typ != f.typ || h.id != f.id || !bytes.Equal(p, f.payload) {
			t.Fatalf("%s frame came back as %s id %d (%d bytes), %v", f.typ, h.typ, h.id, len(p), err)
		}
	}
	if _, _, err := readFrame(&wire, hdr, buf); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}

func TestMalformedFramesAreRefused(t *testing.T) {
	long := make([]byte, headerLen)
	putHeader(long, frameData, 1, maxPayload+1)
	for name, wire := range map[string][]byte{
		"over the cap":           long,
		"unknown type":           newFrame(99, 1, []byte("x")),
		"data on stream 0":       newFrame(frameData, 0, []byte("x")),
		"empty data":             newFrame(frameData, 3, nil),
		"ping on a stream":       newFrame(framePing, 3, []byte("12345678")),
		"short ping":             newFrame(framePing, 0, []byte("1234")),
		"window of 0":            newFrame(frameWindow, 3, []byte{0, 0, 0, 0}),
		"window of 3 bytes":      newFrame(frameWindow, 3, []byte{0, 0, 1}),
		"close-write with bytes": newFrame(frameCloseWrite, 3, []byte("x")),
		"reset code 9":           newFrame(frameReset, 3, []byte{9}),
		"open without a name":    newFrame(frameOpen, 3, nil),
		"open with a long name":  newFrame(frameOpen, 3, bytes.Repeat([]byte("a"), 64)),
		"declare on a stream":    newFrame(frameDeclare, 3, []byte("{}")),
	} {
		_, _, err := readFrame(bytes.NewReader(wire), make([]byte, headerLen), make([]byte, maxPayload))
		var m *malformedError
		if !errors.As(err, &m) {
			t.Errorf("%s: %v, want a malformed frame", name, err)
		}
	}
	// Cut short: not malformed, but not a frame either.
	if _, _, err := readFrame(bytes.NewReader(newFrame(frameData, 1, []byte("abc"))[:10]), make([]byte, headerLen), make([]byte, maxPayload)); err != io.ErrUnexpectedEOF {
		t.Errorf("a frame cut short: %v", err)
	}
}

// A session closes with an error naming the problem when the other end
// breaks the protocol: a stream opened by the agent, data over the window.
func TestSessionClosesOnProtocolErrors(t *testing.T) {
	over := newFrame(frameData, 1, make([]byte, maxPayload))
	for name, c := range map[string]struct {
		server bool
		wire   [][]byte
		want   string
	}{
		"agent opens":    {server: true, wire: [][]byte{newFrame(frameOpen, 1, []byte("x"))}, want: "the agent opened stream 1"},
		"over window":    {wire: [][]byte{newFrame(frameOpen, 1, []byte("x")), over, over, over, over, over}, want: "over its 262144-byte window"},
		"reused id":      {wire: [][]byte{newFrame(frameOpen, 2, []byte("x")), newFrame(frameOpen, 1, []byte("x"))}, want: "open of stream 1 after stream 2"},
		"declare agent":  {wire: [][]byte{newFrame(frameDeclare, 0, []byte("{}"))}, want: "declare sent to the agent"},
		"bad declare":    {server: true, wire: [][]byte{newFrame(frameDeclare, 0, []byte("{"))}, want: "declare:"},
		"window overrun": {wire: [][]byte{newFrame(frameOpen, 1, []byte("x")), newFrame(frameWindow, 1, []byte{0, 0, 0, 1})}, want: "over 262144"},
	} {
		a, b := net.Pipe()
		s := newSession(a, nil, c.server, defaultTiming)
		var opened []*stream
		s.onOpen = func(st *stream, _ string) { opened = append(opened, st) }
		s.onDeclare = func(p []byte) error {
			var d declaration
			if err := json.Unmarshal(p, &d); err != nil {
				return malformed("declare: %v", err)
			}
			return nil
		}
		go func() {
			for _, f := range c.wire {
				if _, err := b.Write(f); err != nil {
					return
				}
			}
		}()
		go io.Copy(io.Discard, b)
		err := s.run()
		b.Close()
		var m *malformedError
		if !errors.As(err, &m) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: the session ended with %v, want a malformed frame saying %q", name, err, c.want)
		}
		for _, st := range opened {
			if _, err := st.Read(make([]byte, 1)); !errors.As(err, new(*ResetError)) {
				t.Errorf("%s: a stream of the closed session reads %v, want a reset", name, err)
			}
		}
	}
}

func TestHalfCloseBothWays(t *testing.T) {
	before := runtime.NumGoroutine()
	// The gateway half-closes: the backend sees EOF, then answers.
	counted := serve(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d bytes", n)
	})
	// The backend half-closes first, then keeps reading.
	got := make(chan string, 1)
	greeter := serve(t, func(c net.Conn) {
		io.WriteString(c, "hello")
		c.(*net.TCPConn).CloseWrite()
		if b, _ := io.ReadAll(c); len(b) > 0 { // not the agent's probe
			got <- string(b)
		}
	})
	r := newRig(t, Backend{Name: "counted", Port: 8080, Target: counted.addr()}, Backend{Name: "greeter", Port: 8081, Target: greeter.addr()})

	c, err := net.Dial("tcp", r.addr(8080))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, strings.Repeat("x", 100000))
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(b) != "got 100000 bytes" {
		t.Fatalf("after the gateway's close-write: %q, %v", b, err)
	}

	c, err = net.Dial("tcp", r.addr(8081))
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(c) // EOF: the backend's close-write came through
	if err != nil || string(b) != "hello" {
		t.Fatalf("before the backend's close-write: %q, %v", b, err)
	}
	io.WriteString(c, "still listening?")
	c.(*net.TCPConn).CloseWrite()
	select {
	case s := <-got:
		if s != "still listening?" {
			t.Fatalf("the backend read %q after its close-write", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the backend never read what came after its close-write")
	}
	c.Close()
	r.stop()
	counted.close()
	greeter.close()
	goroutinesBack(t, before)
}

// One stream whose reader never reads does not hold up another beside it,
// and the relay holds no more than its window of it.
func TestSlowReaderBesideAFastStream(t *testing.T) {
	b := serve(t, echo)
	r := newRig(t, Backend{Name: "echo", Port: 80, Target: b.addr()})
	slow, err := net.Dial("tcp", r.addr(80))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	// Write up to 256 MiB and read none of the echo: it backs up through the
	// backend, the agent's window and the relay.
	wrote := make(chan int64, 1)
	go func() {
		slow.SetWriteDeadline(time.Now().Add(time.Second))
		n, _ := io.Copy(slow, io.LimitReader(zeros{}, 256<<20))
		wrote <- n
	}()
	fast, err := net.Dial("tcp", r.addr(80))
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	buf := make([]byte, 5)
	start := time.Now()
	for i := range 200 {
		msg := fmt.Sprintf("%05d", i)
		io.WriteString(fast, msg)
		if _, err := io.ReadFull(fast, buf); err != nil || string(buf) != msg {
			t.Fatalf("round trip %d beside the stalled stream: %q %v", i, buf, err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("200 round trips beside a stalled stream took %s", d)
	}
	n := <-wrote
	if n >= 256<<20 {
		t.Fatalf("all %d bytes went in though nobody read the echo: no back-pressure", n)
	}
	if s := r.stats(); !s.AgentConnected {
		t.Fatal("the tunnel fell over under a stalled stream")
	}
	t.Logf("the stalled stream took %d KiB before back-pressure held it", n>>10)
}

// call makes a request and waits for the first byte of the answer: the
// error that ends it (the connect's, or the read's) and how long it took.
func call(addr string) (error, time.Duration) {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err, time.Since(start) // the reset can beat the connect's own check
	}
	defer c.Close()
	// A reset that arrives before the write is reported by the write; the
	// socket reports it once, and a read after it sees only EOF.
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: api\r\n\r\n"); err != nil {
		return err, time.Since(start)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err, time.Since(start)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestCancelJoinsEveryGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	b := serve(t, echo)
	r := newRig(t, Backend{Name: "echo", Port: 80, Target: b.addr()})
	// Streams in flight when everything stops.
	var conns []net.Conn
	for range 10 {
		c, err := net.Dial("tcp", r.addr(80))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "x")
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if n := r.stats().Backends[0].Active; n != 10 {
		t.Fatalf("%d active connections, want 10", n)
	}
	r.stop() // cancels both contexts and waits for Run and Serve to return
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a connection through the relay still reads after it stopped")
		}
		c.Close()
	}
	b.close()
	goroutinesBack(t, before)
}

func TestAgentGoneThePortsRefuse(t *testing.T) {
	b := serve(t, echo)
	r := newRig(t, Backend{Name: "echo", Port: 80, Target: b.addr()})
	addr := r.addr(80)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	start := time.Now()
	r.endAgent()
	eventually(t, 2*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, "the relay's port refusing connections once the agent is gone")
	t.Logf("the port refused %s after the agent stopped", time.Since(start).Round(time.Millisecond))
	s := r.stats()
	if s.AgentConnected || len(s.Backends) != 1 || s.Backends[0].Answering {
		t.Fatalf("stats with no agent: %+v", s)
	}
}

// An agent that stops answering (its machine asleep, the port-forward
// wedged) is noticed by the pings, and the ports close.
func TestDeadAgentIsNoticed(t *testing.T) {
	r := newRig(t)
	r.endAgent()
	c, err := net.Dial("tcp", r.control)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /tunnel HTTP/1.1\r\nHost: relay\r\nUpgrade: apimdev-relay\r\nConnection: Upgrade\r\n"+KeyHeader+": "+r.key+"\r\n\r\n")
	c.Write(newFrame(frameDeclare, 0, []byte(`{"backends":[{"name":"x","port":81,"target":"127.0.0.1:1"}]}`)))
	r.addr(81)
	if !r.stats().AgentConnected {
		t.Fatal("the silent agent never connected")
	}
	start := time.Now()
	eventually(t, 3*time.Second, func() bool { return !r.stats().AgentConnected }, "the relay noticing a silent agent")
	if d := time.Since(start); d < fastTiming.deadAfter/2 {
		t.Fatalf("the agent was dropped after %s, before it could have been silent for %s", d, fastTiming.deadAfter)
	}
}

func TestTargetDownThenBack(t *testing.T) {
	target := freePort(t)
	r := newRig(t, Backend{Name: "api", Port: 80, Target: target})
	addr := r.addr(80)
	// A reset, not a wait: the bound is far above what it takes (under a
	// millisecond here; the protocol's benchmark measures it) and below the
	// ~2 s a refused loopback connect takes on Windows without the agent's
	// short initial RTO, which is what it guards against; a busy machine
	// under Wine took 135 ms.
	for i := range 3 {
		err, d := call(addr)
		if !isReset(err) || errors.Is(err, os.ErrDeadlineExceeded) || d > time.Second {
			t.Fatalf("call %d to a backend that is down: %v after %s, want a reset within 1s", i, err, d)
		}
		t.Logf("call %d: %v after %s", i, err, d)
	}
	eventually(t, 2*time.Second, func() bool {
		s := r.stats().Backends
		return len(s) == 1 && !s[0].Answering && s[0].Failed == 3 && s[0].Reason != ""
	}, "the relay's stats saying the backend is down: %+v", r.stats())
	if s := r.agent.Stats(); len(s) != 1 || s[0].Answering || s[0].Failed != 3 || !strings.Contains(s[0].LastError, "refused") {
		t.Fatalf("agent stats: %+v", s)
	}

	l, err := net.Listen("tcp", target)
	if err != nil {
		t.Fatalf("listening again on the target %s: %v", target, err)
	}
	serveOn(t, l, echo)
	// The very next connection works: no command, no wait for a probe.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "back")
	b := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "back" {
		t.Fatalf("the first call after the backend came back: %q %v", b, err)
	}
	eventually(t, 2*time.Second, func() bool {
		s := r.stats().Backends
		return len(s) == 1 && s[0].Answering
	}, "the relay's stats saying the backend answers again")
}

func TestAgentDialsOnlyLoopback(t *testing.T) {
	r := newRig(t, Backend{Name: "far", Port: 80, Target: "192.0.2.1:80"}, Backend{Name: "name", Port: 81, Target: "example.com:80"})
	if err, _ := call(r.addr(80)); !isReset(err) {
		t.Fatalf("a connection to a non-loopback target: %v, want a reset", err)
	}
	if err, _ := call(r.addr(81)); !isReset(err) {
		t.Fatalf("a connection to a target named by a host name: %v, want a reset", err)
	}
	s := r.agent.Stats()
	if len(s) != 2 || s[0].Failed != 1 || !strings.Contains(s[0].LastError, "not a loopback address") || s[1].Failed != 1 {
		t.Fatalf("agent stats: %+v", s)
	}
	eventually(t, 2*time.Second, func() bool {
		s := r.agent.Stats()
		return !s[0].Answering && strings.Contains(s[0].Reason, "not a loopback address")
	}, "the probe saying the agent does not dial a non-loopback target")
}

func TestANewAgentReplacesTheOld(t *testing.T) {
	b := serve(t, echo)
	bs := []Backend{{Name: "echo", Port: 80, Target: b.addr()}}
	r := newRig(t)
	r.endAgent()
	// The first agent connects once: redialling, it would take the relay
	// back from the second, as a second agent should.
	var once sync.Once
	first := NewAgent(func(ctx context.Context) (net.Conn, error) {
		var c net.Conn
		err := errors.New("dialled once already")
		once.Do(func() { c, err = r.dialControl(ctx) })
		return c, err
	}, AgentOptions{Key: r.key, MinBackoff: 10 * time.Millisecond, timing: fastTiming})
	first.SetBackends(bs)
	ctx, cancel := context.WithCancel(context.Background())
	firstEnd := make(chan error, 1)
	go func() { firstEnd <- first.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-firstEnd; err != nil {
			t.Error(err)
		}
	}()
	old, err := net.Dial("tcp", r.addr(80))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	io.WriteString(old, "x")
	if _, err := io.ReadFull(old, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	delete(r.ports, 80)
	r.mu.Unlock()
	r.startAgent(bs...)
	// The old agent's stream is reset; the new agent carries new ones.
	old.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := old.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a stream of the replaced agent: %v, want it ended", err)
	}
	c, err := net.Dial("tcp", r.addr(80))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "y")
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	logs := strings.Join(r.logs, "\n")
	r.mu.Unlock()
	if !strings.Contains(logs, "replacing the one before") {
		t.Fatalf("the relay's log does not say the agent was replaced:\n%s", logs)
	}
}

func TestManyConcurrentStreams(t *testing.T) {
	b := serve(t, echo)
	r := newRig(t, Backend{Name: "echo", Port: 80, Target: b.addr()})
	addr := r.addr(80)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := bytes.Repeat([]byte{byte(i)}, 64<<10)
			go func() {
				c.Write(msg)
				c.(*net.TCPConn).CloseWrite()
			}()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("stream %d: %d bytes back, %v", i, len(got), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	eventually(t, 2*time.Second, func() bool {
		s := r.stats().Backends[0]
		return s.Total == 200 && s.Active == 0 && s.BytesToBackend == 200*64<<10 && s.BytesFromBackend == 200*64<<10
	}, "the relay's counts of 200 streams: %+v; agent %+v", r.stats(), r.agent.Stats())
}

// 100 MB each way through the tunnel, checked by sha256 at both ends, with
// the heap held well under 20 MiB above where it started.
func TestHundredMegabytesStreamed(t *testing.T) {
	const size = 100 << 20
	backendSum := make(chan [32]byte, 1)
	b := serve(t, func(c net.Conn) {
		h := sha256.New()
		buf := make([]byte, 32<<10)
		n, _ := io.CopyBuffer(struct{ io.Writer }{c}, io.TeeReader(c, h), buf)
		c.(*net.TCPConn).CloseWrite()
		if n > 0 { // not the agent's probe
			backendSum <- [32]byte(h.Sum(nil))
		}
	})
	r := newRig(t, Backend{Name: "big", Port: 80, Target: b.addr()})
	c, err := net.Dial("tcp", r.addr(80))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	})
	sent := sha256.New()
	var writer sync.WaitGroup
	writer.Go(func() {
		src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), size), sent)
		io.CopyBuffer(struct{ io.Writer }{c}, src, make([]byte, 32<<10))
		c.(*net.TCPConn).CloseWrite()
	})
	back := sha256.New()
	n, err := io.CopyBuffer(back, struct{ io.Reader }{c}, make([]byte, 32<<10))
	writer.Wait()
	close(stopSampling)
	sampler.Wait()
	if err != nil || n != size {
		t.Fatalf("%d bytes came back, %v", n, err)
	}
	if got := <-backendSum; got != [32]byte(sent.Sum(nil)) {
		t.Fatal("the backend's sha256 of what it received differs from what was sent")
	}
	if !bytes.Equal(back.Sum(nil), sent.Sum(nil)) {
		t.Fatal("the sha256 of what came back differs from what was sent")
	}
	growth := int64(peak) - int64(base)
	t.Logf("heap in use: %d KiB before, %d KiB at most while 2×100 MB streamed (+%d KiB)", base>>10, peak>>10, growth>>10)
	if growth > 20<<20 {
		t.Fatalf("the heap grew by %d MiB while streaming, over 20 MiB", growth>>20)
	}
}

func TestValidateTarget(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080": "127.0.0.1:8080",
		"[::1]:8080":     "[::1]:8080",
		"localhost:3000": "127.0.0.1:3000",
		"127.0.0.2:80":   "127.0.0.2:80",
	} {
		if got, err := ValidateTarget(in); err != nil || got != want {
			t.Errorf("ValidateTarget(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"192.168.1.5:80":       "192.168.1.5:80 is not on this machine's loopback: the relay only dials 127.0.0.1 or ::1; run your server on 127.0.0.1 and use --to 127.0.0.1:PORT",
		"example.com:80":       "names a host, not a loopback address",
		"8080":                 "use --to 127.0.0.1:8080",
		"127.0.0.1":            "is not HOST:PORT",
		"127.0.0.1:0":          "not a number from 1 to 65535",
		"127.0.0.1:http":       "not a number from 1 to 65535",
		"[::ffff:10.0.0.1]:80": "not on this machine's loopback",
		"":                     "no target",
	} {
		if _, err := ValidateTarget(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateTarget(%q): %v; want it to say %q", in, err, want)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "my-api", "api2", strings.Repeat("a", 63)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for in, want := range map[string]string{
		"my_api":                "holds '_'",
		"My-API":                "does not start with a lower-case letter",
		"2api":                  "such as b-2api",
		"api-":                  "ends with '-'",
		strings.Repeat("a", 64): "64 characters",
		"":                      "no backend name",
		"orders.v2":             "such as orders-v2",
	} {
		err := ValidateName(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateName(%q): %v; want it to say %q", in, err, want)
			continue
		}
		// The example it gives is itself valid.
		msg := err.Error()
		if i := strings.LastIndex(msg, "such as "); i >= 0 {
			if ex := strings.Fields(msg[i+len("such as "):])[0]; ValidateName(ex) != nil {
				t.Errorf("ValidateName(%q) suggests %q, which is not valid", in, ex)
			}
		}
	}
}

func TestFetchStatsNoRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr := freePort(t)
	_, err := FetchStats(ctx, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}, "")
	if err == nil || !strings.Contains(err.Error(), "reading the relay's stats") {
		t.Fatalf("stats from nowhere: %v", err)
	}
}

// Streams opened at the same time reach the agent in the order of their
// ids, which the agent requires.
func TestConcurrentOpensGoOutInOrder(t *testing.T) {
	a, b := net.Pipe()
	s := newSession(a, nil, true, defaultTiming)
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if _, err := s.open("x"); err != nil {
				t.Error(err)
			}
		})
	}
	hdr, buf := make([]byte, headerLen), make([]byte, maxPayload)
	var last uint32
	for range 200 {
		h, _, err := readFrame(b, hdr, buf)
		if err != nil {
			t.Fatal(err)
		}
		if h.typ != frameOpen || h.id != last+1 {
			t.Fatalf("%s of stream %d after stream %d", h.typ, h.id, last)
		}
		last = h.id
	}
	wg.Wait()
	s.closeWith(nil)
	b.Close()
}

func TestSetBackendsTakesTargetsAsValidated(t *testing.T) {
	a := NewAgent(nil, AgentOptions{})
	a.SetBackends([]Backend{{Name: "x", Port: 80, Target: "localhost:8080"}, {Name: "y", Port: 81, Target: "[0:0:0:0:0:0:0:1]:8080"}})
	if s := a.Stats(); s[0].Target != "127.0.0.1:8080" || s[1].Target != "[::1]:8080" {
		t.Fatalf("targets %q and %q", s[0].Target, s[1].Target)
	}
}

// HTTP keep-alive is just TCP here: twenty requests with bodies on one
// connection through the tunnel arrive on one connection at the backend.
func TestHTTPKeepAliveThroughTheTunnel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	peers := map[string]int{}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		peers[r.RemoteAddr]++
		mu.Unlock()
		b, _ := io.ReadAll(r.Body)
		w.Write(bytes.ToUpper(b))
	})}
	served := make(chan struct{})
	go func() { hs.Serve(l); close(served) }()
	defer func() { hs.Close(); <-served }()
	r := newRig(t, Backend{Name: "web", Port: 80, Target: l.Addr().String()})
	tr := &http.Transport{MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for i := range 20 {
		resp, err := client.Post("http://"+r.addr(80)+"/", "text/plain", strings.NewReader(fmt.Sprintf("call %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("CALL %d", i); resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("call %d: %s %q", i, resp.Status, b)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(peers) != 1 {
		t.Fatalf("20 keep-alive calls reached the backend on %d connections: %v", len(peers), peers)
	}
}

// Without the relay's key nobody takes the tunnel or reads the stats: a pod
// that reaches the control port gets 401, and the relay's ports stay shut.
func TestTheRelaysKeyIsAsked(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := FetchStats(ctx, r.dialControl, "wrong"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("stats with a wrong key: %v", err)
	}
	if _, err := FetchStats(ctx, r.dialControl, r.key); err != nil {
		t.Fatalf("stats with the key: %v", err)
	}
	c, err := r.dialControl(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /tunnel HTTP/1.1\r\nHost: relay\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", upgradeToken)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a tunnel without the key: %s", resp.Status)
	}
}
