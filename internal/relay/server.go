package relay

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// upgradeToken is the tunnel's Upgrade header value.
const upgradeToken = "apimdev-relay"

// ServerOptions tune Serve.
type ServerOptions struct {
	// Logf gets one line per agent connect and disconnect and per change of
	// the backends (never a byte of the traffic). Nil is silent.
	Logf func(format string, args ...any)
	// Listen opens a backend's port; by default ":PORT" on every interface
	// (the relay runs in a pod).
	Listen func(port int) (net.Listener, error)
	// Key, when set, is asked of every caller of /tunnel and /stats in the
	// KeyHeader: a pod in the cluster that can reach the control port
	// cannot take the tunnel (and the gateway's calls) without it.
	Key string

	timing timing // tests: faster pings
}

// KeyHeader carries the relay's key.
const KeyHeader = "X-Apimdev-Relay-Key"

// KeyEnv is the variable the relay's pod gets its key from.
const KeyEnv = "APIMDEV_RELAY_KEY"

// keyed lets a request through when it carries the relay's key.
func (s *server) keyed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.o.Key != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get(KeyHeader)), []byte(s.o.Key)) != 1 {
			http.Error(w, "the relay's key is missing or wrong", http.StatusUnauthorized)
			return
		}
		next(w, r)
	}
}

type server struct {
	o ServerOptions

	mu        sync.Mutex
	closed    bool
	sess      *session
	since     time.Time
	backends  map[string]*relayBackend
	listeners map[int]*portListener

	wg sync.WaitGroup
}

type relayBackend struct {
	d declared
	c *counters
}

type portListener struct {
	name string
	l    net.Listener
}

// Serve runs the relay on the control listener l until ctx is done, then
// closes everything and returns nil with every goroutine it started joined;
// it returns early with the error if serving l fails.
func Serve(ctx context.Context, l net.Listener, o ServerOptions) error {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Listen == nil {
		o.Listen = func(port int) (net.Listener, error) { return net.Listen("tcp", fmt.Sprintf(":%d", port)) }
	}
	s := &server{o: o, backends: map[string]*relayBackend{}, listeners: map[int]*portListener{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /stats", s.keyed(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.stats())
	}))
	mux.HandleFunc("GET /tunnel", s.keyed(s.tunnel))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	errc := make(chan error, 1)
	s.wg.Go(func() { errc <- hs.Serve(l) })

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.mu.Lock()
	s.closed = true
	sess := s.sess
	s.closeListeners()
	s.mu.Unlock()
	if sess != nil {
		sess.closeWith(errors.New("the relay is stopping"))
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	hs.Shutdown(sctx)
	cancel()
	hs.Close()
	s.wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *server) tunnel(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), upgradeToken) {
		http.Error(w, "the tunnel needs Upgrade: "+upgradeToken, http.StatusUpgradeRequired)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "no upgrade on this connection", http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "the relay is stopping", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	conn, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	conn.SetDeadline(time.Time{}) // the session's pings watch it from here
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + upgradeToken + "\r\nConnection: Upgrade\r\n\r\n")
	if err := rw.Flush(); err != nil {
		conn.Close()
		return
	}
	sess := newSession(conn, rw.Reader, true, s.o.timing)
	sess.onDeclare = func(p []byte) error { return s.declare(sess, p) }

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	old := s.sess
	s.sess, s.since = sess, time.Now()
	s.closeListeners()
	s.mu.Unlock()
	if old != nil {
		old.closeWith(errors.New("a new agent replaced this one"))
		s.o.Logf("agent connected from %s, replacing the one before", conn.RemoteAddr())
	} else {
		s.o.Logf("agent connected from %s", conn.RemoteAddr())
	}

	err = sess.run()

	s.mu.Lock()
	current := s.sess == sess
	if current {
		s.sess = nil
		s.closeListeners()
		for _, b := range s.backends {
			b.d.Answering, b.d.Reason = false, "the laptop side is not connected"
		}
	}
	s.mu.Unlock()
	if current {
		s.o.Logf("agent disconnected: %v; backend ports closed", err)
	} else {
		s.o.Logf("replaced agent disconnected: %v", err)
	}
}

// closeListeners closes every backend port (with s.mu held).
func (s *server) closeListeners() {
	for port, pl := range s.listeners {
		pl.l.Close()
		delete(s.listeners, port)
	}
}

// declare takes the agent's backends: ports opened and closed to match, and
// whether each target answers.
func (s *server) declare(sess *session, p []byte) error {
	var d declaration
	if err := json.Unmarshal(p, &d); err != nil {
		return malformed("declare: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess != sess || s.closed {
		return nil
	}
	before := s.describe()
	want := map[int]string{}
	next := map[string]*relayBackend{}
	var problems []string
	for _, b := range d.Backends {
		switch {
		case ValidateName(b.Name) != nil:
			problems = append(problems, fmt.Sprintf("%q: %v", b.Name, ValidateName(b.Name)))
			continue
		case b.Port < 1 || b.Port > 65535 || b.Port == ControlPort:
			problems = append(problems, fmt.Sprintf("%s: port %d is not one a backend can have", b.Name, b.Port))
			continue
		case want[b.Port] != "" || next[b.Name] != nil:
			problems = append(problems, fmt.Sprintf("%s: port %d or its name declared twice", b.Name, b.Port))
			continue
		}
		want[b.Port] = b.Name
		rb := s.backends[b.Name]
		if rb == nil || rb.d.Port != b.Port || rb.d.Target != b.Target {
			rb = &relayBackend{c: &counters{}}
		}
		rb.d = b
		next[b.Name] = rb
	}
	s.backends = next
	for port, pl := range s.listeners {
		if want[port] != pl.name {
			pl.l.Close()
			delete(s.listeners, port)
		}
	}
	for port, name := range want {
		if s.listeners[port] != nil {
			continue
		}
		l, err := s.o.Listen(port)
		if err != nil {
			next[name].c.fail(fmt.Sprintf("the relay cannot listen on port %d: %v", port, err))
			problems = append(problems, fmt.Sprintf("%s: cannot listen on port %d: %v", name, port, err))
			continue
		}
		s.listeners[port] = &portListener{name: name, l: l}
		s.wg.Go(func() { s.accept(sess, name, l) })
	}
	if now := s.describe(); now != before {
		s.o.Logf("backends: %s", now)
	}
	for _, p := range problems {
		s.o.Logf("backend refused: %s", p)
	}
	return nil
}

// describe is the backends in a line, for the log (with s.mu held).
func (s *server) describe() string {
	var out []string
	for _, b := range s.backends {
		out = append(out, fmt.Sprintf("%s:%d → %s", b.d.Name, b.d.Port, b.d.Target))
	}
	if len(out) == 0 {
		return "none"
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func (s *server) accept(sess *session, name string, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.relay(sess, name, c) })
	}
}

// relay carries one of the gateway's connections to the agent.
func (s *server) relay(sess *session, name string, c net.Conn) {
	s.mu.Lock()
	rb := s.backends[name]
	s.mu.Unlock()
	if rb == nil {
		abort(c)
		return
	}
	st, err := sess.open(name)
	if err != nil {
		abort(c)
		return
	}
	rb.c.total.Add(1)
	rb.c.active.Add(1)
	defer rb.c.active.Add(-1)
	if re := pipe(st, c, &rb.c.toBackend, &rb.c.fromBackend); re != nil && re.Code != resetClosed {
		rb.c.fail(re.Error())
	}
}

func (s *server) stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{AgentConnected: s.sess != nil, Backends: []BackendStats{}}
	if s.sess != nil {
		st.AgentSince = s.since.UTC().Truncate(time.Second)
	}
	for _, b := range s.backends {
		bs := BackendStats{Name: b.d.Name, Port: b.d.Port, Target: b.d.Target, Answering: b.d.Answering, Reason: b.d.Reason}
		b.c.fill(&bs)
		st.Backends = append(st.Backends, bs)
	}
	slices.SortFunc(st.Backends, func(a, b BackendStats) int { return strings.Compare(a.Name, b.Name) })
	return st
}
