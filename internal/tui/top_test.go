package tui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/apimdev/apimdev/internal/pipeline"
)

// topObserved publishes each rendered top screen for the test.
type topObserved struct {
	TopModel
	mu     *sync.Mutex
	screen *string
}

func (o topObserved) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := o.TopModel.Update(msg)
	nm := m.(TopModel)
	o.mu.Lock()
	*o.screen = ansi.Strip(nm.render())
	o.mu.Unlock()
	return topObserved{nm, o.mu, o.screen}, cmd
}

// fakeTraffic is a sampler whose counters grow by 50 requests per sample,
// one in ten a 401, with one pod replaced half-way (a rollout).
type fakeTraffic struct {
	mu sync.Mutex
	n  int
	t  time.Time
}

func (f *fakeTraffic) sample(context.Context) pipeline.TopSample {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.t = f.t.Add(time.Second)
	pods := []pipeline.TopPod{{Name: "contoso-gw-aaa-1", Ready: true, Node: "apimdev-control-plane"}, {Name: "contoso-gw-aaa-2", Ready: true}}
	if f.n > 3 {
		pods[1] = pipeline.TopPod{Name: "contoso-gw-bbb-1", Ready: f.n > 4, Restarts: 1}
	}
	req := float64(50 * f.n)
	return pipeline.TopSample{Time: f.t, Gateway: "contoso-gw", Profile: "prod", Pods: pods,
		Metrics: &pipeline.Metrics{Requests: req, Classes: map[string]float64{"2xx": req * 0.9, "4xx": req * 0.1},
			P50MS: 2 + float64(f.n%3), P99MS: 10 * float64(f.n%4+1), Source: "the statsd exporter"}}
}

// The live view at a fixed size: rates from the counters, status classes,
// sparklines growing, pods replaced under it; q quits. The last screen is
// saved as an artifact.
func TestTopView(t *testing.T) {
	f := &fakeTraffic{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	screen := ""
	m := NewTop(context.Background(), f.sample, 20*time.Millisecond)
	tm := teatest.NewTestModel(t, topObserved{m, &mu, &screen}, teatest.WithInitialTermSize(90, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ASCII)))
	wait := func(wants ...string) string {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			s := screen
			mu.Unlock()
			ok := true
			for _, w := range wants {
				ok = ok && strings.Contains(s, w)
			}
			if ok {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("the screen never showed %q:\n%s", wants, s)
			}
		}
	}
	s := wait("contoso-gw (prod profile)", "requests  50.0/s", "2xx 45.0/s · 4xx 5.0/s", "✓ contoso-gw-aaa-1  on apimdev-control-plane", "counted by the statsd exporter")
	s = wait("contoso-gw-bbb-1  1 restart(s)", "pods      2/2 ready", "▁")
	if dir := os.Getenv("APIMDEV_TUI_ARTIFACTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "top.txt"), []byte(s), 0o644)
	}
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// The dev profile has no local metrics: top says so, and how to get them.
func TestTopWithoutMetrics(t *testing.T) {
	m := NewTop(context.Background(), func(context.Context) pipeline.TopSample {
		return pipeline.TopSample{Time: time.Now(), Gateway: "contoso-gw", Profile: "dev", Missing: "no local metrics: … `apimdev promote` adds a statsd exporter",
			Pods: []pipeline.TopPod{{Name: "contoso-gw-aaa-1", Ready: false}}}
	}, time.Second)
	nm, _ := m.Update(topSampled{m.sample(context.Background())})
	out := ansi.Strip(nm.(TopModel).render())
	for _, w := range []string{"pods      0/1 ready", "✗ contoso-gw-aaa-1", "apimdev promote` adds a statsd exporter"} {
		if !strings.Contains(out, w) {
			t.Errorf("no %q in:\n%s", w, out)
		}
	}
}

// The wizard's result screen opens the same traffic view with t; esc goes
// back; without a sampler, t says where to find it.
func TestWizardTrafficView(t *testing.T) {
	t.Parallel()
	f := &fakeRunner{}
	traffic := &fakeTraffic{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	opts := testOptions(f, nil)
	opts.Sampler = traffic.sample
	h := newHarness(t, opts)
	fillForm(h)
	h.waitFor("the result", func() bool { return h.m.state == stateResult })
	mustContain(t, h.screen(), "t traffic (top)")
	h.key("t")
	h.waitFor("the traffic view", func() bool { return strings.Contains(h.screen(), "requests  50.0/s") })
	mustContain(t, h.screen(), "apimdev top", "contoso-gw (prod profile)", "esc back")
	h.key("esc")
	h.waitFor("the result again", func() bool { return h.m.state == stateResult })

	h2 := newHarness(t, testOptions(&fakeRunner{}, nil))
	fillForm(h2)
	h2.waitFor("the result", func() bool { return h2.m.state == stateResult })
	h2.key("t")
	mustContain(t, h2.screen(), "quit (q), then run `apimdev top`")
}

// growingMemory is a dev-profile sampler (no local metrics) whose kubelet
// reading changes every 10 s: the gateway's working set climbs 3 MiB a
// minute, the other pod's stays flat.
type growingMemory struct{ n int }

func (g *growingMemory) sample(context.Context) pipeline.TopSample {
	g.n++
	t := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(g.n) * time.Second)
	read := t.Truncate(10 * time.Second)
	mins := read.Sub(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)).Minutes()
	f := func(v float64) *float64 { return &v }
	return pipeline.TopSample{Time: t, Gateway: "contoso-gw", Profile: "dev", Missing: "no local metrics: the dev profile sends none",
		Pods: []pipeline.TopPod{{Name: "contoso-gw-aaa-1", Ready: true}, {Name: "contoso-gw-aaa-2", Ready: true}},
		Resources: []pipeline.TopResource{
			{Pod: "contoso-gw-aaa-1", CPUMillicores: f(12), MemoryMiB: f(210 + 3*mins), Time: read},
			{Pod: "contoso-gw-aaa-2", CPUMillicores: f(1), MemoryMiB: f(13), Time: read},
		}}
}

// Resources on the dev profile: each pod's CPU and memory, the memory's
// slope once there are readings enough, and the warning only after the
// growth held for the whole window.
func TestTopResources(t *testing.T) {
	g := &growingMemory{}
	m := NewTop(context.Background(), g.sample, time.Second)
	m.width = 100
	var tm tea.Model = m
	step := func(n int) string {
		for range n {
			tm, _ = tm.Update(topSampled{g.sample(context.Background())})
		}
		// One space for each run of them: the columns' widths aside.
		return strings.Join(strings.Fields(strings.ReplaceAll(ansi.Strip(tm.(TopModel).render()), "\n", " ¶ ")), " ")
	}
	out := step(1)
	for _, w := range []string{"no local metrics", "resources", "contoso-gw-aaa-1 12m 210.0 MiB - ¶", "contoso-gw-aaa-2 1m 13.0 MiB - ¶"} {
		if !strings.Contains(out, w) {
			t.Errorf("first sample: no %q in:\n%s", w, out)
		}
	}
	out = step(30) // 31 s: readings at 0, 10, 20 and 30 s
	if !strings.Contains(out, "+3.00 MiB/min") || !strings.Contains(out, "+0.00 MiB/min") {
		t.Errorf("no slopes after four readings:\n%s", out)
	}
	if strings.Contains(out, "⚠") {
		t.Errorf("a warning before the window was full:\n%s", out)
	}
	out = step(5 * 60)
	for _, w := range []string{"contoso-gw-aaa-1 12m 226.5 MiB +3.00 MiB/min ¶", "contoso-gw-aaa-2 1m 13.0 MiB +0.00 MiB/min ¶", "⚠ contoso-gw-aaa-1's memory grew 3.0 MiB/min for the last 5m", "load not measured", "api-management-self-hosted-gateway#401"} {
		if !strings.Contains(out, w) {
			t.Errorf("after the window: no %q in:\n%s", w, out)
		}
	}
	if strings.Contains(out, "contoso-gw-aaa-2's memory") {
		t.Errorf("a warning for flat memory:\n%s", out)
	}
	if dir := os.Getenv("APIMDEV_TUI_ARTIFACTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "top-resources.txt"), []byte(ansi.Strip(tm.(TopModel).render())), 0o644)
	}
}
