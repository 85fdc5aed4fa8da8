package tui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"

	"github.com/apimdev/apimdev/internal/config"
	"github.com/apimdev/apimdev/internal/events"
	"github.com/apimdev/apimdev/internal/pipeline"
	"github.com/apimdev/apimdev/internal/smoke"
	"github.com/apimdev/apimdev/internal/token"
)

// screen is the screen the wizard is on.
type screen int

const (
	stateForm screen = iota
	stateRunning
	stateFailed
	stateResult
	statePromoteDiff
	statePromoteConfirm
	statePromoting
	statePromoteDone
	stateTop
)

var stateNames = [...]string{"form", "running", "failed", "result", "promote-diff", "promote-confirm", "promoting", "promote-done", "top"}

func (s screen) String() string { return stateNames[s] }

// Options are what the wizard starts from.
type Options struct {
	// Config prefills the form: defaults, then apimdev.yaml, then APIMDEV_*
	// variables, then flags. Its other fields (cluster, namespace, smoke
	// file…) are used as they are.
	Config config.Config
	// ConfigFile names the file Config was read from, for a note; "" if none.
	ConfigFile string
	Getenv     func(string) string
	Runner     Runner
	// Promoter drives the promote view; nil disables it, with a note.
	Promoter Promoter
	// Sampler feeds the traffic view (t, as `apimdev top`); nil disables it.
	Sampler Sampler
	// Context is the parent of every run; its end stops the run as Ctrl-C does.
	Context context.Context
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Messages.
type (
	eventMsg  struct{ events.Event }
	upDoneMsg struct {
		res   *pipeline.UpResult
		err   error
		where Where
	}
	smokeDoneMsg struct {
		results []smoke.Result
		err     error
	}
	// closedMsg says the runner let go of the forward and the lock.
	closedMsg struct{}
	// interruptMsg is sent when the parent context ends (a signal).
	interruptMsg struct{}
)

// link lets commands reach the running program, so step events and promote
// samples arrive as messages (Program.Send).
type link struct {
	mu   sync.Mutex
	send func(tea.Msg)
}

func (l *link) set(send func(tea.Msg)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.send = send
}

func (l *link) Send(msg tea.Msg) {
	l.mu.Lock()
	send := l.send
	l.mu.Unlock()
	if send != nil {
		send(msg)
	}
}

// Model is the wizard: one root model with an explicit state.
type Model struct {
	opts Options
	keys keyMap
	sty  styles
	link *link
	rep  *events.Reporter
	now  func() time.Time

	state         screen
	width, height int
	// top is the traffic view while state is stateTop; topFrom is the
	// screen it was opened from, where esc goes back to.
	top      *TopModel
	topFrom  screen
	showHelp bool
	showLogs bool
	note     string // a one-line notice, cleared by the next key

	form *settingsForm

	// the run
	cfg      config.Config
	tok      token.Token
	attempt  int
	steps    stepList
	cancel   context.CancelFunc // of the Up, smoke or promote in flight
	busy     bool               // an Up, smoke or promote is in flight
	stopping bool               // Ctrl-C was pressed while busy
	leaving  bool               // quit once the work in flight ends
	forced   bool               // left without waiting
	closing  bool               // the runner is letting go
	failure  *failure
	res      *pipeline.UpResult // a copy, never the runner's
	where    Where
	smokeErr error
	ran      bool // the pipeline ran at least once
	everUp   bool

	logs logPane
	spin spinner.Model
	help help.Model

	promote promoteView
}

// failure is why the last run stopped, for the failure view.
type failure struct {
	step        string // "" when it failed before any step
	err         error
	hint        string
	interrupted bool
}

// New makes the wizard. Attach the program's Send before it runs.
func New(opts Options) Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Getenv == nil {
		opts.Getenv = func(string) string { return "" }
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	l := &link{}
	m := Model{
		opts: opts,
		keys: newKeyMap(),
		sty:  newStyles(),
		link: l,
		rep:  events.NewReporter(events.SinkFunc(func(e events.Event) { l.Send(eventMsg{e}) }), opts.Now),
		now:  opts.Now,
		form: newSettingsForm(opts.Config, opts.Getenv, opts.Now),
		logs: newLogPane(),
		spin: spinner.New(spinner.WithSpinner(spinner.MiniDot)),
		help: help.New(),
	}
	m.spin.Style = m.sty.accent
	m.promote = newPromoteView()
	return m
}

// Attach connects the model to the program that runs it: events and promote
// samples are sent to it. Call it once the program exists, before Run.
func (m Model) Attach(send func(tea.Msg)) { m.link.set(send) }

// Init implements tea.Model.
func (m Model) Init() tea.Cmd { return m.form.form.Init() }

// State is the screen the wizard is on, for tests and the caller.
func (m Model) State() string { return m.state.String() }

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		if m.state == stateForm {
			return m.updateForm(tea.WindowSizeMsg{Width: m.formWidth(), Height: m.formHeight()})
		}
		return m, nil
	case tea.KeyPressMsg:
		return m.onKey(msg)
	case eventMsg:
		m.onEvent(msg.Event)
		return m, nil
	case spinner.TickMsg:
		if !m.busy {
			return m, nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return m, cmd
	case upDoneMsg:
		return m.onUpDone(msg)
	case smokeDoneMsg:
		return m.onSmokeDone(msg)
	case tokenMsg:
		return m.onToken(msg)
	case tokenFileMsg:
		if msg.path == m.form.fileAsked {
			m.form.fileInfo = msg
		}
		return m, nil
	case diffMsg, promoteSampleMsg, promoteDoneMsg:
		return m.onPromoteMsg(msg)
	case topSampled, topTick:
		if m.state != stateTop || m.top == nil {
			return m, nil // the view was left: its ticks end here
		}
		nm, cmd := m.top.Update(msg)
		t := nm.(TopModel)
		m.top = &t
		return m, cmd
	case interruptMsg:
		return m.interrupt()
	case closedMsg:
		return m, tea.Quit
	}
	if m.state == stateForm {
		return m.updateForm(msg)
	}
	return m, nil
}

func (m Model) onKey(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	if key.Matches(k, m.keys.Interrupt) {
		return m.interrupt()
	}
	if m.closing {
		return m, nil
	}
	m.note = ""
	// A file path may hold a '?'; everywhere else it asks for help.
	if key.Matches(k, m.keys.Help) && !(m.state == stateForm && m.form.focused() == "tokenFile") {
		m.showHelp = !m.showHelp
		m.layout()
		return m, nil
	}
	if m.showHelp && key.Matches(k, m.keys.Back) {
		m.showHelp = false
		m.layout()
		return m, nil
	}
	if m.state == stateForm {
		return m.updateForm(k)
	}
	if key.Matches(k, m.keys.Logs) && m.state != statePromoteDiff && m.state != statePromoteConfirm {
		m.showLogs = !m.showLogs
		m.layout()
		return m, nil
	}
	if m.showLogs && m.scrollLogs(k) {
		return m, nil
	}
	switch m.state {
	case stateFailed:
		switch {
		case key.Matches(k, m.keys.Retry):
			m.attempt++
			m.logs.add(fmt.Sprintf("── retry %d: every step reuses what exists ──", m.attempt))
			return m.startUp()
		case key.Matches(k, m.keys.Edit):
			return m.editSettings()
		case key.Matches(k, m.keys.Smoke) && m.res != nil && !m.busy:
			return m.startSmoke()
		case key.Matches(k, m.keys.Quit):
			return m.leave()
		}
	case stateTop:
		switch {
		case key.Matches(k, m.keys.Back), key.Matches(k, m.keys.Top):
			m.state, m.top = m.topFrom, nil
		case key.Matches(k, m.keys.Quit):
			return m.leave()
		}
		return m, nil
	case stateResult:
		switch {
		case key.Matches(k, m.keys.Top) && !m.busy:
			return m.startTop()
		case key.Matches(k, m.keys.Smoke) && !m.busy:
			return m.startSmoke()
		case key.Matches(k, m.keys.Promote) && !m.busy:
			if m.opts.Promoter == nil {
				m.note = "promote is not available in this wizard: quit (q), then run `apimdev promote` (it needs the cluster this wizard holds)"
				return m, nil
			}
			return m.startPromote()
		case key.Matches(k, m.keys.Quit):
			return m.leave()
		}
	case statePromoteDiff, statePromoteConfirm, statePromoting, statePromoteDone:
		return m.onPromoteKey(k)
	}
	return m, nil
}

// scrollLogs moves the open logs pane; it reports whether k was a scroll key.
func (m *Model) scrollLogs(k tea.KeyPressMsg) bool {
	switch {
	case key.Matches(k, m.keys.Up):
		m.logs.scroll(-1)
	case key.Matches(k, m.keys.Down):
		m.logs.scroll(1)
	case key.Matches(k, m.keys.PageUp):
		m.logs.page(false)
	case key.Matches(k, m.keys.PageDown):
		m.logs.page(true)
	default:
		return false
	}
	return true
}

// startTop opens the traffic view over the result screen.
func (m Model) startTop() (tea.Model, tea.Cmd) {
	if m.opts.Sampler == nil {
		m.note = "the traffic view is not available in this wizard: quit (q), then run `apimdev top`"
		return m, nil
	}
	ctx := m.opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	t := NewTop(ctx, m.opts.Sampler, time.Second)
	t.width = m.width
	m.top, m.topFrom, m.state = &t, m.state, stateTop
	return m, t.Init()
}

// interrupt is Ctrl-C (or a signal): stop what runs, then leave cleanly. A
// second one leaves at once.
func (m Model) interrupt() (tea.Model, tea.Cmd) {
	switch {
	case m.busy && m.stopping, m.closing:
		m.forced = true
		return m, tea.Quit
	case m.busy:
		m.stopping, m.leaving = true, true
		if m.cancel != nil {
			m.cancel()
		}
		return m, nil
	}
	return m.leave()
}

// leave stops the forward and releases the lock, then quits.
func (m Model) leave() (tea.Model, tea.Cmd) {
	m.closing = true
	r := m.opts.Runner
	return m, func() tea.Msg {
		r.Close()
		return closedMsg{}
	}
}

func (m Model) updateForm(msg tea.Msg) (tea.Model, tea.Cmd) {
	if m.form.submitting {
		return m, nil
	}
	fm, cmd := m.form.form.Update(msg)
	if f, ok := fm.(*huh.Form); ok {
		m.form.form = f
	}
	if m.form.form.State == huh.StateCompleted {
		return m.submit()
	}
	return m, tea.Batch(cmd, m.form.checkFile())
}

// submit takes the form's settings and reads the token, in a command.
func (m Model) submit() (tea.Model, tea.Cmd) {
	cfg, err := m.form.config()
	if err != nil {
		return m.refuse(err)
	}
	m.cfg = cfg
	m.form.submitting = true
	m.form.submitErr = ""
	return m, m.form.loadToken(cfg)
}

// refuse sends the user back to the form with why.
func (m Model) refuse(err error) (tea.Model, tea.Cmd) {
	m.form.submitting = false
	m.form.submitErr = tokenProblem(err).Error()
	var ps config.Problems
	if errors.As(err, &ps) {
		m.form.submitErr = ps.Error()
	}
	m.form.build()
	m.state = stateForm
	return m, m.form.form.Init()
}

func (m Model) onToken(msg tokenMsg) (tea.Model, tea.Cmd) {
	if m.state != stateForm || !m.form.submitting {
		return m, nil
	}
	if msg.err != nil {
		return m.refuse(msg.err)
	}
	m.form.submitting = false
	m.tok = msg.tok
	return m.startUp()
}

// editSettings goes back to the form with the values of the last run.
func (m Model) editSettings() (tea.Model, tea.Cmd) {
	m.form.submitErr = ""
	m.form.build()
	m.state = stateForm
	m.showLogs = false
	m.layout()
	return m, m.form.form.Init()
}

// startUp runs the pipeline in a command; its events arrive as messages.
func (m Model) startUp() (tea.Model, tea.Cmd) {
	ctx, cancel := context.WithCancel(m.opts.Context)
	m.cancel = cancel
	m.busy, m.stopping, m.ran = true, false, true
	m.state = stateRunning
	m.failure, m.smokeErr = nil, nil
	r, rep, req := m.opts.Runner, m.rep, UpRequest{Config: m.cfg, Token: m.tok, Workshop: m.form.workshop()}
	m.steps = newStepList(r.Steps(req))
	m.layout()
	return m, tea.Batch(m.spin.Tick, func() tea.Msg {
		res, err := r.Up(ctx, req, rep)
		return upDoneMsg{res: res, err: err, where: r.Where()}
	})
}

func (m *Model) onEvent(e events.Event) {
	m.logs.add(logLines(e)...)
	switch m.state {
	case stateRunning:
		m.steps.apply(e)
	case statePromoting:
		m.promote.steps.apply(e)
	}
}

// finished is what every command's answer does first: the wizard is no
// longer busy, and the command's context is released.
func (m *Model) finished() {
	m.busy = false
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
}

func (m Model) onUpDone(msg upDoneMsg) (tea.Model, tea.Cmd) {
	m.finished()
	m.where = msg.where
	m.res = nil
	if msg.res != nil {
		c := *msg.res
		c.Stop = nil // the runner owns the forward
		m.res = &c
	}
	if msg.err == nil {
		m.everUp = true
		m.state = stateResult
		m.layout()
		if m.leaving {
			return m.leave()
		}
		return m, nil
	}
	f := &failure{err: msg.err, hint: events.HintOf(msg.err), interrupted: errors.Is(msg.err, context.Canceled)}
	var fs *pipeline.FailedStep
	if errors.As(msg.err, &fs) {
		f.step = fs.Step
	}
	m.failure = f
	m.state = stateFailed
	m.layout()
	if m.leaving {
		return m.leave()
	}
	return m, nil
}

func (m Model) startSmoke() (tea.Model, tea.Cmd) {
	ctx, cancel := context.WithCancel(m.opts.Context)
	m.cancel = cancel
	m.busy, m.stopping = true, false
	m.smokeErr = nil
	m.logs.add(m.now().Format("15:04:05") + "   smoke     running the smoke calls again")
	r := m.opts.Runner
	return m, tea.Batch(m.spin.Tick, func() tea.Msg {
		rs, err := r.Smoke(ctx)
		return smokeDoneMsg{results: rs, err: err}
	})
}

func (m Model) onSmokeDone(msg smokeDoneMsg) (tea.Model, tea.Cmd) {
	m.finished()
	m.smokeErr = msg.err
	if m.res != nil && msg.results != nil {
		m.res.Smoke = msg.results
	}
	failed := smoke.Failed(msg.results)
	m.logs.add(fmt.Sprintf("%s   smoke     %d passed, %d failed", m.now().Format("15:04:05"), len(msg.results)-failed, failed))
	if msg.err == nil && failed == 0 && m.state == stateFailed && m.failure != nil && m.failure.step == pipeline.StepSmoke {
		// The smoke step was all that failed; now it passes.
		m.failure = nil
		m.everUp = true
		m.state = stateResult
		m.layout()
	}
	if m.leaving {
		return m.leave()
	}
	return m, nil
}

// Outcome is how the wizard ended, for the note printed after it.
type Outcome struct {
	Started     bool   // the pipeline ran at least once
	Up          bool   // the last run brought the gateway up
	Step        string // the step that failed or was interrupted
	Err         error  // why the last run stopped (nil when up)
	Hint        string
	Interrupted bool // left with Ctrl-C or a signal while a step ran
	Forced      bool // left at once, without waiting for the step to stop
	Detached    bool // the forward runs in the background (it was already)
	ForwardPID  int
	Promoted    bool  // the last promote finished and its checks passed
	PromoteErr  error // why the last promote stopped, when it did not finish
}

// Outcome reads how the wizard ended from the final model.
func (m Model) Outcome() Outcome {
	o := Outcome{Started: m.ran, Forced: m.forced}
	if m.forced {
		o.Interrupted = true
		if r := m.steps.running(); r != nil {
			o.Step = r.name
		}
		return o
	}
	if m.failure != nil {
		o.Step, o.Err, o.Hint, o.Interrupted = m.failure.step, m.failure.err, m.failure.hint, m.failure.interrupted
		return o
	}
	if m.res != nil {
		o.Up, o.Detached, o.ForwardPID = true, m.res.Detached, m.res.ForwardPID
	}
	if m.promote.res != nil {
		o.Promoted, o.PromoteErr = m.promote.err == nil, m.promote.err
	}
	return o
}

// layout sizes the panes for the window.
func (m *Model) layout() {
	w := max(m.width, 20)
	m.help.SetWidth(w)
	m.logs.SetSize(w-2, m.logsHeight())
	m.promote.diff.SetWidth(w - 2)
	m.promote.diff.SetHeight(max(m.height-10, 3))
}

func (m Model) formWidth() int { return max(min(m.width, 100)-2, 20) }

// formHeight leaves room for the header, the footer, the token line and the
// prefill note; huh scrolls a taller group to its focused field.
func (m Model) formHeight() int {
	h := m.height - 8
	if m.opts.ConfigFile != "" {
		h -= 2
	}
	return max(h, 5)
}

// logsHeight is how many lines the logs pane gets: what the screen has left
// under the view, at least a few.
func (m Model) logsHeight() int {
	if m.height == 0 {
		return 8
	}
	return max(m.height/3, 4)
}

var _ tea.Model = Model{}

// newViewport is a viewport without its own key bindings: the wizard's
// keymap drives it.
func newViewport() viewport.Model {
	vp := viewport.New()
	vp.KeyMap = viewport.KeyMap{}
	return vp
}
