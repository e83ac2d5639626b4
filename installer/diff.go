package installer

import (
	"strconv"
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"
)

// diffContextLines is the context a unified diff shows around each change, as diff -u and git do.
const diffContextLines = 3

// UnifiedDiff returns a unified diff from old to new for the file at path, with "a/PATH" and
// "b/PATH" headers and 3 lines of context, or "" when the contents are equal. A nil old means the
// file does not exist yet: the "---" header is then /dev/null, as in git's diff of a new file (an
// existing empty file is a non-nil empty slice). The diff is line-based; a missing newline at the
// end of either side is marked with "\ No newline at end of file".
func UnifiedDiff(path string, old, new []byte) string {
	if old != nil && string(old) == string(new) {
		return ""
	}
	from, to := diffLabel("a", path), diffLabel("b", path)
	if old == nil {
		from = "/dev/null"
	}
	d := udiff.Unified(from, to, string(old), string(new))
	if d == "" {
		// Creating an empty file changes no line, but it is still a change the plan must show.
		d = "--- " + from + "\n+++ " + to + "\n"
	}
	return d
}

// diffLabel is the header name of path: prefix + "/" + path without its leading slash, quoted the
// way git quotes a name holding a quote, a backslash or a control character, so that a hostile
// file name cannot forge a line of the diff.
func diffLabel(prefix, path string) string {
	label := prefix + "/" + strings.TrimPrefix(path, "/")
	if strings.ContainsFunc(label, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '"' || r == '\\' }) {
		return strconv.Quote(label)
	}
	return label
}
