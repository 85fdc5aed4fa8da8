// Package ports checks local TCP ports and, where the OS tells, names the
// process that holds one. It imports nothing from the rest of apimdev.
package ports

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// BusyError says a local port is taken, by whom if known, and what to do.
type BusyError struct {
	Addr    string
	Port    int
	Process string // "nginx (pid 42)" or ""
	Flag    string // the flag that moves it, e.g. --http-port
	// Lent: no program listens on the port (Linux tells); an outgoing
	// connection of this machine holds it as its own local port, which the
	// system lends from Ephemeral to outgoing connections.
	Lent      bool
	Ephemeral [2]int
}

func (e *BusyError) Error() string {
	s := fmt.Sprintf("local port %d (%s) is already in use", e.Port, e.Addr)
	switch {
	case e.Process != "":
		s += " by " + e.Process
	case e.Lent:
		s += fmt.Sprintf(", though no program listens on it: an outgoing connection of this machine holds it as its own port (the system lends ports %d-%d to outgoing connections)",
			e.Ephemeral[0], e.Ephemeral[1])
	}
	return s
}

// Hint says how to get around it.
func (e *BusyError) Hint() string {
	flag := e.Flag
	if flag == "" {
		flag = "--http-port"
	}
	alt := e.alternative()
	if e.Lent {
		return fmt.Sprintf("it is free again when that connection closes; a port outside %d-%d is never lent: choose one with %s %d", e.Ephemeral[0], e.Ephemeral[1], flag, alt)
	}
	return fmt.Sprintf("stop that process, or choose another port with %s %d", flag, alt)
}

// alternative is a port to suggest: near this one, above the privileged
// ports, and outside the range the system lends to outgoing connections
// (a port in it can be taken at any moment by one of them).
func (e *BusyError) alternative() int {
	lo, hi := e.Ephemeral[0], e.Ephemeral[1]
	if lo == 0 {
		lo, hi = EphemeralRange()
	}
	for _, alt := range []int{e.Port + 10000, e.Port%10000 + 10000, e.Port%10000 + 20000} {
		if alt != e.Port && alt <= 65535 && (alt < lo || alt > hi) {
			return alt
		}
	}
	return 18080
}

// EphemeralRange is the range of local ports the system lends to outgoing
// connections: Linux's net.ipv4.ip_local_port_range, elsewhere the IANA
// range that Windows and macOS use.
func EphemeralRange() (lo, hi int) {
	if runtime.GOOS == "linux" {
		if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
			if f := strings.Fields(string(b)); len(f) == 2 {
				l, err1 := strconv.Atoi(f[0])
				h, err2 := strconv.Atoi(f[1])
				if err1 == nil && err2 == nil && 0 < l && l <= h {
					return l, h
				}
			}
		}
		return 32768, 60999
	}
	return 49152, 65535
}

// PermissionError says a privileged port cannot be bound by this user.
type PermissionError struct {
	Port int
	Flag string
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("local port %d needs privileges this user does not have", e.Port)
}

// Hint says how to get around it.
func (e *PermissionError) Hint() string {
	return fmt.Sprintf("use a port above 1023 (e.g. %s 8080), or allow binding low ports (sysctl net.ipv4.ip_unprivileged_port_start=80)", e.Flag)
}

// Listen binds host:port, turning "address in use" into a BusyError that
// names the holder where /proc tells.
func Listen(host string, port int, flag string) (net.Listener, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE):
		listeners, known := listenersOf(port)
		be := &BusyError{Addr: addr, Port: port, Process: ownerOf(listeners), Flag: flag}
		be.Ephemeral[0], be.Ephemeral[1] = EphemeralRange()
		be.Lent = known && len(listeners) == 0 && be.Ephemeral[0] <= port && port <= be.Ephemeral[1]
		return nil, be
	case errors.Is(err, syscall.EACCES) || errors.Is(err, wsaEACCES):
		return nil, &PermissionError{Port: port, Flag: flag}
	}
	return nil, fmt.Errorf("listening on %s: %w", addr, err)
}

// Winsock's numbers for the same two errors (Windows does not map them onto
// syscall.EADDRINUSE and EACCES).
const (
	wsaEADDRINUSE = syscall.Errno(10048)
	wsaEACCES     = syscall.Errno(10013)
)

// Check tells whether host:port can be bound now, and releases it.
func Check(host string, port int, flag string) error {
	l, err := Listen(host, port, flag)
	if err != nil {
		return err
	}
	return l.Close()
}

// Owner names the process listening on TCP port, as "name (pid N)", or "" when
// the OS does not say (not Linux, or another user's process).
func Owner(port int) string {
	inodes, _ := listenersOf(port)
	return ownerOf(inodes)
}

// ownerOf names the process holding one of the socket inodes, or "".
func ownerOf(inodes map[string]bool) string {
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fds, _ := os.ReadDir(filepath.Join(p, "fd"))
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(p, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(target, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] {
				comm, _ := os.ReadFile(filepath.Join(p, "comm"))
				return fmt.Sprintf("%s (pid %s)", strings.TrimSpace(string(comm)), filepath.Base(p))
			}
		}
	}
	return ""
}

// listenersOf is the socket inodes listening on TCP port, of any user's
// (Linux's /proc); known is false where the system does not tell.
func listenersOf(port int) (inodes map[string]bool, known bool) {
	if _, err := os.Stat("/proc/net/tcp"); runtime.GOOS != "linux" || err != nil {
		return nil, false
	}
	inodes = map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, ino := range listeningInodes(f, port) {
			inodes[ino] = true
		}
	}
	return inodes, true
}

func listeningInodes(file string, port int) []string {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	want := fmt.Sprintf(":%04X", port)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		// sl local_address rem_address st ... inode; state 0A is LISTEN.
		if len(fs) > 9 && strings.HasSuffix(fs[1], want) && fs[3] == "0A" {
			out = append(out, fs[9])
		}
	}
	return out
}
