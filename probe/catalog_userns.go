package probe

import (
	"fmt"
	"path"
	"strings"
)

// usernsChecks are about creating the user namespace RootlessKit runs containerd in.
var usernsChecks = []Check{
	{
		ID:    "VS-USERNS-001",
		Title: "user.max_user_namespaces allows user namespaces",
		Why:   "RootlessKit creates a user namespace for containerd and every container gets more; at 0 none can be created, and RootlessKit warns below 1024.",
		Doc:   docSysctl,
		run:   checkMaxUserNS,
		fix:   fixMaxUserNS,
	},
	{
		ID:    "VS-USERNS-002",
		Title: "kernel.unprivileged_userns_clone allows unprivileged user namespaces",
		Why:   "Kernels with Debian's (and old Arch's) patch refuse user namespaces to ordinary users while this sysctl is 0.",
		Doc:   docSysctl,
		run:   checkUsernsClone,
		fix:   fixUsernsClone,
	},
	{
		ID:    "VS-APPARMOR-001",
		Title: "AppArmor lets rootlesskit create user namespaces",
		Why: "Since Ubuntu 24.04, kernel.apparmor_restrict_unprivileged_userns=1 denies user namespaces to programs without an AppArmor " +
			"profile that allows them; Ubuntu ships one only for /usr/bin/rootlesskit, so a rootlesskit elsewhere fails with \"fork/exec /proc/self/exe: operation not permitted\".",
		Doc: docAppArmor,
		run: checkAppArmor,
		fix: fixAppArmor,
	},
	{
		ID:    "VS-SUBID-001",
		Title: "You have at least 65536 subordinate uids in /etc/subuid",
		Why:   "RootlessKit maps container uids onto your subordinate uids; images need 65536 of them, and without any RootlessKit fails with \"No subuid ranges found\".",
		Doc:   docSubuid,
		run:   checkSubIDs("subuid", func(f *Facts) Fact[[]IDRange] { return f.UserNS.SubUID }),
		fix:   fixSubIDs("subuid"),
	},
	{
		ID:    "VS-SUBID-002",
		Title: "You have at least 65536 subordinate gids in /etc/subgid",
		Why:   "RootlessKit maps container gids onto your subordinate gids; images need 65536 of them, and without any RootlessKit cannot set up the gid map.",
		Doc:   docSubuid,
		run:   checkSubIDs("subgid", func(f *Facts) Fact[[]IDRange] { return f.UserNS.SubGID }),
		fix:   fixSubIDs("subgid"),
	},
	{
		ID:    "VS-IDMAP-001",
		Title: "newuidmap is installed and privileged",
		Why:   "RootlessKit writes the uid map of its namespace through newuidmap, which needs setuid root or the cap_setuid file capability; otherwise \"failed to setup UID/GID map\".",
		Doc:   docSubuid,
		run:   checkIDMapper("newuidmap", "cap_setuid", func(f *Facts) Fact[IDMapper] { return f.UserNS.NewUIDMap }),
		fix:   fixIDMapper("newuidmap", "cap_setuid", func(f *Facts) Fact[IDMapper] { return f.UserNS.NewUIDMap }),
	},
	{
		ID:    "VS-IDMAP-002",
		Title: "newgidmap is installed and privileged",
		Why:   "RootlessKit writes the gid map of its namespace through newgidmap, which needs setuid root or the cap_setgid file capability; otherwise \"failed to setup UID/GID map\".",
		Doc:   docSubuid,
		run:   checkIDMapper("newgidmap", "cap_setgid", func(f *Facts) Fact[IDMapper] { return f.UserNS.NewGIDMap }),
		fix:   fixIDMapper("newgidmap", "cap_setgid", func(f *Facts) Fact[IDMapper] { return f.UserNS.NewGIDMap }),
	},
}

// minSubIDs is how many subordinate ids an image needs: uids and gids 0–65535 inside the container.
const minSubIDs = 65536

func checkMaxUserNS(f *Facts, h checkHost) Result {
	m := f.UserNS.MaxUserNamespaces
	if !m.Known {
		return unknownResult("user.max_user_namespaces", m)
	}
	ev := factLines(m)
	switch {
	case m.Value <= 0:
		return Result{Status: StatusFail, Title: fmt.Sprintf("user.max_user_namespaces is %d: user namespaces are disabled", m.Value), Evidence: ev}
	case m.Value < 1024:
		return Result{Status: StatusWarn, Title: fmt.Sprintf("user.max_user_namespaces is only %d: RootlessKit warns below 1024 and containers run out of namespaces", m.Value), Evidence: ev}
	}
	return Result{Status: StatusOK, Title: fmt.Sprintf("user.max_user_namespaces is %d", m.Value), Evidence: ev}
}

func fixMaxUserNS(h checkHost) Fix {
	return Fix{
		Summary: "Allow user namespaces: set user.max_user_namespaces to 28633 and keep it across reboots.",
		Root:    sysctlDropIn("user.max_user_namespaces", "28633", "99-virt-setup-userns.conf"),
		Notes:   []string{"28633 is the value rootlesscontaine.rs gives for RHEL/CentOS 7, where it is 0 by default."},
	}
}

func checkUsernsClone(f *Facts, h checkHost) Result {
	c := f.UserNS.UnprivilegedClone
	if !c.Known {
		return unknownResult("kernel.unprivileged_userns_clone", c)
	}
	ev := factLines(c)
	switch {
	case c.Value < 0:
		return Result{Status: StatusSkip, Title: "The kernel has no kernel.unprivileged_userns_clone switch (it lacks Debian's patch), so it does not apply", Evidence: ev}
	case c.Value == 0:
		return Result{Status: StatusFail, Title: "kernel.unprivileged_userns_clone is 0: ordinary users cannot create user namespaces", Evidence: ev}
	}
	return Result{Status: StatusOK, Title: fmt.Sprintf("kernel.unprivileged_userns_clone is %d", c.Value), Evidence: ev}
}

func fixUsernsClone(h checkHost) Fix {
	if h.family == "fedora" {
		return Fix{
			Summary: "Does not apply: Fedora and RHEL kernels have no kernel.unprivileged_userns_clone; user.max_user_namespaces (VS-USERNS-001) governs user namespaces there.",
		}
	}
	return Fix{
		Summary: "Allow ordinary users to create user namespaces and keep it across reboots.",
		Root:    sysctlDropIn("kernel.unprivileged_userns_clone", "1", "99-virt-setup-userns-clone.conf"),
		Notes:   []string{"Debian 10 and Arch before April 2021 need this; Debian 11 and later, and Ubuntu, default to 1."},
	}
}

// apparmorProfileName is the file name AppArmor profiles of a program get by convention: the path
// without its leading "/" and with "/" turned into ".", e.g. usr.local.bin.rootlesskit.
func apparmorProfileName(p string) string {
	return strings.ReplaceAll(strings.TrimPrefix(path.Clean(p), "/"), "/", ".")
}

// ubuntuRootlesskit is where Ubuntu's apparmor package attaches its rootlesskit profile
// (upstream profiles/apparmor.d/rootlesskit).
const ubuntuRootlesskit = "/usr/bin/rootlesskit"

// hasRootlesskitProfile reports whether one of the profiles the probe found grants userns to p. The
// probe lists each as "FILE: PATH" (the file under /etc/apparmor.d and the path it attaches to); what
// counts is the path, since AppArmor attaches by path whatever the file is called.
func hasRootlesskitProfile(profiles []string, p string) bool {
	p = path.Clean(p)
	for _, q := range profiles {
		attach := q
		if _, after, ok := strings.Cut(q, ": "); ok {
			attach = after
		}
		if path.Clean(strings.TrimSpace(attach)) == p {
			return true
		}
	}
	return false
}

func checkAppArmor(f *Facts, h checkHost) Result {
	aa := f.Security.AppArmor
	if !aa.Known {
		return unknownResult("The AppArmor state", aa)
	}
	ev := factLines(aa)
	switch r := aa.Value.RestrictUnprivilegedUserns; {
	case r < 0:
		return Result{Status: StatusSkip, Title: "The kernel has no kernel.apparmor_restrict_unprivileged_userns (only Ubuntu 23.10 and later have it)", Evidence: ev}
	case r == 0:
		return Result{Status: StatusOK, Title: "kernel.apparmor_restrict_unprivileged_userns is 0: AppArmor does not restrict user namespaces", Evidence: ev}
	}
	rk := h.bin("rootlesskit")
	ev = append(ev, factLines(rk)...)
	if !rk.Known {
		return Result{Status: StatusSkip, Title: "AppArmor restricts user namespaces, and where rootlesskit is installed is unknown: " + rk.Error, Evidence: ev}
	}
	if !rk.Value.Found {
		return Result{Status: StatusWarn, Title: "AppArmor restricts user namespaces: rootlesskit is not installed yet, and anywhere but /usr/bin/rootlesskit it will need an AppArmor profile", Evidence: ev}
	}
	p := rk.Value.Path
	switch {
	case p == ubuntuRootlesskit:
		return Result{Status: StatusOK, Title: "AppArmor restricts user namespaces, and rootlesskit is at /usr/bin/rootlesskit, which Ubuntu's rootlesskit profile covers", Evidence: ev}
	case hasRootlesskitProfile(aa.Value.RootlesskitProfiles, p):
		return Result{Status: StatusOK, Title: fmt.Sprintf("AppArmor restricts user namespaces, and a profile allows them to %s", p), Evidence: ev}
	}
	return Result{Status: StatusFail, Title: fmt.Sprintf("AppArmor restricts user namespaces and no profile allows them to %s: RootlessKit fails with \"operation not permitted\"", p), Evidence: ev}
}

func fixAppArmor(h checkHost) Fix {
	if h.family == "fedora" {
		return Fix{Summary: "Does not apply: Fedora and RHEL use SELinux and have no AppArmor user-namespace restriction."}
	}
	p := "/usr/local/bin/rootlesskit"
	known := false
	if rk := h.bin("rootlesskit"); rk.Known && rk.Value.Found && rk.Value.Path != "" {
		p, known = rk.Value.Path, true
	}
	name := apparmorProfileName(p)
	profile := fmt.Sprintf(`cat > /etc/apparmor.d/%[1]s <<'EOF'
abi <abi/4.0>,
include <tunables/global>

%[2]s flags=(unconfined) {
  userns,

  include if exists <local/%[1]s>
}
EOF`, name, p)
	x := Fix{
		Summary: fmt.Sprintf("Install an AppArmor profile that lets %s create user namespaces, and reload AppArmor.", p),
		Root:    []string{profile, "systemctl restart apparmor.service"},
		Notes: []string{
			"AppArmor matches the real path of the program: if rootlesskit is a symlink, write the profile for the file it points to.",
			"RootlessKit 2.0.2 and later print this template themselves when the child fails with EACCES.",
		},
	}
	if !known {
		x.Notes = append([]string{fmt.Sprintf("Written for %s: use the path rootlesskit is installed at, and name the file after it with \"/\" turned into \".\".", p)}, x.Notes...)
	}
	return x
}

func checkSubIDs(kind string, pick func(*Facts) Fact[[]IDRange]) func(*Facts, checkHost) Result {
	file := "/etc/" + kind
	what := "uids"
	if kind == "subgid" {
		what = "gids"
	}
	return func(f *Facts, h checkHost) Result {
		x := pick(f)
		if !x.Known {
			return unknownResult(file+" ranges", x)
		}
		ev := factLines(x)
		var total int64
		var spans []string
		for _, r := range x.Value {
			if r.Count > 0 {
				total += r.Count
				spans = append(spans, fmt.Sprintf("%d–%d", r.Start, r.Start+r.Count-1))
			}
		}
		switch {
		case total == 0:
			return Result{Status: StatusFail, Title: fmt.Sprintf("%s has no range for %s", file, h.user), Evidence: ev}
		case total < minSubIDs:
			return Result{Status: StatusFail, Title: fmt.Sprintf("%s gives %s only %d subordinate %s (%s); images need %d", file, h.user, total, what, strings.Join(spans, ", "), minSubIDs), Evidence: ev}
		}
		return Result{Status: StatusOK, Title: fmt.Sprintf("%s gives %s %d subordinate %s (%s)", file, h.user, total, what, strings.Join(spans, ", ")), Evidence: ev}
	}
}

func fixSubIDs(kind string) func(checkHost) Fix {
	file := "/etc/" + kind
	flag := "--add-subuids"
	if kind == "subgid" {
		flag = "--add-subgids"
	}
	return func(h checkHost) Fix {
		// Start after the highest range already given out, so the new range overlaps no one's.
		cmd := fmt.Sprintf(`start=$(awk -F: 'BEGIN { m = 100000 } $2 + $3 > m { m = $2 + $3 } END { print m }' %s 2>/dev/null || echo 100000); usermod %s "$start-$((start + 65535))" %s`, file, flag, h.user)
		return Fix{
			Summary: fmt.Sprintf("Give %s a range of 65536 subordinate ids in %s that overlaps no other user's.", h.user, file),
			Root:    []string{cmd},
			Notes: []string{
				fmt.Sprintf("Or edit %s by hand: a line such as %s:100000:65536, with a range no other line uses.", file, h.user),
				fmt.Sprintf("A range that is too short can be removed with usermod %s START-END %s.", strings.Replace(flag, "add", "del", 1), h.user),
				"systemd-homed users need ids from 524288–1878982656, for example " + h.user + ":524288:65536.",
				"Restart rootless containerd afterwards: the namespace keeps the map it started with.",
			},
		}
	}
}

func checkIDMapper(name, capName string, pick func(*Facts) Fact[IDMapper]) func(*Facts, checkHost) Result {
	return func(f *Facts, h checkHost) Result {
		x := pick(f)
		if !x.Known {
			return unknownResult("The state of "+name, x)
		}
		m := x.Value
		ev := factLines(x)
		switch {
		case !m.Found:
			return Result{Status: StatusFail, Title: name + " is not installed", Evidence: ev}
		case m.Setuid:
			return Result{Status: StatusOK, Title: fmt.Sprintf("%s at %s is setuid root", name, m.Path), Evidence: ev}
		case fileCapGrants(m.Caps, capName):
			return Result{Status: StatusOK, Title: fmt.Sprintf("%s at %s has the file capability %s", name, m.Path, m.Caps), Evidence: ev}
		case m.Caps != "":
			return Result{Status: StatusFail, Title: fmt.Sprintf("%s at %s is not setuid and its file capability %s lacks %s", name, m.Path, m.Caps, capName), Evidence: ev}
		}
		return Result{Status: StatusFail, Title: fmt.Sprintf("%s at %s is neither setuid root nor has the %s file capability", name, m.Path, capName), Evidence: ev}
	}
}

func fixIDMapper(name, capName string, pick func(*Facts) Fact[IDMapper]) func(checkHost) Fix {
	return func(h checkHost) Fix {
		x := pick(h.f)
		p := "/usr/bin/" + name
		if x.Known && x.Value.Path != "" {
			p = x.Value.Path
		}
		byHand := fmt.Sprintf("By hand: `chown root:root %[1]s && chmod u+s %[1]s` (Debian ships it setuid) or `setcap %[2]s=ep %[1]s` (Fedora ships it with a file capability).", p, capName)
		if x.Known && x.Value.Found {
			// Installed but unprivileged: a reinstall restores what the package ships.
			return Fix{
				Summary: fmt.Sprintf("Reinstall %s so %s gets back its setuid bit or file capability.", h.pkgName("uidmap", "shadow-utils"), name),
				Root:    h.reinstall("uidmap", "shadow-utils"),
				Notes:   []string{byHand},
			}
		}
		return Fix{
			Summary: fmt.Sprintf("Install %s, which provides newuidmap and newgidmap.", h.pkgName("uidmap", "shadow-utils")),
			Root:    h.install("uidmap", "shadow-utils"),
			Notes:   []string{"If it is installed but RootlessKit still says \"newuidmap: Could not set caps\": " + byHand},
		}
	}
}

// fileCapGrants reports whether a decoded file capability (DecodeFileCaps's "cap_a,cap_b=ep" form)
// gives capName in both the permitted and the effective set. A capability scoped to a user namespace
// (" [rootid=N]", revision 3) only works inside that namespace, so it does not count.
func fileCapGrants(caps, capName string) bool {
	if caps == "" || strings.Contains(caps, "[rootid=") {
		return false
	}
	for _, clause := range strings.Fields(caps) {
		names, flags, ok := strings.Cut(clause, "=")
		if !ok || !strings.Contains(flags, "p") || !strings.Contains(flags, "e") {
			continue
		}
		for _, n := range strings.Split(names, ",") {
			if n == capName {
				return true
			}
		}
	}
	return false
}
