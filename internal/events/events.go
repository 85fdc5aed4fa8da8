package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// State is where a step is.
type State string

const (
	Started  State = "start"
	Progress State = "progress"
	Done     State = "done"
	Failed   State = "failed"
	Warning  State = "warn"
	Info     State = "info"
)

// Event is one thing a step reports.
type Event struct {
	Step    string        `json:"step"`
	State   State         `json:"state"`
	Elapsed time.Duration `json:"-"`
	Detail  string        `json:"detail,omitempty"`
	Hint    string        `json:"hint,omitempty"`
	Time    time.Time     `json:"time"`
}

// MarshalJSON writes elapsed as fractional seconds, which is what people read.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	return json.Marshal(struct {
		plain
		ElapsedSeconds float64 `json:"elapsed"`
	}{plain(e), roundSeconds(e.Elapsed)})
}

func roundSeconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface{ Emit(Event) }

// Hinter is implemented by errors that carry a fix the user can act on.
type Hinter interface{ Hint() string }

// HintOf finds the first hint in err's chain (joined errors included).
func HintOf(err error) string {
	var h Hinter
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

// Reporter hands out steps that emit to a sink with a clock.
type Reporter struct {
	sink Sink
	now  func() time.Time
}

// NewReporter makes a Reporter; now may be nil for time.Now.
func NewReporter(s Sink, now func() time.Time) *Reporter {
	if now == nil {
		now = time.Now
	}
	return &Reporter{sink: s, now: now}
}

// Discard is a Reporter that drops everything.
func Discard() *Reporter { return NewReporter(SinkFunc(func(Event) {}), nil) }

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Emit calls f.
func (f SinkFunc) Emit(e Event) { f(e) }

// Start begins a named step.
func (r *Reporter) Start(step, detail string) *Step {
	s := &Step{r: r, name: step, start: r.now()}
	s.emit(Started, detail, "")
	return s
}

// Warn reports a warning outside any step.
func (r *Reporter) Warn(step, detail, hint string) {
	r.sink.Emit(Event{Step: step, State: Warning, Detail: detail, Hint: hint, Time: r.now()})
}

// Info reports a line of information outside any step.
func (r *Reporter) Info(step, detail string) {
	r.sink.Emit(Event{Step: step, State: Info, Detail: detail, Time: r.now()})
}

// Step is one running step.
type Step struct {
	r     *Reporter
	name  string
	start time.Time
	mu    sync.Mutex
	ended bool
}

func (s *Step) emit(st State, detail, hint string) {
	now := s.r.now()
	s.r.sink.Emit(Event{Step: s.name, State: st, Elapsed: now.Sub(s.start), Detail: detail, Hint: hint, Time: now})
}

// Progress reports what the step is doing now.
func (s *Step) Progress(format string, args ...any) {
	s.emit(Progress, fmt.Sprintf(format, args...), "")
}

// Warn reports a warning within the step; the step goes on.
func (s *Step) Warn(detail, hint string) { s.emit(Warning, detail, hint) }

// Done ends the step successfully. Later ends are ignored.
func (s *Step) Done(detail string) {
	if s.end() {
		s.emit(Done, detail, "")
	}
}

// Fail ends the step with err and returns it marked as Reported, so
// `return s.Fail(err)` reads well and a face does not show it twice.
func (s *Step) Fail(err error) error {
	if err == nil {
		return nil
	}
	if s.end() {
		s.emit(Failed, err.Error(), HintOf(err))
	}
	var r *Reported
	if errors.As(err, &r) {
		return err
	}
	return &Reported{Err: err}
}

// Reported marks an error that a step's failure event has already shown.
type Reported struct{ Err error }

func (r *Reported) Error() string { return r.Err.Error() }
func (r *Reported) Unwrap() error { return r.Err }

// WasReported tells whether err was shown by a step's failure event.
func WasReported(err error) bool {
	var r *Reported
	return errors.As(err, &r)
}

// End is for defer: it fails the step if it has not ended yet, with *errp.
func (s *Step) End(errp *error) {
	if errp != nil && *errp != nil {
		s.Fail(*errp)
		return
	}
	s.Done("")
}

func (s *Step) end() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.ended
	s.ended = true
	return !was
}

// JSON writes one JSON object per line.
type JSON struct {
	mu sync.Mutex
	w  io.Writer
}

// NewJSON makes a JSON-lines sink.
func NewJSON(w io.Writer) *JSON { return &JSON{w: w} }

// Emit writes e as one line.
func (j *JSON) Emit(e Event) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _ = j.w.Write(append(b, '\n'))
}

// Text writes a line per step with ✓/✗ and elapsed time; progress lines are
// indented under the step. With Verbose false, progress shows only on a
// terminal-like writer that can take it (Progress true).
type Text struct {
	mu       sync.Mutex
	w        io.Writer
	Progress bool // show progress lines
	ASCII    bool // no ✓/✗ glyphs
}

// NewText makes a text sink.
func NewText(w io.Writer, progress bool) *Text { return &Text{w: w, Progress: progress} }

// Emit prints e.
func (t *Text) Emit(e Event) {
	ok, bad, dot, warn := "✓", "✗", "•", "!"
	if t.ASCII {
		ok, bad, dot = "ok", "FAIL", "-"
	}
	var line string
	switch e.State {
	case Started:
		if !t.Progress {
			return
		}
		line = fmt.Sprintf("%s %s %s", dot, e.Step, e.Detail)
	case Progress:
		if !t.Progress {
			return
		}
		line = fmt.Sprintf("    %s", e.Detail)
	case Done:
		line = fmt.Sprintf("%s %-10s %6s  %s", ok, e.Step, FormatElapsed(e.Elapsed), e.Detail)
	case Failed:
		line = fmt.Sprintf("%s %-10s %6s  %s", bad, e.Step, FormatElapsed(e.Elapsed), indent(e.Detail))
		if e.Hint != "" {
			line += "\n    fix: " + indent(e.Hint)
		}
	case Warning:
		line = fmt.Sprintf("%s %s: %s", warn, e.Step, indent(e.Detail))
		if e.Hint != "" {
			line += "\n    fix: " + indent(e.Hint)
		}
	case Info:
		line = fmt.Sprintf("  %s", e.Detail)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = io.WriteString(t.w, strings.TrimRight(line, " ")+"\n")
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n    ") }

// FormatElapsed writes a step's time as every face shows it: 375ms, 9.3s,
// 2m05s.
func FormatElapsed(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	default:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
}

// Tee sends every event to several sinks.
type Tee []Sink

// Emit forwards e.
func (t Tee) Emit(e Event) {
	for _, s := range t {
		s.Emit(e)
	}
}

// Recorder keeps every event; tests and the TUI read it.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Emit records e.
func (r *Recorder) Emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns a copy of what was recorded.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
