package probe

import "fmt"

// systemdChecks are about the service manager that keeps rootless containerd running.
var systemdChecks = []Check{
	{
		ID:    "VS-SYSTEMD-001",
		Title: "A systemd user manager is running for you",
		Why: "containerd-rootless-setuptool.sh needs `systemctl --user`, and the user unit is what restarts " +
			"containerd and starts it at login. Without it virt-setup runs containerd-rootless.sh directly, which works but is not supervised.",
		Doc: docLogin,
		run: checkUserManager,
		fix: fixUserManager,
	},
	{
		ID:    "VS-LINGER-001",
		Title: "Lingering is enabled",
		Why:   "Without lingering, systemd stops your user services, rootless containerd with them, when your last session ends, and does not start them at boot.",
		Doc:   docLogin,
		run:   checkLinger,
		fix:   fixLinger,
	},
	{
		ID:    "VS-DBUS-001",
		Title: "A dbus user session is available",
		Why: "The systemd cgroup driver asks your systemd over dbus to create a scope for each container; without a " +
			"session bus runc fails with \"unable to start unit ... Permission denied\", and the setup tool's containerd unit Requires=dbus.socket.",
		Doc: docNerdctlFAQ,
		run: checkUserBus,
		fix: fixUserBus,
	},
	{
		ID:    "VS-WSL-001",
		Title: "WSL runs systemd",
		Why:   "WSL starts without systemd unless /etc/wsl.conf enables it, so there is no user manager and no cgroup delegation for rootless containerd.",
		Doc:   docLogin,
		run:   checkWSL,
		fix:   fixWSL,
	},
}

// systemdAbsent reports whether systemd is known not to be the init system.
func systemdAbsent(f *Facts) bool {
	p := f.Systemd.PID1
	return p.Known && !p.Value
}

func checkUserManager(f *Facts, h checkHost) Result {
	um := f.Systemd.UserManager
	if !um.Known {
		return unknownResult("Whether a systemd user manager runs", um)
	}
	ev := factLines(um)
	if um.Value {
		return Result{Status: StatusOK, Title: fmt.Sprintf("The systemd user manager of %s answers `systemctl --user`", h.user), Evidence: ev}
	}
	title := fmt.Sprintf("No systemd user manager for %s: virt-setup will run containerd-rootless.sh directly, unsupervised", h.user)
	if systemdAbsent(f) {
		title = "systemd is not the init system, so there is no systemd user manager: virt-setup will run containerd-rootless.sh directly, unsupervised"
		ev = append(ev, factLines(f.Systemd.PID1)...)
	}
	return Result{Status: StatusWarn, Title: title, Evidence: ev}
}

func fixUserManager(h checkHost) Fix {
	if systemdAbsent(h.f) {
		x := Fix{
			Summary: "Nothing has to change: virt-setup starts containerd-rootless.sh itself. For a supervised service that starts at boot, use a host that boots with systemd.",
			Notes:   []string{"containerd-rootless.sh does not need systemd; only containerd-rootless-setuptool.sh and the user unit do."},
		}
		if w := h.f.OS.WSL; w.Known && w.Value {
			x.Notes = append(x.Notes, "On WSL, systemd can be turned on: see VS-WSL-001.")
		}
		return x
	}
	return Fix{
		Summary: fmt.Sprintf("Log in as %s through a real login session, which starts user@UID.service; lingering starts it at boot.", h.user),
		Root:    []string{"loginctl enable-linger " + h.user},
		Notes: []string{
			fmt.Sprintf("Log in with `ssh %[1]s@localhost` or `machinectl shell %[1]s@`, not su or sudo.", h.user),
			"`systemctl --user show-environment` succeeds once the user manager runs.",
		},
	}
}

func checkLinger(f *Facts, h checkHost) Result {
	if systemdAbsent(f) {
		return Result{Status: StatusSkip, Title: "systemd is not the init system; lingering is a systemd-logind feature", Evidence: factLines(f.Systemd.PID1)}
	}
	l := f.Systemd.Linger
	if !l.Known {
		return unknownResult("Whether lingering is enabled", l)
	}
	if l.Value {
		return Result{Status: StatusOK, Title: fmt.Sprintf("Lingering is enabled for %s", h.user), Evidence: factLines(l)}
	}
	return Result{Status: StatusWarn, Title: fmt.Sprintf("Lingering is off for %s: containerd stops at logout and does not start at boot", h.user), Evidence: factLines(l)}
}

func fixLinger(h checkHost) Fix {
	return Fix{
		Summary: "Enable lingering so your user manager, and rootless containerd, run from boot until shutdown.",
		Root:    []string{"loginctl enable-linger " + h.user},
		Notes:   []string{fmt.Sprintf("`loginctl show-user %s -p Linger` says Linger=yes afterwards.", h.user)},
	}
}

func checkUserBus(f *Facts, h checkHost) Result {
	if systemdAbsent(f) {
		return Result{Status: StatusSkip, Title: "systemd is not the init system: nerdctl uses no systemd cgroup driver and there is no user unit, so no dbus user session is needed", Evidence: factLines(f.Systemd.PID1)}
	}
	ub := f.Systemd.UserBus
	if !ub.Known {
		return unknownResult("Whether a dbus user session runs", ub)
	}
	ev := factLines(ub)
	if b := f.Identity.DBusSessionBus; b.Known {
		ev = append(ev, factLines(b)...)
	}
	if ub.Value {
		return Result{Status: StatusOK, Title: "The dbus user session bus is there", Evidence: ev}
	}
	cg := f.Cgroup.Version
	v2 := cg.Known && cg.Value == "v2"
	newUnit := h.atLeast("nerdctl", "2.0.0")
	switch {
	case v2:
		// nerdctl picks the systemd cgroup driver on cgroup v2 with systemd (pkg/defaults/cgroup_linux.go).
		ev = append(ev, factLines(cg)...)
		return Result{Status: StatusFail, Title: "No dbus user session: on cgroup v2 the systemd cgroup driver cannot create container scopes, so containers fail to start", Evidence: ev}
	case newUnit:
		return Result{Status: StatusFail, Title: "No dbus user session: the containerd user unit of nerdctl ≥ 2.0 Requires=dbus.socket and will not start", Evidence: ev}
	}
	return Result{Status: StatusWarn, Title: "No dbus user session: the systemd cgroup driver (cgroup v2) and the containerd unit of nerdctl ≥ 2.0 need one", Evidence: ev}
}

func fixUserBus(h checkHost) Fix {
	return Fix{
		Summary: fmt.Sprintf("Install the dbus user session (%s) and start it for your user.", h.pkgName("dbus-user-session", "dbus-daemon")),
		Root:    h.install("dbus-user-session", "dbus-daemon"),
		User:    []string{"systemctl --user enable --now dbus"},
		Notes:   []string{"If $XDG_RUNTIME_DIR/bus still does not exist, log out and back in."},
	}
}

func checkWSL(f *Facts, h checkHost) Result {
	w := f.OS.WSL
	if !w.Known {
		return unknownResult("Whether this is WSL", w)
	}
	if !w.Value {
		return Result{Status: StatusSkip, Title: "Not running under WSL", Evidence: factLines(w)}
	}
	p := f.Systemd.PID1
	if !p.Known {
		return unknownResult("Whether WSL runs systemd", p)
	}
	ev := append(factLines(w), factLines(p)...)
	if p.Value {
		return Result{Status: StatusOK, Title: "WSL runs systemd as its init system", Evidence: ev}
	}
	return Result{Status: StatusWarn, Title: "WSL without systemd: no user manager, lingering or cgroup delegation for rootless containerd", Evidence: ev}
}

func fixWSL(h checkHost) Fix {
	return Fix{
		Summary: "Turn on systemd in /etc/wsl.conf and restart WSL.",
		Root:    []string{`printf '[boot]\nsystemd=true\n' >> /etc/wsl.conf`},
		Notes: []string{
			"If /etc/wsl.conf already has a [boot] section, add `systemd=true` to it instead of a second section.",
			"Then, from Windows: `wsl.exe --shutdown`, and open the distribution again. This needs WSL 0.67.6 or newer.",
			"Without systemd, virt-setup can still run containerd-rootless.sh directly.",
		},
	}
}
