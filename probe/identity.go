package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// PasswdEntry is one line of /etc/passwd.
type PasswdEntry struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Shell string
}

// ParsePasswd parses /etc/passwd, skipping lines that are not seven colon-separated fields with
// numeric ids (comments, NIS "+" lines, garbage).
func ParsePasswd(b []byte) []PasswdEntry {
	var out []PasswdEntry
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Split(strings.TrimRight(line, "\r"), ":")
		if len(fields) != 7 || fields[0] == "" || strings.HasPrefix(fields[0], "#") {
			continue
		}
		uid, err1 := strconv.Atoi(fields[2])
		gid, err2 := strconv.Atoi(fields[3])
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			continue
		}
		out = append(out, PasswdEntry{Name: fields[0], UID: uid, GID: gid, Home: fields[5], Shell: fields[6]})
	}
	return out
}

// resolveIdentity finds the user the setup is for. It runs before the other probes because they
// need the user's name, uid and home.
func resolveIdentity(e *Env, wantName string) func(*Facts) {
	passwdEv := Evidence{Kind: "file", Source: "/etc/passwd"}
	entries, perr := func() ([]PasswdEntry, error) {
		b, err := e.Root.ReadFile("/etc/passwd")
		if err != nil {
			return nil, err
		}
		return ParsePasswd(b), nil
	}()

	var u User
	var uidEv Evidence
	var lookupErr error
	switch {
	case e.Live:
		uid, gid := os.Getuid(), os.Getgid()
		uidEv = Evidence{Kind: "syscall", Source: "getuid()", Excerpt: strconv.Itoa(uid)}
		u = User{UID: uid, GID: gid, Known: true}
		for _, p := range entries {
			if p.UID == uid {
				u.Name, u.Home, u.Shell = p.Name, p.Home, p.Shell
				break
			}
		}
		if u.Name == "" {
			u.Name = e.Getenv("USER")
		}
	case wantName != "":
		uidEv = passwdEv
		lookupErr = fmt.Errorf("no user %q in /etc/passwd", wantName)
		for _, p := range entries {
			if p.Name == wantName {
				u = User{Name: p.Name, UID: p.UID, GID: p.GID, Home: p.Home, Shell: p.Shell, Known: true}
				lookupErr = nil
				break
			}
		}
	default:
		// Under --root without --user: the first ordinary account (uid 1000–59999), which is who a
		// desktop or cloud image's single user is.
		uidEv = passwdEv
		lookupErr = errors.New("no ordinary user (uid 1000-59999) in /etc/passwd; pass --user NAME")
		for _, p := range entries {
			if p.UID >= 1000 && p.UID < 60000 {
				u = User{Name: p.Name, UID: p.UID, GID: p.GID, Home: p.Home, Shell: p.Shell, Known: true}
				lookupErr = nil
				break
			}
		}
	}
	if perr != nil && lookupErr != nil {
		lookupErr = fmt.Errorf("%w (read /etc/passwd: %v)", lookupErr, perr)
	}
	if e.Live && e.Getenv("HOME") != "" {
		// Every tool in the chain (the setup tool, containerd-rootless.sh, nerdctl) uses $HOME.
		u.Home = e.Getenv("HOME")
	}
	e.User = u

	return func(f *Facts) {
		id := &f.Identity
		if !u.Known {
			id.User = Unknown[string](lookupErr, passwdEv)
			id.UID = Unknown[int](lookupErr, passwdEv)
			id.GID = Unknown[int](lookupErr, passwdEv)
			id.Root = Unknown[bool](lookupErr, passwdEv)
			id.Home = Unknown[string](lookupErr, passwdEv)
		} else {
			if u.Name != "" {
				id.User = Known(u.Name, passwdEv)
			} else {
				id.User = Unknown[string](fmt.Errorf("uid %d has no /etc/passwd entry and $USER is empty", u.UID), passwdEv)
			}
			id.UID = Known(u.UID, uidEv)
			id.GID = Known(u.GID, uidEv)
			id.Root = Known(u.UID == 0, uidEv)
			homeEv := passwdEv
			if e.Live && e.Getenv("HOME") != "" {
				homeEv = Evidence{Kind: "env", Source: "HOME", Excerpt: u.Home}
			}
			id.Home = homeDirFact(e, u.Home, homeEv)
		}
		id.SudoUser = envFact(e, "SUDO_USER")
		id.DBusSessionBus = envFact(e, "DBUS_SESSION_BUS_ADDRESS")
		id.XDGRuntimeDir = runtimeDirFact(e, u)
		id.Path = pathFact(e)
	}
}

func homeDirFact(e *Env, home string, ev Evidence) Fact[string] {
	if home == "" {
		return Unknown[string](errors.New("no home directory"), ev)
	}
	return Known(home, ev)
}

// envFact records an environment variable; unset is a known empty value.
func envFact(e *Env, key string) Fact[string] {
	v, ok := e.LookupEnv(key)
	ev := Evidence{Kind: "env", Source: key, Excerpt: v}
	if !ok {
		ev.Excerpt = "(unset)"
	}
	return Known(v, ev)
}

// runtimeDirFact checks $XDG_RUNTIME_DIR the way containerd-rootless-setuptool.sh and nerdctl need it:
// set, an existing directory, owned by the user and writable by them.
func runtimeDirFact(e *Env, u User) Fact[RuntimeDir] {
	v, ok := e.LookupEnv("XDG_RUNTIME_DIR")
	ev := Evidence{Kind: "env", Source: "XDG_RUNTIME_DIR", Excerpt: v}
	rd := RuntimeDir{Path: v, Set: ok && v != ""}
	if !rd.Set {
		ev.Excerpt = "(unset)"
		return Known(rd, ev)
	}
	fi, err := e.Root.Stat(v)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Known(rd, ev, Evidence{Kind: "file", Source: v, Excerpt: "does not exist"})
		}
		return Unknown[RuntimeDir](fmt.Errorf("stat %s: %w", v, err), ev)
	}
	rd.Exists = fi.IsDir()
	rd.Mode = fmt.Sprintf("%04o", fi.Mode().Perm())
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st != nil && u.Known {
		rd.Owned = int(st.Uid) == u.UID
	}
	if e.Live && u.Known && u.UID == os.Getuid() {
		rd.Writable = rd.Exists && unix.Access(e.Root.Path(v), unix.W_OK|unix.X_OK) == nil
	} else {
		rd.Writable = rd.Exists && rd.Owned && fi.Mode().Perm()&0o300 == 0o300
	}
	fev := Evidence{Kind: "file", Source: v, Excerpt: fmt.Sprintf("mode %s", rd.Mode)}
	if st != nil {
		fev.Excerpt += fmt.Sprintf(" owner %d", st.Uid)
	}
	return Known(rd, ev, fev)
}

// skippedLive records a live test that did not run and why.
func skippedLive(name string, live bool) func(*Facts) {
	reason := "skipped: live tests run only on the real host, not under --root or a host profile"
	if live {
		reason = "skipped: live tests were turned off (--no-live)"
	}
	t := Known(LiveTest{Status: LiveSkipped, Detail: reason})
	return func(f *Facts) {
		switch name {
		case "live-overlay":
			f.Live.OverlayUserns = t
		case "live-fuse-overlayfs":
			f.Live.FuseOverlayfs = t
		}
	}
}

// pathFact records the directories of $PATH; unset is a known empty list.
func pathFact(e *Env) Fact[[]string] {
	v, ok := e.LookupEnv("PATH")
	ev := Evidence{Kind: "env", Source: "PATH", Excerpt: v}
	if !ok {
		ev.Excerpt = "(unset)"
		return Known([]string{}, ev)
	}
	dirs := []string{}
	for _, d := range filepath.SplitList(v) {
		if d != "" {
			dirs = append(dirs, filepath.Clean(d))
		}
	}
	return Known(dirs, ev)
}
