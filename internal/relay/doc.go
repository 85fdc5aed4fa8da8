// Package relay is the reverse tunnel that makes a backend on the developer's
// machine (127.0.0.1:PORT) reachable from inside the kind cluster at
// http://NAME:PORT. Two ends share one TCP connection:
//
//   - the relay (Serve) runs in a pod in the cluster. It serves HTTP on
//     ControlPort: GET /healthz, GET /stats (JSON Stats) and GET /tunnel with
//     "Upgrade: apimdev-relay", which it answers 101 and then speaks the
//     protocol below on the raw connection. One agent at a time: a new one
//     replaces the old, whose session is closed and whose streams are reset.
//     It listens on each backend port the connected agent declares, and on no
//     port at all while no agent is connected, so the gateway's connect is
//     refused at once when the laptop side is gone.
//   - the agent (Agent) runs on the laptop inside apimdev. It dials the
//     relay's control port (the caller supplies the dialer: a port-forward
//     stream or a loopback NodePort), declares its backends, and for each
//     connection the gateway makes to the relay it dials the declared target
//     of the named backend, and nothing else: the relay never sends an
//     address. Targets are loopback IP literals (ValidateTarget), checked
//     again by the agent before each dial.
//
// Nothing in the data path knows HTTP: HTTP/1.1 keep-alive, HTTP/2, gRPC and
// WebSocket are bytes on a stream.
//
// # Protocol
//
// After the upgrade each side writes frames. A frame is a 9-byte header,
// type (1 byte), stream id (4 bytes, big-endian), payload length (4 bytes,
// big-endian), then the payload. A payload is at most 64 KiB; a frame longer,
// of an unknown type, on the wrong stream (0 for the session, non-zero for a
// stream), with a payload of the wrong size for its type, data beyond the
// receiver's window, or a stream opened by the agent, is malformed, and the
// session is closed with an error naming it.
//
//	1 open         relay → agent; new stream id (increasing), payload the backend's name
//	2 data         bytes of a stream, at most the sender's window
//	3 window       4-byte increment of the sender's window for the stream
//	4 close-write  the sender writes no more on the stream (half-close: EOF at the far end)
//	5 reset        1-byte code (1 refused, 2 timeout, 3 closed) and a reason; the stream is over
//	6 ping         stream 0, 8 bytes, answered by
//	7 pong         stream 0, the ping's 8 bytes
//	8 declare      agent → relay, stream 0, JSON {"backends":[{name,port,target,answering,reason}]}:
//	               the backends and whether each target answers; sent on connect, on change
//
// Flow control is per stream: each side may have at most 256 KiB of a stream
// unacknowledged; the receiver buffers what arrives (never more than the
// window) and sends window updates as its reader consumes, so a slow reader
// stalls only its own stream and memory stays bounded. Each side pings every
// 2 s and closes the session when nothing has arrived for 8 s. A stream ends
// when both sides have sent close-write, or on a reset; the relay closes the
// gateway's connection with a TCP reset when the agent resets the stream
// (its local dial was refused or timed out), so the gateway answers 502 at
// once.
//
// The agent probes each target (a TCP connect) every 2 s and right after a
// failed dial, and declares the result; the relay's /stats and the agent's
// Stats say which backends answer. On Windows its dials ask for no SYN
// retransmissions, so a closed loopback port refuses at once there too.
//
// It must not import cli, tui, pipeline, cluster or gateway, nor k8s.io or
// Docker's packages: the caller brings the dialer.
package relay
