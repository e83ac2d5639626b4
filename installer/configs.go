package installer

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/probe"
)

// The renderers below change only what virt-setup owns in a user's file. In containerd's
// config.toml and the systemd drop-in that is a managed block between two marker comments: the
// block is appended once, replaced in place on a re-run (so a second run changes nothing, and a
// changed choice changes only the block) and removed when nothing is left to manage. Everything
// outside it, settings and comments alike, is kept byte for byte.
const (
	managedBeginMarker = "# BEGIN virt-setup managed block"
	managedEndMarker   = "# END virt-setup managed block"
	managedBeginLine   = managedBeginMarker + ": virt-setup rewrites the lines up to the END marker; keep your own settings outside them.\n"
	managedEndLine     = managedEndMarker + "\n"
)

// ConfigError is a config file virt-setup will not change, because changing it could break the
// user's own settings. Line is the 1-based line at fault (0 when the problem is the whole file).
type ConfigError struct {
	// File names the file in messages, e.g. "config.toml".
	File string
	Line int
	Msg  string
	// Fix says what the user can do; the engine shows it apart from the error.
	Fix string
}

// Error implements error.
func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// UserFix returns what the user can do about the error.
func (e *ConfigError) UserFix() string { return e.Fix }

// lineOf returns the 1-based line of byte offset off in b.
func lineOf(b []byte, off int) int {
	return bytes.Count(b[:min(off, len(b))], []byte("\n")) + 1
}

// lineStart returns the offset of the start of the line holding off.
func lineStart(b []byte, off int) int {
	return bytes.LastIndexByte(b[:off], '\n') + 1
}

// lineEnd returns the offset just past the newline ending the line holding off (len(b) at EOF).
func lineEnd(b []byte, off int) int {
	if i := bytes.IndexByte(b[off:], '\n'); i >= 0 {
		return off + i + 1
	}
	return len(b)
}

// managedSpan is where a managed block sits: from the start of its BEGIN line to just past its END
// line.
type managedSpan struct{ start, end int }

// findManagedBlock looks for the block among the lines starting at the given offsets (for TOML,
// only whole-line comments, so that a marker inside a multi-line string does not count).
func findManagedBlock(b []byte, lineStarts []int, file string) (managedSpan, bool, error) {
	var span managedSpan
	begin, found := -1, false
	for _, off := range lineStarts {
		text := strings.TrimSpace(string(b[off:lineEnd(b, off)]))
		switch {
		case strings.HasPrefix(text, managedBeginMarker):
			if begin >= 0 || found {
				return span, false, &ConfigError{File: file, Line: lineOf(b, off),
					Msg: "a second virt-setup BEGIN marker",
					Fix: "keep one virt-setup managed block: delete the other one, markers included, and run virt-setup again"}
			}
			begin = off
		case strings.HasPrefix(text, managedEndMarker):
			if begin < 0 {
				return span, false, &ConfigError{File: file, Line: lineOf(b, off),
					Msg: "a virt-setup END marker without a BEGIN marker before it",
					Fix: "delete the stray END marker line, or restore the BEGIN marker above the block, and run virt-setup again"}
			}
			span, found, begin = managedSpan{start: begin, end: lineEnd(b, off)}, true, -1
		}
	}
	if begin >= 0 {
		return span, false, &ConfigError{File: file, Line: lineOf(b, begin),
			Msg: "a virt-setup BEGIN marker without an END marker",
			Fix: "delete the incomplete virt-setup block (from the BEGIN marker to the end of what virt-setup wrote) and run virt-setup again"}
	}
	return span, found, nil
}

// spliceManagedBlock puts block (empty: none) in place of the old span, or appends it after a
// blank line. Removing a block at the end of the file also removes the blank line appended with it.
func spliceManagedBlock(b []byte, span managedSpan, found bool, block string) []byte {
	var out []byte
	switch {
	case found && block == "":
		start := span.start
		if span.end == len(b) && start >= 2 && b[start-1] == '\n' && b[start-2] == '\n' {
			start--
		}
		out = append(append(out, b[:start]...), b[span.end:]...)
	case found:
		out = append(append(append(out, b[:span.start]...), block...), b[span.end:]...)
	case block == "":
		out = append(out, b...)
	default:
		out = append(out, b...)
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n\n")) {
			out = append(out, '\n')
		}
		out = append(out, block...)
	}
	return out
}

// allLineStarts returns the offset of every line in b.
func allLineStarts(b []byte) []int {
	starts := []int{}
	for off := 0; off < len(b); off = lineEnd(b, off) {
		starts = append(starts, off)
	}
	return starts
}

// fileHasManagedBlock reports whether the file at path holds a virt-setup BEGIN marker, so that a
// plan that no longer wants the block still takes it out. A file that cannot be read has none.
func fileHasManagedBlock(path string) bool {
	b, err := sys.Root{}.ReadFile(path)
	if err != nil {
		return false
	}
	for _, off := range allLineStarts(b) {
		if strings.HasPrefix(strings.TrimSpace(string(b[off:lineEnd(b, off)])), managedBeginMarker) {
			return true
		}
	}
	return false
}

// tomlQuote encodes s as a TOML basic string. s must be valid UTF-8 (TOML cannot hold anything
// else).
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlItem is one top-level definition in a TOML document.
type tomlItem struct {
	kind unstable.Kind // Table, ArrayTable or KeyValue
	// table is the table a KeyValue is in (nil: the root table).
	table []string
	// key is the header's key, or the KeyValue's possibly dotted key.
	key       []string
	valueKind unstable.Kind
	offset    int
}

// path is the full key the item defines.
func (it tomlItem) path() []string {
	if it.kind == unstable.KeyValue {
		return append(slices.Clone(it.table), it.key...)
	}
	return it.key
}

// tomlDoc is a TOML document's top-level structure: its definitions and whole-line comments.
type tomlDoc struct {
	items        []tomlItem
	commentLines []int
}

// parseTOMLDoc checks that b is valid TOML (with the line and column of the first error) and
// returns its top-level structure. It uses go-toml's unstable AST parser for the positions of
// tables and keys, which the decoder does not report.
func parseTOMLDoc(b []byte, file string) (*tomlDoc, map[string]any, error) {
	m := map[string]any{}
	if err := toml.Unmarshal(b, &m); err != nil {
		ce := &ConfigError{File: file, Msg: "not valid TOML: " + err.Error(),
			Fix: "fix the file (or move it aside) and run virt-setup again"}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			ce.Line, _ = de.Position()
			ce.Msg = "not valid TOML: " + de.Error()
		}
		return nil, nil, ce
	}
	doc := &tomlDoc{}
	p := unstable.Parser{KeepComments: true}
	p.Reset(b)
	var table []string
	keyOf := func(n *unstable.Node) ([]string, int) {
		var parts []string
		off := -1
		it := n.Key()
		for it.Next() {
			k := it.Node()
			if off < 0 {
				off = int(k.Raw.Offset)
			}
			parts = append(parts, string(k.Data))
		}
		return parts, max(off, 0)
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Comment:
			doc.commentLines = append(doc.commentLines, lineStart(b, int(e.Raw.Offset)))
		case unstable.Table, unstable.ArrayTable:
			key, off := keyOf(e)
			table = key
			doc.items = append(doc.items, tomlItem{kind: e.Kind, key: key, offset: off})
		case unstable.KeyValue:
			key, off := keyOf(e)
			doc.items = append(doc.items, tomlItem{kind: e.Kind, table: table, key: key, valueKind: e.Value().Kind, offset: off})
		}
	}
	if err := p.Error(); err != nil {
		// The decoder accepted the document, so this is a parser disagreement, not the user's fault.
		return nil, nil, fmt.Errorf("parse %s: %w", file, err)
	}
	return doc, m, nil
}

// hasPrefix reports whether path starts with prefix.
func hasPrefix(path, prefix []string) bool {
	return len(path) >= len(prefix) && slices.Equal(path[:len(prefix)], prefix)
}

// tomlKey renders a key path the way a user would write it in a table header.
func tomlKey(path []string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		bare := p != "" && strings.IndexFunc(p, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) < 0
		if bare {
			parts[i] = p
		} else {
			parts[i] = tomlQuote(p)
		}
	}
	return strings.Join(parts, ".")
}

// ContainerdPlugins says which proxy snapshotter plugins containerd's config.toml registers, and the
// user's directories their sockets and data live in.
type ContainerdPlugins struct {
	// FuseOverlayfs registers containerd-fuse-overlayfs-grpc as the "fuse-overlayfs" snapshotter.
	FuseOverlayfs bool
	// Stargz registers containerd-stargz-grpc as the "stargz" snapshotter.
	Stargz bool
	// RuntimeDir is $XDG_RUNTIME_DIR (/run/user/UID), where the plugins' sockets are.
	RuntimeDir string
	// DataHome is $XDG_DATA_HOME (~/.local/share), where the plugins keep their snapshots.
	DataHome string
}

// containerdTransferPlugin is the plugin whose unpack_config tells containerd's transfer service
// (containerd 1.7 and later, used by nerdctl pull) which snapshotter may unpack images for a
// platform; without an entry a proxy snapshotter gets no unpacked layers.
var containerdTransferPlugin = []string{"plugins", "io.containerd.transfer.v1.local"}

// maxSocketPath is the longest path a unix socket address can have (sun_path is 108 bytes with the
// terminating NUL); containerd could not dial a longer one.
const maxSocketPath = 107

// proxyPlugin is one proxy snapshotter as containerd-rootless-setuptool.sh prints it (rootless.md
// §3.1).
type proxyPlugin struct {
	name, address, root string
}

func (p ContainerdPlugins) wanted() ([]proxyPlugin, error) {
	if !p.FuseOverlayfs && !p.Stargz {
		return nil, nil
	}
	for _, d := range []struct{ name, v string }{{"the runtime directory ($XDG_RUNTIME_DIR)", p.RuntimeDir}, {"the data directory ($XDG_DATA_HOME)", p.DataHome}} {
		if !filepath.IsAbs(d.v) || strings.ContainsRune(d.v, 0) || !utf8.ValidString(d.v) {
			return nil, fmt.Errorf("containerd config: %s %q must be an absolute UTF-8 path", d.name, d.v)
		}
	}
	run, data := filepath.Clean(p.RuntimeDir), filepath.Clean(p.DataHome)
	var out []proxyPlugin
	if p.FuseOverlayfs {
		out = append(out, proxyPlugin{"fuse-overlayfs", run + "/containerd-fuse-overlayfs.sock", data + "/containerd-fuse-overlayfs/"})
	}
	if p.Stargz {
		out = append(out, proxyPlugin{"stargz", run + "/containerd-stargz-grpc/containerd-stargz-grpc.sock", data + "/containerd-stargz-grpc/"})
	}
	for _, pp := range out {
		if len(pp.address) > maxSocketPath {
			return nil, fmt.Errorf("containerd config: the %s socket path %s is longer than a unix socket address can be (%d bytes); use a shorter XDG_RUNTIME_DIR", pp.name, pp.address, maxSocketPath)
		}
	}
	return out, nil
}

// containerdConfigVersion is the config version to write for a containerd major version: 3 for
// containerd 2.x (every 2.x release reads it; 2.3 and later migrate it to 4 in memory at start-up,
// leaving the file alone), 2 for containerd 1.3 to 1.7.
func containerdConfigVersion(major int) (int, error) {
	switch {
	case major == 1:
		return 2, nil
	case major >= 2:
		return 3, nil
	}
	return 0, fmt.Errorf("containerd config: unknown containerd major version %d", major)
}

// renderContainerdBlock writes the managed block. There is never a bare [proxy_plugins] header: a
// second definition of that table, which the user's part may already have, is invalid TOML.
func renderContainerdBlock(plugins []proxyPlugin) string {
	if len(plugins) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(managedBeginLine)
	b.WriteString("# Proxy snapshotters, as containerd-rootless-setuptool.sh describes them.\n")
	for _, pp := range plugins {
		name := tomlQuote(pp.name)
		fmt.Fprintf(&b, "[proxy_plugins.%s]\n  type = \"snapshot\"\n  address = %s\n", name, tomlQuote(pp.address))
		fmt.Fprintf(&b, "  [proxy_plugins.%s.exports]\n    root = %s\n    enable_remote_snapshot_annotations = \"true\"\n\n", name, tomlQuote(pp.root))
	}
	b.WriteString("# Let the transfer service unpack images for these snapshotters, and for the default one.\n")
	names := make([]string, 0, len(plugins)+1)
	for _, pp := range plugins {
		names = append(names, pp.name)
	}
	for _, n := range append(names, "overlayfs") {
		fmt.Fprintf(&b, "[[%s.unpack_config]]\n  platform = \"linux\"\n  snapshotter = %s\n", tomlKey(containerdTransferPlugin), tomlQuote(n))
	}
	b.WriteString(managedEndLine)
	return b.String()
}

// MergeContainerdConfig registers the wanted proxy snapshotters in containerd's config.toml
// (current; nil or empty when there is none), for containerd of the given major version. The
// plugins go in a managed block at the end; the user's own settings and comments are kept byte for
// byte. A file with no version key gets one at the top: containerd reads such a file as version 1,
// an old format (containerd 2.4.2 still migrates it, warning at every start; rootless.md §3.1
// records the 2.0 change that dropped it). The result is always valid TOML that holds the plugins; a user's file that
// already defines one of the tables the block writes, or that makes one of their parents an inline
// table or an array, is refused with a *ConfigError naming the line.
func MergeContainerdConfig(current []byte, p ContainerdPlugins, containerdMajor int) ([]byte, error) {
	const file = "config.toml"
	plugins, err := p.wanted()
	if err != nil {
		return nil, err
	}
	version, err := containerdConfigVersion(containerdMajor)
	if err != nil {
		return nil, err
	}
	doc, m, err := parseTOMLDoc(current, file)
	if err != nil {
		return nil, err
	}
	span, found, err := findManagedBlock(current, doc.commentLines, file)
	if err != nil {
		return nil, err
	}
	if err := checkAfterBlock(current, doc, span, found, file); err != nil {
		return nil, err
	}
	if err := checkContainerdConflicts(current, doc, span, found, plugins); err != nil {
		return nil, err
	}
	if v, ok := m["version"]; ok {
		if _, isInt := v.(int64); !isInt {
			return nil, &ConfigError{File: file, Msg: fmt.Sprintf("version = %v is not a config version number", v),
				Fix: fmt.Sprintf("set version = %d (containerd's config format version) and run virt-setup again", version)}
		}
	}

	out := spliceManagedBlock(current, span, found, renderContainerdBlock(plugins))
	if _, ok := m["version"]; !ok && len(plugins) > 0 {
		// Inserted at the top: the only place a root-table key can go once the file has tables.
		header := fmt.Sprintf("# virt-setup added this: containerd reads a config without a version as version 1.\nversion = %d\n\n", version)
		out = append([]byte(header), out...)
	}
	if err := verifyContainerdConfig(out, plugins); err != nil {
		return nil, err
	}
	return out, nil
}

// checkAfterBlock refuses a key-value right after the managed block: without a table header of its
// own it belongs to whatever table the block ends with, so changing or removing the block would
// silently move it into another table.
func checkAfterBlock(b []byte, doc *tomlDoc, span managedSpan, found bool, file string) error {
	if !found {
		return nil
	}
	for _, it := range doc.items {
		if it.offset < span.end {
			continue
		}
		if it.kind == unstable.KeyValue {
			return &ConfigError{File: file, Line: lineOf(b, it.offset),
				Msg: fmt.Sprintf("%s follows virt-setup's managed block without a table header of its own, so it belongs to the block's last table", tomlKey(it.key)),
				Fix: "move the line above virt-setup's BEGIN marker (or under a [table] header of its own), then run virt-setup again"}
		}
		return nil
	}
	return nil
}

// checkContainerdConflicts refuses a user's file whose own definitions would clash with the block.
func checkContainerdConflicts(b []byte, doc *tomlDoc, span managedSpan, found bool, plugins []proxyPlugin) error {
	const file = "config.toml"
	if len(plugins) == 0 {
		return nil
	}
	unpack := append(slices.Clone(containerdTransferPlugin), "unpack_config")
	ours := [][]string{unpack}
	for _, pp := range plugins {
		ours = append(ours, []string{"proxy_plugins", pp.name})
	}
	// Parents must stay ordinary tables that more tables can be added to.
	parents := [][]string{{"proxy_plugins"}, {"plugins"}, containerdTransferPlugin}
	moveAside := "Remove it (the block virt-setup writes replaces it) or rename it, then run virt-setup again; " +
		"`virt-setup plan` shows the block."

	for _, it := range doc.items {
		if found && it.offset >= span.start && it.offset < span.end {
			continue
		}
		full := it.path()
		for _, o := range ours {
			// A definition inside one of our tables: its own header, a sub-table, a key after the
			// END marker that has no header of its own and so lands in our last table.
			hit := hasPrefix(full, o)
			if it.kind == unstable.KeyValue {
				for i := 1; i <= len(it.key) && !hit; i++ {
					hit = hasPrefix(append(slices.Clone(it.table), it.key[:i]...), o)
				}
			}
			if !hit {
				continue
			}
			what := fmt.Sprintf("defines [%s] itself", tomlKey(full))
			if it.kind == unstable.ArrayTable {
				what = fmt.Sprintf("defines [[%s]] itself", tomlKey(full))
			}
			if it.kind == unstable.KeyValue {
				what = fmt.Sprintf("sets %s, inside [%s]", tomlKey(it.key), tomlKey(o))
			}
			return &ConfigError{File: file, Line: lineOf(b, it.offset),
				Msg: what + ", which virt-setup's managed block defines",
				Fix: moveAside}
		}
		for _, parent := range parents {
			if !slices.Equal(full, parent) {
				continue
			}
			switch it.kind {
			case unstable.KeyValue:
				kind := "a value"
				if it.valueKind == unstable.InlineTable {
					kind = "an inline table"
				}
				return &ConfigError{File: file, Line: lineOf(b, it.offset),
					Msg: fmt.Sprintf("%s is %s, which TOML does not let virt-setup add tables to", tomlKey(parent), kind),
					Fix: fmt.Sprintf("write it as a [%s] table section with one key per line (or as [%s.NAME] sections), then run virt-setup again", tomlKey(parent), tomlKey(parent))}
			case unstable.ArrayTable:
				return &ConfigError{File: file, Line: lineOf(b, it.offset),
					Msg: fmt.Sprintf("[[%s]] makes %s an array of tables; containerd expects a table", tomlKey(parent), tomlKey(parent)),
					Fix: fmt.Sprintf("change [[%s]] to [%s] and run virt-setup again", tomlKey(parent), tomlKey(parent))}
			}
		}
	}
	return nil
}

// verifyContainerdConfig parses the merged file and checks that it holds the plugins as written: a
// document the user's part makes mean something else must never be written.
func verifyContainerdConfig(out []byte, plugins []proxyPlugin) error {
	m := map[string]any{}
	if err := toml.Unmarshal(out, &m); err != nil {
		return fmt.Errorf("merge containerd config: the result does not parse (%w); the file was left unchanged", err)
	}
	table := func(v any, key string) map[string]any {
		t, _ := v.(map[string]any)
		sub, _ := t[key].(map[string]any)
		return sub
	}
	for _, pp := range plugins {
		got := table(m["proxy_plugins"], pp.name)
		if got["type"] != "snapshot" || got["address"] != pp.address || table(got, "exports")["root"] != pp.root {
			return fmt.Errorf("merge containerd config: the result does not hold proxy plugin %q as written; the file was left unchanged", pp.name)
		}
	}
	if len(plugins) > 0 {
		entries, _ := table(m["plugins"], containerdTransferPlugin[1])["unpack_config"].([]any)
		if len(entries) != len(plugins)+1 {
			return fmt.Errorf("merge containerd config: the result has %d unpack_config entries, want %d; the file was left unchanged", len(entries), len(plugins)+1)
		}
	}
	return nil
}

// nerdctlConfig has exactly the keys of nerdctl's own config struct (nerdctl pkg/config), with
// their types, so that decoding with DisallowUnknownFields accepts what nerdctl accepts. A test
// keeps it equal to probe.NerdctlConfigKeys.
type nerdctlConfig struct {
	Debug            bool     `toml:"debug"`
	DebugFull        bool     `toml:"debug_full"`
	Address          string   `toml:"address"`
	Namespace        string   `toml:"namespace"`
	Snapshotter      string   `toml:"snapshotter"`
	CNIPath          string   `toml:"cni_path"`
	CNINetConfPath   string   `toml:"cni_netconfpath"`
	DataRoot         string   `toml:"data_root"`
	CgroupManager    string   `toml:"cgroup_manager"`
	InsecureRegistry bool     `toml:"insecure_registry"`
	HostsDir         []string `toml:"hosts_dir"`
	Experimental     bool     `toml:"experimental"`
	HostGatewayIP    string   `toml:"host_gateway_ip"`
	BridgeIP         string   `toml:"bridge_ip"`
	KubeHideDupe     bool     `toml:"kube_hide_dupe"`
	CDISpecDirs      []string `toml:"cdi_spec_dirs"`
	UsernsRemap      string   `toml:"userns_remap"`
	DNS              []string `toml:"dns"`
	DNSOpts          []string `toml:"dns_opts"`
	DNSSearch        []string `toml:"dns_search"`
	DisableHCSystemd bool     `toml:"disable_hc_systemd"`
	SelinuxEnabled   bool     `toml:"selinux_enabled"`
}

// decodeNerdctlConfig decodes nerdctl.toml strictly, as nerdctl does.
func decodeNerdctlConfig(b []byte) (nerdctlConfig, error) {
	var c nerdctlConfig
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&c)
	return c, err
}

// SetNerdctlSnapshotter sets the top-level snapshotter key of nerdctl.toml (current; nil or empty
// when there is none), keeping every other line and comment: an existing snapshotter line is
// replaced in place (its trailing comment kept), otherwise the key is added above the first table.
// nerdctl refuses to start on a key it does not know, so a file holding one is refused with a
// *ConfigError naming the keys rather than written.
func SetNerdctlSnapshotter(current []byte, snapshotter string) ([]byte, error) {
	const file = "nerdctl.toml"
	if snapshotter == "" || !utf8.ValidString(snapshotter) {
		return nil, fmt.Errorf("set nerdctl snapshotter: %q is not a snapshotter name", snapshotter)
	}
	doc, m, err := parseTOMLDoc(current, file)
	if err != nil {
		return nil, err
	}
	var unknown []string
	firstLine := 0
	for k := range m {
		if !slices.Contains(probe.NerdctlConfigKeys, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, it := range doc.items {
		if len(it.path()) > 0 && slices.Contains(unknown, it.path()[0]) {
			firstLine = lineOf(current, it.offset)
			break
		}
	}
	if len(unknown) > 0 {
		fix := "remove these keys (nerdctl refuses to start while they are there; `nerdctl --help` shows its options), then run virt-setup again"
		if slices.Contains(unknown, "version") || slices.Contains(unknown, "plugins") {
			fix = "this looks like containerd's config.toml: move it to ~/.config/containerd/config.toml, or " + fix
		}
		return nil, &ConfigError{File: file, Line: firstLine,
			Msg: "has keys nerdctl rejects: " + strings.Join(unknown, ", "), Fix: fix}
	}
	if _, err := decodeNerdctlConfig(current); err != nil {
		return nil, &ConfigError{File: file, Msg: "nerdctl cannot read it: " + err.Error(),
			Fix: "fix the value's type (see nerdctl's docs/config.md) and run virt-setup again"}
	}

	line := "snapshotter = " + tomlQuote(snapshotter)
	var out []byte
	replaced := false
	for _, it := range doc.items {
		if it.kind == unstable.KeyValue && it.table == nil && slices.Equal(it.key, []string{"snapshotter"}) {
			// Replace from the key to the end of the value; any trailing comment stays.
			end := valueEnd(current, it.offset)
			out = append(append(append(out, current[:it.offset]...), line...), current[end:]...)
			replaced = true
			break
		}
	}
	if !replaced {
		at := len(current)
		for _, it := range doc.items {
			if it.kind != unstable.KeyValue {
				at = lineStart(current, it.offset)
				break
			}
		}
		out = append(out, current[:at]...)
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		out = append(append(append(out, line...), '\n'), current[at:]...)
	}
	got, err := decodeNerdctlConfig(out)
	if err != nil {
		return nil, fmt.Errorf("set nerdctl snapshotter: the result does not decode (%w); the file was left unchanged", err)
	}
	if got.Snapshotter != snapshotter {
		return nil, fmt.Errorf("set nerdctl snapshotter: the result reads snapshotter %q, not %q; the file was left unchanged", got.Snapshotter, snapshotter)
	}
	return out, nil
}

// valueEnd returns where the top-level key-value starting at off ends: its value may span lines (a
// multi-line string or array), so the expression is parsed again from off.
func valueEnd(b []byte, off int) int {
	var p unstable.Parser
	p.Reset(b[off:])
	if p.NextExpression() {
		e := p.Expression()
		if e.Kind == unstable.KeyValue {
			return off + int(e.Raw.Offset+e.Raw.Length)
		}
	}
	return lineEnd(b, off)
}

// validEnvName reports whether s is a portable environment variable name (POSIX: letters, digits
// and underscores, not starting with a digit), the only kind a shell can export.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// systemdQuoteEnv renders one Environment= assignment per systemd.exec(5) and systemd.syntax(7):
// the whole KEY=VALUE in double quotes, with C-style escapes for the quote and the backslash, and
// "%" doubled because systemd expands specifiers such as %h in it. A newline cannot be in a unit
// file's value at all, so it is refused, as are other control characters.
func systemdQuoteEnv(key, value string) (string, error) {
	if !validEnvName(key) {
		return "", fmt.Errorf("render override.conf: %q is not a valid environment variable name", key)
	}
	if !utf8.ValidString(value) {
		return "", fmt.Errorf("render override.conf: the value of %s is not valid UTF-8", key)
	}
	var b strings.Builder
	b.WriteString(`Environment="`)
	b.WriteString(key)
	b.WriteByte('=')
	for _, r := range value {
		switch {
		case r == '\n' || r == '\r':
			return "", fmt.Errorf("render override.conf: the value of %s holds a line break, which a unit file cannot", key)
		case r < 0x20 || r == 0x7f:
			return "", fmt.Errorf("render override.conf: the value of %s holds control character %U", key, r)
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '%':
			b.WriteString("%%")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString("\"\n")
	return b.String(), nil
}

// RenderOverride writes the Environment= lines of env into a [Service] section in the managed
// block of ~/.config/systemd/user/containerd.service.d/override.conf (current; nil when there is
// none), one line per variable in sorted order. The user's own lines are kept; an empty env
// removes the block.
func RenderOverride(current []byte, env map[string]string) ([]byte, error) {
	const file = "override.conf"
	span, found, err := findManagedBlock(current, allLineStarts(current), file)
	if err != nil {
		return nil, err
	}
	var block string
	if len(env) > 0 {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString(managedBeginLine)
		b.WriteString("[Service]\n")
		for _, k := range keys {
			line, err := systemdQuoteEnv(k, env[k])
			if err != nil {
				return nil, err
			}
			b.WriteString(line)
		}
		b.WriteString(managedEndLine)
		block = b.String()
	}
	// systemd joins a line ending in a backslash with the next one, which would swallow the marker.
	var before []byte
	switch {
	case found:
		before = current[:span.start]
	case block != "":
		before = current
	}
	if t := bytes.TrimRight(before, " \t\r\n"); bytes.HasSuffix(t, []byte(`\`)) {
		return nil, &ConfigError{File: file, Line: lineOf(current, len(t)-1),
			Msg: "the last line before virt-setup's block ends in a backslash, so systemd would join it with the block",
			Fix: "finish or remove the continued line, then run virt-setup again"}
	}
	return spliceManagedBlock(current, span, found, block), nil
}

// RenderEnvFile writes env as a POSIX sh file of export lines, sorted, each value shell-quoted, for
// a user to source in direct mode (no systemd unit carries the environment there). A name that is
// not a valid variable name is left out, with a comment, since it could not be exported anyway.
func RenderEnvFile(env map[string]string) []byte {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# Written by virt-setup: the environment rootless containerd runs with.\n")
	b.WriteString("# Load it into a POSIX shell with: . THIS-FILE\n")
	for _, k := range keys {
		if !validEnvName(k) {
			// %q keeps the comment on one line whatever the name holds.
			fmt.Fprintf(&b, "# left out %q: not a valid variable name\n", k)
			continue
		}
		fmt.Fprintf(&b, "export %s=%s\n", k, sys.ShellQuote(env[k]))
	}
	return b.Bytes()
}
