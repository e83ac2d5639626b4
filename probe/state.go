package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
	"golang.org/x/sys/unix"
)

// NerdctlConfigKeys are the keys nerdctl.toml may hold. nerdctl decodes the file strictly and
// refuses to start on any other key (rootless.md §3.2; nerdctl pkg/config), so whatever writes or
// checks the file must stay within this list.
var NerdctlConfigKeys = append(slices.Clone(nerdctl20ConfigKeys), nerdctlLaterConfigKeys...)

// nerdctl20ConfigKeys are the keys nerdctl 2.0.x accepts (read from v2.0.5's pkg/config/config.go).
var nerdctl20ConfigKeys = []string{
	"debug", "debug_full", "address", "namespace", "snapshotter", "cni_path", "cni_netconfpath",
	"data_root", "cgroup_manager", "insecure_registry", "hosts_dir", "experimental",
	"host_gateway_ip", "bridge_ip", "kube_hide_dupe",
}

// nerdctlLaterConfigKeys came after 2.0 (cdi_spec_dirs with nerdctl#4170 in 2025, the DNS
// defaults later still; the exact release of each is not verified): nerdctl 2.0.x rejects them.
var nerdctlLaterConfigKeys = []string{
	"cdi_spec_dirs", "userns_remap", "dns", "dns_opts", "dns_search", "disable_hc_systemd", "selinux_enabled",
}

// pidMaxLimit is the kernel's PID_MAX_LIMIT on 64-bit: no pid is larger.
const pidMaxLimit = 1 << 22

// probeState looks for what an earlier setup left behind: config files, the systemd user unit and
// its drop-in, RootlessKit's state directory, and the environment that overrides them.
func probeState(ctx context.Context, e *Env) func(*Facts) {
	var s State
	cfg, cfgErr := userConfigHome(e)
	configFact := func(rel string, parse func([]byte) ConfigFile) Fact[ConfigFile] {
		if cfgErr != nil {
			return Unknown[ConfigFile](cfgErr)
		}
		return readConfigFile(e, path.Join(cfg, rel), parse)
	}
	s.ContainerdConfig = configFact("containerd/config.toml", ParseContainerdConfig)
	if p, err := nerdctlTOMLPath(e); err != nil {
		s.NerdctlConfig = Unknown[ConfigFile](err)
	} else {
		s.NerdctlConfig = readConfigFile(e, p, ParseNerdctlConfig)
	}
	s.ContainerdUnit = configFact("systemd/user/containerd.service", parseUnitFile)
	s.ContainerdOverride = configFact("systemd/user/containerd.service.d/override.conf", parseUnitFile)
	s.RootlessKit = rootlessKitState(e)
	s.SnapshotterEnv = envFact(e, "CONTAINERD_SNAPSHOTTER")
	s.RunNRI = runNRIFact(e)
	return func(f *Facts) { f.State = s }
}

// userConfigHome is $XDG_CONFIG_HOME, or ~/.config as the XDG spec says when it is unset or not
// absolute.
func userConfigHome(e *Env) (string, error) {
	if v := e.Getenv("XDG_CONFIG_HOME"); v != "" && path.IsAbs(v) {
		return path.Clean(v), nil
	}
	if e.User.Home == "" {
		return "", errors.New("XDG_CONFIG_HOME is unset and the home directory is unknown")
	}
	return path.Join(e.User.Home, ".config"), nil
}

// nerdctlTOMLPath is the nerdctl.toml rootless nerdctl reads: $NERDCTL_TOML, else
// $XDG_CONFIG_HOME/nerdctl/nerdctl.toml.
func nerdctlTOMLPath(e *Env) (string, error) {
	if v := e.Getenv("NERDCTL_TOML"); v != "" {
		if !path.IsAbs(v) {
			// nerdctl would resolve it against its working directory, which the probe cannot know.
			return "", fmt.Errorf("NERDCTL_TOML %q is a relative path", clipExcerpt(v))
		}
		return path.Clean(v), nil
	}
	cfg, err := userConfigHome(e)
	if err != nil {
		return "", err
	}
	return path.Join(cfg, "nerdctl/nerdctl.toml"), nil
}

// readConfigFile reads one config file; a missing file is a known "does not exist".
func readConfigFile(e *Env, p string, parse func([]byte) ConfigFile) Fact[ConfigFile] {
	b, err := e.Root.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Known(ConfigFile{Path: p}, Evidence{Kind: "file", Source: p, Excerpt: "does not exist"})
		}
		return Unknown[ConfigFile](fmt.Errorf("read %s: %w", p, err), Evidence{Kind: "file", Source: p})
	}
	c := parse(b)
	c.Path, c.Exists = p, true
	excerpt := fmt.Sprintf("%d bytes", len(b))
	if !c.Valid {
		excerpt += ", invalid: " + c.ParseError
	}
	return Known(c, Evidence{Kind: "file", Source: p, Excerpt: clipExcerpt(excerpt)})
}

// decodeTOML parses a TOML document into a generic table, with the error's line and column.
func decodeTOML(b []byte) (map[string]any, error) {
	m := map[string]any{}
	if err := toml.Unmarshal(b, &m); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d, column %d: %s", row, col, de.Error())
		}
		return nil, err
	}
	return m, nil
}

// ParseContainerdConfig reads containerd's config.toml: whether it parses, its "version" (containerd
// 2.x refuses version 1, which is also what a file without the key means, rootless.md §3.1) and the
// proxy plugins it declares (fuse-overlayfs and stargz run as proxy snapshotters).
func ParseContainerdConfig(b []byte) ConfigFile {
	var c ConfigFile
	m, err := decodeTOML(b)
	if err != nil {
		c.ParseError = clipExcerpt(err.Error())
		return c
	}
	if v, ok := m["version"]; ok {
		n, isInt := v.(int64)
		if !isInt || n < 0 || n > 1<<20 {
			c.ParseError = clipExcerpt(fmt.Sprintf("version = %v is not a config version number", v))
			return c
		}
		c.Version = int(n)
	}
	if pp, ok := m["proxy_plugins"]; ok {
		table, isTable := pp.(map[string]any)
		if !isTable {
			c.ParseError = "proxy_plugins is not a table"
			return c
		}
		for name := range table {
			c.ProxyPlugins = append(c.ProxyPlugins, name)
		}
		sort.Strings(c.ProxyPlugins)
	}
	c.Valid = true
	return c
}

// ParseNerdctlConfig reads nerdctl.toml the way nerdctl would accept it: it must parse, hold only
// NerdctlConfigKeys, and snapshotter must be a string.
func ParseNerdctlConfig(b []byte) ConfigFile {
	var c ConfigFile
	m, err := decodeTOML(b)
	if err != nil {
		c.ParseError = clipExcerpt(err.Error())
		return c
	}
	known := map[string]bool{}
	for _, k := range NerdctlConfigKeys {
		known[k] = true
	}
	for k := range m {
		if !known[k] {
			c.UnknownKeys = append(c.UnknownKeys, k)
		}
	}
	sort.Strings(c.UnknownKeys)
	for k := range m {
		if slices.Contains(nerdctlLaterConfigKeys, k) {
			c.NewerKeys = append(c.NewerKeys, k)
		}
	}
	sort.Strings(c.NewerKeys)
	var problems []string
	if len(c.UnknownKeys) > 0 {
		// A pasted containerd config.toml shows up here as "version" and "plugins".
		problems = append(problems, "keys nerdctl rejects: "+strings.Join(c.UnknownKeys, ", "))
	}
	if v, ok := m["snapshotter"]; ok {
		if s, isString := v.(string); isString {
			c.Snapshotter = s
		} else {
			problems = append(problems, fmt.Sprintf("snapshotter = %v is not a string", v))
		}
	}
	if len(problems) > 0 {
		c.ParseError = clipExcerpt(strings.Join(problems, "; "))
		return c
	}
	c.Valid = true
	return c
}

// nerdctlCNIPath returns cni_path from a nerdctl.toml, when it has one.
func nerdctlCNIPath(b []byte) (string, bool) {
	m, err := decodeTOML(b)
	if err != nil {
		return "", false
	}
	s, ok := m["cni_path"].(string)
	return s, ok && s != ""
}

// parseUnitFile reads the Environment= settings of a systemd unit or drop-in.
func parseUnitFile(b []byte) ConfigFile {
	env, err := ParseUnitEnvironment(b)
	c := ConfigFile{Valid: err == nil}
	if len(env) > 0 {
		c.Environment = env
	}
	if err != nil {
		c.ParseError = clipExcerpt(err.Error())
	}
	return c
}

// ParseUnitEnvironment collects the Environment= assignments of the [Service] section of a systemd
// unit file or drop-in, with systemd's syntax: several assignments on one line separated by
// whitespace, single or double quotes around (or inside) a word, C escapes, lines continued with a
// trailing backslash, and an empty Environment= resetting the list. Like systemd it skips what it
// cannot parse and applies the rest; the error names the first problem. Specifiers such as %h are
// kept as written, since expanding them needs the unit's context.
func ParseUnitEnvironment(b []byte) (map[string]string, error) {
	env := map[string]string{}
	var firstErr error
	fail := func(line int, format string, args ...any) {
		if firstErr == nil {
			firstErr = fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...))
		}
	}
	section := ""
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimRight(lines[i], "\r")
		// A line ending in an unescaped backslash continues on the next; comment lines inside the
		// continuation are dropped, as systemd's config parser does.
		for endsInContinuation(line) {
			line = line[:len(line)-1] + " "
			for i+1 < len(lines) && isUnitComment(lines[i+1]) {
				i++
			}
			if i+1 >= len(lines) {
				break
			}
			i++
			line += strings.TrimRight(lines[i], "\r")
		}
		t := strings.TrimSpace(line)
		if t == "" || isUnitComment(t) {
			continue
		}
		if strings.HasPrefix(t, "[") {
			if !strings.HasSuffix(t, "]") {
				fail(lineNo, "malformed section header %q", clipExcerpt(t))
				section = ""
				continue
			}
			section = t[1 : len(t)-1]
			continue
		}
		key, value, ok := strings.Cut(t, "=")
		if !ok {
			fail(lineNo, "%q is not a key=value assignment", clipExcerpt(t))
			continue
		}
		if section != "Service" || strings.TrimSpace(key) != "Environment" {
			continue
		}
		value = strings.TrimSpace(value)
		if value == "" {
			clear(env)
			continue
		}
		for rest := value; ; {
			word, next, err := extractUnitWord(rest)
			if err != nil {
				fail(lineNo, "Environment=%s: %v", clipExcerpt(value), err)
				break
			}
			if next == "" && word == "" {
				break
			}
			rest = next
			name, val, ok := strings.Cut(word, "=")
			if !ok || !validEnvName(name) || !validEnvValue(val) {
				fail(lineNo, "%q is not a valid environment assignment", clipExcerpt(word))
				continue
			}
			env[name] = val
		}
	}
	return env, firstErr
}

func isUnitComment(line string) bool {
	t := strings.TrimLeft(line, " \t")
	return strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";")
}

// endsInContinuation reports whether line ends in a backslash that is not itself escaped.
func endsInContinuation(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// extractUnitWord takes the first whitespace-separated word of s, removing quotes and resolving
// escapes the way systemd's extract_first_word does with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE. It
// returns an empty word and rest when s holds only whitespace.
func extractUnitWord(s string) (word, rest string, err error) {
	s = strings.TrimLeft(s, " \t\r\n")
	if s == "" {
		return "", "", nil
	}
	var w strings.Builder
	var quote byte
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case quote == 0 && (c == ' ' || c == '\t' || c == '\r' || c == '\n'):
			return w.String(), s[i:], nil
		case c == '\\':
			r, n, err := unescapeC(s[i+1:])
			if err != nil {
				return "", "", err
			}
			w.WriteRune(r)
			i += 1 + n
			continue
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case quote != 0 && c == quote:
			quote = 0
		default:
			w.WriteByte(c)
		}
		i++
	}
	if quote != 0 {
		return "", "", fmt.Errorf("unbalanced %c quote", quote)
	}
	return w.String(), "", nil
}

// simpleEscapes are the one-letter C escapes systemd accepts; \s is its own addition for a space.
var simpleEscapes = map[byte]rune{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v',
	'\\': '\\', '"': '"', '\'': '\'', 's': ' '}

// unescapeC resolves one C escape (the text after the backslash) as systemd's cunescape_one does,
// returning the rune and the bytes consumed. NUL and unknown escapes are errors.
func unescapeC(s string) (rune, int, error) {
	if s == "" {
		return 0, 0, errors.New("backslash at the end")
	}
	if r, ok := simpleEscapes[s[0]]; ok {
		return r, 1, nil
	}
	digits := func(n, base int) (rune, int, error) {
		if len(s) < 1+n {
			return 0, 0, fmt.Errorf("short \\%c escape", s[0])
		}
		v, err := strconv.ParseUint(s[1:1+n], base, 32)
		if err != nil || v == 0 || v > utf8.MaxRune || !utf8.ValidRune(rune(v)) {
			return 0, 0, fmt.Errorf("invalid \\%s escape", s[:1+n])
		}
		return rune(v), 1 + n, nil
	}
	switch s[0] {
	case 'x':
		return digits(2, 16)
	case 'u':
		return digits(4, 16)
	case 'U':
		return digits(8, 16)
	}
	if s[0] >= '0' && s[0] <= '7' {
		if len(s) < 3 {
			return 0, 0, errors.New("short octal escape")
		}
		v, err := strconv.ParseUint(s[:3], 8, 32)
		if err != nil || v == 0 || v > 0o377 {
			return 0, 0, fmt.Errorf("invalid \\%s escape", s[:3])
		}
		return rune(v), 3, nil
	}
	return 0, 0, fmt.Errorf("unknown escape \\%c", s[0])
}

// validEnvName is systemd's env_name_is_valid: a shell variable name.
func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// validEnvValue is systemd's env_value_is_valid: UTF-8 without control characters other than tab
// and newline.
func validEnvValue(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			return false
		}
	}
	return true
}

// rootlessKitState reads $XDG_RUNTIME_DIR/containerd-rootless, which nerdctl needs to find the
// running containerd (rootless.md §2.7, §3.3): a directory left behind by a crash names a dead pid.
func rootlessKitState(e *Env) Fact[RootlessKitState] {
	dir, err := userRuntimeDir(e)
	if err != nil {
		return Unknown[RootlessKitState](err)
	}
	st := RootlessKitState{StateDir: path.Join(dir, "containerd-rootless")}
	fi, err := e.Root.Stat(st.StateDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Known(st, Evidence{Kind: "file", Source: st.StateDir, Excerpt: "does not exist"})
		}
		return Unknown[RootlessKitState](fmt.Errorf("stat %s: %w", st.StateDir, err), Evidence{Kind: "file", Source: st.StateDir})
	}
	if !fi.IsDir() {
		return Unknown[RootlessKitState](fmt.Errorf("%s is a %s, not a directory", st.StateDir, describeType(fi)), Evidence{Kind: "file", Source: st.StateDir})
	}
	st.Exists = true
	evs := []Evidence{{Kind: "file", Source: st.StateDir, Excerpt: "exists"}}

	netns := path.Join(st.StateDir, "netns")
	if _, err := e.Root.Lstat(netns); err == nil {
		st.DetachedNetns = true
		evs = append(evs, Evidence{Kind: "file", Source: netns, Excerpt: "exists: started with --detach-netns"})
	}

	pidFile := path.Join(st.StateDir, "child_pid")
	b, err := e.Root.ReadFile(pidFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Known(st, append(evs, Evidence{Kind: "file", Source: pidFile, Excerpt: "does not exist"})...)
		}
		return Unknown[RootlessKitState](fmt.Errorf("read %s: %w", pidFile, err), evs...)
	}
	pidEv := Evidence{Kind: "file", Source: pidFile, Excerpt: clipExcerpt(string(b))}
	evs = append(evs, pidEv)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || pid > pidMaxLimit {
		return Unknown[RootlessKitState](fmt.Errorf("parse %s: %q is not a pid", pidFile, clipExcerpt(string(b))), evs...)
	}
	st.ChildPID = pid
	running, rev := pidRunning(e, pid)
	st.Running = running
	return Known(st, append(evs, rev...)...)
}

// pidRunning reports whether pid names a live process: /proc/PID below the root and, on the live
// host, kill(pid, 0), which answers EPERM for another user's live process and ESRCH for none.
func pidRunning(e *Env, pid int) (bool, []Evidence) {
	proc := "/proc/" + strconv.Itoa(pid)
	_, err := e.Root.Stat(proc)
	inProc := err == nil
	var evs []Evidence
	if inProc {
		comm := "exists"
		if b, err := e.Root.ReadFile(proc + "/comm"); err == nil {
			comm = "comm " + clipExcerpt(string(b))
		}
		evs = append(evs, Evidence{Kind: "file", Source: proc, Excerpt: comm})
	} else {
		evs = append(evs, Evidence{Kind: "file", Source: proc, Excerpt: "does not exist"})
	}
	if !e.Live {
		return inProc, evs
	}
	kerr := unix.Kill(pid, 0)
	alive := kerr == nil || errors.Is(kerr, syscall.EPERM)
	ex := "ok"
	if kerr != nil {
		ex = kerr.Error()
	}
	evs = append(evs, Evidence{Kind: "syscall", Source: fmt.Sprintf("kill(%d, 0)", pid), Excerpt: ex})
	return inProc && alive, evs
}

// runNRIFact is whether /run/nri exists; a symlink counts, since the copy-up of /run makes one.
func runNRIFact(e *Env) Fact[bool] {
	const p = "/run/nri"
	fi, err := e.Root.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Known(false, Evidence{Kind: "file", Source: p, Excerpt: "does not exist"})
		}
		return Unknown[bool](fmt.Errorf("stat %s: %w", p, err), Evidence{Kind: "file", Source: p})
	}
	ex := describeType(fi)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ex += fmt.Sprintf(", owner %d:%d", st.Uid, st.Gid)
	}
	return Known(true, Evidence{Kind: "file", Source: p, Excerpt: ex})
}
