package installer

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// containerdSeeds are starting points for the fuzzer: the shapes a user's config.toml takes.
var containerdSeeds = []string{
	"",
	userContainerdConfig,
	"version = 2\n[proxy_plugins]\n  [proxy_plugins.\"fuse-overlayfs\"]\n    type = \"snapshot\"\n",
	"version = 2\nproxy_plugins = { a = { type = \"snapshot\" } }\n",
	"version = 3\n[[plugins.\"io.containerd.transfer.v1.local\".unpack_config]]\nplatform = \"linux\"\n",
	"x = \"\"\"\n" + managedBeginLine + "\"\"\"\n",
	"version = 2\n" + managedBeginLine + "[proxy_plugins.\"stargz\"]\ntype = \"snapshot\"\n" + managedEndLine + "[after]\nk = 1\n",
	"version = 2\r\n[plugins]\r\n  x = 1\r\n# no newline",
	"proxy_plugins.nydus.type = \"snapshot\"\n",
	// Found by the fuzzer: a root key after an empty block would have landed in the new block's
	// last table.
	managedBeginMarker + "\n" + managedEndMarker + "\n0=0",
}

func FuzzMergeContainerdConfig(f *testing.F) {
	for i, s := range containerdSeeds {
		f.Add([]byte(s), i%2 == 0, i%3 == 0, uint8(2))
	}
	f.Fuzz(func(t *testing.T, current []byte, fuse, stargz bool, major uint8) {
		p := ContainerdPlugins{FuseOverlayfs: fuse, Stargz: stargz, RuntimeDir: "/run/user/1000", DataHome: "/home/u/.local/share"}
		out, err := MergeContainerdConfig(current, p, int(major%3))
		if err != nil {
			if out != nil {
				t.Fatal("output with an error")
			}
			return
		}
		m := map[string]any{}
		if err := toml.Unmarshal(out, &m); err != nil {
			t.Fatalf("merged output does not parse: %v\n%q", err, out)
		}
		if fuse || stargz {
			if _, ok := m["version"]; !ok {
				t.Fatalf("no version key:\n%q", out)
			}
			if bytes.Contains(out, []byte("\n[proxy_plugins]\n")) && !bytes.Contains(current, []byte("[proxy_plugins]")) {
				t.Fatalf("a bare [proxy_plugins] header was written:\n%q", out)
			}
		}
		hadBlock := bytes.Contains(current, []byte(managedBeginMarker))
		if !hadBlock && !bytes.Contains(out, current) {
			t.Fatalf("user content not kept byte for byte:\n%q\n->\n%q", current, out)
		}
		if !hadBlock {
			// The user's settings mean what they meant: the output less what the block and the
			// version header add decodes to the user's file.
			user := map[string]any{}
			if err := toml.Unmarshal(current, &user); err != nil {
				t.Fatalf("merge accepted a file that does not parse: %v", err)
			}
			if _, ok := user["version"]; !ok {
				delete(m, "version")
			}
			if pp, ok := m["proxy_plugins"].(map[string]any); ok {
				if fuse {
					delete(pp, "fuse-overlayfs")
				}
				if stargz {
					delete(pp, "stargz")
				}
			}
			if tr, ok := dig(m, "plugins", "io.containerd.transfer.v1.local").(map[string]any); ok && (fuse || stargz) {
				delete(tr, "unpack_config")
			}
			if got, want := pruneEmpty(m), pruneEmpty(user); !reflect.DeepEqual(got, want) {
				t.Fatalf("the user's settings changed meaning:\n%v\nwant\n%v\nfrom\n%q", got, want, out)
			}
		}
		again, err := MergeContainerdConfig(out, p, int(major%3))
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second merge is not a no-op (%v):\n%q\n->\n%q", err, out, again)
		}
		none, err := MergeContainerdConfig(out, ContainerdPlugins{}, int(major%3))
		if err != nil {
			t.Fatalf("removing the block failed: %v\n%q", err, out)
		}
		if err := toml.Unmarshal(none, &map[string]any{}); err != nil {
			t.Fatalf("output without the block does not parse: %v\n%q", err, none)
		}
		if !hadBlock && (fuse || stargz) && bytes.Contains(none, []byte(managedBeginMarker)) {
			t.Fatalf("block not removed:\n%q", none)
		}
	})
}

// pruneEmpty removes empty tables, which the block's parents may add or leave behind.
func pruneEmpty(m map[string]any) map[string]any {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			if len(pruneEmpty(sub)) == 0 {
				delete(m, k)
			}
		}
	}
	return m
}

func FuzzSetNerdctlSnapshotter(f *testing.F) {
	for _, s := range []string{
		"",
		"# c\nsnapshotter = \"native\" # c\ndebug = true\n",
		"'snapshotter' = '''x'''\n",
		"snapshotter = \"\"\"\na\nb\"\"\"\nnamespace = \"k8s.io\"",
		"version = 2\n",
		"hosts_dir = [\"/a\", \"/b\"]\n[t]\n",
		"snapshotter = 1\n",
	} {
		f.Add([]byte(s), "fuse-overlayfs")
	}
	f.Fuzz(func(t *testing.T, current []byte, snapshotter string) {
		out, err := SetNerdctlSnapshotter(current, snapshotter)
		if err != nil {
			return
		}
		c, err := decodeNerdctlConfig(out)
		if err != nil {
			t.Fatalf("output does not decode strictly: %v\n%q", err, out)
		}
		if c.Snapshotter != snapshotter {
			t.Fatalf("snapshotter = %q, want %q", c.Snapshotter, snapshotter)
		}
		again, err := SetNerdctlSnapshotter(out, snapshotter)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second run is not a no-op (%v):\n%q\n->\n%q", err, out, again)
		}
		// Every comment of the user's file survives.
		for _, line := range strings.Split(string(current), "\n") {
			if c := strings.TrimSpace(line); strings.HasPrefix(c, "#") && !bytes.Contains(out, []byte(c)) {
				t.Fatalf("comment %q lost:\n%q", c, out)
			}
		}
	})
}

// markerLines counts the lines of b that are the marker (a line that merely holds its text is
// the user's).
func markerLines(b []byte, marker string) int {
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), marker) {
			n++
		}
	}
	return n
}

func FuzzRenderOverride(f *testing.F) {
	f.Add([]byte("[Service]\nLimitNOFILE=1\n"), "K", "v")
	f.Add([]byte(managedBeginLine+"[Service]\n"+managedEndLine), "A", "%\"\\")
	f.Fuzz(func(t *testing.T, current []byte, key, value string) {
		env := map[string]string{key: value}
		out, err := RenderOverride(current, env)
		if err != nil {
			return
		}
		if markerLines(current, managedBeginMarker) == 0 && !bytes.Contains(out, current) {
			t.Fatalf("user content not kept:\n%q\n->\n%q", current, out)
		}
		again, err := RenderOverride(out, env)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second render is not a no-op (%v):\n%q\n->\n%q", err, out, again)
		}
		if n := markerLines(out, managedBeginMarker); n != 1 {
			t.Fatalf("%d BEGIN markers:\n%q", n, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "Environment=\"") && !strings.HasSuffix(line, "\"") {
				t.Fatalf("an Environment line is broken: %q", line)
			}
		}
		if !strings.Contains(string(out), "\n[Service]\nEnvironment=\""+key+"=") {
			t.Fatalf("no Environment line for %q:\n%q", key, out)
		}
	})
}
