package relay

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ControlPort is the relay's own port in the cluster: /healthz, /stats and
// the tunnel.
const ControlPort = 4700

// Backend is a server on the developer's machine, reachable in the cluster
// at NAME:Port through the relay.
type Backend struct {
	Name   string `json:"name"`
	Port   int    `json:"port"`
	Target string `json:"target"` // "127.0.0.1:8080" or "[::1]:8080"
}

// ValidateTarget checks that s is an address on this machine's loopback,
// HOST:PORT with an IP literal or "localhost" (which it writes 127.0.0.1),
// and returns it in the form the agent dials.
func ValidateTarget(s string) (string, error) {
	const fix = "run your server on 127.0.0.1 and use --to 127.0.0.1:PORT"
	if s == "" {
		return "", fmt.Errorf("no target: give the address your server listens on, e.g. --to 127.0.0.1:8080")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if _, perr := strconv.Atoi(s); perr == nil {
			return "", fmt.Errorf("%s is a port without an address: use --to 127.0.0.1:%s", s, s)
		}
		return "", fmt.Errorf("%s is not HOST:PORT: use --to 127.0.0.1:PORT (an IPv6 address in brackets, [::1]:PORT)", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("%s: the port %q is not a number from 1 to 65535; %s", s, port, fix)
	}
	if strings.EqualFold(host, "localhost") {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", fmt.Errorf("%s names a host, not a loopback address: the relay only dials 127.0.0.1 or ::1; %s", s, fix)
	}
	if !ip.IsLoopback() {
		return "", fmt.Errorf("%s is not on this machine's loopback: the relay only dials 127.0.0.1 or ::1; %s", s, fix)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// loopbackLiteral says target is an IP literal on the loopback with a port:
// the only kind of address the agent dials.
func loopbackLiteral(target string) bool {
	host, port, err := net.SplitHostPort(target)
	if err != nil || port == "" {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ValidateName checks that s can name a backend: a Kubernetes Service name,
// which is a DNS-1035 label (lower-case letters, digits and '-', starting
// with a letter, ending with a letter or digit, at most 63 characters).
func ValidateName(s string) error {
	var why string
	switch {
	case s == "":
		return fmt.Errorf("no backend name: give one such as my-api (lower-case letters, digits and '-')")
	case len(s) > 63:
		why = fmt.Sprintf("is %d characters, over the 63 a DNS label allows", len(s))
	case s[0] < 'a' || s[0] > 'z':
		why = "does not start with a lower-case letter"
	case s[len(s)-1] == '-':
		why = "ends with '-'"
	default:
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				why = fmt.Sprintf("holds %q; only lower-case letters, digits and '-' are allowed", r)
				break
			}
		}
	}
	if why == "" {
		return nil
	}
	return fmt.Errorf("backend name %q %s (it becomes a DNS name in the cluster): use a name such as %s", s, why, fixName(s))
}

// fixName is a valid name near s, for the error's example.
func fixName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	out := b.String()
	if out == "" || out[0] < 'a' || out[0] > 'z' {
		out = "b-" + out
	}
	if len(out) > 63 {
		out = out[:63]
	}
	out = strings.TrimRight(out, "-")
	if out == "b" {
		return "my-api"
	}
	return out
}
