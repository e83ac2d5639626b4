package probetest

import (
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// capNumbers are the capability numbers of linux/capability.h, by their cap_ name.
var capNumbers = map[string]uint{
	"chown": 0, "dac_override": 1, "dac_read_search": 2, "fowner": 3, "fsetid": 4, "kill": 5,
	"setgid": 6, "setuid": 7, "setpcap": 8, "linux_immutable": 9, "net_bind_service": 10,
	"net_broadcast": 11, "net_admin": 12, "net_raw": 13, "ipc_lock": 14, "ipc_owner": 15,
	"sys_module": 16, "sys_rawio": 17, "sys_chroot": 18, "sys_ptrace": 19, "sys_pacct": 20,
	"sys_admin": 21, "sys_boot": 22, "sys_nice": 23, "sys_resource": 24, "sys_time": 25,
	"sys_tty_config": 26, "mknod": 27, "lease": 28, "audit_write": 29, "audit_control": 30,
	"setfcap": 31, "mac_override": 32, "mac_admin": 33, "syslog": 34, "wake_alarm": 35,
	"block_suspend": 36, "audit_read": 37, "perfmon": 38, "bpf": 39, "checkpoint_restore": 40,
}

// Revision 2 of the security.capability xattr (struct vfs_cap_data in linux/capability.h): a magic
// word whose low bit is the effective flag, then permitted/inheritable words for caps 0–31 and 32–63.
const (
	vfsCapRevision2      = 0x02000000
	vfsCapFlagsEffective = 0x000001
)

// EncodeFileCaps turns a capability text in setcap(8)'s form ("cap_setuid=ep",
// "cap_setuid,cap_setgid+eip") into the bytes of the security.capability xattr.
func EncodeFileCaps(text string) ([]byte, error) {
	names, flags, ok := strings.Cut(strings.TrimSpace(text), "=")
	if !ok {
		names, flags, ok = strings.Cut(strings.TrimSpace(text), "+")
	}
	if !ok || names == "" {
		return nil, fmt.Errorf("file caps %q: want NAMES=FLAGS, e.g. cap_setuid=ep", text)
	}
	var set uint64
	for _, n := range strings.Split(names, ",") {
		num, found := capNumbers[strings.TrimPrefix(strings.ToLower(strings.TrimSpace(n)), "cap_")]
		if !found {
			return nil, fmt.Errorf("file caps %q: unknown capability %q", text, n)
		}
		set |= 1 << num
	}
	var permitted, inheritable uint64
	magic := uint32(vfsCapRevision2)
	for _, c := range flags {
		switch c {
		case 'e':
			magic |= vfsCapFlagsEffective
		case 'p':
			permitted = set
		case 'i':
			inheritable = set
		default:
			return nil, fmt.Errorf("file caps %q: unknown flag %q (want e, i, p)", text, c)
		}
	}
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], magic)
	binary.LittleEndian.PutUint32(b[4:], uint32(permitted))
	binary.LittleEndian.PutUint32(b[8:], uint32(inheritable))
	binary.LittleEndian.PutUint32(b[12:], uint32(permitted>>32))
	binary.LittleEndian.PutUint32(b[16:], uint32(inheritable>>32))
	return b, nil
}

// setFileCaps sets the security.capability xattr, which needs CAP_SETFCAP; as another user it is
// skipped like the owners are (see CanSetOwners).
func setFileCaps(path, text string) error {
	b, err := EncodeFileCaps(text)
	if err != nil {
		return err
	}
	if !CanSetOwners() {
		return nil
	}
	if err := unix.Setxattr(path, "security.capability", b, 0); err != nil {
		return fmt.Errorf("set file caps %s on %s: %w", text, path, err)
	}
	return nil
}
