package image

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// BusyboxRef names the busybox image virt-setup builds. "localhost/" keeps it from ever being
// looked up on a registry.
const BusyboxRef = "localhost/virt-setup/busybox:1"

// BusyboxApplets are the commands the busybox image has as symlinks, besides /bin/sh.
var BusyboxApplets = []string{"echo", "cat", "true", "sleep"}

// busyboxPaths are where distributions install a static busybox: Debian's and Ubuntu's
// busybox-static put it in /bin (/usr/bin with merged /usr), Alpine in /bin.
var busyboxPaths = []string{"/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"}

// ErrNoStaticBusybox says that no static busybox was found on this host.
var ErrNoStaticBusybox = errors.New("no static busybox on this host")

// BusyboxInstallHint says how to get a static busybox.
const BusyboxInstallHint = "install a static busybox: `apt-get install busybox-static` (Debian, Ubuntu), `dnf install busybox` (Fedora), `apk add busybox-static` (Alpine)"

// FindBusybox returns the first static busybox binary on this host. A dynamically linked one is
// passed over: copied alone into an image it could not start.
func FindBusybox() (string, error) {
	var seen []string
	for _, p := range busyboxPaths {
		static, err := IsStatic(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			seen = append(seen, err.Error())
			continue
		}
		if static {
			return p, nil
		}
		seen = append(seen, p+" is dynamically linked")
	}
	if len(seen) > 0 {
		return "", fmt.Errorf("%w (%v)", ErrNoStaticBusybox, seen)
	}
	return "", ErrNoStaticBusybox
}

// BusyboxSpec is the busybox image: the static binary src as /bin/busybox, with /bin/sh and
// BusyboxApplets linked to it.
func BusyboxSpec(src string) Spec {
	links := map[string]string{"/bin/sh": "busybox"}
	for _, a := range BusyboxApplets {
		links["/bin/"+a] = "busybox"
	}
	return Spec{
		Ref:      BusyboxRef,
		Files:    []File{{Src: src, Dst: "/bin/busybox", Mode: 0o755}},
		Symlinks: links,
		Cmd:      []string{"/bin/sh"},
	}
}

// IsStatic reports whether the ELF program at p needs no dynamic loader (it has no PT_INTERP
// header; a static-pie binary has a dynamic section but no interpreter).
func IsStatic(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return false, err
		}
		// A bad header or a file too short to hold one (io.EOF).
		return false, fmt.Errorf("%s is not an ELF program: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
