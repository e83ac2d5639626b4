package probe

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// Env is what every probe reads the host through. On the live host Root is "/" and Runner runs real
// commands; under --root and in tests both point at a fake host.
type Env struct {
	Root   sys.Root
	Runner sys.Runner
	// Live is true on the real host: live capability tests run, devices are opened, the process
	// environment is the user's.
	Live bool
	// Environ is the user's environment (KEY=VALUE). Live: the process environment. Under --root:
	// ROOT/proc/self/environ when it exists, otherwise empty.
	Environ []string
	// User is the user the setup is for, resolved before the other probes run.
	User User
	// Now is the clock.
	Now func() time.Time
	// SelfExe is the program re-executed for live tests (default /proc/self/exe).
	SelfExe string
	// LookupDirs are the directories (host paths) searched for binaries, in order.
	LookupDirs []string
}

// User is the account the probe describes.
type User struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Shell string
	// Known is false when the account could not be resolved (no passwd entry).
	Known bool
}

// Getenv returns the value of key in the user's environment.
func (e *Env) Getenv(key string) string {
	v, _ := e.LookupEnv(key)
	return v
}

// LookupEnv returns the value of key and whether it is set in the user's environment.
func (e *Env) LookupEnv(key string) (string, bool) {
	prefix := key + "="
	for i := len(e.Environ) - 1; i >= 0; i-- {
		if strings.HasPrefix(e.Environ[i], prefix) {
			return e.Environ[i][len(prefix):], true
		}
	}
	return "", false
}

// defaultLookupDirs are searched for binaries besides $PATH. The sbin directories are not on an
// ordinary user's PATH on Debian, yet iptables and friends live there.
var defaultLookupDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// lookupDirs builds the binary search path: $PATH first (live only, since a fake host's PATH would
// name host directories), then ~/.local/bin and ~/bin where nerdctl-full is often unpacked, then the
// system directories.
func (e *Env) lookupDirs() []string {
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		if d == "" || !filepath.IsAbs(d) || seen[d] {
			return
		}
		seen[d] = true
		dirs = append(dirs, d)
	}
	if e.Live {
		for _, d := range filepath.SplitList(e.Getenv("PATH")) {
			add(d)
		}
	}
	if e.User.Home != "" {
		add(filepath.Join(e.User.Home, ".local/bin"))
		add(filepath.Join(e.User.Home, "bin"))
	}
	for _, d := range defaultLookupDirs {
		add(d)
	}
	return dirs
}

// LookPath finds an executable by name the way a login shell of the user would, and returns its host
// path (not the path below the fake root).
func (e *Env) LookPath(name string) (string, bool) {
	for _, d := range e.LookupDirs {
		p := filepath.Join(d, name)
		fi, err := e.Root.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		return p, true
	}
	return "", false
}

func processEnviron() []string { return os.Environ() }
