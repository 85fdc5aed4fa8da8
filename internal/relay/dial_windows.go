package relay

import (
	"syscall"
	"unsafe"
)

// On Windows a connect to a loopback port nobody listens on is retried for
// about 2 s before it fails, so a backend that is down would answer the
// gateway's call in seconds, not milliseconds. Asking the socket for no SYN
// retransmissions (SIO_TCP_INITIAL_RTO, Windows 10 1703 and later) makes
// the refusal immediate; where Windows does not know the option the dial is
// as before.
const (
	sioTCPInitialRTO            = 0x98000011 // _WSAIOW(IOC_VENDOR, 17)
	tcpInitialRTOUnspecifiedRTT = 0xffff
	tcpInitialRTONoSynRetrans   = 0xfe
)

type tcpInitialRTOParameters struct {
	rtt                   uint16
	maxSynRetransmissions uint8
	_                     uint8
}

func dialControl(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		p := tcpInitialRTOParameters{rtt: tcpInitialRTOUnspecifiedRTT, maxSynRetransmissions: tcpInitialRTONoSynRetrans}
		var n uint32
		// An error leaves the default retries: slower to refuse, no worse.
		syscall.WSAIoctl(syscall.Handle(fd), sioTCPInitialRTO, (*byte)(unsafe.Pointer(&p)), uint32(unsafe.Sizeof(p)), nil, 0, &n, nil, 0)
	})
}
