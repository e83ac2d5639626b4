package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/virt-setup/virt-setup/probe"
)

// show renders a fact: its value when known, "unknown (why)" otherwise.
func show[T any](f probe.Fact[T], format func(T) string) string {
	if !f.Known {
		if f.Error != "" {
			return "unknown (" + f.Error + ")"
		}
		return "unknown"
	}
	return format(f.Value)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// renderFacts writes the facts as aligned sections of label/value lines.
func renderFacts(w io.Writer, f *probe.Facts, st styles) {
	section := func(title string, rows [][2]string) {
		fmt.Fprintln(w, st.heading.Render(title))
		width := 0
		for _, r := range rows {
			width = max(width, len(r[0]))
		}
		for _, r := range rows {
			fmt.Fprintf(w, "  %s  %s\n", st.label.Render(fmt.Sprintf("%-*s", width, r[0])), r[1])
		}
		fmt.Fprintln(w)
	}

	src := "this host (live)"
	switch f.Meta.Mode {
	case "root":
		src = "directory " + f.Meta.Root + " (live tests skipped)"
	case "profile":
		src = "recorded host profile " + f.Meta.Profile
	}
	fmt.Fprintf(w, "%s %s\n\n", st.heading.Render("Probed:"), src)

	id := f.Identity
	section("Identity", [][2]string{
		{"user", show(id.User, func(s string) string { return s })},
		{"uid/gid", show(id.UID, func(u int) string {
			return fmt.Sprintf("%d/%s", u, show(id.GID, func(g int) string { return fmt.Sprint(g) }))
		})},
		{"root", show(id.Root, func(b bool) string {
			if b {
				return "yes: a rootless setup must run as your own user"
			}
			return "no"
		})},
		{"HOME", show(id.Home, func(s string) string { return s })},
		{"XDG_RUNTIME_DIR", show(id.XDGRuntimeDir, func(r probe.RuntimeDir) string {
			if !r.Set {
				return "unset"
			}
			return fmt.Sprintf("%s (exists %s, owned %s, writable %s)", r.Path, yesNo(r.Exists), yesNo(r.Owned), yesNo(r.Writable))
		})},
		{"DBUS_SESSION_BUS_ADDRESS", show(id.DBusSessionBus, func(s string) string { return orNone(s) })},
		{"SUDO_USER", show(id.SudoUser, func(s string) string { return orNone(s) })},
	})

	o := f.OS
	section("System", [][2]string{
		{"distro", show(o.Distro, func(d probe.Distro) string {
			s := d.Name
			if s == "" {
				s = d.ID + " " + d.VersionID
			}
			if d.Family != "" {
				s += " (" + d.Family + " family)"
			}
			return s
		})},
		{"kernel", show(o.Kernel, func(k probe.Kernel) string { return k.Release })},
		{"arch", show(o.Arch, func(s string) string { return s })},
		{"WSL", show(o.WSL, yesNo)},
		{"container", show(o.Container, orNone)},
		{"virtualisation", show(o.VM, orNone)},
	})

	sec := f.Security
	section("Security", [][2]string{
		{"SELinux", show(sec.SELinux, func(s probe.SELinux) string { return s.Mode })},
		{"AppArmor", show(sec.AppArmor, func(a probe.AppArmor) string {
			if !a.Enabled {
				return "disabled"
			}
			s := "enabled"
			switch a.RestrictUnprivilegedUserns {
			case -1:
			case 0:
				s += ", unprivileged user namespaces not restricted"
			default:
				s += ", apparmor_restrict_unprivileged_userns=1"
			}
			if len(a.RootlesskitProfiles) > 0 {
				s += "; rootlesskit profiles: " + strings.Join(a.RootlesskitProfiles, ", ")
			}
			return s
		})},
		{"seccomp actions", show(sec.SeccompActions, func(a []string) string { return orNone(strings.Join(a, " ")) })},
	})

	u := f.UserNS
	ranges := func(r []probe.IDRange) string {
		if len(r) == 0 {
			return "none for this user"
		}
		var parts []string
		for _, x := range r {
			parts = append(parts, fmt.Sprintf("%d+%d", x.Start, x.Count))
		}
		return strings.Join(parts, ", ")
	}
	mapper := func(m probe.IDMapper) string {
		if !m.Found {
			return "not found"
		}
		switch {
		case m.Setuid:
			return m.Path + " (setuid root)"
		case m.Caps != "":
			return m.Path + " (" + m.Caps + ")"
		}
		return m.Path + " (neither setuid nor file capabilities)"
	}
	section("User namespaces", [][2]string{
		{"max_user_namespaces", show(u.MaxUserNamespaces, func(n int) string { return fmt.Sprint(n) })},
		{"unprivileged_userns_clone", show(u.UnprivilegedClone, func(n int) string {
			if n < 0 {
				return "absent (not restricted)"
			}
			return fmt.Sprint(n)
		})},
		{"subuid", show(u.SubUID, ranges)},
		{"subgid", show(u.SubGID, ranges)},
		{"newuidmap", show(u.NewUIDMap, mapper)},
		{"newgidmap", show(u.NewGIDMap, mapper)},
	})

	list := func(l []string) string { return orNone(strings.Join(l, " ")) }
	section("cgroups and systemd", [][2]string{
		{"cgroup", show(f.Cgroup.Version, func(s string) string { return s })},
		{"controllers", show(f.Cgroup.Controllers, list)},
		{"delegated to user", show(f.Cgroup.Delegated, list)},
		{"systemd is PID 1", show(f.Systemd.PID1, yesNo)},
		{"systemd version", show(f.Systemd.Version, func(n int) string { return fmt.Sprint(n) })},
		{"user manager", show(f.Systemd.UserManager, yesNo)},
		{"lingering", show(f.Systemd.Linger, yesNo)},
		{"user dbus", show(f.Systemd.UserBus, yesNo)},
	})

	dev := func(d probe.Device) string {
		if !d.Exists {
			return "missing"
		}
		use := "not usable by this user"
		if d.Usable {
			use = "usable"
		}
		return fmt.Sprintf("mode %s owner %d:%d, %s (%s)", d.Mode, d.OwnerUID, d.OwnerGID, use, d.How)
	}
	section("Devices and network", [][2]string{
		{"/dev/fuse", show(f.Devices.Fuse, dev)},
		{"/dev/net/tun", show(f.Devices.Tun, dev)},
		{"unprivileged ports from", show(f.Network.UnprivilegedPortStart, func(n int) string { return fmt.Sprint(n) })},
		{"CNI plugins", show(f.Network.CNI, func(c probe.CNI) string {
			if c.Dir == "" {
				return "none found"
			}
			s := c.Dir
			if c.Version != "" {
				s += " (" + c.Version + ")"
			}
			if len(c.Missing) > 0 {
				s += ", missing: " + strings.Join(c.Missing, " ")
			}
			return s
		})},
	})

	var rows [][2]string
	names := make([]string, 0, len(f.Binaries))
	for n := range f.Binaries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rows = append(rows, [2]string{n, show(f.Binaries[n], func(b probe.Binary) string {
			if !b.Found {
				return st.dim.Render("not found")
			}
			v := b.Version
			if v == "" {
				v = "version unknown"
			}
			return v + "  " + st.dim.Render(b.Path)
		})})
	}
	section("Binaries", rows)

	cfg := func(c probe.ConfigFile) string {
		if !c.Exists {
			return st.dim.Render("none") + " " + st.dim.Render(c.Path)
		}
		s := c.Path
		if !c.Valid && c.ParseError != "" {
			s += " (invalid: " + c.ParseError + ")"
		}
		return s
	}
	section("Existing setup", [][2]string{
		{"containerd config", show(f.State.ContainerdConfig, cfg)},
		{"nerdctl.toml", show(f.State.NerdctlConfig, cfg)},
		{"containerd unit", show(f.State.ContainerdUnit, cfg)},
		{"unit override", show(f.State.ContainerdOverride, cfg)},
		{"rootless containerd", show(f.State.RootlessKit, func(r probe.RootlessKitState) string {
			switch {
			case r.Running:
				return fmt.Sprintf("running (child pid %d, state %s)", r.ChildPID, r.StateDir)
			case r.Exists:
				return "stale state in " + r.StateDir + " (not running)"
			}
			return "not running"
		})},
		{"CONTAINERD_SNAPSHOTTER", show(f.State.SnapshotterEnv, orNone)},
	})

	live := func(t probe.LiveTest) string {
		s := t.Status
		if t.Detail != "" {
			s += ": " + t.Detail
		}
		if t.Ran() {
			s += fmt.Sprintf(" (%s)", time.Duration(t.Duration).Round(time.Millisecond))
		}
		return s
	}
	section("Live tests", [][2]string{
		{"overlay in user namespace", show(f.Live.OverlayUserns, live)},
		{"fuse-overlayfs in user namespace", show(f.Live.FuseOverlayfs, live)},
	})

	if len(f.Meta.Probes) > 0 && f.Meta.Mode != "profile" {
		slow := f.Meta.Probes[0]
		fmt.Fprintln(w, st.dim.Render(fmt.Sprintf("Probed in %s; slowest probe: %s (%s).",
			time.Duration(f.Meta.Duration).Round(time.Millisecond), slow.Name, time.Duration(slow.Duration).Round(time.Millisecond))))
		for _, p := range f.Meta.Probes {
			if p.Error != "" {
				fmt.Fprintln(w, st.warn.Render("probe "+p.Name+": "+p.Error))
			}
		}
	}
}
