package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Device paths rootless containers need: /dev/net/tun for slirp4netns, pasta and vpnkit's tap
// device, /dev/fuse for fuse-overlayfs and stargz. Distros ship both 0666 through udev; without udev
// (this project's VM, minimal containers) they stay 0600 root and slirp4netns fails with
// "open: Permission denied" (test-lab.md).
const (
	devFuse = "/dev/fuse"
	devTun  = "/dev/net/tun"
)

// Ways Device.How says usability was decided.
const (
	DeviceHowOpened   = "opened read-write"
	DeviceHowModeBits = "mode bits"
)

// probeDevices finds whether the user can open /dev/fuse and /dev/net/tun read-write.
func probeDevices(ctx context.Context, e *Env) func(*Facts) {
	groups := &userGroups{e: e}
	fuse := probeDevice(e, devFuse, groups)
	tun := probeDevice(e, devTun, groups)
	return func(f *Facts) {
		f.Devices.Fuse = fuse
		f.Devices.Tun = tun
	}
}

func probeDevice(e *Env, p string, groups *userGroups) Fact[Device] {
	d := Device{Path: p}
	fi, err := e.Root.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Known(d, Evidence{Kind: "file", Source: p, Excerpt: "does not exist"})
		}
		return Unknown[Device](fmt.Errorf("stat %s: %w", p, err), Evidence{Kind: "file", Source: p})
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Unknown[Device](fmt.Errorf("stat %s: no owner information", p), Evidence{Kind: "file", Source: p})
	}
	d.Exists = true
	d.CharDev = fi.Mode()&fs.ModeCharDevice != 0
	d.Mode = fmt.Sprintf("%04o", fi.Mode().Perm())
	d.OwnerUID, d.OwnerGID = int(st.Uid), int(st.Gid)
	desc := describeType(fi)
	if d.CharDev {
		desc = fmt.Sprintf("character device %d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	fileEv := Evidence{Kind: "file", Source: p, Excerpt: fmt.Sprintf("%s, mode %s, owner %d:%d", desc, d.Mode, d.OwnerUID, d.OwnerGID)}

	if !e.User.Known {
		return Unknown[Device](errors.New("the user is unknown, so whether they may open the device is too"), fileEv)
	}
	if e.Live && d.CharDev && e.User.UID == os.Getuid() {
		// Opening without an ioctl changes nothing: the tun device attaches no interface until
		// TUNSETIFF, and a fuse connection without a mount is dropped on close.
		d.How = DeviceHowOpened
		src := "open(" + p + ", O_RDWR|O_NONBLOCK)"
		fd, err := unix.Open(e.Root.Path(p), unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return Known(d, fileEv, Evidence{Kind: "syscall", Source: src, Excerpt: err.Error()})
		}
		unix.Close(fd)
		d.Usable = true
		return Known(d, fileEv, Evidence{Kind: "syscall", Source: src, Excerpt: "ok"})
	}

	d.How = DeviceHowModeBits
	usable, why, err := deviceModeAllows(fi.Mode().Perm(), d.OwnerUID, d.OwnerGID, e.User, groups.has)
	evs := []Evidence{fileEv}
	if groups.loaded() && groups.ev.Source != "" {
		evs = append(evs, groups.ev)
	}
	if err != nil {
		return Unknown[Device](err, evs...)
	}
	d.Usable = usable
	evs = append(evs, Evidence{Kind: "derived", Source: "mode bits", Excerpt: why})
	return Known(d, evs...)
}

// deviceModeAllows decides from the mode bits whether u may open a file read-write. As the kernel
// does, it applies only the most specific class: an owner is judged by the owner bits alone, even
// when the other bits would allow more. inGroup reports whether u belongs to a group.
func deviceModeAllows(perm fs.FileMode, ownerUID, ownerGID int, u User, inGroup func(gid int) (bool, error)) (bool, string, error) {
	const ownerRW, groupRW, otherRW = 0o600, 0o060, 0o006
	if u.UID == 0 {
		// CAP_DAC_OVERRIDE: root opens device nodes whatever their mode.
		return true, "uid 0 is not bound by file modes", nil
	}
	if ownerUID == u.UID {
		return perm&ownerRW == ownerRW, fmt.Sprintf("uid %d owns it: owner bits decide", u.UID), nil
	}
	member, err := inGroup(ownerGID)
	if err != nil {
		// Membership matters only when the group and other classes disagree.
		if (perm&groupRW == groupRW) != (perm&otherRW == otherRW) {
			return false, "", fmt.Errorf("cannot tell whether uid %d is in group %d: %w", u.UID, ownerGID, err)
		}
		member = false
	}
	if member {
		return perm&groupRW == groupRW, fmt.Sprintf("uid %d is in group %d: group bits decide", u.UID, ownerGID), nil
	}
	return perm&otherRW == otherRW, fmt.Sprintf("uid %d is neither owner nor in group %d: other bits decide", u.UID, ownerGID), nil
}

// userGroups is the user's group list, read from /etc/group the first time it is needed.
type userGroups struct {
	e    *Env
	once sync.Once
	done bool
	gids map[int]bool
	err  error
	ev   Evidence
}

func (g *userGroups) has(gid int) (bool, error) {
	g.once.Do(g.load)
	if gid == g.e.User.GID {
		return true, nil
	}
	if g.err != nil {
		return false, g.err
	}
	return g.gids[gid], nil
}

// loaded reports whether /etc/group was read (it is only when membership mattered).
func (g *userGroups) loaded() bool { return g.done }

func (g *userGroups) load() {
	g.done = true
	const p = "/etc/group"
	b, err := g.e.Root.ReadFile(p)
	if err != nil {
		g.err = fmt.Errorf("read %s: %w", p, err)
		g.ev = Evidence{Kind: "file", Source: p, Excerpt: err.Error()}
		return
	}
	g.gids = map[int]bool{}
	var names []string
	for _, gid := range ParseGroupMembers(b, g.e.User.Name) {
		g.gids[gid] = true
		names = append(names, strconv.Itoa(gid))
	}
	excerpt := "primary gid " + strconv.Itoa(g.e.User.GID)
	if len(names) > 0 {
		excerpt += ", member of " + strings.Join(names, ",")
	}
	g.ev = Evidence{Kind: "file", Source: p, Excerpt: excerpt}
}

// ParseGroupMembers returns the gids of the /etc/group entries ("name:password:gid:member,…") that
// list user as a member, in file order without repeats. Lines that are not four colon-separated
// fields with a numeric gid (comments, NIS "+" lines, garbage) are skipped. A user's primary group is
// in /etc/passwd, not here.
func ParseGroupMembers(b []byte, user string) []int {
	if user == "" {
		return nil
	}
	var out []int
	seen := map[int]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Split(strings.TrimRight(line, "\r"), ":")
		if len(fields) != 4 || fields[0] == "" || strings.HasPrefix(fields[0], "#") {
			continue
		}
		gid, err := strconv.Atoi(fields[2])
		if err != nil || gid < 0 || seen[gid] {
			continue
		}
		for _, m := range strings.Split(fields[3], ",") {
			if strings.TrimSpace(m) == user {
				seen[gid] = true
				out = append(out, gid)
				break
			}
		}
	}
	return out
}
