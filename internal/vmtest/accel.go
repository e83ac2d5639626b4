package vmtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// kvmProbeTimeout bounds the trial boot: a kernel that works under KVM reaches its panic in a
// second or two.
const kvmProbeTimeout = 10 * time.Second

// DetectAccel says whether the guest runs under KVM or under TCG, qemu's emulator, and why.
// VIRT_SETUP_VM_ACCEL=kvm|tcg decides without trying. Otherwise KVM is used only when it really
// boots the guest's kernel: some VMs expose a /dev/kvm whose nested virtualization aborts on
// -cpu host ("failed to set MSR") or hangs. The trial boots the kernel without a disk, with
// panic=-1 so that it ends at once with "Kernel panic" when it works. Its verdict is kept next to
// the image (a hang costs the whole trial's timeout); deleting the file tries again.
func DetectAccel(ctx context.Context, img Image, scratch string) (accel, reason string) {
	switch v := os.Getenv("VIRT_SETUP_VM_ACCEL"); v {
	case "kvm", "tcg":
		return v, "VIRT_SETUP_VM_ACCEL=" + v
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg", "no usable /dev/kvm (" + err.Error() + ")"
	}
	f.Close()
	cache := filepath.Join(img.Dir, "accel")
	if b, err := os.ReadFile(cache); err == nil {
		if a, why, ok := strings.Cut(strings.TrimSpace(string(b)), "\t"); ok && (a == "kvm" || a == "tcg") {
			return a, why + " (kept in " + cache + ")"
		}
	}
	accel, reason = trialBoot(ctx, img, scratch)
	if ctx.Err() == nil {
		// Best effort: without the file the next run tries again.
		_ = os.WriteFile(cache, []byte(accel+"\t"+reason+"\n"), 0o644)
	}
	return accel, reason
}

func trialBoot(ctx context.Context, img Image, scratch string) (accel, reason string) {
	ctx, cancel := context.WithTimeout(ctx, kvmProbeTimeout)
	defer cancel()
	console := filepath.Join(scratch, "kvm-probe-console.log")
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
		"-kernel", img.Kernel(), "-append", "console=ttyS0 panic=-1", "-serial", "file:"+console)
	out, err := cmd.CombinedOutput()
	b, _ := os.ReadFile(console)
	switch {
	case ctx.Err() != nil:
		return "tcg", "KVM hung on a trial boot"
	case strings.Contains(string(b), "Kernel panic"):
		return "kvm", "KVM booted the guest's kernel"
	case err != nil:
		return "tcg", "KVM failed a trial boot: " + firstLine(string(out))
	}
	return "tcg", "KVM did not boot the guest's kernel"
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
