package probe

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrNoVersion is returned by ParseVersion when a program's output holds no version number.
var ErrNoVersion = errors.New("no version number in output")

// ParseVersion finds the version in what a program printed for --version and returns it without a
// leading "v" ("v2.4.2" → "2.4.2"), keeping pre-release and distro suffixes ("1.1.5+ds1").
//
// Programs print their version in many shapes: "runc version 1.1.5+ds1", "iptables v1.8.9
// (nf_tables)", "containerd github.com/containerd/containerd/v2 v2.4.2 <commit>", "systemd 252
// (252.39-1~deb12u1)", "pasta 2023_03_29.b10b983". Distribution snapshots of passt are rewritten
// to passt's own date form ("pasta 0^20241030.gee7d0b6-1.fc41" → "2024_10_30.ee7d0b6"). The rule that fits them all: lines are read in
// order and the first line that yields a version wins; within a line a dotted number outside
// parentheses comes first, then (first line only) a plain integer right after the program's name,
// then a dotted number inside parentheses. Later lines are usually libraries or the kernel
// ("libseccomp: 2.5.4", "Linux host 6.1.0"), which is why the first line that has one wins.
func ParseVersion(out string) (string, error) {
	first := true
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if v := verFromLine(line, first); v != "" {
			return v, nil
		}
		first = false
	}
	return "", fmt.Errorf("%w: %q", ErrNoVersion, verExcerpt(out, 80))
}

// verToken is one word of a version line and whether it sat inside parentheses.
type verToken struct {
	text    string
	inParen bool
}

func verFromLine(line string, first bool) string {
	var toks []verToken
	depth := 0
	for _, w := range strings.Fields(line) {
		opens := strings.Count(w, "(") + strings.Count(w, "[")
		closes := strings.Count(w, ")") + strings.Count(w, "]")
		inParen := depth > 0 || opens > 0
		depth += opens - closes
		if depth < 0 {
			depth = 0
		}
		// "version=1.2" and "Version:1.2" carry the number after the separator.
		if i := strings.LastIndexAny(w, "=:"); i >= 0 && i < len(w)-1 {
			w = w[i+1:]
		}
		w = strings.Trim(w, "()[]{},;:'\"")
		w = strings.TrimRight(w, ".")
		toks = append(toks, verToken{text: w, inParen: inParen})
	}
	for _, t := range toks {
		if v, ok := verPasstSnapshot(t.text); ok && !t.inParen {
			return v
		}
		if !t.inParen && verIsToken(t.text) {
			return verNormalize(t.text)
		}
	}
	// "systemd 252": an integer right after the program's name is its version. Only on the first
	// line, so "SLIRP_CONFIG_VERSION_MAX: 4" further down is never taken for one.
	if first && len(toks) >= 2 && !toks[1].inParen && verDigits(toks[1].text) && verIsWord(toks[0].text) {
		return toks[1].text
	}
	for _, t := range toks {
		if t.inParen && verIsToken(t.text) {
			return verNormalize(t.text)
		}
	}
	return ""
}

// verIsToken accepts "1.2", "v2.4.2", "1.1.5+ds1", "2.3.6-rc.1", "252.39-1~deb12u1" and the
// date versions of passt/pasta ("2023_03_29.b10b983").
func verIsToken(s string) bool {
	s = verNormalize(s)
	if verIsDate(s) {
		return true
	}
	core, suffix := verSplitSuffix(s)
	parts := strings.Split(core, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if !verDigits(p) {
			return false
		}
	}
	for _, r := range suffix {
		if !verSuffixRune(r) {
			return false
		}
	}
	return true
}

// verSnapshotRe matches distribution builds of passt, which print the package version instead of
// passt's own date: Fedora "0^20241030.gee7d0b6-1.fc41", Debian and Ubuntu
// "0.0~git20240220.1e6f92b-1".
var verSnapshotRe = regexp.MustCompile(`^(?:0\^|0\.0~git)(\d{4})(\d{2})(\d{2})\.g?([0-9a-f]+)(?:-.*)?$`)

// verPasstSnapshot turns a distribution's passt snapshot version into passt's own form
// ("2024_10_30.ee7d0b6"), so it compares with upstream releases such as "2026_05_07.1afd4ed".
func verPasstSnapshot(s string) (string, bool) {
	m := verSnapshotRe.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return m[1] + "_" + m[2] + "_" + m[3] + "." + m[4], true
}

// verIsDate matches passt's YYYY_MM_DD with an optional ".commit".
func verIsDate(s string) bool {
	date, commit, hasCommit := strings.Cut(s, ".")
	f := strings.Split(date, "_")
	if len(f) != 3 || len(f[0]) != 4 || len(f[1]) != 2 || len(f[2]) != 2 {
		return false
	}
	for _, p := range f {
		if !verDigits(p) {
			return false
		}
	}
	if hasCommit {
		if commit == "" {
			return false
		}
		for _, r := range commit {
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
				return false
			}
		}
	}
	return true
}

func verSuffixRune(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(".-+~_", r)
}

// verIsWord is a program name such as "systemd" or "fuse-overlayfs".
func verIsWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) {
			return false
		}
	}
	return !verDigits(s)
}

func verDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func verNormalize(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 1 && (s[0] == 'v' || s[0] == 'V') && s[1] >= '0' && s[1] <= '9' {
		s = s[1:]
	}
	return s
}

// verSplitSuffix cuts a version at its first '-', '+' or '~': "2.3.6-rc.1" → "2.3.6", "-rc.1".
func verSplitSuffix(s string) (core, suffix string) {
	if i := strings.IndexAny(s, "-+~"); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// CompareVersions orders two versions: -1 when a < b, 0 when equal, +1 when a > b. A leading "v"
// is ignored, missing components count as zero ("2.0" == "2.0.0"), numbers compare as numbers,
// "+build" metadata is ignored (semver), and a suffix after '-' or '~' that starts with a letter
// is a pre-release ("2.3.6-rc.1" < "2.3.6", Debian's "1.0~rc1" < "1.0"), while one that starts
// with a digit is a packaging revision that sorts after the bare version ("252.39-1" > "252.39").
func CompareVersions(a, b string) int {
	a, b = verNormalize(a), verNormalize(b)
	ac, as := verSplitSuffix(a)
	bc, bs := verSplitSuffix(b)
	if c := verCompareDotted(ac, bc); c != 0 {
		return c
	}
	return verCompareSuffix(as, bs)
}

// VersionAtLeast reports whether version v is minimum or newer. An empty or unparsable v is not.
func VersionAtLeast(v, minimum string) bool {
	if !strings.ContainsAny(v, "0123456789") {
		return false
	}
	return CompareVersions(v, minimum) >= 0
}

// verSuffixKind ranks what follows the numeric core: a pre-release sorts before the bare version,
// a revision after it.
func verSuffixKind(s string) (rank int, rest string) {
	for strings.HasPrefix(s, "+") {
		// Build metadata ("+ds1", "+unknown") says nothing about order; a revision or
		// pre-release may still follow it ("1.1.5+ds1-1").
		i := strings.IndexAny(s[1:], "-~")
		if i < 0 {
			return 0, ""
		}
		s = s[1+i:]
	}
	if s == "" {
		return 0, ""
	}
	body := s[1:]
	if s[0] == '~' || body == "" || !(body[0] >= '0' && body[0] <= '9') {
		return -1, body
	}
	return 1, body
}

func verCompareSuffix(a, b string) int {
	ra, restA := verSuffixKind(a)
	rb, restB := verSuffixKind(b)
	if ra != rb {
		return verCmpInt(ra, rb)
	}
	if ra == 0 {
		return 0
	}
	return verCompareDotted(restA, restB)
}

// verCompareDotted compares component by component; components are separated by anything that is
// not a letter or a digit, and a run of digits and a run of letters are separate components, so
// "rc.10" > "rc.9", "deb12u1" < "deb12u2", "2023_03_29" < "2024_01_01".
func verCompareDotted(a, b string) int {
	pa, pb := verParts(a), verParts(b)
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y string
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if c := verComparePart(x, y); c != 0 {
			return c
		}
	}
	return 0
}

func verParts(s string) []string {
	var parts []string
	cur := strings.Builder{}
	kind := 0 // 1 digits, 2 letters
	flush := func() {
		if cur.Len() > 0 {
			parts = append(parts, cur.String())
			cur.Reset()
		}
		kind = 0
	}
	for _, r := range s {
		k := 0
		switch {
		case r >= '0' && r <= '9':
			k = 1
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			k = 2
		}
		if k == 0 {
			flush()
			continue
		}
		if kind != 0 && k != kind {
			flush()
		}
		kind = k
		cur.WriteRune(r)
	}
	flush()
	return parts
}

// verComparePart compares two components; a missing one ("") counts as zero, numbers sort before
// words (semver's rule for pre-release identifiers), and numbers of any length compare exactly.
func verComparePart(x, y string) int {
	if x == "" {
		x = "0"
	}
	if y == "" {
		y = "0"
	}
	xd, yd := verDigits(x), verDigits(y)
	switch {
	case xd && yd:
		x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
		if len(x) != len(y) {
			return verCmpInt(len(x), len(y))
		}
		return strings.Compare(x, y)
	case xd:
		return -1
	case yd:
		return 1
	default:
		return strings.Compare(x, y)
	}
}

func verCmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// excerpt trims s to at most n bytes on a rune boundary, for evidence and error messages.
func verExcerpt(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !verRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func verRuneStart(b byte) bool { return b&0xC0 != 0x80 }
