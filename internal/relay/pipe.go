package relay

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// pipe copies between a stream and a TCP connection both ways until both
// directions are closed or either is reset, then closes both. A half-close
// passes through (EOF on one side is close-write on the other). When the
// other end resets the stream, c is closed with a TCP reset. It returns the
// other end's reset, if any. fromConn and toConn count bytes as they go.
func pipe(st *stream, c net.Conn, fromConn, toConn *atomic.Int64) *ResetError {
	// A reset, from either end or because the tunnel closed, ends c at once,
	// whatever either direction is blocked on.
	st.whenReset(func() { abort(c) })
	var wg sync.WaitGroup
	wg.Go(func() {
		b := getBuf()
		defer putBuf(b)
		for {
			n, err := c.Read((*b)[headerLen:])
			if n > 0 {
				if st.writeChunk(b, n) != nil {
					return // reset: c is aborted
				}
				fromConn.Add(int64(n))
			}
			if err == io.EOF {
				st.CloseWrite()
				return
			}
			if err != nil {
				st.Reset(resetClosed, "the connection ended: "+errText(err))
				return
			}
		}
	})
	var remote *ResetError
	b := getBuf()
	for {
		n, err := st.Read(*b)
		if n > 0 {
			if _, werr := c.Write((*b)[:n]); werr != nil {
				st.Reset(resetClosed, "the connection ended: "+errText(werr))
				break
			}
			toConn.Add(int64(n))
		}
		if err == io.EOF {
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			break
		}
		if err != nil {
			var re *ResetError
			if errors.As(err, &re) && re.Remote {
				remote = re
			}
			abort(c) // already, by the reset; or the stream was closed
			break
		}
	}
	putBuf(b)
	wg.Wait()
	c.Close()
	st.Close()
	return remote
}

// abort closes c with a TCP reset, so its peer learns at once that the
// connection failed, not that it ended.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// errText is an error as a reset's reason: the operation, not addresses of
// the far side's own making.
func errText(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}
