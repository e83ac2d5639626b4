package tui

import (
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/lipgloss"
)

// Palette: adaptive colours so the wizard reads on light and dark terminals. Colour only ever
// repeats what a glyph and a word already say; with NO_COLOR (lipgloss honours it through termenv)
// or an ASCII profile nothing is lost.
var (
	colAccent = lipgloss.AdaptiveColor{Light: "#5A3FD6", Dark: "#A48BFF"}
	colOK     = lipgloss.AdaptiveColor{Light: "#1A7F37", Dark: "#56D364"}
	colWarn   = lipgloss.AdaptiveColor{Light: "#9A6700", Dark: "#E3B341"}
	colFail   = lipgloss.AdaptiveColor{Light: "#CF222E", Dark: "#FF7B72"}
	colDim    = lipgloss.AdaptiveColor{Light: "#6E7781", Dark: "#8B949E"}
	colText   = lipgloss.AdaptiveColor{Light: "#1F2328", Dark: "#E6EDF3"}
	colBadge  = lipgloss.AdaptiveColor{Light: "#FFFFFF", Dark: "#1F2328"}
	colCode   = lipgloss.AdaptiveColor{Light: "#0550AE", Dark: "#79C0FF"}
)

// Styles holds every style of the wizard in one place, so that a screen never builds its own.
type Styles struct {
	// Header and footer.
	Title, Badge, Crumb, Rule, Status lipgloss.Style
	// Text.
	Heading, Label, Text, Dim, Code, Selected lipgloss.Style
	// Cursor marks the highlighted row.
	Cursor lipgloss.Style
	// Statuses: each is paired with a glyph and a word wherever it is used.
	OK, Warn, Fail, Skip, Running lipgloss.Style
	// Diffs in the plan view.
	DiffAdd, DiffDel, DiffHunk lipgloss.Style
	// Box frames a panel (the root script, the benchmark table).
	Box lipgloss.Style
	// ErrorBox frames the fatal error view and a failed step.
	ErrorBox lipgloss.Style
	// BarFull and BarEmpty draw the benchmark bars.
	BarFull, BarEmpty lipgloss.Style
	// Help styles the key help footer.
	Help help.Styles
}

// DefaultStyles returns the wizard's styles.
func DefaultStyles() Styles {
	s := Styles{
		Title:    lipgloss.NewStyle().Bold(true).Foreground(colAccent),
		Badge:    lipgloss.NewStyle().Bold(true).Foreground(colBadge).Background(colWarn).Padding(0, 1),
		Crumb:    lipgloss.NewStyle().Foreground(colDim),
		Rule:     lipgloss.NewStyle().Foreground(colDim),
		Status:   lipgloss.NewStyle().Foreground(colAccent),
		Heading:  lipgloss.NewStyle().Bold(true).Foreground(colText),
		Label:    lipgloss.NewStyle().Foreground(colDim),
		Text:     lipgloss.NewStyle().Foreground(colText),
		Dim:      lipgloss.NewStyle().Foreground(colDim),
		Code:     lipgloss.NewStyle().Foreground(colCode),
		Selected: lipgloss.NewStyle().Bold(true).Foreground(colAccent),
		Cursor:   lipgloss.NewStyle().Bold(true).Foreground(colAccent),
		OK:       lipgloss.NewStyle().Foreground(colOK),
		Warn:     lipgloss.NewStyle().Foreground(colWarn),
		Fail:     lipgloss.NewStyle().Bold(true).Foreground(colFail),
		Skip:     lipgloss.NewStyle().Foreground(colDim),
		Running:  lipgloss.NewStyle().Foreground(colAccent),
		DiffAdd:  lipgloss.NewStyle().Foreground(colOK),
		DiffDel:  lipgloss.NewStyle().Foreground(colFail),
		DiffHunk: lipgloss.NewStyle().Foreground(colAccent),
		Box:      lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(colDim).Padding(0, 1),
		ErrorBox: lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(colFail).Padding(0, 1),
		BarFull:  lipgloss.NewStyle().Foreground(colAccent),
		BarEmpty: lipgloss.NewStyle().Foreground(colDim),
	}
	s.Help = help.New().Styles
	s.Help.ShortKey = lipgloss.NewStyle().Foreground(colAccent)
	s.Help.FullKey = s.Help.ShortKey
	return s
}

// Status words. Every status a screen shows is a glyph and a word, so that meaning never depends
// on colour (NO_COLOR, a monochrome terminal, a screen reader).
const (
	glyphOK      = "✓"
	glyphWarn    = "!"
	glyphFail    = "✗"
	glyphSkip    = "-"
	glyphPending = "·"
	glyphSkipped = "↷"
)

// status renders a check status ("ok", "warn", "fail", "skip") as a glyph and a word, padded so that
// the words line up in a column.
func (s Styles) status(status string) string {
	switch status {
	case "ok":
		return s.OK.Render(glyphOK + " ok  ")
	case "warn":
		return s.Warn.Render(glyphWarn + " warn")
	case "fail":
		return s.Fail.Render(glyphFail + " fail")
	default:
		return s.Skip.Render(glyphSkip + " skip")
	}
}
