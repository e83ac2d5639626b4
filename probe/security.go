package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// probeSecurity learns the state of SELinux, AppArmor (with Ubuntu's restriction on unprivileged
// user namespaces) and the seccomp actions the kernel offers.
func probeSecurity(ctx context.Context, e *Env) func(*Facts) {
	selinux := selinuxFact(e)
	apparmor := apparmorFact(ctx, e)
	seccomp := seccompActionsFact(e)
	return func(f *Facts) {
		f.Security.SELinux = selinux
		f.Security.AppArmor = apparmor
		f.Security.SeccompActions = seccomp
	}
}

// selinuxFact reads selinuxfs, which the kernel mounts only when SELinux is enabled; its enforce
// file holds 1 (enforcing) or 0 (permissive). This is the check libselinux's is_selinux_enabled
// and getenforce make.
func selinuxFact(e *Env) Fact[SELinux] {
	const p = "/sys/fs/selinux/enforce"
	text, ev, err := readKnob(e, p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Known(SELinux{Mode: "disabled"}, ev)
	case err != nil:
		return Unknown[SELinux](err, ev)
	}
	switch strings.TrimSpace(text) {
	case "1":
		return Known(SELinux{Enabled: true, Mode: "enforcing"}, ev)
	case "0":
		return Known(SELinux{Enabled: true, Mode: "permissive"}, ev)
	}
	return Unknown[SELinux](fmt.Errorf("parse %s: want 0 or 1, got %q", p, trimEvidence(text)), ev)
}

// apparmorFact combines whether AppArmor is on, Ubuntu's userns restriction and the profiles that
// exempt rootlesskit from it; any part that cannot be read leaves the whole fact unknown, because
// the doctor's verdict (nerdctl#3063) needs all three.
func apparmorFact(ctx context.Context, e *Env) Fact[AppArmor] {
	var a AppArmor
	var evs []Evidence
	var errs []error

	// securityfs shows the apparmor directory only when the LSM is active; the module parameter
	// also answers when securityfs is not mounted (containers, minimal chroots).
	present, ev, err := markerExists(e, "/sys/kernel/security/apparmor")
	evs = append(evs, ev)
	switch {
	case err != nil:
		errs = append(errs, err)
	case present:
		a.Enabled = true
	default:
		const p = "/sys/module/apparmor/parameters/enabled"
		text, ev, err := readKnob(e, p)
		evs = append(evs, ev)
		switch v := strings.TrimSpace(text); {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			errs = append(errs, err)
		case v == "Y" || v == "y" || v == "1":
			a.Enabled = true
		case v == "N" || v == "n" || v == "0":
		default:
			errs = append(errs, fmt.Errorf("parse %s: want Y or N, got %q", p, trimEvidence(text)))
		}
	}

	// Ubuntu's sysctl (kernels of 23.10 and later); other kernels have no such restriction.
	const restrict = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
	text, ev, err := readKnob(e, restrict)
	evs = append(evs, ev)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		a.RestrictUnprivilegedUserns = -1
	case err != nil:
		errs = append(errs, err)
	default:
		v, err := parseKnobInt(restrict, text)
		if err != nil {
			errs = append(errs, err)
		}
		a.RestrictUnprivilegedUserns = v
	}

	profiles, pevs, err := rootlesskitProfiles(ctx, e)
	evs = append(evs, pevs...)
	if err != nil {
		errs = append(errs, err)
	}
	a.RootlesskitProfiles = profiles

	if len(errs) > 0 {
		return Unknown[AppArmor](errors.Join(errs...), evs...)
	}
	return Known(a, evs...)
}

// apparmorDir is where apparmor.service loads profiles from.
const apparmorDir = "/etc/apparmor.d"

// rootlesskitProfiles scans the regular files directly under /etc/apparmor.d for profiles that attach
// to a rootlesskit binary and allow userns. Each is reported as "FILE: PATH", e.g.
// "usr.local.bin.rootlesskit: /usr/local/bin/rootlesskit".
func rootlesskitProfiles(ctx context.Context, e *Env) ([]string, []Evidence, error) {
	entries, err := e.Root.ReadDir(apparmorDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, []Evidence{knobEv(apparmorDir, "does not exist")}, nil
	}
	if err != nil {
		return nil, []Evidence{knobEv(apparmorDir, "unreadable")}, fmt.Errorf("list %s: %w", apparmorDir, err)
	}
	var found []string
	var errs []error
	for _, de := range entries {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("scan %s: %w", apparmorDir, err)
		}
		name := de.Name()
		if !de.Type().IsRegular() || apparmorSkipsFile(name) {
			continue
		}
		p := path.Join(apparmorDir, name)
		b, err := readRegular(e, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", p, err))
			continue
		}
		for _, attach := range RootlesskitUsernsProfiles(b) {
			found = append(found, name+": "+attach)
		}
	}
	sort.Strings(found)
	excerpt := "no profile grants userns to a rootlesskit path"
	if len(found) > 0 {
		excerpt = strings.Join(found, "; ")
	}
	evs := []Evidence{knobEv(apparmorDir, excerpt)}
	if len(errs) > 0 {
		return found, evs, errors.Join(errs...)
	}
	return found, evs, nil
}

// apparmorSkipsFile mirrors the files apparmor's loader (rc.apparmor.functions, skip_policy) ignores
// in /etc/apparmor.d: hidden files, editor backups and package-manager leftovers, which hold no
// active policy.
func apparmorSkipsFile(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") || name == "README" {
		return true
	}
	for _, suffix := range []string{".dpkg-new", ".dpkg-old", ".dpkg-dist", ".dpkg-bak", ".dpkg-remove",
		".pacsave", ".pacnew", ".rpmnew", ".rpmsave", ".orig", ".rej"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// RootlesskitUsernsProfiles returns the attachment paths of the AppArmor profiles in b that attach to
// a path ending in "rootlesskit" and allow the userns rule (AppArmor 4, Ubuntu 23.10+), e.g.
// Ubuntu's "profile rootlesskit /usr/bin/rootlesskit flags=(unconfined) { userns, }". It reads the
// policy language only as far as that needs: comments, include and variable lines, quoted paths,
// brace alternations in paths, nested hats, and audit/allow/deny qualifiers on the rule. A profile
// whose block is never closed would not load, so it does not count.
func RootlesskitUsernsProfiles(b []byte) []string {
	vars := map[string]string{}
	var text strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(stripPolicyComment(line))
		if line == "" {
			continue
		}
		if first, _, _ := strings.Cut(line, " "); first == "include" || first == "#include" {
			continue
		}
		if strings.HasPrefix(line, "@{") {
			// A variable definition: @{NAME} = value …, or += to append (ignored: the first value is
			// what a single-path attachment uses).
			if name, rest, ok := strings.Cut(line, "}"); ok {
				rest = strings.TrimSpace(rest)
				if strings.HasPrefix(rest, "=") {
					if vals := strings.Fields(rest[1:]); len(vals) > 0 {
						vars[name[2:]] = strings.Trim(vals[0], `"`)
					}
					continue
				}
				if strings.HasPrefix(rest, "+=") {
					continue
				}
			}
		}
		text.WriteString(line)
		text.WriteByte('\n')
	}

	type block struct {
		attach      string
		userns      bool
		rootlesskit bool
	}
	var stack []block
	var stmt []string
	var out []string
	for _, tok := range policyTokens(text.String()) {
		switch tok {
		case ",":
			if len(stack) > 0 && isUsernsRule(stmt) {
				stack[len(stack)-1].userns = true
			}
			stmt = stmt[:0]
		case "{":
			attach := profileAttachment(stmt, vars)
			stack = append(stack, block{attach: attach, rootlesskit: strings.HasSuffix(attach, "rootlesskit")})
			stmt = stmt[:0]
		case "}":
			if len(stack) == 0 {
				stmt = stmt[:0]
				continue
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if top.rootlesskit && top.userns {
				out = append(out, top.attach)
			}
			stmt = stmt[:0]
		default:
			stmt = append(stmt, tok)
		}
	}
	return out
}

// stripPolicyComment cuts a "#" comment outside quotes. "#include" is the pre-AppArmor-3 include
// syntax, not a comment, and is returned whole so the caller can drop it.
func stripPolicyComment(line string) string {
	inQuote := false
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '"':
			inQuote = !inQuote
		case '#':
			if inQuote {
				continue
			}
			if strings.TrimSpace(line[:i]) == "" && strings.HasPrefix(line[i:], "#include") {
				return line
			}
			return line[:i]
		}
	}
	return line
}

// policyTokens splits policy text into words, quoted strings and the punctuation "{", "}" and ",".
// Inside a word, braces are an alternation ("/usr/{,local/}bin/x") and parentheses a flag list
// ("flags=(a,b)"), so their commas do not end a rule.
func policyTokens(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '{' || c == '}' || c == ',':
			toks = append(toks, string(c))
			i++
		case c == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				// An unterminated quote: the rest is one token, and the profile is broken anyway.
				toks = append(toks, s[i+1:])
				return toks
			}
			toks = append(toks, `"`+s[i+1:i+1+end])
			i += end + 2
		default:
			start := i
			depth := 0
			for i < len(s) {
				c := s[i]
				if depth == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '}') {
					break
				}
				if depth == 0 && c == '{' && i > start && s[i-1] != '@' && !pathLike(s[start:i]) {
					break
				}
				switch c {
				case '{', '(':
					depth++
				case '}', ')':
					if depth > 0 {
						depth--
					}
				}
				i++
			}
			toks = append(toks, s[start:i])
		}
	}
	return toks
}

// pathLike reports whether a word begins like a path or a variable that holds one.
func pathLike(w string) bool {
	return strings.HasPrefix(w, "/") || strings.HasPrefix(w, "@{")
}

// profileAttachment finds the path a profile header attaches to: the last path-like word before the
// block, with a leading variable (@{bin}) expanded when the file defines it. Quoted words carry a
// leading '"' from policyTokens.
func profileAttachment(header []string, vars map[string]string) string {
	attach := ""
	for _, w := range header {
		quoted := strings.HasPrefix(w, `"`)
		w = strings.TrimPrefix(w, `"`)
		if strings.HasPrefix(w, "flags=") {
			continue
		}
		if !pathLike(w) && !(quoted && strings.HasPrefix(w, "/")) {
			continue
		}
		if strings.HasPrefix(w, "@{") {
			if name, rest, ok := strings.Cut(w[2:], "}"); ok {
				if v, ok := vars[name]; ok {
					w = v + rest
				}
			}
		}
		attach = w
	}
	return attach
}

// isUsernsRule reports whether a rule allows creating user namespaces: "userns," or "userns create,",
// optionally qualified with audit or allow; a deny rule does the opposite.
func isUsernsRule(stmt []string) bool {
	i := 0
	for i < len(stmt) && (stmt[i] == "audit" || stmt[i] == "allow" || strings.HasPrefix(stmt[i], "priority=")) {
		i++
	}
	rest := stmt[i:]
	if len(rest) == 0 || rest[0] != "userns" {
		return false
	}
	return len(rest) == 1 || len(rest) == 2 && rest[1] == "create"
}

// seccompActionsFact reads the seccomp actions the kernel supports (Linux 4.14+). bypass4netns
// needs "user_notif" (SECCOMP_RET_USER_NOTIF, Linux 5.0).
func seccompActionsFact(e *Env) Fact[[]string] {
	const p = "/proc/sys/kernel/seccomp/actions_avail"
	text, ev, err := readKnob(e, p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Known([]string{}, ev)
	case err != nil:
		return Unknown[[]string](err, ev)
	}
	words := strings.Fields(text)
	for _, w := range words {
		for _, r := range w {
			if !(r >= 'a' && r <= 'z' || r == '_') {
				return Unknown[[]string](fmt.Errorf("parse %s: unexpected word %q", p, trimEvidence(w)), ev)
			}
		}
	}
	if words == nil {
		words = []string{}
	}
	return Known(words, ev)
}
