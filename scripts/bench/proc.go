//go:build !windows

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ran is what one finished command did.
type ran struct {
	Dur      time.Duration
	Out, Err string
	Code     int
	MaxRSSKB int64 // peak resident set of the process itself (getrusage)
	// BenchRSSKB is the bench's own resident set when the command started:
	// a floor under MaxRSSKB (see lowerOwnPeak).
	BenchRSSKB int64
	PID        int // also its process group id
}

func (r ran) tail(n int) string {
	s := strings.TrimSpace(r.Err)
	if s == "" {
		s = strings.TrimSpace(r.Out)
	}
	ls := strings.Split(s, "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// command builds a command in a process group of its own, so that it and
// whatever it leaves behind (the manual script's kubectl port-forward) can be
// stopped by its id, and nothing else.
func command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if env != nil {
		cmd.Env = env
	}
	return cmd
}

// run runs a command to its end, bounded by limit, and times it.
func run(ctx context.Context, limit time.Duration, env []string, name string, args ...string) (ran, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := command(ctx, env, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	benchRSS := lowerOwnPeak()
	start := time.Now()
	err := cmd.Run()
	r := ran{Dur: time.Since(start), Out: out.String(), Err: errb.String(), BenchRSSKB: benchRSS}
	if cmd.Process != nil {
		r.PID = cmd.Process.Pid
	}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.MaxRSSKB = ru.Maxrss
		}
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
		if ctx.Err() != nil {
			return r, fmt.Errorf("%s %s: stopped after %s: %w", name, strings.Join(args, " "), limit, ctx.Err())
		}
		return r, fmt.Errorf("%s %s: exit %d: %s", name, strings.Join(args, " "), r.Code, r.tail(8))
	case err != nil:
		return r, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// lowerOwnPeak brings the bench's own peak resident set down to what it
// holds now, and returns that (kB). Go starts a command with a vfork-like
// clone, and Linux carries the parent's peak into the child's (its
// getrusage maxrss counts the memory it shared until exec): without this,
// every command after the bench's own busiest moment (the backends' 100 MB
// upload) "peaked" at the bench's size. What is left is the bench's
// current size, returned so a figure at that floor can be told apart.
func lowerOwnPeak() int64 {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // 5: reset the peak RSS (Linux 4.0+)
	kb := vmRSS(os.Getpid())
	for cur := benchRSSMaxKB.Load(); kb > cur && !benchRSSMaxKB.CompareAndSwap(cur, kb); cur = benchRSSMaxKB.Load() {
	}
	return kb
}

// benchRSSMaxKB is the largest of lowerOwnPeak's figures (commands start
// from several goroutines).
var benchRSSMaxKB atomic.Int64

// bg is a process the bench started and must stop.
type bg struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startBG(env []string, logPath, name string, args ...string) (*bg, error) {
	cmd := command(context.Background(), env, name, args...)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	b := &bg{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); f.Close(); close(b.done) }()
	return b, nil
}

func (b *bg) pid() int { return b.cmd.Process.Pid }

// stop ends the process group: SIGTERM, then SIGKILL after 5 s.
func (b *bg) stop() {
	if b == nil {
		return
	}
	select {
	case <-b.done:
		return
	default:
	}
	_ = syscall.Kill(-b.pid(), syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-b.pid(), syscall.SIGKILL)
		<-b.done
	}
}

// killGroup ends a process group the bench made (the manual script's).
func killGroup(pgid int) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		time.Sleep(200 * time.Millisecond)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// vmHWM reads a live process's peak resident set (kB) from /proc.
func vmHWM(pid int) int64 { return procStatusKB(pid, "VmHWM:") }

// vmRSS reads a live process's resident set now (kB) from /proc.
func vmRSS(pid int) int64 { return procStatusKB(pid, "VmRSS:") }

func procStatusKB(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// cpuTime is the user + system CPU time a live process has used so far.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ...: comm may hold spaces, so cut at the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// loopback refuses any address but 127.0.0.1: the bench sends nothing else.
func loopback(url string) error {
	rest, ok := strings.CutPrefix(url, "http://")
	if !ok {
		rest, ok = strings.CutPrefix(url, "https://")
	}
	host, _, err := net.SplitHostPort(strings.SplitN(rest, "/", 2)[0])
	if !ok || err != nil || host != "127.0.0.1" {
		return fmt.Errorf("bench: refusing to send traffic to %q (127.0.0.1 only)", url)
	}
	return nil
}

// waitHTTP polls url (127.0.0.1 only) until it answers want, bounded by limit.
func waitHTTP(ctx context.Context, url string, hdr http.Header, want int, limit time.Duration) (time.Duration, error) {
	return pollHTTP(ctx, url, hdr, want, limit, 2*time.Second)
}

// pollHTTP is waitHTTP with each try bounded by try.
func pollHTTP(ctx context.Context, url string, hdr http.Header, want int, limit, try time.Duration) (time.Duration, error) {
	if err := loopback(url); err != nil {
		return 0, err
	}
	c := &http.Client{Timeout: try, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	start := time.Now()
	deadline := start.Add(limit)
	last := ""
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return time.Since(start), nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Since(start), fmt.Errorf("%s did not answer %d within %s (last: %s)", url, want, limit, last)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitLog waits until the file at path holds the line part, for at most d.
func waitLog(ctx context.Context, path, part string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), part) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %q after %s:\n%s", path, part, d, b)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
