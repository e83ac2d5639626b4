package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// truncate shortens s (which may hold styles) to w cells, marking the cut with "…".
func truncate(s string, w int) string {
	if w <= 0 {
		return ""
	}
	// No character is wider in cells than it is long in bytes, so a short string fits as it is.
	if len(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// styleCodes returns the escape codes a style puts around text, so that many lines (a log tail)
// can be styled without lipgloss laying out each one. Only for styles without size or spacing.
func styleCodes(s lipgloss.Style) (open, close string) {
	r := s.Render("x")
	i := strings.Index(r, "x")
	if i < 0 {
		return "", ""
	}
	return r[:i], r[i+1:]
}

// wrap breaks s into lines of at most w cells at spaces (and inside a word too long for a line),
// prefixing the first line with first and the others with rest, so that continuation lines hang
// under the first one's text.
func wrap(s string, w int, first, rest string) []string {
	avail := w - max(ansi.StringWidth(first), ansi.StringWidth(rest))
	if avail < 10 {
		avail = 10
	}
	var out []string
	for i, l := range strings.Split(ansi.Wrap(s, avail, " /-"), "\n") {
		if i == 0 {
			out = append(out, first+l)
		} else {
			out = append(out, rest+l)
		}
	}
	return out
}

// sanitize makes a line of a program's output safe to draw: its escape sequences (the setuptool
// colours its [INFO] tags) and control characters could move the cursor or clear the screen the
// wizard draws on.
func sanitize(s string) string {
	s = ansi.Strip(s)
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case isControl(r):
			return -1
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// lastN returns at most the last n lines.
func lastN(lines []string, n int) []string {
	if n <= 0 {
		return nil
	}
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// padLines adds empty lines up to h, so that the footer stays at the bottom of the screen.
func padLines(lines []string, h int) []string {
	for len(lines) < h {
		lines = append(lines, "")
	}
	return lines
}
