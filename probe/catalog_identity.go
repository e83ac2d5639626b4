package probe

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// identityChecks are about who runs the setup and the login session they run it from.
var identityChecks = []Check{
	{
		ID:    "VS-ROOT-001",
		Title: "Not running as root",
		Why: "Rootless containerd belongs to an ordinary user: containerd-rootless-setuptool.sh refuses to " +
			"install as root and containerd-rootless.sh exits with \"Must not run as root\".",
		Doc: docContainerd,
		run: checkNotRoot,
		fix: fixNotRoot,
	},
	{
		ID:    "VS-XDG-001",
		Title: "XDG_RUNTIME_DIR is set, exists, is yours and is writable",
		Why: "RootlessKit, containerd and nerdctl keep their sockets and state under $XDG_RUNTIME_DIR; " +
			"without it nerdctl fails with \"environment variable XDG_RUNTIME_DIR is not set\" and the setup tool aborts.",
		Doc: docLogin,
		run: checkRuntimeDir,
		fix: fixRuntimeDir,
	},
}

func sudoCaller(f *Facts) string {
	if s := f.Identity.SudoUser; s.Known {
		return s.Value
	}
	return ""
}

func checkNotRoot(f *Facts, h checkHost) Result {
	root := f.Identity.Root
	if !root.Known {
		return unknownResult("Whether you are root", root)
	}
	ev := factLines(root)
	if !root.Value {
		return Result{Status: StatusOK, Title: fmt.Sprintf("Running as %s (uid %s), not root", h.user, h.uid), Evidence: ev}
	}
	title := "Running as root (uid 0)"
	if s := sudoCaller(f); s != "" {
		title += fmt.Sprintf(", through sudo from %s", s)
		ev = append(ev, factLines(f.Identity.SudoUser)...)
	}
	return Result{Status: StatusFail, Title: title, Evidence: ev}
}

func fixNotRoot(h checkHost) Fix {
	x := Fix{
		Summary: fmt.Sprintf("Run virt-setup as %s, the ordinary user who will run containers, from a real login session.", h.user),
		User:    []string{"virt-setup doctor"},
		Notes: []string{
			fmt.Sprintf("Log in as %[1]s with `ssh %[1]s@localhost` or `machinectl shell %[1]s@`: su and sudo start no login session, so XDG_RUNTIME_DIR and the systemd user manager would be missing.", h.user),
			"Steps that need root are gathered into one script you review and run with sudo; nothing else runs as root.",
		},
	}
	if s := sudoCaller(h.f); s != "" {
		x.Summary = fmt.Sprintf("Run virt-setup as %s without sudo: it sets up containerd for the user who runs it.", s)
	}
	return x
}

func checkRuntimeDir(f *Facts, h checkHost) Result {
	x := f.Identity.XDGRuntimeDir
	if !x.Known {
		return unknownResult("$XDG_RUNTIME_DIR", x)
	}
	rd := x.Value
	ev := factLines(x)
	var title string
	switch {
	case !rd.Set:
		title = "XDG_RUNTIME_DIR is not set"
	case !rd.Exists && rd.Mode != "":
		title = fmt.Sprintf("XDG_RUNTIME_DIR=%s is not a directory", rd.Path)
	case !rd.Exists:
		title = fmt.Sprintf("XDG_RUNTIME_DIR=%s does not exist", rd.Path)
	case !rd.Owned:
		title = fmt.Sprintf("XDG_RUNTIME_DIR=%s is not owned by %s", rd.Path, h.user)
		if other, ok := otherUsersRuntimeDir(rd.Path, h.uid); ok {
			title = fmt.Sprintf("XDG_RUNTIME_DIR=%s belongs to another user's session (uid %s), not to %s (uid %s)", rd.Path, other, h.user, h.uid)
		}
	case !rd.Writable:
		title = fmt.Sprintf("XDG_RUNTIME_DIR=%s is not writable by %s (mode %s)", rd.Path, h.user, rd.Mode)
	default:
		return Result{Status: StatusOK, Title: fmt.Sprintf("XDG_RUNTIME_DIR=%s is %s's and writable", rd.Path, h.user), Evidence: ev}
	}
	if s := sudoCaller(f); s != "" {
		title += fmt.Sprintf("; this shell came from sudo (SUDO_USER=%s), which starts no login session", s)
		ev = append(ev, factLines(f.Identity.SudoUser)...)
	}
	return Result{Status: StatusFail, Title: title, Evidence: ev}
}

// otherUsersRuntimeDir recognises /run/user/N of a uid other than the user's: what su leaves behind.
func otherUsersRuntimeDir(p, uid string) (string, bool) {
	dir, n := path.Split(path.Clean(p))
	if _, err := strconv.Atoi(n); dir != "/run/user/" || n == uid || err != nil {
		return "", false
	}
	return n, true
}

func fixRuntimeDir(h checkHost) Fix {
	pid1 := h.f.Systemd.PID1
	if pid1.Known && !pid1.Value {
		// Without systemd-logind nothing creates /run/user/UID (this project's own VM, Alpine, WSL
		// without systemd), so it has to be made by hand, after every boot since /run is a tmpfs.
		dir := "/run/user/" + h.rootUID
		return Fix{
			Summary: "Create a runtime directory only you can use and point XDG_RUNTIME_DIR at it (without systemd-logind nothing makes one).",
			Root: []string{
				"mkdir -p " + dir,
				fmt.Sprintf("chown %s: %s", h.user, dir),
				"chmod 0700 " + dir,
			},
			User: []string{"export XDG_RUNTIME_DIR=/run/user/$(id -u)"},
			Notes: []string{
				"/run is emptied at every boot: repeat the root commands from a boot script.",
				"Add the export line to ~/.profile so every login shell has it.",
			},
		}
	}
	x := Fix{
		Summary: fmt.Sprintf("Log in as %s through a real login session, which creates /run/user/UID and sets XDG_RUNTIME_DIR; or enable lingering and set it yourself.", h.user),
		Root:    []string{"loginctl enable-linger " + h.user},
		User:    []string{"export XDG_RUNTIME_DIR=/run/user/$(id -u)"},
		Notes: []string{
			fmt.Sprintf("Log in with `ssh %[1]s@localhost` or `machinectl shell %[1]s@`.", h.user),
			fmt.Sprintf("`loginctl show-user %s -p RuntimePath` shows the directory logind made once lingering is on.", h.user),
		},
	}
	if s := h.f.Identity.SudoUser; !s.Known || s.Value != "" {
		x.Notes = append([]string{
			"su and sudo start no pam_systemd login session: /run/user/UID is not created for the user you switch to, and XDG_RUNTIME_DIR is either missing or still points at the caller's directory.",
		}, x.Notes...)
	}
	return x
}

// isUbuntu reports whether the distro runs Ubuntu's kernel and packages (Ubuntu itself and the
// distros built on it, such as Linux Mint and Pop!_OS, which say so in ID_LIKE).
func isUbuntu(d Distro) bool {
	if strings.EqualFold(d.ID, "ubuntu") {
		return true
	}
	for _, like := range d.IDLike {
		if strings.EqualFold(like, "ubuntu") {
			return true
		}
	}
	return false
}
