package vmtest

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseReport(t *testing.T) {
	in := "early line\r\n" +
		"VMTEST-SECTION test\r\n=== RUN   TestX\r\n--- PASS: TestX\r\n" +
		"VMTEST-RESULT exit=1 something broke\r\n" +
		"VMTEST-SECTION journal\r\nline 1\r\nline 2\r\n" +
		"VMTEST-SECTION test\r\nmore test output\r\n" +
		"VMTEST-END\r\n"
	rep, err := ParseReport(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.HasExit || rep.Exit != 1 || rep.Note != "something broke" || !rep.Ended {
		t.Errorf("exit %d (%v) %q, ended %v", rep.Exit, rep.HasExit, rep.Note, rep.Ended)
	}
	if want := []string{"boot", "test", "journal"}; !slices.Equal(rep.Order, want) {
		t.Errorf("order %v, want %v", rep.Order, want)
	}
	if got, want := rep.Sections["test"], "=== RUN   TestX\n--- PASS: TestX\nmore test output\n"; got != want {
		t.Errorf("test section %q, want %q", got, want)
	}
	if got := rep.Sections["boot"]; got != "early line\n" {
		t.Errorf("boot section %q", got)
	}

	// A guest that died mid-way: no result, no end.
	rep, err = ParseReport(strings.NewReader("VMTEST-SECTION test\n=== RUN   TestX\n"))
	if err != nil || rep.HasExit || rep.Ended {
		t.Errorf("truncated report: %+v, %v", rep, err)
	}
}

func TestWritePayload(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "payload")
	if err := WritePayload(p, []File{{Name: "run.sh", Source: src, Mode: 0o755}, {Name: "scenario", Data: []byte("x\n")}}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Size()%payloadAlign != 0 || fi.Size() == 0 {
		t.Fatalf("payload size %v (%v): want whole MiB", fi.Size(), err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	got := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[hdr.Name] = string(b) + "|" + os.FileMode(hdr.Mode).String()
	}
	if got["run.sh"] != "#!/bin/sh\necho hi\n|-rwxr-xr-x" || got["scenario"] != "x\n|-rw-r--r--" || len(got) != 2 {
		t.Errorf("payload holds %q", got)
	}
	if err := WritePayload(filepath.Join(dir, "p2"), []File{{Name: "x", Source: filepath.Join(dir, "missing")}}); err == nil {
		t.Error("a missing source file gave no error")
	}
}

func TestMachineArgs(t *testing.T) {
	m := Machine{Image: Image{Dir: "/img"}, Payload: "/p", CPUs: 2, Memory: 2048, LogDir: "/logs"}
	args := strings.Join(m.Args(), " ")
	for _, want := range []string{
		"-accel tcg", "-smp 2", "-m 2048", "-no-reboot", "-kernel /img/vmlinuz", "-initrd /img/initrd.img",
		"file=/img/rootfs.img,format=raw,if=virtio,snapshot=on", // the image is never written
		"file=/p,format=raw,if=virtio,readonly=on",
		"net=" + GuestNet, "-serial file:/logs/console.log -serial file:/logs/report.log",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q:\n%s", want, args)
		}
	}
	if strings.Contains(args, "-cpu host") {
		t.Error("-cpu host without KVM")
	}
	m.Accel = "kvm"
	if args := strings.Join(m.Args(), " "); !strings.Contains(args, "-accel kvm") || !strings.Contains(args, "-cpu host") {
		t.Errorf("kvm args: %s", args)
	}
}

func TestFindImage(t *testing.T) {
	cache := t.TempDir()
	if _, err := FindImage(cache); err == nil || !strings.Contains(err.Error(), "make vm-image") {
		t.Errorf("empty cache: %v, want the way to build one", err)
	}
	dir := filepath.Join(cache, "abc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("abc", filepath.Join(cache, "current")); err != nil {
		t.Fatal(err)
	}
	if _, err := FindImage(cache); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("image without files: %v", err)
	}
	for _, f := range []string{"ready", "vmlinuz", "initrd.img", "rootfs.img"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img, err := FindImage(cache)
	if err != nil || img.Dir != dir {
		t.Errorf("FindImage = %+v, %v; want %s", img, err, dir)
	}
}

// fakeQemu puts a qemu-system-x86_64 on PATH that writes to the two serial files named in its
// arguments, as a guest would, and then runs body.
func fakeQemu(t *testing.T, body string) {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
n=0
for a in "$@"; do
	case $a in file:*) n=$((n+1)); eval "serial$n=\${a#file:}" ;; esac
done
echo "Linux version 6.1.0 (fake)" >"$serial1"
` + body + "\n"
	if err := os.WriteFile(filepath.Join(dir, "qemu-system-x86_64"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
}

func TestMachineRun(t *testing.T) {
	m := func(t *testing.T) Machine {
		return Machine{Image: Image{Dir: "/img"}, Payload: "/p", LogDir: t.TempDir()}
	}
	t.Run("a guest that reports and powers off", func(t *testing.T) {
		fakeQemu(t, `printf 'VMTEST-SECTION test\r\nok\r\nVMTEST-RESULT exit=0\r\nVMTEST-END\r\n' >"$serial2"`)
		rep, err := m(t).Run(context.Background())
		if err != nil || !rep.HasExit || rep.Exit != 0 || !rep.Ended || rep.Sections["test"] != "ok\n" {
			t.Errorf("Run = %+v, %v", rep, err)
		}
	})
	t.Run("a hung guest is killed at the timeout", func(t *testing.T) {
		fakeQemu(t, `echo "VMTEST-SECTION test" >"$serial2"; exec sleep 60`)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		mach := m(t)
		start := time.Now()
		rep, err := mach.Run(ctx)
		if !errors.Is(err, ErrTimeout) || rep == nil || rep.HasExit {
			t.Errorf("Run = %+v, %v; want ErrTimeout and no result", rep, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Run took %v after the timeout", d)
		}
		if tail := Tail(mach.ConsolePath(), 5); !strings.Contains(tail, "Linux version") {
			t.Errorf("console tail %q", tail)
		}
	})
	t.Run("qemu fails to start the guest", func(t *testing.T) {
		fakeQemu(t, `echo "qemu-system-x86_64: failed to set MSR 0x10a" >&2; exit 1`)
		_, err := m(t).Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "failed to set MSR") {
			t.Errorf("Run = %v, want qemu's message", err)
		}
	})
}

func TestDetectAccel(t *testing.T) {
	img := Image{Dir: t.TempDir()}
	t.Setenv("VIRT_SETUP_VM_ACCEL", "tcg")
	if accel, why := DetectAccel(context.Background(), img, t.TempDir()); accel != "tcg" || !strings.Contains(why, "VIRT_SETUP_VM_ACCEL") {
		t.Errorf("forced tcg: %s (%s)", accel, why)
	}
	t.Setenv("VIRT_SETUP_VM_ACCEL", "")
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		if accel, why := DetectAccel(context.Background(), img, t.TempDir()); accel != "tcg" || !strings.Contains(why, "/dev/kvm") {
			t.Errorf("without /dev/kvm: %s (%s)", accel, why)
		}
		return
	}
	f.Close()
	// With a /dev/kvm, the trial boot decides, once per image.
	fakeQemu(t, `echo "Kernel panic - not syncing: VFS: Unable to mount root fs" >>"$serial1"`)
	if accel, why := DetectAccel(context.Background(), img, t.TempDir()); accel != "kvm" {
		t.Errorf("a kernel that boots under KVM: %s (%s)", accel, why)
	}
	fakeQemu(t, `echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0" >&2; exit 1`)
	if accel, why := DetectAccel(context.Background(), img, t.TempDir()); accel != "kvm" || !strings.Contains(why, "kept in") {
		t.Errorf("the second call: %s (%s), want the kept verdict", accel, why)
	}
	if err := os.Remove(filepath.Join(img.Dir, "accel")); err != nil {
		t.Fatal(err)
	}
	if accel, why := DetectAccel(context.Background(), img, t.TempDir()); accel != "tcg" || !strings.Contains(why, "failed to set MSR") {
		t.Errorf("KVM that aborts: %s (%s)", accel, why)
	}
}
