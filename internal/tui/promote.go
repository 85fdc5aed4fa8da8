package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/apimdev/apimdev/internal/events"
)

// Promoter is what the promote view drives: `apimdev promote` behind a seam,
// so the view needs no cluster to be tested.
type Promoter interface {
	// Diff returns what promoting would change, dev → prod, as unified-diff
	// text: lines starting with '+' or '-' are shown as added or removed.
	Diff(ctx context.Context) (string, error)
	// Promote rolls the change out. Its steps report through rep as up's do
	// (Start, Progress, Done or Fail, Warn). live is called with a snapshot
	// of the rollout and the traffic check whenever either changes, at most
	// a few times a second, from any goroutine. The checks run at the end
	// are returned, also with an error when some of them ran.
	Promote(ctx context.Context, rep *events.Reporter, live func(PromoteSample)) (PromoteResult, error)
}

// PromoteSample is one moment of a promote: the rollout and the traffic.
type PromoteSample struct {
	Rollout RolloutStatus
	Traffic TrafficSample
}

// RolloutStatus counts the gateway's pods during the rollout.
type RolloutStatus struct {
	Desired int // replicas wanted
	Old     int // pods of the previous revision still running
	New     int // pods of the new revision
	Ready   int // new pods ready
}

// TrafficSample is the traffic check so far.
type TrafficSample struct {
	Sent, Failed int           // calls since the check began
	P50, P99     time.Duration // latency since the check began
	// RecentP99 is the p99 since the previous sample, for the sparkline; 0
	// means the sparkline uses P99.
	RecentP99 time.Duration
}

// PromoteResult is the checks run once the rollout is done.
type PromoteResult struct {
	Checks []PromoteCheck
}

// PromoteCheck is one check after a promote.
type PromoteCheck struct {
	Name   string
	OK     bool
	Detail string
}

type (
	diffMsg struct {
		text string
		err  error
	}
	promoteSampleMsg struct{ PromoteSample }
	promoteDoneMsg   struct {
		res PromoteResult
		err error
	}
)

// maxSamples is how much history the sparkline keeps.
const maxSamples = 40

// promoteView is the promote screens' state.
type promoteView struct {
	diff     viewport.Model
	diffText string
	diffErr  error
	loading  bool
	steps    stepList
	samples  []PromoteSample
	res      *PromoteResult
	err      error
}

func newPromoteView() promoteView { return promoteView{diff: newViewport()} }

func (m Model) startPromote() (tea.Model, tea.Cmd) {
	ctx, cancel := context.WithCancel(m.opts.Context)
	m.cancel = cancel
	m.busy, m.stopping = true, false
	m.state = statePromoteDiff
	m.promote = newPromoteView()
	m.promote.loading = true
	m.layout()
	p := m.opts.Promoter
	return m, tea.Batch(m.spin.Tick, func() tea.Msg {
		text, err := p.Diff(ctx)
		return diffMsg{text: text, err: err}
	})
}

func (m Model) startPromoting() (tea.Model, tea.Cmd) {
	ctx, cancel := context.WithCancel(m.opts.Context)
	m.cancel = cancel
	m.busy, m.stopping = true, false
	m.state = statePromoting
	m.promote.steps = newStepList(nil)
	m.promote.samples = nil
	m.layout()
	p, rep, l := m.opts.Promoter, m.rep, m.link
	return m, tea.Batch(m.spin.Tick, func() tea.Msg {
		res, err := p.Promote(ctx, rep, func(s PromoteSample) { l.Send(promoteSampleMsg{s}) })
		return promoteDoneMsg{res: res, err: err}
	})
}

func (m Model) onPromoteMsg(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case diffMsg:
		m.finished()
		m.promote.loading = false
		m.promote.diffText, m.promote.diffErr = msg.text, msg.err
		m.promote.diff.SetContentLines(m.diffLines(msg.text))
		if m.leaving {
			return m.leave()
		}
	case promoteSampleMsg:
		m.promote.samples = append(m.promote.samples, msg.PromoteSample)
		if over := len(m.promote.samples) - maxSamples; over > 0 {
			m.promote.samples = m.promote.samples[over:]
		}
	case promoteDoneMsg:
		m.finished()
		res := msg.res
		m.promote.res, m.promote.err = &res, msg.err
		m.state = statePromoteDone
		m.layout()
		if m.leaving {
			return m.leave()
		}
	}
	return m, nil
}

func (m Model) onPromoteKey(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	switch m.state {
	case statePromoteDiff:
		switch {
		case key.Matches(k, m.keys.Continue) && !m.promote.loading && m.promote.diffErr == nil:
			m.state = statePromoteConfirm
		case key.Matches(k, m.keys.Back) && !m.busy:
			m.state = stateResult
		case key.Matches(k, m.keys.Up):
			m.promote.diff.ScrollUp(1)
		case key.Matches(k, m.keys.Down):
			m.promote.diff.ScrollDown(1)
		case key.Matches(k, m.keys.PageUp):
			m.promote.diff.PageUp()
		case key.Matches(k, m.keys.PageDown):
			m.promote.diff.PageDown()
		}
	case statePromoteConfirm:
		switch {
		case key.Matches(k, m.keys.Yes):
			return m.startPromoting()
		case key.Matches(k, m.keys.No):
			m.state = statePromoteDiff
		}
	case statePromoteDone:
		switch {
		case key.Matches(k, m.keys.Top):
			return m.startTop()
		case key.Matches(k, m.keys.Back, m.keys.Continue):
			m.state = stateResult
		case key.Matches(k, m.keys.Quit):
			return m.leave()
		}
	}
	return m, nil
}

func (m Model) diffLines(text string) []string {
	var out []string
	for _, l := range lines(strings.TrimRight(text, "\n")) {
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			l = m.sty.title.Render(l)
		case strings.HasPrefix(l, "+"):
			l = m.sty.ok.Render(l)
		case strings.HasPrefix(l, "-"):
			l = m.sty.bad.Render(l)
		case strings.HasPrefix(l, "@@"), strings.HasPrefix(l, "~"):
			l = m.sty.accent.Render(l)
		}
		out = append(out, l)
	}
	return out
}

func (m Model) promoteBody() string {
	p := m.promote
	var out []string
	switch m.state {
	case statePromoteDiff, statePromoteConfirm:
		out = append(out, m.sty.title.Render("What promote changes, dev → prod"), "")
		switch {
		case p.loading:
			out = append(out, "  "+m.spin.View()+" reading the difference …")
		case p.diffErr != nil:
			out = append(out, m.sty.bad.Render("  ✗ ")+wrap(p.diffErr.Error(), m.width-4))
			if h := events.HintOf(p.diffErr); h != "" {
				out = append(out, "    fix: "+h)
			}
			out = append(out, "", m.sty.faint.Render("  esc goes back to the gateway."))
		case strings.TrimSpace(p.diffText) == "":
			out = append(out, "  nothing differs: prod already runs what dev runs.")
		default:
			out = append(out, lines(indent(p.diff.View(), "  "))...)
			out = append(out, m.sty.faint.Render(fmt.Sprintf("  %d lines, %3.0f%%", p.diff.TotalLineCount(), p.diff.ScrollPercent()*100)))
		}
		if m.state == statePromoteConfirm {
			out = append(out, "", m.sty.title.Render("Promote to prod now? ")+"This rolls the prod gateway out with the change above. "+m.sty.key.Render("y")+" yes, "+m.sty.key.Render("n")+" no")
		}
	case statePromoting, statePromoteDone:
		out = append(out, m.stepLines(p.steps)...)
		if ws := m.warningLines(p.steps); len(ws) > 0 {
			out = append(append(out, ""), ws...)
		}
		out = append(out, "")
		out = append(out, m.livePanel()...)
		if m.state == statePromoteDone {
			out = append(out, "")
			out = append(out, m.promoteChecks()...)
		}
	}
	return strings.Join(out, "\n")
}

// livePanel is the rollout's pods and the traffic check, with a sparkline of
// the p99 latency.
func (m Model) livePanel() []string {
	s := m.promote.samples
	if len(s) == 0 {
		return []string{m.sty.faint.Render("  rollout   waiting for the first sample …")}
	}
	last := s[len(s)-1]
	r, t := last.Rollout, last.Traffic
	failed := fmt.Sprintf("%d", t.Failed)
	if t.Failed > 0 {
		failed = m.sty.bad.Render(failed)
	}
	p99s := make([]float64, len(s))
	for i, x := range s {
		p99s[i] = float64(x.Traffic.P99)
		if x.Traffic.RecentP99 > 0 {
			p99s[i] = float64(x.Traffic.RecentP99)
		}
	}
	rollout := fmt.Sprintf("old %d · new %d · ready %d/%d", r.Old, r.New, r.Ready, r.Desired)
	if r.Desired == 0 {
		rollout = m.sty.faint.Render("not started: traffic settles on the running pods first")
	}
	return []string{
		fmt.Sprintf("  %-9s %s", "rollout", rollout),
		fmt.Sprintf("  %-9s sent %d · failed %s · p50 %s · p99 %s", "traffic", t.Sent, failed, fmtLatency(t.P50), fmtLatency(t.P99)),
		fmt.Sprintf("  %-9s %s", "p99", m.sty.accent.Render(sparkline(p99s, maxSamples))),
	}
}

func (m Model) promoteChecks() []string {
	p := m.promote
	var out []string
	switch {
	case p.err != nil:
		out = append(out, m.sty.bad.Render("✗ ")+m.sty.title.Render("promote failed"))
		out = append(out, lines(indent(wrap(p.err.Error(), m.width-4), "    "))...)
		if h := events.HintOf(p.err); h != "" {
			out = append(out, "    fix: "+h)
		}
	default:
		out = append(out, m.sty.ok.Render("✓ ")+m.sty.title.Render("promoted to prod"))
	}
	if p.res != nil && len(p.res.Checks) > 0 {
		out = append(out, "", m.sty.title.Render("  checks"))
		for _, c := range p.res.Checks {
			mark := m.sty.ok.Render("✓")
			if !c.OK {
				mark = m.sty.bad.Render("✗")
			}
			out = append(out, fmt.Sprintf("  %s %-18s %s", mark, c.Name, c.Detail))
		}
	}
	return out
}

var sparks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last width values as bars from the lowest to the
// highest of them.
func sparkline(vals []float64, width int) string {
	if len(vals) > width {
		vals = vals[len(vals)-width:]
	}
	if len(vals) == 0 {
		return ""
	}
	lo, hi := vals[0], vals[0]
	for _, v := range vals {
		lo, hi = min(lo, v), max(hi, v)
	}
	var b strings.Builder
	for _, v := range vals {
		i := 0
		if hi > lo {
			i = int((v - lo) / (hi - lo) * float64(len(sparks)-1))
		}
		b.WriteRune(sparks[i])
	}
	return b.String()
}

func fmtLatency(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}
