package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// systemctlTimeout bounds `systemctl --version`; userManagerTimeout bounds `systemctl --user
// show-environment`, which goes over D-Bus and took more than 2 s on a busy guest (internal/vmtest)
// while the probe's budget is 5 s: a wedged D-Bus must not eat all of it.
const (
	systemctlTimeout   = 2 * time.Second
	userManagerTimeout = 4 * time.Second
)

// probeSystemd finds whether systemd is the init system, its version, and whether the user has a
// reachable user manager, linger and a session bus: containerd-rootless-setuptool.sh refuses to run
// without `systemctl --user` (rootless.md §5 #2) and the systemd cgroup driver needs the bus (#8).
func probeSystemd(ctx context.Context, e *Env) func(*Facts) {
	pid1 := systemdPID1(e)
	systemctl, found := e.LookPath("systemctl")
	version := systemdVersion(ctx, e, systemctl, found)
	userManager := systemdUserManager(ctx, e, pid1, systemctl, found)
	linger := systemdLinger(e)
	userBus := systemdUserBus(e)
	return func(f *Facts) {
		f.Systemd.PID1 = pid1
		f.Systemd.Version = version
		f.Systemd.UserManager = userManager
		f.Systemd.Linger = linger
		f.Systemd.UserBus = userBus
	}
}

// systemdPID1 applies sd_booted(3)'s rule: systemd is the init system exactly when
// /run/systemd/system is a directory. /run/systemd alone proves nothing: logind and udev create it
// under other inits too (this VM has it without systemd as PID 1).
func systemdPID1(e *Env) Fact[bool] {
	const p = "/run/systemd/system"
	fi, err := e.Root.Stat(p)
	switch {
	case err == nil && fi.IsDir():
		return Known(true, Evidence{Kind: "file", Source: p, Excerpt: "is a directory"})
	case err == nil:
		return Known(false, Evidence{Kind: "file", Source: p, Excerpt: "exists but is a " + describeType(fi)})
	case errors.Is(err, fs.ErrNotExist):
		return Known(false, Evidence{Kind: "file", Source: p, Excerpt: "does not exist"})
	default:
		return Unknown[bool](fmt.Errorf("stat %s: %w", p, err), Evidence{Kind: "file", Source: p})
	}
}

func systemdVersion(ctx context.Context, e *Env, systemctl string, found bool) Fact[int] {
	if !found {
		return Unknown[int](fmt.Errorf("systemctl not found in %s", strings.Join(e.LookupDirs, ":")))
	}
	cmd := sys.Command{Path: e.Root.Path(systemctl), Args: []string{"--version"}, Timeout: systemctlTimeout}
	res, err := e.Runner.Run(ctx, cmd)
	ev := Evidence{Kind: "command", Source: systemctl + " --version", Excerpt: clipExcerpt(firstLineOf(res.Combined()))}
	if err != nil {
		return Unknown[int](fmt.Errorf("run %s --version: %w", systemctl, err), ev)
	}
	v, err := ParseSystemdVersion(string(res.Stdout))
	if err != nil {
		return Unknown[int](err, ev)
	}
	return Known(v, ev)
}

// ParseSystemdVersion reads the version number from the first line of `systemctl --version`:
// "systemd 252 (252.39-1~deb12u1)" on current releases, plain "systemd 219" on CentOS 7, and
// "systemd 256~rc3 (…)" on release candidates.
func ParseSystemdVersion(out string) (int, error) {
	line := strings.TrimSpace(firstLineOf(out))
	fields := strings.Fields(line)
	if len(fields) < 2 || fields[0] != "systemd" {
		return 0, fmt.Errorf("parse systemd version: want \"systemd N …\", got %q", clipExcerpt(line))
	}
	digits := fields[1]
	for i, r := range digits {
		if r < '0' || r > '9' {
			digits = digits[:i]
			break
		}
	}
	// systemd numbers its releases with one integer; anything past six digits is not a version.
	if digits == "" || len(digits) > 6 {
		return 0, fmt.Errorf("parse systemd version: %q is not a version number", clipExcerpt(fields[1]))
	}
	v, err := strconv.Atoi(digits)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("parse systemd version: %q is not a version number", clipExcerpt(fields[1]))
	}
	return v, nil
}

// systemdUserManager finds whether `systemctl --user` would reach the user's service manager, which
// containerd-rootless-setuptool.sh requires.
func systemdUserManager(ctx context.Context, e *Env, pid1 Fact[bool], systemctl string, found bool) Fact[bool] {
	if !pid1.Known {
		return Unknown[bool](errors.New("whether systemd is the init system is unknown"), pid1.Evidence...)
	}
	if !pid1.Value {
		// Without systemd as init there is no systemd --user either (WSL2 without systemd, Alpine,
		// containers, this project's VM).
		return Known(false, pid1.Evidence...)
	}
	if !e.User.Known {
		return Unknown[bool](errors.New("the user is unknown"))
	}
	if e.Live && found {
		cmd := sys.Command{Path: e.Root.Path(systemctl), Args: []string{"--user", "show-environment"}, Env: e.Environ, Timeout: userManagerTimeout}
		res, err := e.Runner.Run(ctx, cmd)
		src := systemctl + " --user show-environment"
		var exit *sys.ExitError
		switch {
		case err == nil:
			return Known(true, Evidence{Kind: "command", Source: src, Excerpt: "exit status 0"})
		case errors.As(err, &exit):
			// "Failed to connect to bus: $DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR not defined"
			// after su/sudo; "Failed to get D-Bus connection" on CentOS 7.
			msg := strings.TrimSpace(res.Combined())
			if msg == "" {
				msg = fmt.Sprintf("exit status %d", res.ExitCode)
			}
			return Known(false, Evidence{Kind: "command", Source: src, Excerpt: clipExcerpt(msg)})
		default:
			return Unknown[bool](fmt.Errorf("run %s: %w", src, err), Evidence{Kind: "command", Source: src})
		}
	}
	// Under --root (or without systemctl) nothing can be asked, so look for the manager's private
	// socket, which systemd --user creates at startup.
	p := fmt.Sprintf("/run/user/%d/systemd/private", e.User.UID)
	if _, err := e.Root.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Known(false, Evidence{Kind: "file", Source: p, Excerpt: "does not exist"})
		}
		return Unknown[bool](fmt.Errorf("stat %s: %w", p, err), Evidence{Kind: "file", Source: p})
	}
	return Known(true, Evidence{Kind: "file", Source: p, Excerpt: "exists"})
}

// systemdLinger is `loginctl enable-linger`: logind keeps the user manager running from boot when
// this file exists, so rootless containerd survives logout.
func systemdLinger(e *Env) Fact[bool] {
	if e.User.Name == "" {
		return Unknown[bool](errors.New("the user name is unknown"))
	}
	if strings.ContainsRune(e.User.Name, '/') {
		return Unknown[bool](fmt.Errorf("user name %q cannot name a file", e.User.Name))
	}
	p := path.Join("/var/lib/systemd/linger", e.User.Name)
	if _, err := e.Root.Lstat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Known(false, Evidence{Kind: "file", Source: p, Excerpt: "does not exist"})
		}
		return Unknown[bool](fmt.Errorf("stat %s: %w", p, err), Evidence{Kind: "file", Source: p})
	}
	return Known(true, Evidence{Kind: "file", Source: p, Excerpt: "exists"})
}

// systemdUserBus looks for the session bus socket the systemd cgroup driver talks to
// (dbus-user-session on Debian).
func systemdUserBus(e *Env) Fact[bool] {
	dir, err := userRuntimeDir(e)
	if err != nil {
		return Unknown[bool](err)
	}
	p := path.Join(dir, "bus")
	fi, err := e.Root.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Known(false, Evidence{Kind: "file", Source: p, Excerpt: "does not exist"})
		}
		return Unknown[bool](fmt.Errorf("stat %s: %w", p, err), Evidence{Kind: "file", Source: p})
	}
	if fi.Mode().Type() == fs.ModeSocket {
		return Known(true, Evidence{Kind: "file", Source: p, Excerpt: "socket"})
	}
	if !e.Live {
		// A fake host made by a test or copied with tar cannot always hold a socket.
		return Known(true, Evidence{Kind: "file", Source: p, Excerpt: "exists (" + describeType(fi) + "; any type accepted under --root)"})
	}
	return Known(false, Evidence{Kind: "file", Source: p, Excerpt: "exists but is a " + describeType(fi) + ", not a socket"})
}

// userRuntimeDir is $XDG_RUNTIME_DIR, or /run/user/UID where pam_systemd would put it, for building
// paths only: whether the variable is set is Identity.XDGRuntimeDir's business.
func userRuntimeDir(e *Env) (string, error) {
	if v := e.Getenv("XDG_RUNTIME_DIR"); v != "" && path.IsAbs(v) {
		return path.Clean(v), nil
	}
	if !e.User.Known {
		return "", errors.New("XDG_RUNTIME_DIR is unset and the user's uid is unknown")
	}
	return fmt.Sprintf("/run/user/%d", e.User.UID), nil
}

// describeType names a file's type the way a person would say it, for evidence.
func describeType(fi fs.FileInfo) string {
	m := fi.Mode()
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	default:
		return "special file"
	}
}

func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
