package tui

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/apimdev/apimdev/internal/gwlink"
	"github.com/apimdev/apimdev/internal/pipeline"
)

// Sampler reads one moment of the gateway's traffic (pipeline.Session.Top
// behind a seam, so the view needs no cluster to be tested).
type Sampler func(ctx context.Context) pipeline.TopSample

// topHistory is how many samples the sparklines remember (at one a second,
// two minutes).
const topHistory = 120

// TopModel is `apimdev top`: a view of the gateway's traffic refreshed every
// interval, from its local metrics, with the pods' readiness.
type TopModel struct {
	ctx      context.Context
	sample   Sampler
	interval time.Duration
	st       styles
	width    int

	last    *pipeline.TopSample
	rates   []float64 // requests/s
	p50s    []float64
	p99s    []float64
	samples int
	// window keeps the pods' memory readings for their slopes and the
	// growth warning.
	window *pipeline.TopWindow
}

// NewTop is the top view over sample, refreshed every interval.
func NewTop(ctx context.Context, sample Sampler, interval time.Duration) TopModel {
	if interval <= 0 {
		interval = time.Second
	}
	return TopModel{ctx: ctx, sample: sample, interval: interval, st: newStyles(), width: 80, window: pipeline.NewTopWindow(0)}
}

type topSampled struct{ s pipeline.TopSample }

type topTick struct{}

func (m TopModel) take() tea.Cmd {
	return func() tea.Msg { return topSampled{m.sample(m.ctx)} }
}

// Init takes the first sample at once.
func (m TopModel) Init() tea.Cmd { return m.take() }

// Update takes a sample each interval; q, Esc and Ctrl-C quit.
func (m TopModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		switch msg.String() {
		case "q", "esc", "ctrl+c":
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case topSampled:
		s := msg.s
		pipeline.RatesBetween(m.last, &s)
		m.window.Observe(&s)
		if s.Rate != nil {
			m.rates = keep(m.rates, s.Rate.Requests)
		}
		if s.Metrics != nil && s.Metrics.Requests > 0 {
			m.p50s, m.p99s = keep(m.p50s, s.Metrics.P50MS), keep(m.p99s, s.Metrics.P99MS)
		}
		m.last = &s
		m.samples++
		return m, tea.Tick(m.interval, func(time.Time) tea.Msg { return topTick{} })
	case topTick:
		if m.ctx.Err() != nil {
			return m, tea.Quit
		}
		return m, m.take()
	}
	return m, nil
}

func keep(xs []float64, v float64) []float64 {
	xs = append(xs, v)
	if len(xs) > topHistory {
		xs = xs[len(xs)-topHistory:]
	}
	return xs
}

// View draws the last sample and the history.
func (m TopModel) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	return v
}

func (m TopModel) render() string {
	var b strings.Builder
	st := m.st
	s := m.last
	if s == nil {
		return st.faint.Render("reading the gateway's metrics…") + "\n"
	}
	spark := max(10, m.width-24)
	profile := s.Profile
	if profile == "" {
		profile = "?"
	}
	fmt.Fprintf(&b, "%s  %s (%s profile)  %s\n\n", st.brand.Render("apimdev top"), st.title.Render(s.Gateway), profile, st.faint.Render(s.Time.Local().Format("15:04:05")))
	ready := 0
	for _, p := range s.Pods {
		if p.Ready {
			ready++
		}
	}
	fmt.Fprintf(&b, "%s %d/%d ready\n", st.key.Render("pods     "), ready, len(s.Pods))
	for _, p := range s.Pods {
		mark, tone := "✓", st.ok
		if !p.Ready {
			mark, tone = "✗", st.bad
		}
		line := fmt.Sprintf("  %s %s", mark, p.Name)
		if p.Node != "" {
			line += "  " + st.faint.Render("on "+p.Node)
		}
		if p.Restarts > 0 {
			line += "  " + st.warn.Render(fmt.Sprintf("%d restart(s)", p.Restarts))
		}
		for _, l := range s.Links {
			if l.Pod == p.Name {
				lt := st.ok
				if l.State != gwlink.Synced {
					lt = st.warn
				}
				line += "  " + lt.Render("link "+string(l.State))
			}
		}
		b.WriteString(tone.Render(line) + "\n")
	}
	m.renderResources(&b, s)
	b.WriteString("\n")
	if s.Metrics == nil {
		b.WriteString(st.warn.Render(s.Missing) + "\n")
	} else {
		rate := "-"
		if s.Rate != nil {
			rate = fmt.Sprintf("%.1f/s", s.Rate.Requests)
		}
		fmt.Fprintf(&b, "%s %-9s %s\n", st.key.Render("requests "), rate, st.accent.Render(sparkline(m.rates, spark)))
		fmt.Fprintf(&b, "%s %s\n", st.key.Render("classes  "), classes(s))
		fmt.Fprintf(&b, "%s %-9s %s\n", st.key.Render("p50      "), fmt.Sprintf("%.1fms", s.Metrics.P50MS), st.accent.Render(sparkline(m.p50s, spark)))
		fmt.Fprintf(&b, "%s %-9s %s\n", st.key.Render("p99      "), fmt.Sprintf("%.1fms", s.Metrics.P99MS), st.accent.Render(sparkline(m.p99s, spark)))
		fmt.Fprintf(&b, "%s %.0f requests counted by %s\n", st.key.Render("total    "), s.Metrics.Requests, s.Metrics.Source)
		if strings.Contains(s.Metrics.Source, "OpenTelemetry") {
			b.WriteString(st.faint.Render("  (the gateway exports OpenTelemetry metrics every minute: rates move in steps)") + "\n")
		}
	}
	b.WriteString("\n" + st.faint.Render("q quits · latency: statsd, the slowest series' quantiles; OpenTelemetry, bucket bounds") + "\n")
	return b.String()
}

// renderResources draws each pod's CPU and memory from its kubelet, the
// memory's slope over the window, and the growth warning.
func (m TopModel) renderResources(b *strings.Builder, s *pipeline.TopSample) {
	st := m.st
	if len(s.Resources) == 0 {
		if s.ResourcesMissing != "" {
			b.WriteString("\n" + st.key.Render("resources") + " " + st.faint.Render(s.ResourcesMissing) + "\n")
		}
		return
	}
	fmt.Fprintf(b, "\n%s %s\n", st.key.Render("resources"), st.faint.Render(fmt.Sprintf("cpu · memory (working set) · its slope over %s; the kubelets', every 10s", pipeline.ShortSpan(m.window.Span))))
	w := 0
	for _, r := range s.Resources {
		w = max(w, len(r.Pod))
	}
	for _, r := range s.Resources {
		cpu, mem, slope := "-", "-", "-"
		if r.CPUMillicores != nil {
			cpu = fmt.Sprintf("%.0fm", *r.CPUMillicores)
		}
		if r.MemoryMiB != nil {
			mem = fmt.Sprintf("%.1f MiB", *r.MemoryMiB)
		}
		if r.MemorySlopeMiBPerMin != nil {
			slope = fmt.Sprintf("%+.2f MiB/min", *r.MemorySlopeMiBPerMin)
		}
		fmt.Fprintf(b, "  %-*s  %6s  %11s  %s\n", w, r.Pod, cpu, mem, st.faint.Render(slope))
	}
	if s.ResourcesMissing != "" {
		b.WriteString("  " + st.faint.Render(s.ResourcesMissing) + "\n")
	}
	if s.MemoryWarning != "" {
		b.WriteString(st.warn.Width(max(20, m.width-1)).PaddingLeft(2).Render("⚠ "+s.MemoryWarning) + "\n")
	}
}

// classes is the status classes' rates, or their totals before a rate.
func classes(s *pipeline.TopSample) string {
	src := s.Metrics.Classes
	unit := ""
	if s.Rate != nil && s.Rate.Classes != nil {
		src, unit = s.Rate.Classes, "/s"
	}
	if len(src) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.1f%s", k, src[k], unit))
	}
	return strings.Join(parts, " · ")
}

// RunTop runs the top view until q or ctx ends.
func RunTop(ctx context.Context, sample Sampler, interval time.Duration, in io.Reader, out io.Writer) error {
	p := tea.NewProgram(NewTop(ctx, sample, interval), tea.WithInput(in), tea.WithOutput(out), tea.WithContext(ctx), tea.WithoutSignalHandler())
	_, err := p.Run()
	if ctx.Err() != nil {
		return nil // Ctrl-C: a clean stop
	}
	return err
}
