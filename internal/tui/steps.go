package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/apimdev/apimdev/internal/events"
)

type stepStatus int

const (
	stepPending stepStatus = iota
	stepRunning
	stepDone
	stepFailed
)

// stepRow is one step as the run view shows it.
type stepRow struct {
	name    string
	status  stepStatus
	started time.Time     // when it started, for the live elapsed time
	elapsed time.Duration // once it ended
	detail  string        // running: what it does now; ended: its summary
	hint    string        // the fix, when it failed
}

// stepList is the steps of one run, in order, and the warnings it gave.
// Steps not known up front (promote's) are added as they start.
type stepList struct {
	rows     []stepRow
	warnings []string
}

func newStepList(names []string) stepList {
	l := stepList{}
	for _, n := range names {
		l.rows = append(l.rows, stepRow{name: n})
	}
	return l
}

func (l *stepList) row(name string) *stepRow {
	for i := range l.rows {
		if l.rows[i].name == name {
			return &l.rows[i]
		}
	}
	return nil
}

// apply folds one event into the list.
func (l *stepList) apply(e events.Event) {
	r := l.row(e.Step)
	switch e.State {
	case events.Started:
		if r == nil {
			l.rows = append(l.rows, stepRow{name: e.Step})
			r = &l.rows[len(l.rows)-1]
		}
		*r = stepRow{name: e.Step, status: stepRunning, started: e.Time.Add(-e.Elapsed), detail: firstLine(e.Detail)}
	case events.Progress:
		if r != nil && r.status == stepRunning {
			r.detail = firstLine(e.Detail)
		}
	case events.Done:
		if r != nil {
			r.status, r.elapsed, r.detail = stepDone, e.Elapsed, firstLine(e.Detail)
		}
	case events.Failed:
		if r != nil {
			r.status, r.elapsed, r.detail, r.hint = stepFailed, e.Elapsed, e.Detail, e.Hint
		}
	case events.Warning:
		w := e.Step + ": " + firstLine(e.Detail)
		if e.Hint != "" {
			w += " (fix: " + e.Hint + ")"
		}
		l.warnings = append(l.warnings, w)
	}
}

// running is the step running now, if any.
func (l *stepList) running() *stepRow {
	for i := range l.rows {
		if l.rows[i].status == stepRunning {
			return &l.rows[i]
		}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// logLines turns an event into lines for the logs pane.
func logLines(e events.Event) []string {
	mark := map[events.State]string{events.Started: "•", events.Progress: " ", events.Done: "✓", events.Failed: "✗", events.Warning: "!", events.Info: " "}[e.State]
	head := fmt.Sprintf("%s %s %-9s ", e.Time.Format("15:04:05"), mark, e.Step)
	if e.State == events.Done || e.State == events.Failed {
		head += events.FormatElapsed(e.Elapsed) + "  "
	}
	lines := strings.Split(strings.TrimRight(e.Detail, "\n"), "\n")
	out := []string{head + lines[0]}
	pad := strings.Repeat(" ", 22)
	for _, l := range lines[1:] {
		out = append(out, pad+l)
	}
	if e.Hint != "" {
		out = append(out, pad+"fix: "+e.Hint)
	}
	return out
}
