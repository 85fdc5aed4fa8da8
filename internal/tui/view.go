package tui

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/apimdev/apimdev/internal/demo"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/gwlink"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
)

// View implements tea.Model. The wizard takes the whole window; what it
// leaves running is printed after it, on the normal screen.
func (m Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	v.WindowTitle = "apimdev"
	return v
}

// Render is the screen as text, fitted to the window.
func (m Model) Render() string {
	w, h := m.width, m.height
	if w <= 0 {
		w = 80
	}
	if h <= 0 {
		h = 24
	}
	head := []string{m.header(), ""}
	foot := []string{""}
	if m.note != "" {
		foot = append(foot, m.sty.warn.Render(m.note))
	}
	foot = append(foot, m.help.ShortHelpView(m.keys.forState(m).short))

	var body []string
	if m.showHelp {
		body = m.helpLines()
	} else {
		body = lines(strings.TrimRight(m.body(), "\n"))
		if m.showLogs && m.state != stateForm && m.state != statePromoteDiff && m.state != statePromoteConfirm {
			room := h - len(head) - len(m.wrapAll(foot, w)) - m.logsHeight() - 2
			body = clip(body, max(room, 3))
			body = append(body, "", m.sty.faint.Render(fmt.Sprintf("── logs (l hides them; ↑/↓ pgup/pgdn scroll) %s", strings.Repeat("─", max(w-48, 0)))))
			body = append(body, lines(indent(m.logs.View(), "  "))...)
		}
	}
	foot = m.wrapAll(foot, w)
	body = clip(body, max(h-len(head)-len(foot), 1))
	all := append(append(head, body...), foot...)
	for i, l := range all {
		all[i] = ansi.Truncate(l, w, "…")
	}
	return strings.Join(all, "\n")
}

func (m Model) header() string {
	sub := ""
	switch m.state {
	case stateForm:
		sub = "a local Azure API Management self-hosted gateway"
	case stateRunning:
		sub = fmt.Sprintf("bringing up %s on kind cluster %q", m.cfg.Gateway.Name, m.cfg.Cluster.Name)
		if m.attempt > 0 {
			sub += fmt.Sprintf(" (retry %d)", m.attempt)
		}
	case stateFailed:
		sub = fmt.Sprintf("%s on kind cluster %q stopped", m.cfg.Gateway.Name, m.cfg.Cluster.Name)
	case stateResult:
		sub = fmt.Sprintf("%s is up on kind cluster %q", m.cfg.Gateway.Name, m.cfg.Cluster.Name)
	default:
		sub = "promote dev → prod"
	}
	return m.sty.brand.Render("apimdev") + m.sty.faint.Render(" · "+sub)
}

func (m Model) body() string {
	switch m.state {
	case stateForm:
		return m.formView()
	case stateRunning:
		return m.runView()
	case stateFailed:
		return m.failedView()
	case stateResult:
		return m.resultView()
	case stateTop:
		if m.top != nil {
			return m.top.render()
		}
		return ""
	default:
		return m.promoteBody()
	}
}

func (m Model) helpLines() []string {
	out := []string{m.sty.title.Render("Keys on this screen"), ""}
	h := m.help
	h.ShowAll = true
	out = append(out, lines(indent(h.View(m.keys.forState(m)), "  "))...)
	out = append(out, "", m.sty.faint.Render(indent(wrap("? or esc closes this help. Ctrl-C always stops cleanly: running apimdev again resumes where it stopped.", m.width-4), "  ")))
	return out
}

func (m Model) formView() string {
	var b strings.Builder
	if m.opts.ConfigFile != "" {
		b.WriteString(m.sty.faint.Render("Prefilled from "+m.opts.ConfigFile+".") + "\n\n")
	}
	if m.form.submitting {
		b.WriteString(m.spin.View() + " reading the token …\n")
	} else {
		b.WriteString(strings.TrimRight(m.form.form.View(), "\n") + "\n")
	}
	if line, tone := m.form.tokenStatus(); line != "" {
		b.WriteString("\n" + m.sty.tone(tone).Render(wrap("token: "+line, m.width-2)) + "\n")
	}
	if m.form.submitErr != "" {
		b.WriteString("\n" + m.sty.bad.Render(wrap(m.form.submitErr, m.width-2)) + "\n")
	}
	return b.String()
}

// stepLines is a step list: finished steps with ✓/✗ and their time, the
// running one with the spinner, its elapsed time and what it does now.
func (m Model) stepLines(l stepList) []string {
	var out []string
	for _, r := range l.rows {
		var line string
		switch r.status {
		case stepPending:
			line = m.sty.faint.Render(fmt.Sprintf("  · %s", r.name))
		case stepRunning:
			detail := r.detail
			if m.stopping {
				detail = "stopping … (Ctrl-C again leaves at once)"
			}
			// What the step does now is shown whole, wrapped under itself.
			const pad = 23 // "  ⠋ deploy      12.3s  "
			ds := lines(wrap(detail, max(m.width-pad-1, 20)))
			if len(ds) == 0 {
				ds = []string{""}
			}
			line = fmt.Sprintf("  %s %-10s %6s  %s", m.spin.View(), r.name, events.FormatElapsed(m.now().Sub(r.started)), ds[0])
			for _, d := range ds[1:] {
				line += "\n" + strings.Repeat(" ", pad) + d
			}
		case stepDone:
			line = fmt.Sprintf("  %s %-10s %6s  %s", m.sty.ok.Render("✓"), r.name, events.FormatElapsed(r.elapsed), m.sty.faint.Render(r.detail))
		case stepFailed:
			line = fmt.Sprintf("  %s %-10s %6s  %s", m.sty.bad.Render("✗"), r.name, events.FormatElapsed(r.elapsed), firstLine(r.detail))
		}
		out = append(out, lines(line)...)
	}
	return out
}

func (m Model) warningLines(l stepList) []string {
	var out []string
	for _, w := range l.warnings {
		ws := lines(wrap(w, max(m.width-5, 20)))
		out = append(out, m.sty.warn.Render("  ! ")+ws[0])
		for _, c := range ws[1:] {
			out = append(out, "    "+c)
		}
	}
	return out
}

func (m Model) runView() string {
	out := m.stepLines(m.steps)
	if ws := m.warningLines(m.steps); len(ws) > 0 {
		out = append(append(out, ""), ws...)
	}
	return strings.Join(out, "\n")
}

func (m Model) failedView() string {
	out := m.stepLines(m.steps)
	if ws := m.warningLines(m.steps); len(ws) > 0 {
		out = append(append(out, ""), ws...)
	}
	f := m.failure
	if f == nil {
		return strings.Join(out, "\n")
	}
	out = append(out, "")
	switch {
	case f.interrupted:
		out = append(out, m.sty.warn.Render("■ ")+m.sty.title.Render("interrupted during "+f.step))
	case f.step == "":
		out = append(out, m.sty.bad.Render("✗ ")+m.sty.title.Render("could not start"))
	default:
		out = append(out, m.sty.bad.Render("✗ ")+m.sty.title.Render(f.step+" failed"))
	}
	tw := m.width - 4
	out = append(out, lines(indent(wrap(f.err.Error(), tw), "    "))...)
	if f.hint != "" && !strings.Contains(f.err.Error(), f.hint) {
		out = append(out, lines(indent(wrap(m.sty.accent.Render("fix: ")+f.hint, tw), "    "))...)
	}
	if m.res != nil && len(m.res.Smoke) > 0 {
		out = append(out, "")
		out = append(out, m.smokeLines()...)
	}
	out = append(out, "")
	resume := "r retries from there: every step reuses what exists. e changes the settings first."
	if f.step == pipeline.StepSmoke && m.res != nil {
		resume = "The forward is up: s runs the smoke calls again, r runs every step again, e changes the settings."
	}
	out = append(out, m.sty.faint.Render(indent(wrap(resume, m.width-4), "  ")))
	return strings.Join(out, "\n")
}

func (m Model) resultView() string {
	res := m.res
	if res == nil {
		return ""
	}
	var out []string
	out = append(out, m.sty.ok.Render("✓ ")+m.sty.title.Render(m.cfg.Gateway.Name+" answers on 127.0.0.1"), "")
	out = append(out,
		fmt.Sprintf("  %s", m.sty.accent.Render(fmt.Sprintf("http://127.0.0.1:%d", res.HTTPPort))),
		fmt.Sprintf("  %s  %s", m.sty.accent.Render(fmt.Sprintf("https://127.0.0.1:%d", res.HTTPSPort)), m.sty.faint.Render("(self-signed certificate)")),
		"")
	out = append(out, m.smokeLines()...)
	out = append(out, "")
	if res.DemoKey != "" {
		out = append(out, lines(indent(wrap("This is apimdev's demo gateway ("+demo.Label+"): an echo API with a key made on this machine. Try it:", m.width-4), "  "))...)
		out = append(out, fmt.Sprintf("  %-8s %s", "key", m.sty.accent.Render(res.DemoKey)))
		curl := fmt.Sprintf("curl -H \"%s: %s\" http://127.0.0.1:%d/echo/hello", demo.SubscriptionHeader, res.DemoKey, res.HTTPPort)
		out = append(out, lines(indent(wrap(curl, m.width-4), "  "))...)
		out = append(out, "")
	}
	out = append(out, fmt.Sprintf("  %-8s %s", "token", m.sty.tone(toneOf(res.TokenExpiry)).Render(res.TokenExpiry.Describe())))
	if res.Links != nil {
		tone := toneOK
		if slices.ContainsFunc(res.Links, func(l pipeline.PodLink) bool { return l.State != gwlink.Synced }) {
			tone = toneWarn
		}
		out = append(out, lines(indent(wrap(fmt.Sprintf("%-8s %s", "link", m.sty.tone(tone).Render(pipeline.LinkSummary(res.Links, time.Now()))), m.width-4), "  "))...)
	}
	for _, b := range res.Backends {
		tone := toneOK
		if b.State != "answering" && b.State != "ready" {
			tone = toneWarn
		}
		out = append(out, lines(indent(wrap(fmt.Sprintf("%-8s %s %s", "backend", b.Name, m.sty.tone(tone).Render(b.Line())), m.width-4), "  "))...)
	}
	if m.where.Kubeconfig != "" {
		cmd := fmt.Sprintf("KUBECONFIG=%s kubectl -n %s get pods", m.where.Kubeconfig, m.where.Namespace)
		out = append(out, lines(indent(wrap(fmt.Sprintf("%-8s %s", "kubectl", cmd), m.width-4), "  "))...)
	}
	out = append(out, "")
	if res.Detached {
		out = append(out, indent(wrap(fmt.Sprintf("The forward runs in the background (pid %d) and keeps running after you quit; `apimdev down` stops it and removes the cluster.", res.ForwardPID), m.width-4), "  "))
	} else {
		out = append(out, indent(wrap("The forward runs in this window until you quit (q). The cluster and the gateway keep running after that: `apimdev up --detach` forwards in the background, `apimdev down` removes them.", m.width-4), "  "))
	}
	out = append(out, "", m.stepSummary(m.steps))
	return strings.Join(out, "\n")
}

// smokeLines is the smoke table as `apimdev smoke` prints it, failures in red.
func (m Model) smokeLines() []string {
	var out []string
	if m.busy && m.state != stateRunning {
		out = append(out, "  "+m.spin.View()+" running the smoke calls again …")
	}
	if m.smokeErr != nil {
		out = append(out, m.sty.bad.Render("  ✗ smoke: "+m.smokeErr.Error()))
	}
	if m.res == nil || len(m.res.Smoke) == 0 {
		return out
	}
	var buf bytes.Buffer
	smoke.Table(&buf, m.res.Smoke)
	for _, l := range lines(strings.TrimRight(buf.String(), "\n")) {
		switch {
		case strings.Contains(l, "FAIL"):
			l = m.sty.bad.Render(l)
		case strings.HasPrefix(l, "CALL"):
			l = m.sty.title.Render(l)
		case strings.HasPrefix(l, "note:"):
			l = m.sty.faint.Render(l)
		}
		out = append(out, "  "+l)
	}
	return out
}

// stepSummary is the finished steps on one line.
func (m Model) stepSummary(l stepList) string {
	var parts []string
	for _, r := range l.rows {
		switch r.status {
		case stepDone:
			parts = append(parts, m.sty.ok.Render("✓")+" "+r.name+" "+events.FormatElapsed(r.elapsed))
		case stepFailed:
			parts = append(parts, m.sty.bad.Render("✗")+" "+r.name+" "+events.FormatElapsed(r.elapsed))
		}
	}
	return m.sty.faint.Render("  ") + strings.Join(parts, m.sty.faint.Render(" · "))
}

func (m Model) wrapAll(ls []string, w int) []string {
	var out []string
	for _, l := range ls {
		if l == "" {
			out = append(out, l)
			continue
		}
		out = append(out, lines(wrap(l, w))...)
	}
	return out
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// clip keeps the first n lines.
func clip(ls []string, n int) []string {
	if len(ls) > n {
		return ls[:n]
	}
	return ls
}

func indent(s, pad string) string {
	if s == "" {
		return s
	}
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// wrap breaks s at word boundaries to width w (hard-breaking long words).
func wrap(s string, w int) string {
	if w < 10 {
		w = 10
	}
	return ansi.Wrap(s, w, "")
}
