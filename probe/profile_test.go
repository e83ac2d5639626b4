package probe

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/probe/probetest"
)

// factsJSON is a small facts document with the current schema version.
func factsJSON(t testing.TB, mutate func(*Facts)) []byte {
	t.Helper()
	f := &Facts{Meta: Meta{SchemaVersion: SchemaVersion, Tool: "test", Mode: "live"}, Binaries: map[string]Fact[Binary]{}}
	f.OS.Kernel = Known(Kernel{Release: "6.1.0-18-amd64", Major: 6, Minor: 1}, Evidence{Kind: "file", Source: "/proc/sys/kernel/osrelease"})
	if mutate != nil {
		mutate(f)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseProfile(t *testing.T) {
	bare := factsJSON(t, nil)
	report, err := json.MarshalIndent(map[string]any{
		"facts":          json.RawMessage(bare),
		"checks":         []any{map[string]string{"id": "VS-X-001"}},
		"recommendation": map[string]string{"snapshotter": "overlayfs"},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		doc     string
		wantErr []string // substrings of the error; nil means success
	}{
		{name: "bare facts", doc: string(bare)},
		{name: "report", doc: string(report)},
		{name: "old schema", doc: string(factsJSON(t, func(f *Facts) { f.Meta.SchemaVersion = SchemaVersion + 1 })),
			wantErr: []string{"x.json", "schema version 2", "reads version 1", "virt-setup probe --json"}},
		{name: "no schema", doc: `{"meta": {"tool": "x"}}`, wantErr: []string{"x.json", "no meta.schema_version", "probe --json"}},
		{name: "empty object", doc: `{}`, wantErr: []string{"not a virt-setup facts document"}},
		{name: "null", doc: `null`, wantErr: []string{"null"}},
		{name: "report with null facts", doc: `{"facts": null, "checks": []}`, wantErr: []string{"no meta.schema_version"}},
		{name: "array", doc: `[1, 2]`, wantErr: []string{"x.json", "line 1, column"}},
		{name: "truncated", doc: "{\n  \"meta\": {\n    \"schema_version\": 1,\n", wantErr: []string{"x.json", "line 3", "unexpected end"}},
		{name: "syntax error", doc: "{\n  \"meta\": {\n    \"schema_version\": 1,,\n", wantErr: []string{"line 3, column 25", "invalid character ','"}},
		{name: "wrong type", doc: "{\"meta\": {\"schema_version\": 1},\n \"os\": {\"kernel\": {\"known\": \"yes\"}}}", wantErr: []string{"line 2", "os.kernel.known"}},
		{name: "wrong type in report", doc: "{\"facts\":\n{\"meta\": {\"schema_version\": 1}, \"userns\": {\"max_user_namespaces\": {\"value\": \"many\"}}}}", wantErr: []string{"line 2", "max_user_namespaces"}},
		{name: "bad duration", doc: `{"meta": {"schema_version": 1, "duration": "soon"}}`, wantErr: []string{"x.json", "duration"}},
		{name: "schema version not a number", doc: `{"meta": {"schema_version": "1"}}`, wantErr: []string{"x.json", "schema_version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseProfile([]byte(tt.doc), "x.json")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ParseProfile: %v", err)
				}
				if f.Meta.Mode != "profile" || f.Binaries == nil || f.OS.Kernel.Value.Release != "6.1.0-18-amd64" {
					t.Errorf("got mode %q binaries %v kernel %+v", f.Meta.Mode, f.Binaries, f.OS.Kernel)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseProfile succeeded, want an error mentioning %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadProfile(t *testing.T) {
	shipped := fstest.MapFS{
		"hosts/tiny.json":   {Data: factsJSON(t, nil)},
		"hosts/broken.json": {Data: []byte("{")},
		"hosts/other.json":  {Data: factsJSON(t, nil)},
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "host.json")
	if err := os.WriteFile(file, factsJSON(t, func(f *Facts) { f.Meta.Tool = "from-file" }), 0o644); err != nil {
		t.Fatal(err)
	}
	// A file named like a shipped profile, in the working directory: the name still means the
	// shipped profile, a path with a slash the file.
	t.Chdir(dir)
	if err := os.WriteFile("tiny", []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("plain", factsJSON(t, func(f *Facts) { f.Meta.Tool = "plain-file" }), 0o644); err != nil {
		t.Fatal(err)
	}

	f, err := loadProfile("tiny", shipped)
	if err != nil || f.Meta.Profile != "tiny" || f.Meta.Mode != "profile" {
		t.Fatalf("shipped name: %+v, %v", f, err)
	}
	if f, err := loadProfile(file, shipped); err != nil || f.Meta.Tool != "from-file" || f.Meta.Profile != file {
		t.Fatalf("path: %+v, %v", f, err)
	}
	if f, err := loadProfile("plain", shipped); err != nil || f.Meta.Tool != "plain-file" {
		t.Fatalf("an existing file without slash or .json: %+v, %v", f, err)
	}
	if _, err := loadProfile("./tiny", shipped); err == nil || !strings.Contains(err.Error(), "./tiny") {
		t.Fatalf("./tiny should read the garbled file and name it, got %v", err)
	}
	if _, err := loadProfile("broken", shipped); err == nil || !strings.Contains(err.Error(), "shipped profile broken") {
		t.Fatalf("garbled shipped profile: %v", err)
	}
	_, err = loadProfile("nosuch", shipped)
	if err == nil || !strings.Contains(err.Error(), "broken, other, tiny") {
		t.Fatalf("unknown name: %v, want the shipped names listed", err)
	}
	if _, err := loadProfile(filepath.Join(dir, "missing.json"), shipped); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := loadProfile(dir, shipped); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: %v", err)
	}
	if _, err := loadProfile("", shipped); err == nil {
		t.Fatal("empty name accepted")
	}
}

// TestProfileFromRoot probes a fake host, turns the facts into a profile and checks that nothing in
// it names the directory the host was built in, that the timings are gone, and that it survives a
// round trip through MarshalProfile and ParseProfile unchanged.
func TestProfileFromRoot(t *testing.T) {
	dir := t.TempDir()
	u := probetest.Alice("/bin/bash")
	h := probetest.Host{
		OSRelease: probetest.OSRelease{ID: "debian", Name: "Debian GNU/Linux", VersionID: "12"},
		Kernel:    "6.1.0-18-amd64", Arch: "x86_64",
		MaxUserNamespaces: 1000, UnprivilegedUsernsClone: probetest.Absent, UnprivilegedPortStart: probetest.Absent,
		User: u, RuntimeDir: true, Env: probetest.SessionEnv(u, "/usr/bin:/bin", true, false),
		Cgroup:   probetest.Cgroup{Version: "v2", Controllers: []string{"cpu", "memory"}},
		Binaries: []probetest.Binary{{Name: "nerdctl", Dir: "/home/alice/bin", Version: "nerdctl version 2.0.5"}},
	}
	if err := h.Build(dir); err != nil {
		t.Fatal(err)
	}
	f, err := Run(context.Background(), Options{Root: dir, Runner: sys.Exec{}, Tool: "test", Now: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := json.Marshal(f); !strings.Contains(string(raw), dir) {
		t.Fatalf("the raw facts do not name %s, so this test would prove nothing", dir)
	}
	p, err := ProfileFromRoot(f, "tiny-debian", dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalProfile(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), dir) {
		t.Errorf("profile still names %s", dir)
	}
	if p.Meta.Mode != "profile" || p.Meta.Profile != "tiny-debian" || p.Meta.Root != "" || p.Meta.Duration != 0 {
		t.Errorf("meta = %+v", p.Meta)
	}
	names := ProbeNames()
	if len(p.Meta.Probes) != len(names) {
		t.Fatalf("probes = %+v, want %v", p.Meta.Probes, names)
	}
	for i, r := range p.Meta.Probes {
		if r.Name != names[i] || r.Duration != 0 {
			t.Errorf("probe %d = %+v, want %s with no duration", i, r, names[i])
		}
	}
	if got := p.Binaries["nerdctl"].Value; got.Path != "/home/alice/bin/nerdctl" || got.Version != "2.0.5" {
		t.Errorf("nerdctl = %+v, want the path below the root rewritten to /home/alice/bin/nerdctl", got)
	}
	back, err := ParseProfile(b, "round trip")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("round trip changed the profile")
	}
	again, err := MarshalProfile(back)
	if err != nil || string(again) != string(b) {
		t.Errorf("marshalling the parsed profile gives different bytes (%v)", err)
	}
}

func TestRecordedLiveTest(t *testing.T) {
	got, err := RecordedLiveTest("overlay", LiveFailed, "mount overlay: operation not permitted", "kernel 4.18")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Known || got.Value.Status != LiveFailed || got.Value.Detail != "mount overlay: operation not permitted" || !got.Value.Ran() {
		t.Errorf("got %+v", got)
	}
	if len(got.Evidence) != 1 || got.Evidence[0].Kind != "live" || got.Evidence[0].Source != liveOverlaySource ||
		!strings.HasPrefix(got.Evidence[0].Excerpt, "recorded on a real host") {
		t.Errorf("evidence = %+v", got.Evidence)
	}
	if f, err := RecordedLiveTest("fuse-overlayfs", LivePassed, "", ""); err != nil || f.Evidence[0].Source != liveFuseSource {
		t.Errorf("fuse: %+v, %v", f, err)
	}
	for _, bad := range [][2]string{{"btrfs", LivePassed}, {"overlay", LiveSkipped}, {"overlay", ""}} {
		if _, err := RecordedLiveTest(bad[0], bad[1], "", ""); err == nil {
			t.Errorf("RecordedLiveTest(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// FuzzLoadProfile feeds arbitrary bytes to ParseProfile, which decodes every profile LoadProfile
// reads (files and shipped ones alike); TestLoadProfile covers the file handling around it. It runs
// in memory: writing each input to a file made the fuzzer spend its time in file I/O while
// minimizing.
func FuzzLoadProfile(f *testing.F) {
	f.Add(factsJSON(f, nil))
	f.Add([]byte(`{"facts": {"meta": {"schema_version": 1}}, "checks": []}`))
	f.Add([]byte(`{"meta": {"schema_version": 1, "duration": "1s", "probes": [{"name": "os", "duration": "x"}]}}`))
	f.Add([]byte(`{"meta": {"schema_version": 1}, "binaries": {"x": {"value": {"features": {"a": true}}}}}`))
	f.Add([]byte(`{"meta": {"schema_version": 1}, "os": {"kernel": {"known": true, "value": {"major": -1}}}, "live": {"overlay_userns": {"known": true, "value": {"status": "failed"}}}}`))
	f.Add([]byte(`{"facts": "x"}`))
	f.Add([]byte(`{"meta": {"schema_version": 99}}`))
	f.Add([]byte("\xff\xfe{"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		facts, err := ParseProfile(data, "fuzz.json")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.json") {
				t.Errorf("error %q does not name the document", err)
			}
			return
		}
		if facts.Meta.SchemaVersion != SchemaVersion || facts.Meta.Mode != "profile" || facts.Binaries == nil {
			t.Errorf("accepted facts with meta %+v, binaries nil=%v", facts.Meta, facts.Binaries == nil)
		}
		// Whatever is accepted must survive the doctor and the recommendation.
		_ = NewReport(facts)
	})
}
