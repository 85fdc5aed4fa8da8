package tui

import "charm.land/lipgloss/v2"

// styles use the terminal's own 16 colours, so they follow its theme; the
// renderer drops them on terminals with fewer colours (or none), and every
// state also has a glyph and words, so nothing is said by colour alone.
type styles struct {
	brand, title, faint, ok, bad, warn, key, accent lipgloss.Style
}

func newStyles() styles {
	s := lipgloss.NewStyle()
	return styles{
		brand:  s.Bold(true).Foreground(lipgloss.Cyan),
		title:  s.Bold(true),
		faint:  s.Faint(true),
		ok:     s.Foreground(lipgloss.Green),
		bad:    s.Foreground(lipgloss.Red),
		warn:   s.Foreground(lipgloss.Yellow),
		key:    s.Bold(true),
		accent: s.Foreground(lipgloss.Cyan),
	}
}

func (s styles) tone(t expiryTone) lipgloss.Style {
	switch t {
	case toneOK:
		return s.ok
	case toneWarn:
		return s.warn
	case toneBad:
		return s.bad
	}
	return s.faint
}
