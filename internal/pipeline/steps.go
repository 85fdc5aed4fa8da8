package pipeline

import (
	"context"
	"fmt"

	"github.com/apimdev/apimdev/internal/events"
)

// step is one named step of a flow: what it is called, what it says when it
// starts, and its work, which returns what it says when it is done. Flows
// are lists of steps, appended only when they apply (kind's actions).
//
// Two kinds of entry have no events of their own:
//   - a stage (no name) is work between steps, such as asking the user or
//     loading images: it says what it does through the step before it, and
//     its error is returned as it is;
//   - a span runs its steps inside around, which brackets them all (the
//     traffic that flows through an apply and its rollout).
//
// A soft step's failure is reported, but the flow goes on: the production
// checks say which proof failed, and the result carries them.
type step struct {
	name   string
	detail string
	// describe, when set, gives the detail as the step starts: from what
	// the steps before it found.
	describe func() string
	run      func(ctx context.Context, st *events.Step) (string, error)
	soft     bool
	around   func(ctx context.Context, inner func() error) error
	steps    []step
}

// stage is work between a flow's named steps, with no events of its own.
func stage(run func(ctx context.Context) error) step {
	return step{run: func(ctx context.Context, _ *events.Step) (string, error) { return "", run(ctx) }}
}

// span runs steps inside around.
func span(around func(ctx context.Context, inner func() error) error, steps ...step) step {
	return step{around: around, steps: steps}
}

// FailedStep is set on errors from a flow: the step that failed, so a face
// can say "interrupted during deploy" or offer a retry from there.
type FailedStep struct {
	Step string
	Err  error
}

func (e *FailedStep) Error() string { return e.Err.Error() }
func (e *FailedStep) Unwrap() error { return e.Err }

// runSteps runs steps in order: each is started, then done or failed (its
// error reported once, by the step) and wrapped in a FailedStep naming it.
// It is the one loop every flow runs through (up, promote, upgrade, rotate,
// drain, down).
func (s *Session) runSteps(ctx context.Context, steps []step) error {
	for _, x := range steps {
		if err := s.runStep(ctx, x); err != nil {
			return err
		}
	}
	return nil
}

func (s *Session) runStep(ctx context.Context, x step) error {
	switch {
	case x.around != nil:
		return x.around(ctx, func() error { return s.runSteps(ctx, x.steps) })
	case x.name == "":
		_, err := x.run(ctx, nil)
		return err
	}
	detail := x.detail
	if x.describe != nil {
		detail = x.describe()
	}
	st := s.Rep.Start(x.name, detail)
	s.current.set(st)
	defer s.current.set(nil)
	done, err := x.run(ctx, st)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	switch {
	case err != nil && x.soft:
		st.Fail(err)
	case err != nil:
		return &FailedStep{Step: x.name, Err: st.Fail(err)}
	default:
		st.Done(done)
	}
	return nil
}

// names are the named steps of a flow, spans' included, in order.
func names(steps []step) []string {
	var out []string
	for _, x := range steps {
		if x.around != nil {
			out = append(out, names(x.steps)...)
		} else if x.name != "" {
			out = append(out, x.name)
		}
	}
	return out
}

// SmokeError says smoke calls failed.
type SmokeError struct{ Failed, Total int }

func (e *SmokeError) Error() string {
	return fmt.Sprintf("%d of %d smoke call(s) failed (see the table)", e.Failed, e.Total)
}

// Hint says where to look.
func (e *SmokeError) Hint() string {
	return "each failed row says why; `apimdev status` and `kubectl logs` show the gateway's side"
}
