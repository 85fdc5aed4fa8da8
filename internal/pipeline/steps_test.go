package pipeline

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/token"
)

// steps are the start, done and failed events of a log, as "step state".
func (l *eventLog) steps() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.ev {
		if e.State == events.Started || e.State == events.Done || e.State == events.Failed {
			out = append(out, e.Step+" "+string(e.State))
		}
	}
	return out
}

// The one loop: named steps report, stages and spans do not, a soft step's
// failure is said and the flow goes on, a hard one stops it.
func TestRunStepsRunsStagesSpansAndSoftSteps(t *testing.T) {
	log := &eventLog{}
	s := &Session{Rep: events.NewReporter(log, time.Now)}
	var order []string
	do := func(name string, err error) func(context.Context, *events.Step) (string, error) {
		return func(context.Context, *events.Step) (string, error) {
			order = append(order, name)
			return name + " ok", err
		}
	}
	stageErr := errors.New("declined")
	flow := []step{
		{name: "a", run: do("a", nil)},
		stage(func(context.Context) error { order = append(order, "between"); return nil }),
		span(func(_ context.Context, inner func() error) error {
			order = append(order, "open")
			err := inner()
			order = append(order, "close")
			return err
		}, step{name: "b", describe: func() string { return strings.Join(order, ",") }, run: do("b", nil)}, step{name: "c", run: do("c", nil)}),
		{name: "d", run: do("d", errors.New("1 of 2 check(s) failed")), soft: true},
		{name: "e", run: do("e", nil)},
	}
	if got := names(flow); !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("names: %v", got)
	}
	if err := s.runSteps(context.Background(), flow); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "between", "open", "b", "c", "close", "d", "e"}; !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	want := []string{"a start", "a done", "b start", "b done", "c start", "c done", "d start", "d failed", "e start", "e done"}
	if got := log.steps(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if !strings.Contains(log.text(), "b start a,between,open\n") {
		t.Fatalf("describe did not run as b started:\n%s", log.text())
	}

	// A stage's error comes back as it is; a named step's names the step.
	err := s.runSteps(context.Background(), []step{stage(func(context.Context) error { return stageErr }), {name: "x", run: do("x", nil)}})
	var fs *FailedStep
	if err != stageErr {
		t.Fatalf("stage error: %v", err)
	}
	err = s.runSteps(context.Background(), []step{{name: "y", run: do("y", errors.New("boom"))}, {name: "z", run: do("z", nil)}})
	if !errors.As(err, &fs) || fs.Step != "y" || slices.Contains(order, "z") {
		t.Fatalf("hard failure: %v, ran %v", err, order)
	}
}

// promote, upgrade and rotate run through the same loop as up: their
// named steps, in order, each started once and ended once, the checks too.
func TestPromoteAndRotateAreStepLists(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mustUp(t, w, UpOptions{})
	w.log.reset()
	promote(t, w, PromoteOptions{To: "prod"})
	want := []string{"plan start", "plan done", "apply start", "apply done", "rollout start", "rollout done", "checks start", "checks done"}
	if got := w.log.steps(); !slices.Equal(got, want) {
		t.Fatalf("promote's steps %v, want %v\n%s", got, want, w.log.text())
	}
	if !strings.Contains(w.log.text(), "apply start prod\n") {
		t.Fatalf("apply does not name the profile it applies:\n%s", w.log.text())
	}

	w.log.reset()
	newTok, _ := token.Parse("GatewayKey contoso-gw&202701151200&TkVXLXRva2VuLWZvci1yb3RhdGlvbg==")
	if _, err := w.session().RotateToken(context.Background(), newTok, PromoteOptions{}); err != nil {
		t.Fatal(err)
	}
	want = []string{"rotate start", "rotate done", "rollout start", "rollout done", "checks start", "checks done"}
	if got := w.log.steps(); !slices.Equal(got, want) {
		t.Fatalf("rotate's steps %v, want %v\n%s", got, want, w.log.text())
	}

	// Declined: the plan is shown, nothing after it runs.
	w.log.reset()
	mark := len(w.kube.Actions())
	res, err := w.session().Promote(context.Background(), PromoteOptions{To: "dev", Confirm: func(string) bool { return false }})
	if !errors.Is(err, ErrDeclined) || res == nil || !res.Declined || w.writes(mark) != 0 {
		t.Fatalf("declined: %+v %v, %d write(s)", res, err, w.writes(mark))
	}
	if got := w.log.steps(); !slices.Equal(got, []string{"plan start", "plan done"}) {
		t.Fatalf("declined promote's steps %v", got)
	}
}
