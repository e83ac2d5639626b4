package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Cgroup hierarchy versions reported in Cgroup.Version.
const (
	CgroupV2     = "v2"
	CgroupHybrid = "hybrid"
	CgroupV1     = "v1"
)

const cgroupRoot = "/sys/fs/cgroup"

// cgroupV1Dirs are the hierarchies a v1 or hybrid host mounts below /sys/fs/cgroup. "systemd" is the
// named hierarchy (name=systemd) systemd mounts in legacy and hybrid mode; the rest are controllers.
var cgroupV1Dirs = []string{
	"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "misc",
	"net_cls", "net_prio", "perf_event", "pids", "rdma", "systemd",
}

// probeCgroup finds the cgroup hierarchy and the controllers delegated to the user. Rootless
// containerd can only limit resources on cgroup v2 with controllers delegated to user@UID.service
// (rootless.md §4); on v1 and hybrid hosts nerdctl drops --memory, --cpus and --pids-limit.
func probeCgroup(ctx context.Context, e *Env) func(*Facts) {
	version := cgroupVersion(e)
	var controllers, delegated Fact[[]string]
	switch {
	case !version.Known:
		err := errors.New("the cgroup version is unknown")
		controllers = Unknown[[]string](err)
		delegated = Unknown[[]string](err)
	case version.Value != CgroupV2:
		// Rootless containerd, runc and nerdctl only manage cgroups through the unified hierarchy,
		// so on v1 and hybrid hosts nothing is available to them, whatever the v1 mounts hold.
		ev := Evidence{Kind: "derived", Source: "cgroup version", Excerpt: version.Value + ": rootless cgroup management needs cgroup v2"}
		controllers = Known([]string{}, ev)
		delegated = Known([]string{}, ev)
	default:
		controllers = readCgroupControllers(e, path.Join(cgroupRoot, "cgroup.controllers"), "")
		if !e.User.Known {
			delegated = Unknown[[]string](errors.New("the user is unknown, so their user@UID.service cgroup is too"))
		} else {
			uid := e.User.UID
			p := fmt.Sprintf("%s/user.slice/user-%d.slice/user@%d.service/cgroup.controllers", cgroupRoot, uid, uid)
			hint := fmt.Sprintf("no systemd user manager (user@%d.service) is running for uid %d, so nothing is delegated to it", uid, uid)
			delegated = readCgroupControllers(e, p, hint)
		}
	}
	return func(f *Facts) {
		f.Cgroup.Version = version
		f.Cgroup.Controllers = controllers
		f.Cgroup.Delegated = delegated
	}
}

// cgroupVersion tells v2, hybrid and v1 apart from what is mounted below /sys/fs/cgroup. On the live
// host the filesystem type of /sys/fs/cgroup itself is the strongest evidence: cgroup2 in unified
// mode, a tmpfs holding one mount per hierarchy otherwise.
func cgroupVersion(e *Env) Fact[string] {
	var evs []Evidence
	fsType := ""
	if e.Live {
		var st unix.Statfs_t
		src := "statfs(" + cgroupRoot + ")"
		if err := unix.Statfs(e.Root.Path(cgroupRoot), &st); err != nil {
			evs = append(evs, Evidence{Kind: "syscall", Source: src, Excerpt: err.Error()})
		} else {
			switch int64(st.Type) {
			case unix.CGROUP2_SUPER_MAGIC:
				fsType = "cgroup2"
			case unix.TMPFS_MAGIC:
				fsType = "tmpfs"
			default:
				fsType = fmt.Sprintf("magic 0x%x", st.Type)
			}
			evs = append(evs, Evidence{Kind: "syscall", Source: src, Excerpt: "f_type " + fsType})
		}
	}

	controllersFile := path.Join(cgroupRoot, "cgroup.controllers")
	if fsType == "cgroup2" || e.Root.Exists(controllersFile) {
		evs = append(evs, Evidence{Kind: "file", Source: controllersFile, Excerpt: "exists"})
		return Known(CgroupV2, evs...)
	}

	var v1 []string
	for _, d := range cgroupV1Dirs {
		if fi, err := e.Root.Stat(path.Join(cgroupRoot, d)); err == nil && fi.IsDir() {
			v1 = append(v1, d)
		}
	}
	unified := path.Join(cgroupRoot, "unified")
	fi, err := e.Root.Stat(unified)
	hasUnified := err == nil && fi.IsDir()
	if len(v1) > 0 {
		v1ev := Evidence{Kind: "file", Source: cgroupRoot, Excerpt: "v1 hierarchies: " + strings.Join(v1, " ")}
		if hasUnified {
			// systemd's hybrid mode mounts the unified hierarchy at /sys/fs/cgroup/unified for its own
			// process tracking, with the controllers left on v1.
			evs = append(evs, v1ev, Evidence{Kind: "file", Source: unified, Excerpt: "exists"})
			return Known(CgroupHybrid, evs...)
		}
		evs = append(evs, v1ev, Evidence{Kind: "file", Source: unified, Excerpt: "does not exist"})
		return Known(CgroupV1, evs...)
	}
	evs = append(evs, Evidence{Kind: "file", Source: cgroupRoot, Excerpt: "no cgroup.controllers and no v1 hierarchy directories"})
	return Unknown[string](fmt.Errorf("no cgroup filesystem recognised at %s", cgroupRoot), evs...)
}

// readCgroupControllers reads a cgroup.controllers file: one line of controller names separated by
// spaces. missingHint, when set, explains what a missing file means.
func readCgroupControllers(e *Env, p, missingHint string) Fact[[]string] {
	b, err := e.Root.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && missingHint != "" {
			return Unknown[[]string](fmt.Errorf("%s does not exist: %s", p, missingHint), Evidence{Kind: "file", Source: p, Excerpt: "does not exist"})
		}
		return Unknown[[]string](fmt.Errorf("read %s: %w", p, err), Evidence{Kind: "file", Source: p})
	}
	ev := Evidence{Kind: "file", Source: p, Excerpt: clipExcerpt(string(b))}
	words, err := ParseCgroupControllers(b)
	if err != nil {
		return Unknown[[]string](fmt.Errorf("parse %s: %w", p, err), ev)
	}
	return Known(words, ev)
}

// ParseCgroupControllers parses a cgroup.controllers file. The kernel writes controller names of
// lowercase letters, digits and underscores separated by spaces; anything else means the file is not
// what it claims to be.
func ParseCgroupControllers(b []byte) ([]string, error) {
	words := strings.Fields(string(b))
	for _, w := range words {
		for _, r := range w {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				return nil, fmt.Errorf("%q is not a controller name", clipExcerpt(w))
			}
		}
	}
	if words == nil {
		words = []string{}
	}
	return words, nil
}

// maxExcerpt bounds the excerpt kept as evidence, so facts stay readable and small.
const maxExcerpt = 300

// clipExcerpt trims s and cuts it to maxExcerpt bytes on a rune boundary.
func clipExcerpt(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxExcerpt {
		return s
	}
	cut := maxExcerpt
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
