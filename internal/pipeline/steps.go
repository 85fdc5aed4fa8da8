package pipeline

import (
	"context"
	"fmt"

	"github.com/apimdev/apimdev/internal/events"
)

// step is one named step of a flow: what it is called, what it says when it
// starts, and its work, which returns what it says when it is done. Flows
// are lists of steps, appended only when they apply (kind's actions).
type step struct {
	name   string
	detail string
	run    func(ctx context.Context, st *events.Step) (string, error)
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
func (s *Session) runSteps(ctx context.Context, steps []step) error {
	for _, x := range steps {
		st := s.Rep.Start(x.name, x.detail)
		s.current.set(st)
		done, err := x.run(ctx, st)
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err != nil {
			s.current.set(nil)
			return &FailedStep{Step: x.name, Err: st.Fail(err)}
		}
		st.Done(done)
	}
	s.current.set(nil)
	return nil
}

func names(steps []step) []string {
	out := make([]string, len(steps))
	for i, x := range steps {
		out[i] = x.name
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
