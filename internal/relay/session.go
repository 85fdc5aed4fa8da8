package relay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// timing is how often a session pings and how long it waits for any frame
// before it calls the other end dead.
type timing struct {
	pingEvery time.Duration
	deadAfter time.Duration
}

var defaultTiming = timing{pingEvery: 2 * time.Second, deadAfter: 8 * time.Second}

func (t timing) orDefault() timing {
	if t.pingEvery <= 0 || t.deadAfter <= 0 {
		return defaultTiming
	}
	return t
}

var errSessionClosed = errors.New("the tunnel is closed")

// session is one side of the tunnel connection: frames in, frames out, and
// the streams over it.
type session struct {
	conn   net.Conn
	r      io.Reader
	server bool // the relay's side: it opens streams
	timing timing

	wmu  sync.Mutex // one frame at a time on conn
	ctrl chan []byte

	mu      sync.Mutex
	streams map[uint32]*stream // nil once closed
	lastID  uint32

	done      chan struct{}
	closeOnce sync.Once
	err       error // why it closed, set before done is closed
	lastRecv  atomic.Int64

	onOpen    func(st *stream, name string) // agent: a stream the relay opened; must not block
	onDeclare func(payload []byte) error    // relay: the agent's backends
}

func newSession(conn net.Conn, r *bufio.Reader, server bool, t timing) *session {
	s := &session{conn: conn, r: r, server: server, timing: t.orDefault(), ctrl: make(chan []byte, 64),
		streams: map[uint32]*stream{}, done: make(chan struct{})}
	if r == nil {
		s.r = conn
	}
	s.lastRecv.Store(time.Now().UnixNano())
	return s
}

// run reads frames until the session ends, and returns why, with the
// session's own goroutines joined. Streams are their owners' to join.
func (s *session) run() error {
	var wg sync.WaitGroup
	wg.Go(s.writeControl)
	wg.Go(s.watch)
	s.closeWith(s.read())
	wg.Wait()
	return s.err
}

func (s *session) closeWith(err error) {
	s.closeOnce.Do(func() {
		if err == nil || errors.Is(err, net.ErrClosed) {
			err = errSessionClosed
		}
		s.err = err
		close(s.done)
		s.conn.Close()
		s.mu.Lock()
		streams := s.streams
		s.streams = nil
		s.mu.Unlock()
		for _, st := range streams {
			st.abort(&ResetError{Code: resetClosed, Reason: "tunnel closed: " + err.Error()})
		}
	})
}

func (s *session) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// write sends one whole frame.
func (s *session) write(b []byte) error {
	if s.closed() {
		return errSessionClosed
	}
	s.wmu.Lock()
	_, err := s.conn.Write(b)
	s.wmu.Unlock()
	if err != nil {
		s.closeWith(fmt.Errorf("writing to the tunnel: %w", err))
		return errSessionClosed
	}
	return nil
}

// sendControl queues a frame for the control writer, so the reader never
// blocks on a write; when the queue is full the frame is dropped (pings and
// pongs repeat, and a reset of a stream nobody knows is a courtesy).
func (s *session) sendControl(b []byte) {
	select {
	case s.ctrl <- b:
	default:
	}
}

func (s *session) writeControl() {
	for {
		select {
		case <-s.done:
			return
		case b := <-s.ctrl:
			s.write(b)
		}
	}
}

func (s *session) watch() {
	t := time.NewTicker(s.timing.pingEvery)
	defer t.Stop()
	var n uint64
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			if quiet := now.Sub(time.Unix(0, s.lastRecv.Load())); quiet > s.timing.deadAfter {
				s.closeWith(fmt.Errorf("the other end sent nothing for %s", quiet.Round(time.Second)))
				return
			}
			n++
			var p [8]byte
			binary.BigEndian.PutUint64(p[:], n)
			s.sendControl(newFrame(framePing, 0, p[:]))
		}
	}
}

func (s *session) stream(id uint32) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[id]
}

func (s *session) remove(id uint32) {
	s.mu.Lock()
	delete(s.streams, id)
	s.mu.Unlock()
}

// open starts a stream to the named backend (the relay's side). Ids are
// given and their open frames written under the write lock, so they go out
// in increasing order.
func (s *session) open(name string) (*stream, error) {
	if s.closed() {
		return nil, errSessionClosed
	}
	s.wmu.Lock()
	s.mu.Lock()
	if s.streams == nil {
		s.mu.Unlock()
		s.wmu.Unlock()
		return nil, errSessionClosed
	}
	s.lastID++
	st := newStream(s, s.lastID)
	s.streams[st.id] = st
	s.mu.Unlock()
	_, err := s.conn.Write(newFrame(frameOpen, st.id, []byte(name)))
	s.wmu.Unlock()
	if err != nil {
		s.closeWith(fmt.Errorf("writing to the tunnel: %w", err))
		return nil, errSessionClosed
	}
	return st, nil
}

func (s *session) read() error {
	hdr := make([]byte, headerLen)
	buf := make([]byte, maxPayload)
	for {
		h, p, err := readFrame(s.r, hdr, buf)
		if err != nil {
			return err
		}
		s.lastRecv.Store(time.Now().UnixNano())
		switch h.typ {
		case frameOpen:
			if s.server {
				return malformed("the agent opened stream %d", h.id)
			}
			s.mu.Lock()
			if s.streams == nil {
				s.mu.Unlock()
				return errSessionClosed
			}
			if h.id <= s.lastID {
				s.mu.Unlock()
				return malformed("open of stream %d after stream %d", h.id, s.lastID)
			}
			s.lastID = h.id
			st := newStream(s, h.id)
			s.streams[h.id] = st
			s.mu.Unlock()
			s.onOpen(st, string(p))
		case frameData:
			if st := s.stream(h.id); st != nil {
				if err := st.push(p); err != nil {
					return err
				}
			} // else: data in flight to a stream already over
		case frameWindow:
			if st := s.stream(h.id); st != nil {
				if err := st.grow(int(binary.BigEndian.Uint32(p))); err != nil {
					return err
				}
			}
		case frameCloseWrite:
			if st := s.stream(h.id); st != nil {
				if err := st.remoteCloseWrite(); err != nil {
					return err
				}
			}
		case frameReset:
			if st := s.stream(h.id); st != nil {
				st.abort(&ResetError{Code: p[0], Reason: string(p[1:]), Remote: true})
				s.remove(h.id)
			}
		case framePing:
			s.sendControl(newFrame(framePong, 0, p))
		case framePong:
		case frameDeclare:
			if !s.server || s.onDeclare == nil {
				return malformed("declare sent to the agent")
			}
			if err := s.onDeclare(p); err != nil {
				return err
			}
		}
	}
}

// ResetError is a stream ended by a reset: by the other end (Remote), or by
// this one, or because the tunnel closed.
type ResetError struct {
	Code   byte
	Reason string
	Remote bool
}

func (e *ResetError) Error() string {
	what := "closed"
	switch e.Code {
	case resetRefused:
		what = "refused"
	case resetTimeout:
		what = "timed out"
	}
	return "stream " + what + ": " + e.Reason
}

// stream is one connection through the tunnel, with per-stream flow
// control: at most streamWindow bytes in flight each way.
type stream struct {
	s  *session
	id uint32

	mu        sync.Mutex
	cond      sync.Cond
	chunks    []*[]byte // received, not yet read; the first is read from roff
	roff      int
	buffered  int
	unacked   int // read but not yet granted back to the sender
	remoteFin bool
	sendWin   int
	localFin  bool
	reset     *ResetError
	closed    bool
	onReset   func() // called once, when the stream is reset
}

func newStream(s *session, id uint32) *stream {
	st := &stream{s: s, id: id, sendWin: streamWindow}
	st.cond.L = &st.mu
	return st
}

// push takes a data frame's payload (the reader's buffer: copied).
func (st *stream) push(p []byte) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.reset != nil || st.closed {
		return nil
	}
	if st.remoteFin {
		return malformed("data on stream %d after its close-write", st.id)
	}
	if st.buffered+len(p) > streamWindow {
		return malformed("%d bytes on stream %d, over its %d-byte window", st.buffered+len(p), st.id, streamWindow)
	}
	st.buffered += len(p)
	for len(p) > 0 {
		var last *[]byte
		if n := len(st.chunks); n > 0 && len(*st.chunks[n-1]) < cap(*st.chunks[n-1]) {
			last = st.chunks[n-1]
		} else {
			last = getBuf()
			*last = (*last)[:0]
			st.chunks = append(st.chunks, last)
		}
		k := min(len(p), cap(*last)-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
	}
	st.cond.Broadcast()
	return nil
}

func (st *stream) grow(n int) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sendWin += n
	if st.sendWin > streamWindow {
		return malformed("window of stream %d grown to %d, over %d", st.id, st.sendWin, streamWindow)
	}
	st.cond.Broadcast()
	return nil
}

func (st *stream) remoteCloseWrite() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.remoteFin && st.reset == nil {
		return malformed("second close-write on stream %d", st.id)
	}
	st.remoteFin = true
	st.cond.Broadcast()
	return nil
}

// abort ends the stream with err, dropping what was buffered.
func (st *stream) abort(err *ResetError) bool {
	st.mu.Lock()
	if st.reset != nil {
		st.mu.Unlock()
		return false
	}
	st.reset = err
	st.release()
	st.cond.Broadcast()
	f := st.onReset
	st.mu.Unlock()
	if f != nil {
		f()
	}
	return true
}

// whenReset has f called when the stream is reset (at once if it was).
func (st *stream) whenReset(f func()) {
	st.mu.Lock()
	reset := st.reset != nil
	st.onReset = f
	st.mu.Unlock()
	if reset {
		f()
	}
}

func (st *stream) release() {
	for _, c := range st.chunks {
		putBuf(c)
	}
	st.chunks, st.roff, st.buffered = nil, 0, 0
}

// Read reads the stream: io.EOF after the other end's close-write, a
// *ResetError after a reset.
func (st *stream) Read(p []byte) (int, error) {
	st.mu.Lock()
	for st.buffered == 0 && !st.remoteFin && st.reset == nil && !st.closed {
		st.cond.Wait()
	}
	switch {
	case st.reset != nil:
		err := st.reset
		st.mu.Unlock()
		return 0, err
	case st.buffered == 0 && st.remoteFin:
		st.mu.Unlock()
		return 0, io.EOF
	case st.buffered == 0:
		st.mu.Unlock()
		return 0, errSessionClosed
	}
	n := 0
	for n < len(p) && len(st.chunks) > 0 {
		c := st.chunks[0]
		k := copy(p[n:], (*c)[st.roff:])
		n += k
		st.roff += k
		if st.roff == len(*c) {
			putBuf(c)
			st.chunks[0] = nil
			st.chunks = st.chunks[1:]
			st.roff = 0
		}
	}
	st.buffered -= n
	st.unacked += n
	grant := 0
	if st.unacked >= streamWindow/4 && !st.remoteFin {
		grant, st.unacked = st.unacked, 0
	}
	st.mu.Unlock()
	if grant > 0 {
		var w [4]byte
		binary.BigEndian.PutUint32(w[:], uint32(grant))
		st.s.write(newFrame(frameWindow, st.id, w[:]))
	}
	return n, nil
}

// writeChunk sends the n bytes at (*b)[headerLen:], as frames within the
// window; each frame's header is written into b just before its bytes.
func (st *stream) writeChunk(b *[]byte, n int) error {
	for off := 0; off < n; {
		st.mu.Lock()
		for st.sendWin == 0 && st.reset == nil && !st.closed && !st.localFin {
			st.cond.Wait()
		}
		switch {
		case st.reset != nil:
			err := st.reset
			st.mu.Unlock()
			return err
		case st.closed || st.localFin:
			st.mu.Unlock()
			return errSessionClosed
		}
		k := min(n-off, st.sendWin)
		st.sendWin -= k
		st.mu.Unlock()
		f := (*b)[off : off+headerLen+k]
		putHeader(f, frameData, st.id, k)
		if err := st.s.write(f); err != nil {
			return err
		}
		off += k
	}
	return nil
}

// Write sends p (for tests and callers that hold a plain slice).
func (st *stream) Write(p []byte) (int, error) {
	b := getBuf()
	defer putBuf(b)
	done := 0
	for done < len(p) {
		k := copy((*b)[headerLen:], p[done:])
		if err := st.writeChunk(b, k); err != nil {
			return done, err
		}
		done += k
	}
	return done, nil
}

// CloseWrite tells the other end this side writes no more.
func (st *stream) CloseWrite() error {
	st.mu.Lock()
	if st.localFin || st.reset != nil || st.closed {
		st.mu.Unlock()
		return nil
	}
	st.localFin = true
	st.cond.Broadcast()
	st.mu.Unlock()
	return st.s.write(newFrame(frameCloseWrite, st.id, nil))
}

// Reset ends the stream at both ends.
func (st *stream) Reset(code byte, reason string) {
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	if st.abort(&ResetError{Code: code, Reason: reason}) {
		st.s.write(newFrame(frameReset, st.id, append([]byte{code}, reason...)))
	}
	st.s.remove(st.id)
}

// Close is the owner done with the stream: a stream not closed both ways is
// reset.
func (st *stream) Close() {
	st.mu.Lock()
	clean := st.localFin && st.remoteFin && st.buffered == 0
	st.mu.Unlock()
	if !clean {
		st.Reset(resetClosed, "closed")
	}
	st.mu.Lock()
	st.closed = true
	st.release()
	st.cond.Broadcast()
	st.mu.Unlock()
	st.s.remove(st.id)
}
