// Package vmtest boots the Debian 12 guest that scripts/vm/build-image.sh builds and runs a test
// payload in it: virt-setup's systemd path needs systemd as PID 1, a user manager and cgroup v2,
// which the machines the rest of the suite runs on may not have.
//
// The image is read-only and cached; every boot writes to a throw-away overlay (qemu's
// snapshot=on). The payload is a tar archive written straight onto a second disk; the guest's
// boot service unpacks it, runs its guest.sh as root and powers off. Everything guest.sh prints
// arrives on the guest's second serial port, a file on the host, in sections:
//
//	VMTEST-SECTION <name>     starts a section (kept as <name>.log)
//	VMTEST-RESULT exit=<n>    the test's exit status
//	VMTEST-END                the guest is done
package vmtest

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultCache is where scripts/vm/build-image.sh keeps its images.
const DefaultCache = "/var/cache/virt-setup/vm"

// The guest's network is qemu's user network, moved off its default 10.0.2.0/24: slirp4netns,
// inside the guest, uses that same subnet for RootlessKit's namespace, where the guest's own
// address would then look like a neighbour that never answers ("No route to host").
const (
	GuestNet  = "192.168.76.0/24"
	GuestAddr = "192.168.76.15"
)

// Image is a built guest: its kernel, initrd and root file system.
type Image struct {
	Dir string
}

// Kernel, Initrd and RootFS are the image's files.
func (i Image) Kernel() string { return filepath.Join(i.Dir, "vmlinuz") }
func (i Image) Initrd() string { return filepath.Join(i.Dir, "initrd.img") }
func (i Image) RootFS() string { return filepath.Join(i.Dir, "rootfs.img") }

// FindImage returns the image build-image.sh built last in cache (VIRT_SETUP_VM_CACHE when cache
// is empty, else DefaultCache).
func FindImage(cache string) (Image, error) {
	if cache == "" {
		cache = os.Getenv("VIRT_SETUP_VM_CACHE")
	}
	if cache == "" {
		cache = DefaultCache
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(cache, "current"))
	if err != nil {
		return Image{}, fmt.Errorf("no guest image in %s: build it with scripts/vm/build-image.sh (make vm-image)", cache)
	}
	img := Image{Dir: dir}
	for _, p := range []string{filepath.Join(dir, "ready"), img.Kernel(), img.Initrd(), img.RootFS()} {
		if _, err := os.Stat(p); err != nil {
			return Image{}, fmt.Errorf("the guest image in %s is incomplete (%v): rebuild it with scripts/vm/build-image.sh (make vm-image)", dir, err)
		}
	}
	return img, nil
}

// File is one file of a payload.
type File struct {
	// Name is the path inside the payload.
	Name string
	// Source is a file on the host to copy; Data is used when Source is empty.
	Source string
	Data   []byte
	Mode   int64
}

// payloadAlign pads the payload disk to a whole MiB, a size every disk model accepts.
const payloadAlign = 1 << 20

// WritePayload writes files as a tar archive to path, padded for use as a raw disk.
func WritePayload(path string, files []File) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, file := range files {
		data := file.Data
		if file.Source != "" {
			if data, err = os.ReadFile(file.Source); err != nil {
				return fmt.Errorf("payload %s: %w", file.Name, err)
			}
		}
		mode := file.Mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: file.Name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if err := f.Truncate((size + payloadAlign - 1) / payloadAlign * payloadAlign); err != nil {
		return err
	}
	return f.Close()
}

// Report is what the guest sent on its second serial port.
type Report struct {
	// Sections maps a section's name to its text, in the order they came.
	Sections map[string]string
	Order    []string
	// Exit is the test's exit status; HasExit is false when the guest never said.
	Exit    int
	HasExit bool
	// Note is what follows the exit status on its line (a reason when the payload did not run).
	Note string
	// Ended is true when the guest reached VMTEST-END.
	Ended bool
}

var resultLine = regexp.MustCompile(`^VMTEST-RESULT exit=(\d+)\s*(.*)$`)

// ParseReport reads the report. Lines before the first section belong to "boot".
func ParseReport(r io.Reader) (*Report, error) {
	rep := &Report{Sections: map[string]string{}}
	cur := "boot"
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 || cur != "boot" {
			if _, ok := rep.Sections[cur]; !ok {
				rep.Order = append(rep.Order, cur)
			}
			rep.Sections[cur] += b.String()
		}
		b.Reset()
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "VMTEST-SECTION "):
			flush()
			cur = strings.TrimSpace(strings.TrimPrefix(line, "VMTEST-SECTION "))
		case resultLine.MatchString(line):
			m := resultLine.FindStringSubmatch(line)
			rep.Exit, _ = strconv.Atoi(m[1])
			rep.HasExit, rep.Note = true, m[2]
		case line == "VMTEST-END":
			rep.Ended = true
		default:
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	flush()
	return rep, sc.Err()
}

// Machine is one boot of the guest.
type Machine struct {
	Image   Image
	Payload string
	// Accel is "tcg" or "kvm" (see DetectAccel).
	Accel  string
	CPUs   int
	Memory int // MiB
	// LogDir receives console.log (the guest's console) and report.log (its second serial port).
	LogDir string
	// Cmdline is appended to the kernel's command line.
	Cmdline string
}

// ErrTimeout is returned when the guest did not power off in time; it was killed.
var ErrTimeout = errors.New("the guest did not power off in time and was killed")

// ConsolePath and ReportPath are the machine's log files.
func (m Machine) ConsolePath() string { return filepath.Join(m.LogDir, "console.log") }
func (m Machine) ReportPath() string  { return filepath.Join(m.LogDir, "report.log") }

// Args is qemu's command line.
func (m Machine) Args() []string {
	accel := m.Accel
	if accel == "" {
		accel = "tcg"
	}
	args := []string{
		"-accel", accel, "-smp", strconv.Itoa(max(m.CPUs, 1)), "-m", strconv.Itoa(max(m.Memory, 512)),
		"-display", "none", "-monitor", "none", "-no-reboot",
		"-kernel", m.Image.Kernel(), "-initrd", m.Image.Initrd(),
		"-append", strings.TrimSpace("root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1 " + m.Cmdline),
		// The image stays as built: the guest writes to a temporary overlay.
		"-drive", "file=" + m.Image.RootFS() + ",format=raw,if=virtio,snapshot=on",
		"-drive", "file=" + m.Payload + ",format=raw,if=virtio,readonly=on",
		"-nic", "user,model=virtio-net-pci,net=" + GuestNet,
		"-serial", "file:" + m.ConsolePath(),
		"-serial", "file:" + m.ReportPath(),
	}
	if accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	return args
}

// Run boots the guest and waits until it powers off, ctx ends (the guest is killed: ErrTimeout
// when ctx's deadline passed) or qemu fails. The report is parsed whatever happened.
func (m Machine) Run(ctx context.Context) (*Report, error) {
	if err := os.MkdirAll(m.LogDir, 0o755); err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", m.Args()...)
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	// qemu is killed when ctx ends; anything that inherited its output must not hold up Run.
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	rep, perr := readReport(m.ReportPath())
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return rep, ErrTimeout
	case ctx.Err() != nil:
		return rep, ctx.Err()
	case runErr != nil:
		return rep, fmt.Errorf("qemu-system-x86_64: %v: %s", runErr, strings.TrimSpace(stderr.String()))
	}
	return rep, perr
}

func readReport(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return &Report{Sections: map[string]string{}}, err
	}
	defer f.Close()
	return ParseReport(f)
}

// Tail returns the last n lines of the file at path, for a failure message.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
