package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	gopsutilcommon "github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/host"
	"golang.org/x/sys/unix"
)

// probeOS learns the distribution, the kernel, the machine, and whether the host is WSL, a
// container or a virtual machine.
func probeOS(ctx context.Context, e *Env) func(*Facts) {
	distro := distroFact(e)
	kernelText, kernelEv, kernelErr := readKnob(e, "/proc/sys/kernel/osrelease")
	kernel := kernelFact(e, kernelText, kernelEv, kernelErr)
	arch := archFact(e)
	wsl := wslFact(e, kernelText, kernelEv, kernelErr)
	container := containerFact(e)
	vm := vmFact(ctx, e)
	return func(f *Facts) {
		f.OS.Distro = distro
		f.OS.Kernel = kernel
		f.OS.Arch = arch
		f.OS.WSL = wsl
		f.OS.Container = container
		f.OS.VM = vm
	}
}

// ---- os-release ----

// ParseOSRelease parses an os-release(5) file: KEY=VALUE lines whose values may be quoted the way a
// POSIX shell quotes them ('…' literally, "…" with backslash escapes of $ " \ and `). Comments, blank
// lines and lines that are not an assignment are skipped, as systemd and Python's platform module do,
// so one garbled line does not hide the rest. It fails only when no assignment is found at all.
func ParseOSRelease(b []byte) (map[string]string, error) {
	out := map[string]string{}
	for _, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(strings.TrimRight(raw, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if !isShellName(k) {
			continue
		}
		val, ok := unquoteShellValue(strings.TrimSpace(v))
		if !ok {
			continue
		}
		out[k] = val
	}
	if len(out) == 0 {
		return nil, errors.New("no KEY=VALUE assignment found")
	}
	return out, nil
}

// isShellName reports whether s is a valid shell variable name, which is all os-release allows as a key.
func isShellName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// unquoteShellValue undoes shell quoting of one os-release value. Unquoted whitespace is kept, as
// systemd's parser keeps it, unless a comment follows; an unterminated quote makes the line invalid.
func unquoteShellValue(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", false
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 2
		case '"':
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '"' {
					closed = true
					i++
					break
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("$\"\\`", s[i+1]) >= 0 {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				b.WriteByte(c)
				i++
			}
			if !closed {
				return "", false
			}
		case '\\':
			if i+1 < len(s) {
				b.WriteByte(s[i+1])
			}
			i += 2
		case ' ', '\t':
			rest := strings.TrimLeft(s[i:], " \t")
			if rest == "" || rest[0] == '#' {
				return b.String(), true
			}
			b.WriteString(s[i : len(s)-len(rest)])
			i = len(s) - len(rest)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), true
}

// distroFamily maps os-release's ID and ID_LIKE to the package world. ID is checked before ID_LIKE
// because derivatives list their parents there (Amazon Linux: ID_LIKE="centos rhel fedora").
func distroFamily(id string, like []string) string {
	family := func(id string) string {
		switch {
		case id == "debian" || id == "ubuntu" || id == "linuxmint" || id == "pop":
			return "debian"
		case id == "fedora" || id == "rhel" || id == "centos" || id == "rocky" || id == "almalinux" || id == "ol":
			return "fedora"
		case id == "suse" || strings.HasPrefix(id, "opensuse") || id == "sles" || id == "sled":
			return "suse"
		case id == "arch" || id == "manjaro" || id == "endeavouros":
			return "arch"
		case id == "alpine":
			return "alpine"
		}
		return ""
	}
	if f := family(strings.ToLower(id)); f != "" {
		return f
	}
	for _, l := range like {
		if f := family(strings.ToLower(l)); f != "" {
			return f
		}
	}
	return ""
}

// distroFact reads os-release. /usr/lib/os-release is only a fallback for a missing /etc/os-release,
// as os-release(5) prescribes; an /etc/os-release that exists but cannot be read stays an error.
func distroFact(e *Env) Fact[Distro] {
	path := "/etc/os-release"
	b, err := readRegular(e, path)
	var evs []Evidence
	if errors.Is(err, fs.ErrNotExist) {
		evs = append(evs, knobEv(path, "does not exist"))
		path = "/usr/lib/os-release"
		b, err = readRegular(e, path)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			evs = append(evs, knobEv(path, "does not exist"))
			return Unknown[Distro](errors.New("neither /etc/os-release nor /usr/lib/os-release exists"), evs...)
		}
		return Unknown[Distro](fmt.Errorf("read %s: %w", path, err), evs...)
	}
	kv, err := ParseOSRelease(b)
	if err != nil {
		return Unknown[Distro](fmt.Errorf("parse %s: %w", path, err), append(evs, knobEv(path, string(b)))...)
	}
	d := Distro{ID: kv["ID"], VersionID: kv["VERSION_ID"], Name: kv["NAME"]}
	if like := strings.Fields(kv["ID_LIKE"]); len(like) > 0 {
		d.IDLike = like
	}
	// os-release(5) gives these defaults for keys a file leaves out.
	if d.ID == "" {
		d.ID = "linux"
	}
	if d.Name == "" {
		d.Name = "Linux"
	}
	d.Family = distroFamily(d.ID, d.IDLike)
	var shown []string
	for _, k := range []string{"ID", "ID_LIKE", "VERSION_ID", "NAME"} {
		if v, ok := kv[k]; ok {
			shown = append(shown, k+"="+strconv.Quote(v))
		}
	}
	return Known(d, append(evs, knobEv(path, strings.Join(shown, " ")))...)
}

// ---- kernel ----

// ParseKernelRelease reads major, minor and patch from a kernel release string such as
// "5.14.0-362.8.1.el9_3.x86_64" or "6.6.87.2-microsoft-standard-WSL2". Whatever follows the numbers
// is the distribution's suffix and is kept only in Release; a missing patch level ("6.0") is 0.
func ParseKernelRelease(s string) (Kernel, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("kernel release %q does not start with MAJOR.MINOR", trimEvidence(s))
	major, rest, ok := leadingInt(s)
	if !ok || !strings.HasPrefix(rest, ".") {
		return Kernel{}, bad
	}
	minor, rest, ok := leadingInt(rest[1:])
	if !ok {
		return Kernel{}, bad
	}
	k := Kernel{Release: s, Major: major, Minor: minor}
	// Anything but ".N" after MAJOR.MINOR ("6.0", "6.0-rc1", "5.4+") leaves the patch level at 0.
	if strings.HasPrefix(rest, ".") {
		if patch, _, ok := leadingInt(rest[1:]); ok {
			k.Patch = patch
		}
	}
	return k, nil
}

// leadingInt parses the decimal digits at the start of s. It fails on no digits and on a number too
// large for an int, which no real kernel release has.
func leadingInt(s string) (int, string, bool) {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 0 || n > 9 {
		return 0, s, false
	}
	v, err := strconv.Atoi(s[:n])
	if err != nil {
		return 0, s, false
	}
	return v, s[n:], true
}

func kernelFact(e *Env, text string, ev Evidence, readErr error) Fact[Kernel] {
	if readErr != nil {
		if e.Live {
			// /proc may be missing in a minimal chroot; uname(2) tells the same release.
			var u unix.Utsname
			if err := unix.Uname(&u); err == nil {
				rel := unix.ByteSliceToString(u.Release[:])
				if k, err := ParseKernelRelease(rel); err == nil {
					return Known(k, ev, Evidence{Kind: "syscall", Source: "uname()", Excerpt: rel})
				}
			}
		}
		return Unknown[Kernel](readErr, ev)
	}
	k, err := ParseKernelRelease(text)
	if err != nil {
		return Unknown[Kernel](err, ev)
	}
	return Known(k, ev)
}

func archFact(e *Env) Fact[string] {
	text, ev, err := readKnob(e, "/proc/sys/kernel/arch")
	if err == nil {
		if a := strings.TrimSpace(text); a != "" && !strings.ContainsAny(a, " \t\n") {
			return Known(a, ev)
		}
		err = fmt.Errorf("read /proc/sys/kernel/arch: unexpected content %q", trimEvidence(text))
	}
	// kernel.arch exists only since Linux 6.1; before that uname(2) is the source, which only
	// describes the live host.
	if e.Live {
		var u unix.Utsname
		uerr := unix.Uname(&u)
		if uerr == nil {
			m := unix.ByteSliceToString(u.Machine[:])
			return Known(m, ev, Evidence{Kind: "syscall", Source: "uname()", Excerpt: m})
		}
		err = fmt.Errorf("%w; uname: %v", err, uerr)
	}
	return Unknown[string](err, ev)
}

// ---- WSL ----

// wslFact tells WSL by the kernel name Microsoft builds ("…-microsoft-standard-WSL2", WSL1 reports
// "…-Microsoft") or by the interop binfmt handler WSL registers (WSLInterop, WSLInterop-late since
// WSL 2.1), which also catches a custom kernel.
func wslFact(e *Env, release string, relEv Evidence, relErr error) Fact[bool] {
	evs := []Evidence{relEv}
	if relErr == nil {
		low := strings.ToLower(release)
		if strings.Contains(low, "microsoft") || strings.Contains(low, "wsl") {
			return Known(true, evs...)
		}
	}
	var errs []error
	if relErr != nil {
		errs = append(errs, relErr)
	}
	for _, p := range []string{"/proc/sys/fs/binfmt_misc/WSLInterop", "/proc/sys/fs/binfmt_misc/WSLInterop-late"} {
		present, ev, err := markerExists(e, p)
		evs = append(evs, ev)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if present {
			return Known(true, evs...)
		}
	}
	if len(errs) > 0 {
		return Unknown[bool](errors.Join(errs...), evs...)
	}
	return Known(false, evs...)
}

// ---- container ----

// containerFact looks for the marker files container engines leave: podman's /run/.containerenv,
// docker's /.dockerenv, and /run/systemd/container, which systemd-nspawn, LXC and others write
// for systemd's sake (systemd-detect-virt reads the same files).
func containerFact(e *Env) Fact[string] {
	var evs []Evidence
	for _, m := range []struct{ path, name string }{{"/run/.containerenv", "podman"}, {"/.dockerenv", "docker"}} {
		present, ev, err := markerExists(e, m.path)
		evs = append(evs, ev)
		if err != nil {
			return Unknown[string](err, evs...)
		}
		if present {
			return Known(m.name, evs...)
		}
	}
	const p = "/run/systemd/container"
	text, ev, err := readKnob(e, p)
	evs = append(evs, ev)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Known("", evs...)
	case err != nil:
		return Unknown[string](err, evs...)
	}
	name := strings.TrimSpace(text)
	if i := strings.IndexByte(name, '\n'); i >= 0 {
		name = strings.TrimSpace(name[:i])
	}
	if !isPrintableWord(name) || len(name) > 64 {
		return Unknown[string](fmt.Errorf("read %s: unexpected content %q", p, trimEvidence(text)), evs...)
	}
	return Known(name, evs...)
}

func isPrintableWord(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return false
		}
	}
	return true
}

// ---- virtual machine ----

// vmNoSignalEvidence is why "" (bare metal) was concluded, for the evidence list.
const vmNoSignalEvidence = "no DMI vendor, hypervisor type, paravirtual clock or hypervisor CPU flag"

// vmFact names the hypervisor. It tries, in the order of how specific they are: the DMI vendor
// strings firmware sets (what systemd-detect-virt reads first), /sys/hypervisor/type (Xen), the
// paravirtual clock the guest kernel registered (kvm-clock also shows on DMI-less guests such as
// Firecracker), gopsutil's reading of /proc (live host only), and finally the "hypervisor" CPU flag,
// which says there is a hypervisor without naming it ("vm-other", as systemd-detect-virt says).
func vmFact(ctx context.Context, e *Env) Fact[string] {
	var evs []Evidence
	var errs []error
	note := func(p string) (string, bool) {
		text, ev, err := readKnob(e, p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", false
		case err != nil:
			evs = append(evs, ev)
			errs = append(errs, err)
			return "", false
		}
		evs = append(evs, ev)
		return strings.TrimSpace(text), true
	}

	var dmi []string
	for _, p := range []string{"/sys/class/dmi/id/sys_vendor", "/sys/class/dmi/id/product_name", "/sys/class/dmi/id/board_vendor", "/sys/class/dmi/id/bios_vendor"} {
		if v, ok := note(p); ok {
			dmi = append(dmi, v)
		}
	}
	clock, _ := note("/sys/devices/system/clocksource/clocksource0/available_clocksource")
	clocks := strings.Fields(clock)
	if name := vmFromDMI(dmi); name != "" {
		// QEMU's machine model is the same with and without KVM acceleration; kvm-clock tells them apart.
		if name == "qemu" && wordIn(clocks, "kvm-clock") {
			name = "kvm"
		}
		return Known(name, evs...)
	}
	if v, ok := note("/sys/hypervisor/type"); ok && v != "" && isPrintableWord(v) {
		return Known(strings.ToLower(v), evs...)
	}
	if name := vmFromClocksource(clocks); name != "" {
		return Known(name, evs...)
	}
	if e.Live {
		name, ev, err := gopsutilVM(ctx, e)
		evs = append(evs, ev)
		if err != nil {
			errs = append(errs, err)
		} else if name != "" {
			return Known(name, evs...)
		}
	}
	cpuinfo, err := readHead(e, "/proc/cpuinfo", cpuinfoHead)
	switch {
	case err == nil && cpuHasHypervisorFlag(string(cpuinfo)):
		return Known("vm-other", append(evs, knobEv("/proc/cpuinfo", "flags: … hypervisor …"))...)
	case err == nil:
		evs = append(evs, knobEv("/proc/cpuinfo", "no hypervisor flag"))
	case !errors.Is(err, fs.ErrNotExist):
		evs = append(evs, knobEv("/proc/cpuinfo", "unreadable"))
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Unknown[string](errors.Join(errs...), evs...)
	}
	return Known("", append(evs, Evidence{Kind: "derived", Source: "vm", Excerpt: vmNoSignalEvidence})...)
}

// vmFromDMI maps the DMI vendor and product strings to systemd-detect-virt's names.
func vmFromDMI(fields []string) string {
	for _, f := range fields {
		low := strings.ToLower(f)
		switch {
		case strings.Contains(low, "kvm"):
			return "kvm"
		case strings.Contains(low, "qemu"):
			return "qemu"
		case strings.Contains(low, "vmware"):
			return "vmware"
		case strings.Contains(low, "virtualbox") || strings.Contains(low, "innotek"):
			return "oracle"
		case strings.Contains(low, "xen"):
			return "xen"
		case strings.Contains(low, "bochs"):
			return "bochs"
		case strings.Contains(low, "parallels"):
			return "parallels"
		case strings.Contains(low, "bhyve"):
			return "bhyve"
		case strings.Contains(low, "amazon ec2"):
			return "amazon"
		case strings.Contains(low, "google compute engine"):
			return "google"
		case strings.Contains(low, "apple virtualization"):
			return "apple"
		}
	}
	// Hyper-V's DMI says "Microsoft Corporation" / "Virtual Machine"; the vendor alone is also
	// on Surface hardware.
	joined := strings.ToLower(strings.Join(fields, "\n"))
	if strings.Contains(joined, "microsoft corporation") && strings.Contains(joined, "virtual machine") {
		return "hyperv"
	}
	return ""
}

// vmFromClocksource names the hypervisor from the paravirtual clocks a guest kernel registers.
func vmFromClocksource(clocks []string) string {
	for _, c := range clocks {
		switch {
		case c == "kvm-clock":
			return "kvm"
		case c == "xen":
			return "xen"
		case strings.HasPrefix(c, "hyperv_clocksource"):
			return "hyperv"
		}
	}
	return ""
}

func cpuHasHypervisorFlag(cpuinfo string) bool {
	for _, line := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "flags" {
			return wordIn(strings.Fields(v), "hypervisor")
		}
	}
	return false
}

func wordIn(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

// gopsutilVM asks gopsutil, pinned to the probe's root through its context EnvMap so a HOST_PROC
// in the environment cannot redirect it. It is used on the live host only: gopsutil caches its
// answer for the whole process (internal/common cachedVirtMap), so a second root would get the
// first one's answer, and it opens files without the size and file-type guards of sys.Root.
// Containers it reports (docker, lxc, …) and a KVM *host* (role "host") are not a hypervisor we
// run under, so only a guest role of a hypervisor counts.
func gopsutilVM(ctx context.Context, e *Env) (string, Evidence, error) {
	ev := Evidence{Kind: "live", Source: "gopsutil host.VirtualizationWithContext"}
	env := gopsutilcommon.EnvMap{
		gopsutilcommon.HostProcEnvKey: e.Root.Path("/proc"),
		gopsutilcommon.HostSysEnvKey:  e.Root.Path("/sys"),
		gopsutilcommon.HostEtcEnvKey:  e.Root.Path("/etc"),
		gopsutilcommon.HostRootEnvKey: e.Root.Path("/"),
	}
	type answer struct {
		system, role string
		err          error
	}
	done := make(chan answer, 1)
	go func() {
		s, r, err := host.VirtualizationWithContext(context.WithValue(ctx, gopsutilcommon.EnvKey, env))
		done <- answer{s, r, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		return "", ev, fmt.Errorf("gopsutil virtualization: %w", ctx.Err())
	}
	if a.err != nil {
		return "", ev, fmt.Errorf("gopsutil virtualization: %w", a.err)
	}
	ev.Excerpt = fmt.Sprintf("system=%q role=%q", a.system, a.role)
	return vmFromGopsutil(a.system, a.role), ev, nil
}

// vmFromGopsutil keeps the hypervisors gopsutil reports in the guest role, under the names
// systemd-detect-virt uses.
func vmFromGopsutil(system, role string) string {
	if role != "guest" {
		return ""
	}
	switch system {
	case "kvm", "xen", "hyperv", "vmware":
		return system
	case "vbox":
		return "oracle"
	}
	return ""
}

// ---- reading host files (shared by the os, security and userns probes) ----

// cpuinfoHead is how much of /proc/cpuinfo is read: the first processor's block holds the flags,
// and the whole file outgrows sys.MaxFileSize on machines with several hundred CPUs.
const cpuinfoHead = 64 << 10

// readHead reads at most max bytes from the start of a regular file below the root. The type is
// checked before opening, and the open does not block, so a FIFO on a fake host cannot hang the probe.
func readHead(e *Env, p string, max int) ([]byte, error) {
	full := e.Root.Path(p)
	fi, err := os.Stat(full)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file (%s)", p, fi.Mode().Type())
	}
	f, err := os.OpenFile(full, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return b, nil
}

// evidenceLimit bounds an evidence excerpt, so a garbled file cannot bloat the facts.
const evidenceLimit = 300

// trimEvidence trims s and cuts it to evidenceLimit bytes on a rune boundary.
func trimEvidence(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= evidenceLimit {
		return s
	}
	cut := evidenceLimit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func knobEv(p, excerpt string) Evidence {
	return Evidence{Kind: "file", Source: p, Excerpt: trimEvidence(excerpt)}
}

// readKnob reads a small host file (a sysctl, a sysfs attribute). The evidence says what was seen:
// the content, "does not exist" or the error. A missing file is reported with an error wrapping
// fs.ErrNotExist, since for many knobs absence is itself a fact (the kernel lacks the feature).
func readKnob(e *Env, p string) (string, Evidence, error) {
	b, err := readRegular(e, p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", knobEv(p, "does not exist"), fmt.Errorf("read %s: %w", p, fs.ErrNotExist)
		}
		return "", knobEv(p, "unreadable"), fmt.Errorf("read %s: %w", p, err)
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return "", knobEv(p, "binary content"), fmt.Errorf("read %s: unexpected NUL byte", p)
	}
	return string(b), knobEv(p, string(b)), nil
}

// readRegular is e.Root.ReadFile for a regular file only. sys.Root.ReadFile opens before it checks
// the type, and opening a FIFO blocks until a writer appears, so a FIFO planted in a fake host
// would hang the probe; checking first (following symlinks, as the open does) refuses it.
func readRegular(e *Env, p string) ([]byte, error) {
	fi, err := e.Root.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil, fmt.Errorf("read %s: not a regular file (%s)", e.Root.Path(p), fi.Mode().Type())
	}
	return e.Root.ReadFile(p)
}

// parseKnobInt parses the integer a sysctl file holds.
func parseKnobInt(p, text string) (int, error) {
	v, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil {
		return 0, fmt.Errorf("parse %s: not an integer: %q", p, trimEvidence(text))
	}
	return v, nil
}

// markerExists reports whether a marker file exists, without following a final symlink (a dangling
// symlink still marks). Errors other than "does not exist" (a file where a directory should be,
// permission denied on a parent) leave the answer unknown.
func markerExists(e *Env, p string) (bool, Evidence, error) {
	_, err := e.Root.Lstat(p)
	switch {
	case err == nil:
		return true, knobEv(p, "exists"), nil
	case errors.Is(err, fs.ErrNotExist):
		return false, knobEv(p, "does not exist"), nil
	}
	return false, knobEv(p, "unreadable"), fmt.Errorf("stat %s: %w", p, err)
}
