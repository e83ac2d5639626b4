package installer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/virt-setup/virt-setup/internal/testenv"
	"github.com/virt-setup/virt-setup/probe"
)

// userContainerdConfig is a config a user could have: comments everywhere, version 2, plugin
// sections of their own (one of them the transfer plugin virt-setup adds unpack_config to), a bare
// [proxy_plugins] header and a proxy plugin virt-setup does not manage.
const userContainerdConfig = `# My containerd config. Do not lose this comment.
version = 2
root = "/home/me/.local/share/containerd" # trailing comment

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    # sandbox image for the CRI
    sandbox_image = "registry.k8s.io/pause:3.9"
  [plugins."io.containerd.transfer.v1.local"]
    max_concurrent_downloads = 5

[proxy_plugins]
  [proxy_plugins."nydus"]
    type = "snapshot"
    address = "/run/user/1000/nydus.sock"

# trailing comment at the end, no final newline`

var testPlugins = ContainerdPlugins{FuseOverlayfs: true, RuntimeDir: "/run/user/1000", DataHome: "/home/me/.local/share"}

// decodedContainerd decodes a merged config for assertions.
func decodedContainerd(t *testing.T, b []byte) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := toml.Unmarshal(b, &m); err != nil {
		t.Fatalf("merged config does not parse: %v\n%s", err, b)
	}
	return m
}

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		t, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = t[k]
	}
	return v
}

func unpackSnapshotters(m map[string]any) []string {
	var out []string
	entries, _ := dig(m, "plugins", "io.containerd.transfer.v1.local", "unpack_config").([]any)
	for _, e := range entries {
		em, _ := e.(map[string]any)
		if em["platform"] == "linux" {
			out = append(out, em["snapshotter"].(string))
		}
	}
	return out
}

func TestMergeContainerdConfigNewFile(t *testing.T) {
	for _, tt := range []struct {
		major       int
		wantVersion int64
	}{{2, 3}, {1, 2}} {
		out, err := MergeContainerdConfig(nil, ContainerdPlugins{FuseOverlayfs: true, Stargz: true, RuntimeDir: "/run/user/1001", DataHome: "/home/v/.local/share"}, tt.major)
		if err != nil {
			t.Fatal(err)
		}
		m := decodedContainerd(t, out)
		if m["version"] != tt.wantVersion {
			t.Errorf("containerd %d.x: version = %v, want %d", tt.major, m["version"], tt.wantVersion)
		}
		if got := dig(m, "proxy_plugins", "fuse-overlayfs", "address"); got != "/run/user/1001/containerd-fuse-overlayfs.sock" {
			t.Errorf("fuse-overlayfs address = %v", got)
		}
		if got := dig(m, "proxy_plugins", "fuse-overlayfs", "exports", "root"); got != "/home/v/.local/share/containerd-fuse-overlayfs/" {
			t.Errorf("fuse-overlayfs root = %v", got)
		}
		if got := dig(m, "proxy_plugins", "fuse-overlayfs", "exports", "enable_remote_snapshot_annotations"); got != "true" {
			t.Errorf("fuse-overlayfs annotations = %v", got)
		}
		if got := dig(m, "proxy_plugins", "stargz", "address"); got != "/run/user/1001/containerd-stargz-grpc/containerd-stargz-grpc.sock" {
			t.Errorf("stargz address = %v", got)
		}
		if got := dig(m, "proxy_plugins", "stargz", "exports", "root"); got != "/home/v/.local/share/containerd-stargz-grpc/" {
			t.Errorf("stargz root = %v", got)
		}
		if got := unpackSnapshotters(m); !slices.Equal(got, []string{"fuse-overlayfs", "stargz", "overlayfs"}) {
			t.Errorf("unpack_config snapshotters = %v", got)
		}
		if bytes.Contains(out, []byte("[proxy_plugins]\n")) {
			t.Errorf("output has a bare [proxy_plugins] header:\n%s", out)
		}
	}
	if _, err := MergeContainerdConfig(nil, testPlugins, 0); err == nil {
		t.Error("containerd major version 0 accepted")
	}
}

func TestMergeContainerdConfigKeepsUserContent(t *testing.T) {
	user := []byte(userContainerdConfig)
	out, err := MergeContainerdConfig(user, testPlugins, 2)
	if err != nil {
		t.Fatal(err)
	}
	// The user's file is a prefix, byte for byte (it has a version, so nothing goes above it).
	if !bytes.HasPrefix(out, user) {
		t.Fatalf("user content not kept byte for byte:\n%s", out)
	}
	m := decodedContainerd(t, out)
	if m["version"] != int64(2) || dig(m, "plugins", "io.containerd.grpc.v1.cri", "sandbox_image") != "registry.k8s.io/pause:3.9" ||
		dig(m, "plugins", "io.containerd.transfer.v1.local", "max_concurrent_downloads") != int64(5) ||
		dig(m, "proxy_plugins", "nydus", "address") != "/run/user/1000/nydus.sock" {
		t.Errorf("user settings changed: %v", m)
	}
	if dig(m, "proxy_plugins", "fuse-overlayfs", "type") != "snapshot" {
		t.Error("fuse-overlayfs missing")
	}

	// A second merge is a no-op.
	again, err := MergeContainerdConfig(out, testPlugins, 2)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("second merge changed the file (%v):\n%s", err, UnifiedDiff("/c", out, again))
	}

	// Adding stargz changes only the block.
	both := testPlugins
	both.Stargz = true
	withStargz, err := MergeContainerdConfig(out, both, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(withStargz, user) || dig(decodedContainerd(t, withStargz), "proxy_plugins", "stargz", "type") != "snapshot" {
		t.Errorf("adding stargz:\n%s", withStargz)
	}
	if n := bytes.Count(withStargz, []byte(managedBeginMarker)); n != 1 {
		t.Errorf("%d managed blocks after a change, want 1", n)
	}

	// Wanting none removes the block and gives back the user's file (plus the newline the block
	// needed after their last line).
	none, err := MergeContainerdConfig(withStargz, ContainerdPlugins{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(none) != userContainerdConfig+"\n" {
		t.Errorf("after removing the block:\n%q\nwant\n%q", none, userContainerdConfig+"\n")
	}
	if unchanged, err := MergeContainerdConfig(none, ContainerdPlugins{}, 2); err != nil || !bytes.Equal(unchanged, none) {
		t.Errorf("merging nothing into a file without a block changed it: %v", err)
	}
}

func TestMergeContainerdConfigAddsVersion(t *testing.T) {
	user := []byte("# a user's config without a version\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  x = 1\n")
	out, err := MergeContainerdConfig(user, testPlugins, 2)
	if err != nil {
		t.Fatal(err)
	}
	m := decodedContainerd(t, out)
	if m["version"] != int64(3) {
		t.Errorf("version = %v, want 3", m["version"])
	}
	if !bytes.Contains(out, user) {
		t.Errorf("user content not kept:\n%s", out)
	}
	if dig(m, "plugins", "io.containerd.grpc.v1.cri", "x") != int64(1) {
		t.Error("user key moved into another table")
	}
	again, err := MergeContainerdConfig(out, testPlugins, 2)
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("second merge changed the file: %v", err)
	}
}

func TestMergeContainerdConfigRefusals(t *testing.T) {
	both := ContainerdPlugins{FuseOverlayfs: true, Stargz: true, RuntimeDir: "/run/user/1000", DataHome: "/home/me/.local/share"}
	tests := []struct {
		name     string
		config   string
		line     int
		msg, fix string
	}{
		{"own fuse-overlayfs table",
			"version = 2\n[proxy_plugins]\n  [proxy_plugins.\"fuse-overlayfs\"]\n    type = \"snapshot\"\n",
			3, `defines [proxy_plugins.fuse-overlayfs] itself`, "Remove it"},
		{"own exports sub-table",
			"version = 2\n\n[proxy_plugins.stargz.exports]\n  root = \"/x\"\n",
			3, `defines [proxy_plugins.stargz.exports] itself`, "Remove it"},
		{"dotted key into our table",
			"version = 2\n[proxy_plugins]\nstargz.type = \"snapshot\"\n",
			3, `sets stargz.type, inside [proxy_plugins.stargz]`, "Remove it"},
		{"own unpack_config entries",
			"version = 2\n[[plugins.\"io.containerd.transfer.v1.local\".unpack_config]]\n  platform = \"linux\"\n  snapshotter = \"native\"\n",
			2, `defines [[plugins."io.containerd.transfer.v1.local".unpack_config]] itself`, "Remove it"},
		{"proxy_plugins inline table",
			"version = 2\nproxy_plugins = { nydus = { type = \"snapshot\", address = \"/x\" } }\n",
			2, "proxy_plugins is an inline table", "[proxy_plugins] table section"},
		{"transfer plugin inline table",
			"version = 2\n[plugins]\n\"io.containerd.transfer.v1.local\" = { max_concurrent_downloads = 3 }\n",
			3, `plugins."io.containerd.transfer.v1.local" is an inline table`, "table section"},
		{"plugins as array of tables",
			"version = 2\n[[plugins]]\n  x = 1\n",
			2, "[[plugins]] makes plugins an array of tables", "change [[plugins]] to [plugins]"},
		{"key after the block",
			"version = 2\n" + renderContainerdBlock([]proxyPlugin{{"fuse-overlayfs", "/run/user/1000/containerd-fuse-overlayfs.sock", "/d/"}}) + "debug = true\n",
			0, "follows virt-setup's managed block without a table header of its own", "move the line above"},
		{"key after an empty block",
			"version = 2\n" + managedBeginLine + managedEndLine + "debug = true\n",
			4, "debug follows virt-setup's managed block", "move the line above"},
		{"not TOML",
			"version = 2\n[plugins\n",
			2, "not valid TOML", "fix the file"},
		{"duplicate table",
			"version = 2\n[proxy_plugins]\n[proxy_plugins]\n",
			3, "not valid TOML", "fix the file"},
		{"version not a number",
			"version = \"2\"\n",
			0, "is not a config version number", "set version = 3"},
		{"BEGIN without END",
			"version = 2\n" + managedBeginLine + "[proxy_plugins.\"x\"]\n",
			2, "BEGIN marker without an END marker", "delete the incomplete"},
		{"stray END",
			"version = 2\n" + managedEndLine,
			2, "END marker without a BEGIN marker", "delete the stray END"},
		{"two blocks",
			"version = 2\n" + managedBeginLine + managedEndLine + managedBeginLine + managedEndLine,
			4, "a second virt-setup BEGIN marker", "keep one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := MergeContainerdConfig([]byte(tt.config), both, 2)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want a *ConfigError; output:\n%s", err, err, out)
			}
			if out != nil {
				t.Error("output returned with an error")
			}
			if tt.line > 0 && ce.Line != tt.line {
				t.Errorf("line = %d, want %d (%v)", ce.Line, tt.line, ce)
			}
			if !strings.Contains(ce.Error(), tt.msg) {
				t.Errorf("error %q lacks %q", ce.Error(), tt.msg)
			}
			if !strings.Contains(ce.UserFix(), tt.fix) {
				t.Errorf("fix %q lacks %q", ce.UserFix(), tt.fix)
			}
			if ce.Line > 0 && !strings.Contains(ce.Error(), "line ") {
				t.Errorf("error %q does not name the line", ce.Error())
			}
		})
	}
}

// TestMergeContainerdConfigTolerates covers user content that looks like a clash but is not one.
func TestMergeContainerdConfigTolerates(t *testing.T) {
	tests := []struct{ name, config string }{
		{"the user's own fuse-overlayfs when only stargz is wanted",
			"version = 2\n[proxy_plugins.\"fuse-overlayfs\"]\n  type = \"snapshot\"\n  address = \"/elsewhere.sock\"\n"},
		{"marker text inside a multi-line string",
			"version = 2\nnote = \"\"\"\n" + managedBeginLine + "\"\"\"\n"},
		{"parents defined by dotted keys",
			"version = 2\nproxy_plugins.nydus.type = \"snapshot\"\nplugins.\"io.containerd.transfer.v1.local\".max_concurrent_downloads = 2\n"},
		{"CRLF line endings", "version = 2\r\n[plugins]\r\n  x = 1\r\n"},
	}
	stargz := ContainerdPlugins{Stargz: true, RuntimeDir: "/run/user/1000", DataHome: "/home/me/.local/share"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := MergeContainerdConfig([]byte(tt.config), stargz, 2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, []byte(tt.config)) {
				t.Errorf("user content changed:\n%s", out)
			}
			m := decodedContainerd(t, out)
			if dig(m, "proxy_plugins", "stargz", "type") != "snapshot" {
				t.Errorf("stargz missing:\n%s", out)
			}
			again, err := MergeContainerdConfig(out, stargz, 2)
			if err != nil || !bytes.Equal(again, out) {
				t.Errorf("second merge changed the file: %v", err)
			}
		})
	}
}

func TestMergeContainerdConfigHostilePaths(t *testing.T) {
	p := ContainerdPlugins{FuseOverlayfs: true, Stargz: true,
		RuntimeDir: "/run/user/1000/it's \"quoted\" \\ $(id); `x`",
		DataHome:   "/home/a b/\n[evil]\nx = 1\n/\u00e9\t%"}
	out, err := MergeContainerdConfig(nil, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	m := decodedContainerd(t, out)
	if _, ok := m["evil"]; ok {
		t.Fatalf("a path injected a table:\n%s", out)
	}
	if got := dig(m, "proxy_plugins", "fuse-overlayfs", "address"); got != filepath.Clean(p.RuntimeDir)+"/containerd-fuse-overlayfs.sock" {
		t.Errorf("address = %q", got)
	}
	if got := dig(m, "proxy_plugins", "stargz", "exports", "root"); got != filepath.Clean(p.DataHome)+"/containerd-stargz-grpc/" {
		t.Errorf("root = %q", got)
	}

	for _, bad := range []ContainerdPlugins{
		{FuseOverlayfs: true, RuntimeDir: "run/user/1000", DataHome: "/d"},
		{FuseOverlayfs: true, RuntimeDir: "/run", DataHome: ""},
		{FuseOverlayfs: true, RuntimeDir: "/run/\x00", DataHome: "/d"},
		{FuseOverlayfs: true, RuntimeDir: "/run/\xff", DataHome: "/d"},
		{Stargz: true, RuntimeDir: "/" + strings.Repeat("r", 80), DataHome: "/d"},
	} {
		if out, err := MergeContainerdConfig(nil, bad, 2); err == nil {
			t.Errorf("accepted %+v:\n%s", bad, out)
		}
	}
}

// TestMergeContainerdConfigRealContainerd has the installed containerd read the merged files:
// `containerd --config FILE config dump` must accept them and show the proxy plugins and the
// unpack configuration, and the user's own settings.
func TestMergeContainerdConfigRealContainerd(t *testing.T) {
	containerd, err := exec.LookPath("containerd")
	if err != nil {
		containerd = "/usr/local/bin/containerd"
	}
	_, statErr := os.Stat(containerd)
	testenv.Require(t, statErr == nil, "containerd is not installed: run scripts/install-components.sh")
	dir := t.TempDir()
	both := ContainerdPlugins{FuseOverlayfs: true, Stargz: true, RuntimeDir: "/run/user/1001", DataHome: "/home/vstest/.local/share"}
	tests := []struct {
		name    string
		current []byte
		p       ContainerdPlugins
		user    func(m map[string]any) bool
	}{
		{"new file", nil, both, nil},
		{"user config, version 2", []byte(userContainerdConfig), both, func(m map[string]any) bool {
			return dig(m, "root") == "/home/me/.local/share/containerd" &&
				dig(m, "plugins", "io.containerd.transfer.v1.local", "max_concurrent_downloads") == int64(5) &&
				dig(m, "proxy_plugins", "nydus", "address") == "/run/user/1000/nydus.sock"
		}},
		{"user config without version", []byte("# mine\n[plugins.\"io.containerd.transfer.v1.local\"]\n  max_concurrent_downloads = 4\n"), testPlugins, func(m map[string]any) bool {
			return dig(m, "plugins", "io.containerd.transfer.v1.local", "max_concurrent_downloads") == int64(4)
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := MergeContainerdConfig(tt.current, tt.p, 2)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "config"+string(rune('0'+i))+".toml")
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, containerd, "--config", path, "config", "dump")
			cmd.Stderr = &stderr
			dump, err := cmd.Output()
			if err != nil {
				t.Fatalf("containerd config dump: %v\n%s\nconfig:\n%s", err, stderr.String(), out)
			}
			m := decodedContainerd(t, dump)
			want := map[string]string{}
			if tt.p.FuseOverlayfs {
				want["fuse-overlayfs"] = tt.p.RuntimeDir + "/containerd-fuse-overlayfs.sock"
			}
			if tt.p.Stargz {
				want["stargz"] = tt.p.RuntimeDir + "/containerd-stargz-grpc/containerd-stargz-grpc.sock"
			}
			for name, addr := range want {
				if dig(m, "proxy_plugins", name, "type") != "snapshot" || dig(m, "proxy_plugins", name, "address") != addr {
					t.Errorf("containerd does not see proxy plugin %s at %s: %v", name, addr, dig(m, "proxy_plugins"))
				}
				if dig(m, "proxy_plugins", name, "exports", "enable_remote_snapshot_annotations") != "true" {
					t.Errorf("containerd does not see %s's exports", name)
				}
			}
			got := unpackSnapshotters(m)
			for name := range want {
				if !slices.Contains(got, name) {
					t.Errorf("containerd's unpack_config %v lacks %s", got, name)
				}
			}
			if !slices.Contains(got, "overlayfs") {
				t.Errorf("containerd's unpack_config %v lacks overlayfs", got)
			}
			if tt.user != nil && !tt.user(m) {
				t.Errorf("containerd does not see the user's settings in:\n%s", dump)
			}
		})
	}
}

func TestNerdctlConfigStructMatchesProbeKeys(t *testing.T) {
	var keys []string
	rt := reflect.TypeOf(nerdctlConfig{})
	for i := range rt.NumField() {
		keys = append(keys, strings.Split(rt.Field(i).Tag.Get("toml"), ",")[0])
	}
	if !slices.Equal(keys, probe.NerdctlConfigKeys) {
		t.Errorf("nerdctlConfig keys %v differ from probe.NerdctlConfigKeys %v", keys, probe.NerdctlConfigKeys)
	}
}

func TestSetNerdctlSnapshotter(t *testing.T) {
	tests := []struct{ name, current, want string }{
		{"no file", "", "snapshotter = \"fuse-overlayfs\"\n"},
		{"added at the end", "# my nerdctl\nnamespace = \"k8s.io\" # comment\n", "# my nerdctl\nnamespace = \"k8s.io\" # comment\nsnapshotter = \"fuse-overlayfs\"\n"},
		{"no final newline", "debug = true", "debug = true\nsnapshotter = \"fuse-overlayfs\"\n"},
		{"replaced in place", "# top\n  snapshotter = \"native\"   # was native\ndebug = false\n", "# top\n  snapshotter = \"fuse-overlayfs\"   # was native\ndebug = false\n"},
		{"quoted key, literal string", "'snapshotter' = 'overlayfs'\n", "snapshotter = \"fuse-overlayfs\"\n"},
		{"multi-line value", "snapshotter = \"\"\"\nnative\"\"\"\nexperimental = true\n", "snapshotter = \"fuse-overlayfs\"\nexperimental = true\n"},
		{"already set", "snapshotter = \"fuse-overlayfs\"\n", "snapshotter = \"fuse-overlayfs\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cur []byte
			if tt.current != "" {
				cur = []byte(tt.current)
			}
			out, err := SetNerdctlSnapshotter(cur, "fuse-overlayfs")
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got %q, want %q", out, tt.want)
			}
			again, err := SetNerdctlSnapshotter(out, "fuse-overlayfs")
			if err != nil || !bytes.Equal(again, out) {
				t.Errorf("second run changed the file: %q, %v", again, err)
			}
		})
	}
}

func TestSetNerdctlSnapshotterRefusals(t *testing.T) {
	tests := []struct {
		name, current string
		line          int
		msg, fix      string
	}{
		{"pasted containerd config", "# oops\nversion = 2\n[plugins]\n  x = 1\n", 2, "keys nerdctl rejects: plugins, version", "containerd's config.toml"},
		{"typo", "snapshoter = \"native\"\n", 1, "keys nerdctl rejects: snapshoter", "remove these keys"},
		{"empty table", "debug = true\n[extra]\n", 2, "keys nerdctl rejects: extra", "remove these keys"},
		{"wrong type", "snapshotter = 1\n", 0, "nerdctl cannot read it", "type"},
		{"not TOML", "snapshotter = \n", 1, "not valid TOML", "fix the file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SetNerdctlSnapshotter([]byte(tt.current), "native")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Line != tt.line || !strings.Contains(ce.Error(), tt.msg) || !strings.Contains(ce.UserFix(), tt.fix) {
				t.Errorf("got line %d, %q, fix %q; want line %d, %q, %q", ce.Line, ce.Error(), ce.UserFix(), tt.line, tt.msg, tt.fix)
			}
		})
	}
	if _, err := SetNerdctlSnapshotter(nil, ""); err == nil {
		t.Error("empty snapshotter accepted")
	}
}

func TestSetNerdctlSnapshotterHostileValue(t *testing.T) {
	for _, v := range []string{"a\"b", "x\ny = 1", `back\slash`, "$(id); `x`", "tab\there", "ünï"} {
		out, err := SetNerdctlSnapshotter([]byte("debug = true\n"), v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		c, err := decodeNerdctlConfig(out)
		if err != nil || c.Snapshotter != v || !c.Debug {
			t.Errorf("%q: decoded %+v, %v from\n%s", v, c, err, out)
		}
	}
}

// TestSetNerdctlSnapshotterRealNerdctl has the installed nerdctl read the file: its --help shows
// the snapshotter default it took from nerdctl.toml, and it fails on a file it rejects.
func TestSetNerdctlSnapshotterRealNerdctl(t *testing.T) {
	nerdctl, err := exec.LookPath("nerdctl")
	testenv.Require(t, err == nil, "nerdctl is not installed: run scripts/install-components.sh")
	dir := t.TempDir()
	run := func(content []byte) (string, error) {
		p := filepath.Join(dir, "nerdctl.toml")
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, nerdctl, "--help")
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "NERDCTL_TOML=" + p}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	user := []byte("# my settings\ndebug = false # quiet\nnamespace = \"default\"\nsnapshotter = \"overlayfs\"\n")
	for _, snap := range []string{"fuse-overlayfs", "native"} {
		out, err := SetNerdctlSnapshotter(user, snap)
		if err != nil {
			t.Fatal(err)
		}
		help, err := run(out)
		if err != nil {
			t.Fatalf("nerdctl rejected the file: %v\n%s\nfile:\n%s", err, help, out)
		}
		if !strings.Contains(help, `containerd snapshotter [$CONTAINERD_SNAPSHOTTER] (default "`+snap+`")`) {
			t.Errorf("nerdctl --help does not show snapshotter %q as the default:\n%s", snap, help)
		}
	}
	// The oracle itself: nerdctl refuses the file SetNerdctlSnapshotter refuses.
	pasted := []byte("version = 2\n")
	if _, err := run(pasted); err == nil {
		t.Error("nerdctl accepted a file with version = 2; the strict-key rule no longer holds")
	}
	if _, err := SetNerdctlSnapshotter(pasted, "native"); err == nil {
		t.Error("SetNerdctlSnapshotter accepted what nerdctl refuses")
	}
}

var hostileEnv = map[string]string{
	"CONTAINERD_ROOTLESS_ROOTLESSKIT_NET": "slirp4netns",
	"CONTAINERD_ROOTLESS_ROOTLESSKIT_MTU": "65520",
	"WITH_SPACES":                         "a b  c",
	"WITH_QUOTES":                         `say "hi" and 'bye'`,
	"WITH_BACKSLASH":                      `C:\dir\ and a trailing \`,
	"WITH_PERCENT":                        "100% %h %%",
	"WITH_SHELL":                          "x; rm -rf ~; $(id) `id` ${HOME} $HOME | & > <",
	"WITH_UNICODE":                        "ünïcödé ✓",
	"EMPTY":                               "",
	"CONTAINERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER": "builtin",
}

func TestRenderOverride(t *testing.T) {
	env := map[string]string{"B": "2", "A": `x"y\z%`}
	out, err := RenderOverride(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	want := managedBeginLine + "[Service]\nEnvironment=\"A=x\\\"y\\\\z%%\"\nEnvironment=\"B=2\"\n" + managedEndLine
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}

	user := "# my drop-in\n[Unit]\nDescription=mine\n\n[Service]\nLimitNOFILE=4096\n"
	out, err = RenderOverride([]byte(user), env)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), user+"\n"+managedBeginLine) {
		t.Errorf("user lines not kept before the block:\n%s", out)
	}
	again, err := RenderOverride(out, env)
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("second render changed the file: %v", err)
	}
	changed, err := RenderOverride(out, map[string]string{"A": "1"})
	if err != nil || !strings.HasPrefix(string(changed), user) || !strings.Contains(string(changed), "Environment=\"A=1\"\n"+managedEndLine) ||
		strings.Contains(string(changed), "B=2") {
		t.Errorf("changed env: %v\n%s", err, changed)
	}
	removed, err := RenderOverride(changed, nil)
	if err != nil || string(removed) != user {
		t.Errorf("removing the block gave %q, %v; want the user's file", removed, err)
	}

	for name, bad := range map[string]map[string]string{
		"newline":       {"A": "x\ny"},
		"carriage":      {"A": "x\ry"},
		"control":       {"A": "x\x01"},
		"bad name":      {"A B": "1"},
		"injected name": {"A=1\"\nExecStart=/bin/sh\n\"": "1"},
		"digit first":   {"1A": "1"},
		"not UTF-8":     {"A": "\xff"},
	} {
		if out, err := RenderOverride(nil, bad); err == nil {
			t.Errorf("%s: accepted:\n%s", name, out)
		}
	}
	_, err = RenderOverride([]byte("[Service]\nExecStartPre=/bin/echo \\\n"), env)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line != 2 {
		t.Errorf("a trailing continuation line: err = %v", err)
	}
}

// TestRenderOverrideRealSystemd has systemd itself read the drop-in: systemd-analyze verify loads a
// unit with it and, at debug level, dumps the environment it parsed, which must be exactly env.
func TestRenderOverrideRealSystemd(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	testenv.Require(t, err == nil, "systemd-analyze is not installed (Debian package systemd; scripts/setup-test-host.sh installs it)")
	dir := t.TempDir()
	unit := filepath.Join(dir, "vstest-containerd.service")
	if err := os.WriteFile(unit, []byte("[Unit]\nDescription=test\n[Service]\nExecStart=/bin/true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dropDir := unit + ".d"
	if err := os.Mkdir(dropDir, 0o755); err != nil {
		t.Fatal(err)
	}
	user := "# the user's own setting survives\n[Service]\nEnvironment=\"USER_OWN=kept value\"\n"
	out, err := RenderOverride([]byte(user), hostileEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dropDir, "override.conf"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, analyze, "verify", "--man=no", unit)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug", "SYSTEMD_LOG_TARGET=console")
	dump, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, dump)
	}
	if strings.Contains(string(dump), "override.conf:") {
		t.Errorf("systemd complained about the drop-in:\n%s", grepLines(string(dump), "override.conf:"))
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(dump), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Environment: "); ok {
			k, val, _ := strings.Cut(v, "=")
			got[k] = val
		}
	}
	want := map[string]string{"USER_OWN": "kept value"}
	for k, v := range hostileEnv {
		want[k] = v
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("systemd parsed the environment as\n%q\nwant\n%q\ndrop-in:\n%s", got, want, out)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRenderEnvFileRealShell sources the file in a real POSIX shell and reads every variable back.
func TestRenderEnvFileRealShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	testenv.Require(t, err == nil, "no POSIX sh")
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	env := map[string]string{"NEWLINES": "line one\nline two\n", "MARK": "$(touch " + marker + ")"}
	for k, v := range hostileEnv {
		env[k] = v
	}
	env["BAD;touch "+marker] = "x"
	env["ALSO BAD"] = "x"
	b := RenderEnvFile(env)
	if !bytes.Equal(b, RenderEnvFile(env)) {
		t.Error("RenderEnvFile is not deterministic")
	}
	path := filepath.Join(dir, "containerd.env")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range env {
		if validEnvName(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	// printf with NUL separators: a value may hold anything but NUL.
	script := `. "$1"; shift; for k in "$@"; do eval "printf '%s\0' \"\${$k}\""; done`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sh, append([]string{"-c", script, "sh", path}, keys...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sourcing the file failed: %v\n%s", err, b)
	}
	vals := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(vals) != len(keys) {
		t.Fatalf("got %d values for %d keys:\n%s", len(vals), len(keys), b)
	}
	for i, k := range keys {
		if vals[i] != env[k] {
			t.Errorf("%s = %q after sourcing, want %q", k, vals[i], env[k])
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("sourcing the file ran an injected command:\n%s", b)
	}
	if !strings.Contains(string(b), `# left out "BAD;touch `) || !strings.Contains(string(b), `# left out "ALSO BAD"`) {
		t.Errorf("invalid names are not reported:\n%s", b)
	}
}
