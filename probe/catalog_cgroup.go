package probe

import (
	"fmt"
	"slices"
	"strings"
)

// cgroupChecks are about resource limits for rootless containers.
var cgroupChecks = []Check{
	{
		ID:    "VS-CGROUP-001",
		Title: "The host runs cgroup v2",
		Why: "Rootless containers get resource limits only through a delegated cgroup v2 subtree; on cgroup v1 or hybrid, " +
			"--memory, --cpus and --pids-limit are dropped with a warning and `nerdctl stats` fails.",
		Doc: docCgroup2,
		run: checkCgroupVersion,
		fix: fixCgroupVersion,
	},
	{
		ID:    "VS-CGROUP-002",
		Title: "The cgroup v2 controllers are delegated to you",
		Why: "systemd hands a user only the controllers listed in Delegate= of user@.service; a limit whose controller is not " +
			"delegated cannot be set (--cpus needs cpu, --memory memory, --pids-limit pids, --cpuset-cpus cpuset, --blkio-weight io).",
		Doc: docCgroup2,
		run: checkDelegation,
		fix: fixDelegation,
	},
}

// wantedControllers are the controllers delegate.conf hands out (rootlesscontaine.rs cgroup2 page),
// with the nerdctl flags that need each.
var wantedControllers = []struct{ name, flags string }{
	{"cpu", "--cpus, --cpu-shares"},
	{"cpuset", "--cpuset-cpus, --cpuset-mems"},
	{"io", "--blkio-weight and device I/O limits"},
	{"memory", "--memory"},
	{"pids", "--pids-limit"},
}

func checkCgroupVersion(f *Facts, h checkHost) Result {
	v := f.Cgroup.Version
	if !v.Known {
		return unknownResult("The cgroup version", v)
	}
	ev := factLines(v)
	if v.Value == "v2" {
		return Result{Status: StatusOK, Title: "The host runs cgroup v2 (unified hierarchy)", Evidence: ev}
	}
	return Result{Status: StatusWarn, Title: fmt.Sprintf("The host runs cgroup %s: --memory, --cpus and --pids-limit are ignored and `nerdctl stats` fails", v.Value), Evidence: ev}
}

func fixCgroupVersion(h checkHost) Fix {
	const arg = "systemd.unified_cgroup_hierarchy=1"
	debian := []string{
		fmt.Sprintf(`sed -i 's/^GRUB_CMDLINE_LINUX="/&%s /' /etc/default/grub`, arg),
		"update-grub",
	}
	fedora := []string{fmt.Sprintf("grubby --update-kernel=ALL --args=%s", arg)}
	x := Fix{
		Summary: "Boot with the unified cgroup v2 hierarchy, then reboot.",
		Notes: []string{
			"Reboot afterwards. Remove systemd.unified_cgroup_hierarchy=0 from the kernel command line if it is there.",
			"Debian 11+, Ubuntu 21.10+, Fedora 31+ and RHEL 9+ use cgroup v2 by default; cgroup v2 needs kernel 4.15 (5.2 recommended).",
			"Limits for rootless containers also need systemd as the init system, to delegate the cgroup subtree.",
		},
	}
	switch h.family {
	case "debian":
		x.Root = debian
		x.Notes = append(x.Notes, "Ubuntu images on Azure set the kernel command line in /etc/default/grub.d/50-cloudimg-settings.cfg: add the argument there instead.")
	case "fedora":
		x.Root = fedora
	default:
		x.Root = []string{fmt.Sprintf("if command -v grubby >/dev/null 2>&1; then %s; else %s && %s; fi", fedora[0], debian[0], debian[1])}
	}
	return x
}

func checkDelegation(f *Facts, h checkHost) Result {
	v := f.Cgroup.Version
	if !v.Known {
		return unknownResult("The cgroup version", v)
	}
	if v.Value != "v2" {
		return Result{Status: StatusSkip, Title: fmt.Sprintf("Delegation is a cgroup v2 feature and the host runs cgroup %s (see VS-CGROUP-001)", v.Value), Evidence: factLines(v)}
	}
	d := f.Cgroup.Delegated
	if !d.Known {
		return unknownResult("Which cgroup controllers are delegated to you", d)
	}
	ev := factLines(d)
	root := f.Cgroup.Controllers
	var missing, absent, flags []string
	for _, c := range wantedControllers {
		if slices.Contains(d.Value, c.name) {
			continue
		}
		if root.Known && !slices.Contains(root.Value, c.name) {
			// Not even the root offers it: delegation cannot help, the kernel or boot config lacks it.
			absent = append(absent, c.name)
			continue
		}
		missing = append(missing, c.name)
		flags = append(flags, c.flags)
	}
	if len(absent) > 0 {
		ev = append(ev, factLines(root)...)
	}
	if len(missing) == 0 {
		title := fmt.Sprintf("Delegated to %s: %s", h.user, strings.Join(d.Value, " "))
		if len(absent) > 0 {
			title += fmt.Sprintf(" (the host offers no %s controller at all)", strings.Join(absent, ", "))
		}
		return Result{Status: StatusOK, Title: title, Evidence: ev}
	}
	return Result{Status: StatusWarn, Title: fmt.Sprintf("Not delegated to %s: %s, so %s cannot be used", h.user, strings.Join(missing, ", "), strings.Join(flags, "; ")), Evidence: ev}
}

func fixDelegation(h checkHost) Fix {
	x := Fix{
		Summary: "Delegate cpu, cpuset, io, memory and pids to every user's systemd, then log in again.",
		Root: []string{
			"mkdir -p /etc/systemd/system/user@.service.d",
			"printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf",
			"systemctl daemon-reload",
		},
		Notes: []string{
			fmt.Sprintf("Log out and back in (or reboot) so user@%[1]s.service restarts with the new delegation; /sys/fs/cgroup/user.slice/user-%[1]s.slice/user@%[1]s.service/cgroup.controllers lists what you got.", h.uid),
			"cpu is delegated by default since systemd 252 (Debian 12, Ubuntu 23.04, RHEL 9); memory and pids always were.",
			"cpuset delegation needs systemd 244 or newer.",
		},
	}
	if v := h.f.Systemd.Version; v.Known && v.Value < 244 {
		x.Notes = append(x.Notes, fmt.Sprintf("This host runs systemd %d, older than 244: cpuset will not be delegated.", v.Value))
	}
	return x
}
