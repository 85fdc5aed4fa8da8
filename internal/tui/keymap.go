package tui

import "charm.land/bubbles/v2/key"

// keyMap is every key the wizard answers to. The form's own keys (enter,
// tab, shift+tab) are huh's.
type keyMap struct {
	Interrupt key.Binding
	Quit      key.Binding
	Help      key.Binding
	Logs      key.Binding
	Retry     key.Binding
	Edit      key.Binding
	Smoke     key.Binding
	Promote   key.Binding
	Top       key.Binding
	Continue  key.Binding
	Yes       key.Binding
	No        key.Binding
	Back      key.Binding
	Up        key.Binding
	Down      key.Binding
	PageUp    key.Binding
	PageDown  key.Binding

	// form keys, for help only: huh handles them.
	FormNext key.Binding
	FormPrev key.Binding
}

func newKeyMap() keyMap {
	return keyMap{
		Interrupt: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "stop and leave")),
		Quit:      key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
		Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Logs:      key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "logs")),
		Retry:     key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "retry")),
		Edit:      key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "edit settings")),
		Smoke:     key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "smoke again")),
		Promote:   key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "promote")),
		Top:       key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "traffic (top)")),
		Continue:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "continue")),
		Yes:       key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yes")),
		No:        key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n/esc", "no")),
		Back:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Up:        key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "scroll up")),
		Down:      key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "scroll down")),
		PageUp:    key.NewBinding(key.WithKeys("pgup", "b"), key.WithHelp("pgup", "page up")),
		PageDown:  key.NewBinding(key.WithKeys("pgdown", "f", "space"), key.WithHelp("pgdn", "page down")),
		FormNext:  key.NewBinding(key.WithKeys("enter", "tab"), key.WithHelp("enter/tab", "next field")),
		FormPrev:  key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous field")),
	}
}

// bindings are the keys of one screen: a short line under the view and the
// full list behind `?`. It satisfies help.KeyMap.
type bindings struct {
	short []key.Binding
	full  [][]key.Binding
}

func (b bindings) ShortHelp() []key.Binding  { return b.short }
func (b bindings) FullHelp() [][]key.Binding { return b.full }

// forState is what the keys do on the current screen.
func (k keyMap) forState(m Model) bindings {
	scroll := []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown}
	promote := k.Promote
	if m.opts.Promoter == nil {
		promote.SetHelp("p", "promote (not here: use `apimdev promote`)")
	}
	switch m.state {
	case stateForm:
		return bindings{
			short: []key.Binding{k.FormNext, k.FormPrev, k.Help, k.Interrupt},
			full:  [][]key.Binding{{k.FormNext, k.FormPrev}, {k.Help, k.Interrupt}},
		}
	case stateRunning:
		return bindings{
			short: []key.Binding{k.Logs, k.Help, k.Interrupt},
			full:  [][]key.Binding{{k.Logs}, scroll, {k.Help, k.Interrupt}},
		}
	case stateFailed:
		keys := []key.Binding{k.Retry, k.Edit, k.Logs}
		if m.res != nil {
			keys = append(keys, k.Smoke)
		}
		return bindings{
			short: append(keys, k.Help, k.Quit),
			full:  [][]key.Binding{keys, scroll, {k.Help, k.Quit, k.Interrupt}},
		}
	case stateResult:
		short := []key.Binding{k.Smoke, k.Logs, promote}
		if m.opts.Sampler != nil {
			short = append(short, k.Top)
		}
		return bindings{
			short: append(short, k.Help, k.Quit),
			full:  [][]key.Binding{{k.Smoke, k.Logs, promote, k.Top}, scroll, {k.Help, k.Quit, k.Interrupt}},
		}
	case stateTop:
		return bindings{
			short: []key.Binding{k.Back, k.Help, k.Quit},
			full:  [][]key.Binding{{k.Back, k.Top}, {k.Help, k.Quit, k.Interrupt}},
		}
	case statePromoteDiff:
		return bindings{
			short: []key.Binding{k.Continue, k.Up, k.Down, k.Back, k.Help},
			full:  [][]key.Binding{{k.Continue, k.Back}, scroll, {k.Help, k.Interrupt}},
		}
	case statePromoteConfirm:
		return bindings{
			short: []key.Binding{k.Yes, k.No, k.Help},
			full:  [][]key.Binding{{k.Yes, k.No}, {k.Help, k.Interrupt}},
		}
	case statePromoting:
		return bindings{
			short: []key.Binding{k.Logs, k.Help, k.Interrupt},
			full:  [][]key.Binding{{k.Logs}, scroll, {k.Help, k.Interrupt}},
		}
	case statePromoteDone:
		return bindings{
			short: []key.Binding{k.Back, k.Logs, k.Help, k.Quit},
			full:  [][]key.Binding{{k.Back, k.Logs, k.Top}, scroll, {k.Help, k.Quit, k.Interrupt}},
		}
	}
	return bindings{short: []key.Binding{k.Interrupt}, full: [][]key.Binding{{k.Interrupt}}}
}
