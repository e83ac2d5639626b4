package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// CNIRequiredPlugins are the plugins nerdctl's default "bridge" network chains together
// (bridge with host-local IPAM, then portmap, firewall and tuning; loopback for the container's lo).
var CNIRequiredPlugins = []string{"bridge", "host-local", "loopback", "portmap", "firewall", "tuning"}

// cniPluginTimeout bounds running a CNI plugin for its version banner.
const cniPluginTimeout = 2 * time.Second

// probeNetwork reads the host settings rootless networking depends on: which ports the user may
// publish (rootless.md §5 #12) and where nerdctl will look for CNI plugins (§5 #9).
func probeNetwork(ctx context.Context, e *Env) func(*Facts) {
	ports := unprivilegedPortStart(e)
	cni := probeCNI(ctx, e)
	return func(f *Facts) {
		f.Network.UnprivilegedPortStart = ports
		f.Network.CNI = cni
	}
}

// unprivilegedPortStart reads net.ipv4.ip_unprivileged_port_start (kernel ≥ 4.11). Binding a port
// below it needs CAP_NET_BIND_SERVICE, which RootlessKit's port driver does not have.
func unprivilegedPortStart(e *Env) Fact[int] {
	const p = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
	b, err := e.Root.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		// The sysctl came with kernel 4.11; before it, every port below 1024 needed privilege.
		return Known(1024, Evidence{Kind: "file", Source: p, Excerpt: "does not exist (kernel before 4.11: ports below 1024 are privileged)"})
	}
	if err != nil {
		return Unknown[int](fmt.Errorf("read %s: %w", p, err), Evidence{Kind: "file", Source: p})
	}
	ev := Evidence{Kind: "file", Source: p, Excerpt: clipExcerpt(string(b))}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 65536 {
		return Unknown[int](fmt.Errorf("parse %s: %q is not a port number", p, clipExcerpt(string(b))), ev)
	}
	return Known(n, ev)
}

// cniCandidates are the directories nerdctl searches in rootless mode when neither $CNI_PATH nor
// cni_path in nerdctl.toml is set, first existing wins (nerdctl pkg/defaults, rootless.md §3.2).
// The ~ entries are relative to the home directory.
var cniCandidates = []string{
	"~/opt/cni/bin", "~/.local/libexec/cni", "~/.local/lib/cni",
	"/opt/cni/bin", "/usr/local/libexec/cni", "/usr/local/lib/cni",
	"/home/linuxbrew/.linuxbrew/opt/cni-plugins/bin", "/usr/libexec/cni", "/usr/lib/cni",
}

// probeCNI finds the CNI directory nerdctl would use and what is in it.
func probeCNI(ctx context.Context, e *Env) Fact[CNI] {
	dir, ev, err := cniDir(e)
	if err != nil {
		return Unknown[CNI](err, ev...)
	}
	if dir == "" {
		return Known(CNI{Plugins: []string{}, Missing: append([]string(nil), CNIRequiredPlugins...)}, ev...)
	}
	c := CNI{Dir: dir, Plugins: []string{}}
	entries, err := e.Root.ReadDir(dir)
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			// nerdctl takes the first candidate that exists, file or not, and then finds nothing in it.
			c.Missing = append([]string(nil), CNIRequiredPlugins...)
			return Known(c, append(ev, Evidence{Kind: "file", Source: dir, Excerpt: "not a directory"})...)
		}
		return Unknown[CNI](fmt.Errorf("list %s: %w", dir, err), ev...)
	}
	for _, ent := range entries {
		fi, err := e.Root.Stat(path.Join(dir, ent.Name()))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		c.Plugins = append(c.Plugins, ent.Name())
	}
	sort.Strings(c.Plugins)
	have := map[string]bool{}
	for _, p := range c.Plugins {
		have[p] = true
	}
	for _, p := range CNIRequiredPlugins {
		if !have[p] {
			c.Missing = append(c.Missing, p)
		}
	}
	ev = append(ev, Evidence{Kind: "file", Source: dir, Excerpt: clipExcerpt(fmt.Sprintf("%d plugins: %s", len(c.Plugins), strings.Join(c.Plugins, " ")))})
	if have["bridge"] {
		v, vev := cniBridgeVersion(ctx, e, path.Join(dir, "bridge"))
		c.Version = v
		ev = append(ev, vev)
	}
	return Known(c, ev...)
}

// cniDir picks the CNI plugin directory with nerdctl's precedence: $CNI_PATH, then cni_path in
// nerdctl.toml, then the first existing candidate. It returns "" when nothing exists.
func cniDir(e *Env) (string, []Evidence, error) {
	if v := e.Getenv("CNI_PATH"); v != "" {
		ev := Evidence{Kind: "env", Source: "CNI_PATH", Excerpt: clipExcerpt(v)}
		// CNI_PATH is a list in the CNI spec; nerdctl passes it on whole, and its own checks look
		// in the first entry.
		first := strings.TrimSpace(filepath.SplitList(v)[0])
		if !path.IsAbs(first) {
			return "", []Evidence{ev}, fmt.Errorf("CNI_PATH %q does not start with an absolute directory", clipExcerpt(v))
		}
		return path.Clean(first), []Evidence{ev}, nil
	}
	if p, err := nerdctlTOMLPath(e); err == nil {
		if b, err := e.Root.ReadFile(p); err == nil {
			if dir, ok := nerdctlCNIPath(b); ok && path.IsAbs(dir) {
				return path.Clean(dir), []Evidence{{Kind: "file", Source: p, Excerpt: "cni_path = " + clipExcerpt(dir)}}, nil
			}
		}
	}
	var tried []string
	for _, c := range cniCandidates {
		if strings.HasPrefix(c, "~/") {
			if e.User.Home == "" {
				continue
			}
			c = path.Join(e.User.Home, c[2:])
		}
		tried = append(tried, c)
		if _, err := e.Root.Stat(c); err == nil {
			return c, []Evidence{{Kind: "file", Source: c, Excerpt: "first existing of nerdctl's rootless candidates"}}, nil
		}
	}
	return "", []Evidence{{Kind: "file", Source: "CNI candidates", Excerpt: clipExcerpt("none exist: " + strings.Join(tried, " "))}}, nil
}

// cniBridgeVersion runs the bridge plugin without CNI_COMMAND: it then prints its "about" banner
// ("CNI bridge plugin v1.10.0") instead of reading a network config from stdin.
func cniBridgeVersion(ctx context.Context, e *Env, bridge string) (string, Evidence) {
	// A clean environment, so a CNI_COMMAND in the caller's cannot make the plugin act.
	cmd := sys.Command{Path: e.Root.Path(bridge), Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, Timeout: cniPluginTimeout}
	res, err := e.Runner.Run(ctx, cmd)
	out := res.Combined()
	ev := Evidence{Kind: "command", Source: bridge, Excerpt: clipExcerpt(firstLineOf(out))}
	v, perr := ParseCNIPluginVersion(out)
	if perr != nil {
		if err != nil {
			ev.Excerpt = clipExcerpt(err.Error())
		}
		return "", ev
	}
	return v, ev
}

// ParseCNIPluginVersion reads the version from a CNI plugin's banner, "CNI bridge plugin v1.10.0",
// and returns it without the "v". Plugins built without a version stamp say "version unknown", which
// also makes nerdctl turn off bridge isolation (test-lab.md), so that is an error here.
func ParseCNIPluginVersion(out string) (string, error) {
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 4 || fields[0] != "CNI" || fields[2] != "plugin" {
			continue
		}
		v := fields[3]
		if v == "version" && len(fields) > 4 && fields[4] == "unknown" {
			return "", errors.New("the plugin was built without a version")
		}
		v = strings.TrimPrefix(v, "v")
		if !isDottedVersion(v) {
			return "", fmt.Errorf("%q is not a version", clipExcerpt(fields[3]))
		}
		return v, nil
	}
	return "", fmt.Errorf("no \"CNI … plugin vX.Y.Z\" line in %q", clipExcerpt(out))
}

// isDottedVersion accepts "1.10.0", "1.4.0-rc.1" and "1.5.1+dirty": digits and dots first, then an
// optional pre-release or build suffix.
func isDottedVersion(v string) bool {
	core := v
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		core = v[:i]
	}
	parts := strings.Split(core, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for _, r := range p {
			if r < '0' || r > '9' {
				return false
			}
		}
	}
	return true
}
