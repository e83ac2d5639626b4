package main

import (
	"io"

	"github.com/charmbracelet/lipgloss"
)

// styles are the few text styles of the plain (non-TUI) output. Colour is a bonus: every status
// also has a glyph and a word, so nothing is lost with NO_COLOR or on a dumb terminal.
type styles struct {
	heading, label, dim, ok, warn, fail, skip lipgloss.Style
}

func newStyles(w io.Writer) styles {
	r := lipgloss.NewRenderer(w)
	return styles{
		heading: r.NewStyle().Bold(true),
		label:   r.NewStyle().Bold(true),
		dim:     r.NewStyle().Faint(true),
		ok:      r.NewStyle().Foreground(lipgloss.Color("2")),
		warn:    r.NewStyle().Foreground(lipgloss.Color("3")),
		fail:    r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		skip:    r.NewStyle().Faint(true),
	}
}

// status renders a check status as glyph and word, e.g. "✓ ok".
func (s styles) status(status string) string {
	switch status {
	case "ok":
		return s.ok.Render("✓ ok  ")
	case "warn":
		return s.warn.Render("! warn")
	case "fail":
		return s.fail.Render("✗ fail")
	default:
		return s.skip.Render("- skip")
	}
}
