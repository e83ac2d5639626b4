package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// probeUserNS learns what an unprivileged user namespace with a full ID map needs: the namespace
// sysctls, the user's subordinate ID ranges and the setuid helpers that write the map.
func probeUserNS(ctx context.Context, e *Env) func(*Facts) {
	maxNS := usernsIntSysctl(e, "/proc/sys/user/max_user_namespaces", false)
	clone := usernsIntSysctl(e, "/proc/sys/kernel/unprivileged_userns_clone", true)
	subuid := subIDFact(e, "/etc/subuid")
	subgid := subIDFact(e, "/etc/subgid")
	uidmap := idMapperFact(e, "newuidmap")
	gidmap := idMapperFact(e, "newgidmap")
	return func(f *Facts) {
		f.UserNS.MaxUserNamespaces = maxNS
		f.UserNS.UnprivilegedClone = clone
		f.UserNS.SubUID = subuid
		f.UserNS.SubGID = subgid
		f.UserNS.NewUIDMap = uidmap
		f.UserNS.NewGIDMap = gidmap
	}
}

// usernsIntSysctl reads an integer sysctl. When absentIsMinusOne, a missing file is the known value
// -1: kernel.unprivileged_userns_clone is a Debian/Arch patch, and kernels without it never restrict
// unprivileged user namespaces that way. user.max_user_namespaces exists on every kernel since 4.9,
// so its absence means /proc is not what it should be and the value stays unknown.
func usernsIntSysctl(e *Env, p string, absentIsMinusOne bool) Fact[int] {
	text, ev, err := readKnob(e, p)
	if err != nil {
		if absentIsMinusOne && errors.Is(err, fs.ErrNotExist) {
			return Known(-1, ev)
		}
		return Unknown[int](err, ev)
	}
	v, err := parseKnobInt(p, text)
	if err != nil {
		return Unknown[int](err, ev)
	}
	return Known(v, ev)
}

// ParseSubIDs returns the ranges of /etc/subuid or /etc/subgid (subuid(5)) that apply to the user:
// lines "NAME:START:COUNT" or "UID:START:COUNT", as shadow's newuidmap matches them. Comments, blank
// lines and lines without three fields are skipped. A line for the user whose numbers are not plain
// decimal, or whose range does not fit below the invalid ID 4294967295, is an error: newuidmap would
// not use it, and the user needs to know which line is broken. No matching line gives an empty list.
func ParseSubIDs(b []byte, name string, uid int) ([]IDRange, error) {
	uidStr := ""
	if uid >= 0 {
		uidStr = strconv.Itoa(uid)
	}
	out := []IDRange{}
	var errs []error
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimRight(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) != 3 || fields[0] == "" {
			continue
		}
		if fields[0] != name && (uidStr == "" || fields[0] != uidStr) {
			continue
		}
		start, err1 := parseSubID(fields[1])
		count, err2 := parseSubID(fields[2])
		if err := errors.Join(err1, err2); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+1, err))
			continue
		}
		// IDs are 32 bits and (uid_t)-1 means "no ID", so the last ID of a range must stay below it.
		if start+count > math.MaxUint32 {
			errs = append(errs, fmt.Errorf("line %d: range %d+%d goes past the largest ID 4294967294", i+1, start, count))
			continue
		}
		out = append(out, IDRange{Start: start, Count: count})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// parseSubID parses a subordinate ID field: plain decimal digits, no sign, at most 32 bits.
func parseSubID(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	if s[0] == '-' {
		return 0, fmt.Errorf("negative number %q", trimEvidence(s))
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("not a number: %q", trimEvidence(s))
		}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("number %q does not fit in 32 bits", trimEvidence(s))
	}
	return int64(v), nil
}

// subIDFact reads the user's ranges. A missing file is a known empty list: RootlessKit then fails
// with "open /etc/subuid: no such file or directory" (rootless.md §5 #5), which the doctor reports.
func subIDFact(e *Env, p string) Fact[[]IDRange] {
	if !e.User.Known {
		return Unknown[[]IDRange](errors.New("the user is not known, so their ranges cannot be picked"), knobEv(p, "not read"))
	}
	b, err := readRegular(e, p)
	if errors.Is(err, fs.ErrNotExist) {
		return Known([]IDRange{}, knobEv(p, "file does not exist"))
	}
	if err != nil {
		return Unknown[[]IDRange](fmt.Errorf("read %s: %w", p, err), knobEv(p, "unreadable"))
	}
	// Garbage lines are skipped like newuidmap skips them, but a binary file is a corrupt one, and
	// "no entry" would send the user to add a line to a file that needs replacing.
	if bytes.IndexByte(b, 0) >= 0 {
		return Unknown[[]IDRange](fmt.Errorf("read %s: unexpected NUL byte, the file is corrupt", p), knobEv(p, "binary content"))
	}
	ranges, err := ParseSubIDs(b, e.User.Name, e.User.UID)
	if err != nil {
		return Unknown[[]IDRange](fmt.Errorf("parse %s: %w", p, err), knobEv(p, subIDExcerpt(b, e.User)))
	}
	return Known(ranges, knobEv(p, subIDExcerpt(b, e.User)))
}

// subIDExcerpt keeps the user's lines of the file, or says there are none.
func subIDExcerpt(b []byte, u User) string {
	var mine []string
	uid := strconv.Itoa(u.UID)
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		owner, _, ok := strings.Cut(line, ":")
		if ok && (owner == u.Name || owner == uid) {
			mine = append(mine, line)
		}
	}
	if len(mine) == 0 {
		return fmt.Sprintf("no entry for %s (uid %d)", u.Name, u.UID)
	}
	return strings.Join(mine, "\n")
}

// idMapperFact finds newuidmap or newgidmap and tells whether it can do its job: it must be setuid
// root (Debian's uidmap) or carry file capabilities (Fedora's shadow-utils ships
// "cap_setuid=ep"/"cap_setgid=ep" instead of the setuid bit).
func idMapperFact(e *Env, name string) Fact[IDMapper] {
	p, ok := e.LookPath(name)
	if !ok {
		return Known(IDMapper{}, Evidence{Kind: "derived", Source: "lookup " + name,
			Excerpt: trimEvidence("not found in " + strings.Join(e.LookupDirs, ":"))})
	}
	m := IDMapper{Path: p, Found: true}
	// Stat, not Lstat: the kernel honours the setuid bit and capabilities of the file a symlink
	// points to.
	fi, err := e.Root.Stat(p)
	if err != nil {
		return Unknown[IDMapper](fmt.Errorf("stat %s: %w", p, err), knobEv(p, "unreadable"))
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Unknown[IDMapper](fmt.Errorf("stat %s: no owner information", p), knobEv(p, "no owner"))
	}
	m.Setuid = st.Uid == 0 && fi.Mode()&fs.ModeSetuid != 0
	ev := knobEv(p, fmt.Sprintf("mode %04o owner %d", st.Mode&0o7777, st.Uid))

	caps, capEv, err := fileCapsOf(e, p)
	if err != nil {
		return Unknown[IDMapper](err, ev, capEv)
	}
	m.Caps = caps
	return Known(m, ev, capEv)
}

// fileCapsOf reads and decodes the security.capability xattr. No xattr, or a filesystem without
// xattrs, means no file capabilities.
func fileCapsOf(e *Env, p string) (string, Evidence, error) {
	ev := Evidence{Kind: "syscall", Source: "getxattr(" + p + ", security.capability)"}
	full := e.Root.Path(p)
	buf := make([]byte, 64)
	n, err := unix.Getxattr(full, "security.capability", buf)
	if errors.Is(err, unix.ERANGE) {
		// Larger than any vfs_cap_data revision, which DecodeFileCaps rejects; read it to say so.
		size, serr := unix.Getxattr(full, "security.capability", nil)
		if serr == nil && size > 0 && size <= 4096 {
			buf = make([]byte, size)
			n, err = unix.Getxattr(full, "security.capability", buf)
		}
	}
	switch {
	case errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP):
		ev.Excerpt = "no file capabilities"
		return "", ev, nil
	case err != nil:
		ev.Excerpt = "unreadable"
		return "", ev, fmt.Errorf("read file capabilities of %s: %w", p, err)
	}
	caps, err := DecodeFileCaps(buf[:n])
	if err != nil {
		ev.Excerpt = fmt.Sprintf("%x", buf[:min(n, 32)])
		return "", ev, fmt.Errorf("decode file capabilities of %s: %w", p, err)
	}
	ev.Excerpt = caps
	if caps == "" {
		ev.Excerpt = "empty capability set"
	}
	return caps, ev, nil
}

// Capability xattr layout from linux/capability.h (struct vfs_cap_data and vfs_ns_cap_data).
const (
	vfsCapRevisionMask   = 0xFF000000
	vfsCapFlagsEffective = 0x000001
	vfsCapRevision1      = 0x01000000 // Linux 2.6.24: 32 capabilities
	vfsCapRevision2      = 0x02000000 // Linux 2.6.25: 64 capabilities
	vfsCapRevision3      = 0x03000000 // Linux 4.14: adds the namespace root uid
)

// capNames are the names of linux/capability.h, indexed by number.
var capNames = []string{
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
	"setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
	"ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
	"lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
	"wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
}

func capName(n int) string {
	if n < len(capNames) {
		return "cap_" + capNames[n]
	}
	return "cap_" + strconv.Itoa(n)
}

// DecodeFileCaps decodes a security.capability xattr (struct vfs_cap_data, revisions 1 to 3) into
// getcap(8)'s text form: capabilities with the same flags grouped as "NAMES=FLAGS", flags from
// "e" (the effective bit, which applies to every listed capability), "i" and "p", in the order of
// each group's lowest capability number, e.g. "cap_setuid=ep" or "cap_setgid,cap_setuid=p". A set with no capabilities decodes to "". A
// revision 3 xattr whose namespace root is not 0 only takes effect inside that user namespace,
// which the text says with " [rootid=N]".
func DecodeFileCaps(b []byte) (string, error) {
	if len(b) < 4 {
		return "", fmt.Errorf("capability xattr of %d bytes is shorter than its header", len(b))
	}
	magic := binary.LittleEndian.Uint32(b)
	words, size := 0, 0
	switch magic & vfsCapRevisionMask {
	case vfsCapRevision1:
		words, size = 1, 12
	case vfsCapRevision2:
		words, size = 2, 20
	case vfsCapRevision3:
		words, size = 2, 24
	default:
		return "", fmt.Errorf("unknown capability xattr revision %#x", magic&vfsCapRevisionMask)
	}
	// The kernel (get_vfs_caps_from_disk) accepts exactly these sizes.
	if len(b) != size {
		return "", fmt.Errorf("capability xattr revision %d has %d bytes, want %d", magic>>24, len(b), size)
	}
	var permitted, inheritable uint64
	for i := 0; i < words; i++ {
		permitted |= uint64(binary.LittleEndian.Uint32(b[4+8*i:])) << (32 * i)
		inheritable |= uint64(binary.LittleEndian.Uint32(b[8+8*i:])) << (32 * i)
	}
	effective := magic&vfsCapFlagsEffective != 0

	groups := map[string][]string{}
	var order []string
	for n := 0; n < 64; n++ {
		p, i := permitted&(1<<n) != 0, inheritable&(1<<n) != 0
		if !p && !i {
			continue
		}
		flags := ""
		if effective {
			flags += "e"
		}
		if i {
			flags += "i"
		}
		if p {
			flags += "p"
		}
		if _, seen := groups[flags]; !seen {
			order = append(order, flags)
		}
		groups[flags] = append(groups[flags], capName(n))
	}
	parts := make([]string, 0, len(order))
	for _, flags := range order {
		parts = append(parts, strings.Join(groups[flags], ",")+"="+flags)
	}
	text := strings.Join(parts, " ")
	if magic&vfsCapRevisionMask == vfsCapRevision3 {
		if root := binary.LittleEndian.Uint32(b[20:]); root != 0 && text != "" {
			text += fmt.Sprintf(" [rootid=%d]", root)
		}
	}
	return text, nil
}
