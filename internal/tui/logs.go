package tui

import (
	"strings"

	"charm.land/bubbles/v2/viewport"
)

// maxLogLines bounds the logs pane; the oldest lines go first.
const maxLogLines = 3000

// logPane is the collapsible pane of every event, kind line and pod event
// of the session, newest at the bottom.
type logPane struct {
	lines  []string
	vp     viewport.Model
	follow bool // stay at the bottom as lines arrive
}

func newLogPane() logPane {
	return logPane{vp: viewport.New(), follow: true}
}

func (p *logPane) add(lines ...string) {
	p.lines = append(p.lines, lines...)
	if over := len(p.lines) - maxLogLines; over > 0 {
		p.lines = append([]string(nil), p.lines[over:]...)
	}
	p.vp.SetContentLines(p.lines)
	if p.follow {
		p.vp.GotoBottom()
	}
}

// SetSize fits the pane into w×h cells.
func (p *logPane) SetSize(w, h int) {
	p.vp.SetWidth(w)
	p.vp.SetHeight(max(h, 1))
	if p.follow {
		p.vp.GotoBottom()
	}
}

func (p *logPane) scroll(lines int) {
	if lines < 0 {
		p.vp.ScrollUp(-lines)
	} else {
		p.vp.ScrollDown(lines)
	}
	p.follow = p.vp.AtBottom()
}

func (p *logPane) page(down bool) {
	n := max(p.vp.Height()-1, 1)
	if !down {
		n = -n
	}
	p.scroll(n)
}

func (p logPane) View() string {
	if len(p.lines) == 0 {
		return "(nothing logged yet)"
	}
	return strings.TrimRight(p.vp.View(), "\n")
}
