package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/virt-setup/virt-setup/assets"
)

// Host profiles are facts recorded on one host and replayed on another (--host-profile): a JSON file
// written by `virt-setup probe --json`, or one of the profiles shipped in assets/hosts.
//
// The shipped profiles live in package assets, which imports nothing of this module, so probe can
// import it without a cycle; internal/tools/genprofiles (which imports probe) writes them.

// maxProfileSize bounds what is read of a profile file: a real one is well under 100 KiB.
const maxProfileSize = 16 << 20

// LoadProfile reads the facts to replay. nameOrPath is a file (a path containing "/" or ending in
// ".json", or any other existing file) or the name of a shipped profile (assets.HostProfileNames).
// The file may hold a bare facts document or the report `virt-setup probe --json` writes, whose
// "facts" member is used. The facts come back with Meta.Mode "profile" and Meta.Profile naming
// where they came from.
func LoadProfile(nameOrPath string) (*Facts, error) {
	return loadProfile(nameOrPath, assets.Hosts)
}

// loadProfile is LoadProfile with the shipped profiles in shipped (hosts/NAME.json).
func loadProfile(nameOrPath string, shipped fs.FS) (*Facts, error) {
	if nameOrPath == "" {
		return nil, errors.New("load host profile: no name or path given")
	}
	looksLikePath := strings.ContainsRune(nameOrPath, os.PathSeparator) || strings.HasSuffix(nameOrPath, ".json")
	if !looksLikePath {
		if b, err := fs.ReadFile(shipped, "hosts/"+nameOrPath+".json"); err == nil {
			f, err := ParseProfile(b, "shipped profile "+nameOrPath)
			if err != nil {
				return nil, err
			}
			f.Meta.Profile = nameOrPath
			return f, nil
		}
	}
	b, err := readProfileFile(nameOrPath)
	if err != nil {
		if !looksLikePath && errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load host profile %q: no shipped profile has that name and no such file exists; shipped profiles: %s",
				nameOrPath, strings.Join(shippedNames(shipped), ", "))
		}
		return nil, err
	}
	f, err := ParseProfile(b, nameOrPath)
	if err != nil {
		return nil, err
	}
	f.Meta.Profile = nameOrPath
	return f, nil
}

func readProfileFile(p string) ([]byte, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("load host profile: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("load host profile: stat %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load host profile %s: not a regular file", p)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxProfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load host profile: read %s: %w", p, err)
	}
	if len(b) > maxProfileSize {
		return nil, fmt.Errorf("load host profile %s: larger than %d MiB, which no facts document is", p, maxProfileSize>>20)
	}
	return b, nil
}

func shippedNames(shipped fs.FS) []string { return assets.ProfileNames(shipped) }

// ParseProfile decodes a facts document, or the facts member of a report, and checks its schema
// version. source names the document in errors. A garbled document gives an error with the line and
// column, never a panic.
func ParseProfile(data []byte, source string) (*Facts, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, jsonError(source, data, 0, err)
	}
	if top == nil {
		return nil, fmt.Errorf("parse %s: the document is null, not a facts document", source)
	}
	doc, base := data, 0
	if raw, ok := top["facts"]; ok {
		if _, hasMeta := top["meta"]; !hasMeta {
			// A report from `probe --json`: {facts, checks, recommendation}. Only the facts are replayed;
			// checks and recommendation are worked out again by this version.
			doc = raw
			base = bytes.Index(data, raw)
		}
	}
	var head struct {
		Meta *struct {
			SchemaVersion *int `json:"schema_version"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		return nil, jsonError(source, data, base, err)
	}
	switch {
	case head.Meta == nil || head.Meta.SchemaVersion == nil:
		return nil, fmt.Errorf("parse %s: not a virt-setup facts document (no meta.schema_version); pass a file written by `virt-setup probe --json`", source)
	case *head.Meta.SchemaVersion != SchemaVersion:
		return nil, fmt.Errorf("parse %s: facts schema version %d, but this virt-setup reads version %d; record the host again with this version (`virt-setup probe --json > host.json` on that host), or replay it with the virt-setup version that wrote it",
			source, *head.Meta.SchemaVersion, SchemaVersion)
	}
	var f Facts
	if err := json.Unmarshal(doc, &f); err != nil {
		return nil, jsonError(source, data, base, err)
	}
	if f.Binaries == nil {
		f.Binaries = map[string]Fact[Binary]{}
	}
	f.Meta.Mode = "profile"
	return &f, nil
}

// jsonError says where in the file a JSON error is. encoding/json gives the number of bytes read
// when it failed, into the part decoded, which starts at base in data: the culprit is the byte
// before that.
func jsonError(source string, data []byte, base int, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	off := int64(-1)
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	if off < 0 || base < 0 {
		return fmt.Errorf("parse %s: %w", source, err)
	}
	line, col := lineCol(data, base+int(max(off-1, 0)))
	return fmt.Errorf("parse %s: line %d, column %d: %w", source, line, col, err)
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int) (int, int) {
	off = min(max(off, 0), len(data))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := off - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// ProfileFromRoot turns facts gathered under --root into a host profile that says nothing of where and
// when it was made: every mention of the root directory becomes the path it stands for, the timings
// (which differ on every run) are zeroed, and the probes are listed in their fixed order. Meta.Mode
// becomes "profile" and Meta.Profile the name.
func ProfileFromRoot(f *Facts, name, root string) (*Facts, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode facts of %s: %w", name, err)
	}
	if root = path.Clean(root); root != "/" && root != "." {
		quoted, err := json.Marshal(root)
		if err != nil {
			return nil, fmt.Errorf("encode root %s: %w", root, err)
		}
		esc := quoted[1 : len(quoted)-1]
		b = bytes.ReplaceAll(b, append(slices.Clone(esc), '/'), []byte("/"))
		b = bytes.ReplaceAll(b, esc, []byte("/"))
	}
	var out Facts
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode facts of %s: %w", name, err)
	}
	out.Meta.Mode = "profile"
	out.Meta.Profile = name
	out.Meta.Root = ""
	out.Meta.Duration = 0
	order := map[string]int{}
	for i, n := range ProbeNames() {
		order[n] = i
	}
	for i := range out.Meta.Probes {
		out.Meta.Probes[i].Duration = 0
	}
	sort.SliceStable(out.Meta.Probes, func(i, j int) bool {
		return order[out.Meta.Probes[i].Name] < order[out.Meta.Probes[j].Name]
	})
	zeroLive(&out.Live.OverlayUserns)
	zeroLive(&out.Live.FuseOverlayfs)
	return &out, nil
}

func zeroLive(t *Fact[LiveTest]) { t.Value.Duration = 0 }

// RecordedLiveTest is a live test result recorded on a real host, for a profile built from a fake
// one (live tests never run under --root). test is "overlay" or "fuse-overlayfs"; status is
// LivePassed or LiveFailed with detail the error the test reported; note says where the result
// comes from and is kept in the evidence, marked as recorded.
func RecordedLiveTest(test, status, detail, note string) (Fact[LiveTest], error) {
	var source string
	switch test {
	case liveTestOverlay:
		source = liveOverlaySource
	case liveTestFuse:
		source = liveFuseSource
	default:
		return Fact[LiveTest]{}, fmt.Errorf("recorded live test %q: want %q or %q", test, liveTestOverlay, liveTestFuse)
	}
	if status != LivePassed && status != LiveFailed {
		return Fact[LiveTest]{}, fmt.Errorf("recorded live test %s: status %q, want %q or %q", test, status, LivePassed, LiveFailed)
	}
	excerpt := "recorded on a real host, not run here"
	if note != "" {
		excerpt += ": " + note
	}
	if detail != "" {
		excerpt += "; failed: " + detail
	}
	return Known(LiveTest{Status: status, Detail: detail}, Evidence{Kind: "live", Source: source, Excerpt: clipExcerpt(excerpt)}), nil
}

// MarshalProfile renders facts the way shipped profiles are stored: indented, with a final newline,
// so regenerating them gives the same bytes.
// HTML escaping is off because excerpts quote files such as AppArmor profiles ("abi <abi/4.0>"), which
// should read as they are.
func MarshalProfile(f *Facts) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("encode profile: %w", err)
	}
	return buf.Bytes(), nil
}
