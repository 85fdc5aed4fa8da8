package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/apimdev/apimdev/internal/events"
)

// Run shows the wizard on out (the terminal's stderr, so stdout stays clean)
// with keys from in, until the user leaves. Then, on the normal screen, it
// prints what ran, what is left running and how to resume. The end of ctx
// (a signal) stops it as Ctrl-C does.
func Run(ctx context.Context, opts Options, in io.Reader, out io.Writer) (Outcome, error) {
	opts.Context = ctx
	m := New(opts)
	// Signals are main's: its context ends and the model leaves cleanly.
	p := tea.NewProgram(m, tea.WithInput(in), tea.WithOutput(out), tea.WithoutSignalHandler())
	m.Attach(p.Send)
	stop := context.AfterFunc(ctx, func() { p.Send(interruptMsg{}) })
	final, err := p.Run()
	stop()
	fm, ok := final.(Model)
	if !ok {
		return Outcome{}, err
	}
	o := fm.Outcome()
	fmt.Fprint(out, fm.ClosingNote(o, func() string { return opts.Runner.Exists(ctx) }))
	return o, err
}

// ClosingNote is what is printed once the wizard has left the screen: the
// steps of the last run, what exists and how to go on. exists is asked only
// when the run did not finish.
func (m Model) ClosingNote(o Outcome, exists func() string) string {
	var b strings.Builder
	if o.Started {
		for _, r := range m.steps.rows {
			switch r.status {
			case stepDone:
				fmt.Fprintf(&b, "✓ %-10s %6s  %s\n", r.name, events.FormatElapsed(r.elapsed), r.detail)
			case stepFailed:
				if o.Interrupted && r.name == o.Step {
					fmt.Fprintf(&b, "■ %-10s %6s  interrupted\n", r.name, events.FormatElapsed(r.elapsed))
					continue
				}
				fmt.Fprintf(&b, "✗ %-10s %6s  %s\n", r.name, events.FormatElapsed(r.elapsed), firstLine(r.detail))
			}
		}
	}
	const again = "Run `apimdev` (or `apimdev up`) again to continue from there: every step reuses what exists. `apimdev down` removes everything.\n"
	switch {
	case !o.Started:
		b.WriteString("apimdev: nothing was started. Run `apimdev` again when you have the gateway's name, endpoint and token (or see `apimdev up --help`).\n")
	case o.Forced:
		step := o.Step
		if step == "" {
			step = "a step"
		}
		fmt.Fprintf(&b, "\nleft at once while %s ran; `apimdev status` shows what exists.\n%s", step, again)
	case o.Interrupted:
		fmt.Fprintf(&b, "\ninterrupted during %s. Now: %s.\n%s", o.Step, exists(), again)
	case o.Err != nil:
		what := o.Step + " failed"
		if o.Step == "" {
			what = "could not start"
		}
		fmt.Fprintf(&b, "\n%s: %s\n", what, o.Err)
		if o.Hint != "" && !strings.Contains(o.Err.Error(), o.Hint) {
			fmt.Fprintf(&b, "fix: %s\n", o.Hint)
		}
		fmt.Fprintf(&b, "Now: %s.\n%s", exists(), again)
	case o.Detached:
		b.WriteString(promoteNote(o))
		fmt.Fprintf(&b, "\nThe gateway answers on http://127.0.0.1:%d and https://127.0.0.1:%d; the forward keeps running in the background (pid %d). `apimdev down` removes everything.\n",
			m.res.HTTPPort, m.res.HTTPSPort, o.ForwardPID)
	default:
		b.WriteString(promoteNote(o))
		b.WriteString("\nstopped forwarding; the cluster and the gateway are still running. `apimdev up --detach` forwards in the background again, `apimdev status` shows them, `apimdev down` removes them.\n")
	}
	return b.String()
}

// promoteNote says how a promote run from the wizard ended, and what to do
// next; "" when none ran.
func promoteNote(o Outcome) string {
	switch {
	case o.Promoted:
		return "\npromoted to prod: the gateway runs the prod profile (`apimdev status` shows it, `apimdev promote --to dev --yes` goes back).\n"
	case errors.Is(o.PromoteErr, context.Canceled):
		return "\npromote interrupted: what was applied stays, and Kubernetes carries the rollout on; `apimdev status` shows where it is, `apimdev promote --yes` runs it again with its checks.\n"
	case o.PromoteErr != nil:
		return fmt.Sprintf("\npromote failed: %s\nWhat was applied stays; `apimdev promote --yes` tries again, `apimdev promote --to dev --yes` goes back.\n", firstLine(o.PromoteErr.Error()))
	}
	return ""
}
