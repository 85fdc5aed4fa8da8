//go:build !windows

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apimdev/apimdev/internal/ports"
)

// portsReleased waits up to limit for every port to be free on 127.0.0.1
// (`apimdev down` must let the forward's ports go). A port still held is
// an error naming its holder; when the holder is a process, its command
// line and its log (its stderr) are saved beside the bench's temporary
// directory, and, when it is an apimdev forward, the goroutine dump it
// writes there on SIGQUIT.
func portsReleased(ctx context.Context, list []int, limit time.Duration, saveDir string) error {
	deadline := time.Now().Add(limit)
	for {
		held, err := -1, error(nil)
		for _, p := range list {
			if err = ports.Check("127.0.0.1", p, ""); err != nil { // apimdev's own check, as `up`'s preflight makes it
				held = p
				break
			}
		}
		if held < 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("127.0.0.1:%d is still held %s after `down` (%v): %s", held, limit, err, describeHolder(held, saveDir))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var ssPid = regexp.MustCompile(`pid=(\d+)`)

// describeHolder names the sockets on port, in any state (a connection
// whose local port it is blocks a listener too), and the process of the
// first one ss names, saving what it can of its state.
func describeHolder(port int, saveDir string) string {
	out, err := exec.Command("ss", "-tanpH", fmt.Sprintf("sport = :%d", port)).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ss: %v", err)
	}
	m := ssPid.FindSubmatch(out)
	if m == nil {
		return "no process named by ss: " + strings.TrimSpace(string(out))
	}
	pid, _ := strconv.Atoi(string(m[1]))
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
	logPath := fmt.Sprintf("/proc/%d/fd/2", pid)
	before, _ := os.ReadFile(logPath)
	if strings.Contains(args, "apimdev forward") { // the bench's own: it dumps its goroutines and exits
		_ = syscall.Kill(pid, syscall.SIGQUIT)
		time.Sleep(2 * time.Second)
	}
	after, _ := os.ReadFile(logPath)
	file := filepath.Join(saveDir, fmt.Sprintf("port-%d-holder-%d.txt", port, pid))
	body := fmt.Sprintf("pid %d: %s\n\n--- its stderr before SIGQUIT ---\n%s\n--- after ---\n%s\n", pid, args, before, after)
	if werr := os.WriteFile(file, []byte(body), 0o644); werr != nil {
		file = "(not saved: " + werr.Error() + ")"
	}
	return fmt.Sprintf("%s; pid %d (%s); its log and goroutines: %s", strings.TrimSpace(string(out)), pid, args, file)
}
