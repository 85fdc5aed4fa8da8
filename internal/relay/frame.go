package relay

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

const (
	headerLen    = 9
	maxPayload   = 64 << 10 // any frame's payload cap
	dataChunk    = 32 << 10 // the most a data frame carries as sent here
	streamWindow = 256 << 10
	maxNameLen   = 63
)

type frameType byte

const (
	frameOpen       frameType = 1
	frameData       frameType = 2
	frameWindow     frameType = 3
	frameCloseWrite frameType = 4
	frameReset      frameType = 5
	framePing       frameType = 6
	framePong       frameType = 7
	frameDeclare    frameType = 8
)

func (t frameType) String() string {
	switch t {
	case frameOpen:
		return "open"
	case frameData:
		return "data"
	case frameWindow:
		return "window"
	case frameCloseWrite:
		return "close-write"
	case frameReset:
		return "reset"
	case framePing:
		return "ping"
	case framePong:
		return "pong"
	case frameDeclare:
		return "declare"
	}
	return fmt.Sprintf("type %d", byte(t))
}

// Reset codes.
const (
	resetRefused byte = 1
	resetTimeout byte = 2
	resetClosed  byte = 3
)

type frameHeader struct {
	typ    frameType
	id     uint32
	length int
}

func putHeader(b []byte, typ frameType, id uint32, n int) {
	b[0] = byte(typ)
	binary.BigEndian.PutUint32(b[1:5], id)
	binary.BigEndian.PutUint32(b[5:9], uint32(n))
}

// newFrame is a control frame with its payload (allocated: control frames
// are rare; data frames use pooled buffers).
func newFrame(typ frameType, id uint32, payload []byte) []byte {
	b := make([]byte, headerLen+len(payload))
	putHeader(b, typ, id, len(payload))
	copy(b[headerLen:], payload)
	return b
}

// malformedError is a frame the protocol does not allow.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return "malformed frame from the other end: " + e.msg }

func malformed(format string, args ...any) error {
	return &malformedError{fmt.Sprintf(format, args...)}
}

// readFrame reads one frame into hdr (headerLen bytes) and buf (maxPayload
// bytes) and checks its shape; the payload it returns is a slice of buf.
func readFrame(r io.Reader, hdr, buf []byte) (frameHeader, []byte, error) {
	if _, err := io.ReadFull(r, hdr[:headerLen]); err != nil {
		return frameHeader{}, nil, err
	}
	h := frameHeader{typ: frameType(hdr[0]), id: binary.BigEndian.Uint32(hdr[1:5])}
	n := binary.BigEndian.Uint32(hdr[5:9])
	if n > maxPayload {
		return h, nil, malformed("%s frame of %d bytes, over the %d-byte cap", h.typ, n, maxPayload)
	}
	h.length = int(n)
	if err := checkShape(h); err != nil {
		return h, nil, err
	}
	p := buf[:h.length]
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	if h.typ == frameWindow && binary.BigEndian.Uint32(p) == 0 {
		return h, nil, malformed("window update of 0 on stream %d", h.id)
	}
	if h.typ == frameReset && (p[0] < resetRefused || p[0] > resetClosed) {
		return h, nil, malformed("reset code %d on stream %d", p[0], h.id)
	}
	return h, p, nil
}

func checkShape(h frameHeader) error {
	session := h.id == 0
	switch h.typ {
	case frameOpen:
		if session || h.length == 0 || h.length > maxNameLen {
			return malformed("open of stream %d with a %d-byte name", h.id, h.length)
		}
	case frameData:
		if session || h.length == 0 {
			return malformed("data of %d bytes on stream %d", h.length, h.id)
		}
	case frameWindow:
		if session || h.length != 4 {
			return malformed("window update of %d bytes on stream %d", h.length, h.id)
		}
	case frameCloseWrite:
		if session || h.length != 0 {
			return malformed("close-write with %d bytes on stream %d", h.length, h.id)
		}
	case frameReset:
		if session || h.length == 0 || h.length > 1024 {
			return malformed("reset with %d bytes on stream %d", h.length, h.id)
		}
	case framePing, framePong:
		if !session || h.length != 8 {
			return malformed("%s with %d bytes on stream %d", h.typ, h.length, h.id)
		}
	case frameDeclare:
		if !session {
			return malformed("declare on stream %d", h.id)
		}
	default:
		return malformed("unknown %s", h.typ)
	}
	return nil
}

// bufs are the data buffers: headerLen+dataChunk bytes, so a read from a
// connection lands right after the room for its frame header.
var bufs = sync.Pool{New: func() any { b := make([]byte, headerLen+dataChunk); return &b }}

func getBuf() *[]byte { return bufs.Get().(*[]byte) }

func putBuf(b *[]byte) {
	*b = (*b)[:cap(*b)]
	bufs.Put(b)
}
