package tui

import (
	"fmt"
	"strings"

	"github.com/virt-setup/virt-setup/probe"
)

// hostSummary is the host at a glance, as the probe screen heads it: distro, kernel, MAC,
// cgroup, systemd. Each value says "unknown" rather than guessing.
type hostSummary struct {
	Distro, Kernel, Security, Cgroup, Systemd, User string
}

func unknownOr[T any](f probe.Fact[T], format func(T) string) string {
	if !f.Known {
		return "unknown"
	}
	return format(f.Value)
}

func summarize(f *probe.Facts) hostSummary {
	if f == nil {
		return hostSummary{}
	}
	var s hostSummary
	s.Distro = unknownOr(f.OS.Distro, func(d probe.Distro) string {
		name := d.Name
		if name == "" {
			name = d.ID
		}
		if d.VersionID != "" {
			name += " " + d.VersionID
		}
		return name
	})
	s.Kernel = unknownOr(f.OS.Kernel, func(k probe.Kernel) string { return k.Release })
	// Only what is on is named: "SELinux enforcing", "AppArmor, userns restricted".
	var sec []string
	se, aa := f.Security.SELinux, f.Security.AppArmor
	if se.Known && se.Value.Enabled {
		sec = append(sec, "SELinux "+se.Value.Mode)
	}
	if aa.Known && aa.Value.Enabled {
		a := "AppArmor"
		if aa.Value.RestrictUnprivilegedUserns > 0 {
			a += ", userns restricted"
		}
		sec = append(sec, a)
	}
	switch {
	case len(sec) > 0:
		s.Security = strings.Join(sec, "; ")
	case se.Known && aa.Known:
		s.Security = "no SELinux, no AppArmor"
	default:
		s.Security = "unknown"
	}
	s.Cgroup = unknownOr(f.Cgroup.Version, func(v string) string {
		if v == "v2" {
			return "v2 (unified)"
		}
		return v
	})
	s.Systemd = "unknown"
	if p := f.Systemd.PID1; p.Known {
		switch {
		case !p.Value:
			s.Systemd = "not the init system"
		case f.Systemd.UserManager.Known && f.Systemd.UserManager.Value:
			s.Systemd = "user manager running"
			if v := f.Systemd.Version; v.Known && v.Value > 0 {
				s.Systemd = fmt.Sprintf("%d, user manager running", v.Value)
			}
		default:
			s.Systemd = "no user manager"
		}
	}
	s.User = unknownOr(f.Identity.User, func(u string) string {
		return fmt.Sprintf("%s (uid %d)", u, f.Identity.UID.Value)
	})
	return s
}

// rows lists the summary as label/value pairs in display order.
func (s hostSummary) rows() [][2]string {
	return [][2]string{
		{"distro", s.Distro}, {"kernel", s.Kernel}, {"security", s.Security},
		{"cgroup", s.Cgroup}, {"systemd", s.Systemd}, {"user", s.User},
	}
}

// countChecks counts results by status.
func countChecks(rs []probe.Result) map[probe.Status]int {
	n := map[probe.Status]int{}
	for _, r := range rs {
		n[r.Status]++
	}
	return n
}
