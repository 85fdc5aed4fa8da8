package cluster

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"

	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/log"
)

// stageLogger turns kind's stage lines into progress; everything else it logs
// at V(0) is kept for an error message.
type stageLogger struct {
	relay *relay
	tail  *tailBuffer
}

// relay is where kind's stage lines go now: kind's provider is made once,
// with its logger, and each create points the logger at its own progress.
// kind logs from its own goroutines, so the target is guarded.
type relay struct {
	mu sync.Mutex
	to Progress
}

func (r *relay) set(p Progress) (restore func()) {
	r.mu.Lock()
	old := r.to
	r.to = p
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.to = old
		r.mu.Unlock()
	}
}

func (r *relay) progress(format string, args ...any) {
	r.mu.Lock()
	to := r.to
	r.mu.Unlock()
	if to != nil {
		to(format, args...)
	}
}

var stageRE = regexp.MustCompile(`^\s*[•✓✗]\s+(.*?)\s*(?:🖼|📦|📜|🕹️|🔌|💾|⏳|🚀)?\s*$`)

func (l stageLogger) Warn(msg string)              { l.tail.add("warning: " + msg) }
func (l stageLogger) Warnf(f string, a ...any)     { l.Warn(fmt.Sprintf(f, a...)) }
func (l stageLogger) Error(msg string)             { l.tail.add("error: " + msg) }
func (l stageLogger) Errorf(f string, a ...any)    { l.Error(fmt.Sprintf(f, a...)) }
func (l stageLogger) V(v log.Level) log.InfoLogger { return stageInfo{l, v} }

type stageInfo struct {
	l stageLogger
	v log.Level
}

func (i stageInfo) Enabled() bool { return i.v == 0 }
func (i stageInfo) Info(msg string) {
	if i.v != 0 {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(msg), "\n") {
		if m := stageRE.FindStringSubmatch(line); m != nil && strings.HasPrefix(strings.TrimSpace(line), "•") {
			i.l.relay.progress("kind: %s", plainStage(m[1]))
		} else if t := strings.TrimSpace(line); t != "" {
			i.l.tail.add(t)
		}
	}
}
func (i stageInfo) Infof(f string, a ...any) { i.Info(fmt.Sprintf(f, a...)) }

// plainStage drops kind's trailing emoji and dots: "Preparing nodes 📦" -> "Preparing nodes".
func plainStage(s string) string {
	s = strings.TrimRightFunc(s, func(r rune) bool { return r > 0x2000 || r == ' ' || r == '.' })
	return s
}

type tailBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (t *tailBuffer) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > 20 {
		t.lines = t.lines[len(t.lines)-20:]
	}
}

// KindProvider is kind's provider for a runtime with a logger that reports
// its stages to whichever create is running.
type KindProvider struct {
	*kindcluster.Provider
	relay *relay
}

// NewKindOn returns kind's provider for the engine at ep: Docker or Podman.
//
// kind drives the engine through the docker CLI with this process's
// environment, and offers no other way to name the engine (kind v0.33's
// exec.DefaultCmder is a concrete *LocalCmder, not swappable): for an
// engine found at a desktop's socket, which the CLI would not find by
// itself, NewKindOn sets DOCKER_HOST for the process. It is apimdev's only
// change to its own environment.
func NewKindOn(ep Endpoint) *KindProvider {
	rt := ep.Runs()
	if ep.RuntimeIs(RuntimeDocker) && ep.FromSocketFallback() {
		_ = os.Setenv("DOCKER_HOST", ep.Host)
	}
	r := &relay{}
	which := kindcluster.ProviderWithDocker()
	if rt == RuntimePodman {
		which = kindcluster.ProviderWithPodman()
	}
	return &KindProvider{Provider: kindcluster.NewProvider(which,
		kindcluster.ProviderWithLogger(stageLogger{relay: r, tail: &tailBuffer{}})), relay: r}
}

// Report sends kind's stage lines to p until the returned restore is called.
func (k *KindProvider) Report(p Progress) (restore func()) { return k.relay.set(p) }
