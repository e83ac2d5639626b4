package vmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/installer/image"
	"github.com/virt-setup/virt-setup/internal/testenv"
)

// guestTimeout bounds one boot, test and power-off; under TCG it takes about two minutes.
const guestTimeout = 8 * time.Minute

// guestAnswers are the choices installed in the guest: systemd user units, bypass4netns, and two
// RootlessKit settings that are not the defaults (MTU 1500, the slirp4netns port driver), so the
// guest test can tell that they reached RootlessKit.
func guestAnswers() installer.Answers {
	return installer.Answers{
		SchemaVersion: installer.AnswersSchemaVersion, Snapshotter: "overlayfs", ServiceMode: "systemd",
		AddOns: installer.AddOnAnswers{Bypass4netns: true},
		RootlessKit: installer.RootlessKitAnswers{NetworkDriver: "slirp4netns", MTU: 1500, PortDriver: "slirp4netns",
			Slirp4netnsSandbox: "auto", Slirp4netnsSeccomp: "auto", DetachNetns: "true"},
	}
}

// TestDebianGuest boots a fresh Debian 12 guest with systemd for each scenario and runs the guest
// tests (internal/vmtest/guest) in it as an unprivileged user with a login session:
//   - delegated: the host prepared as documented; install as systemd user units, with every check
//     of the systemd path, then uninstall;
//   - undelegated: Debian's default delegation; doctor names it, install stops before changing
//     anything.
//
// The guests' console logs, reports and journals stay in out/vm-test/<scenario>/.
func TestDebianGuest(t *testing.T) {
	_, err := exec.LookPath("qemu-system-x86_64")
	testenv.Require(t, err == nil, "qemu-system-x86_64 is missing: run scripts/setup-test-host.sh (make test-setup)")
	img, err := FindImage("")
	testenv.Require(t, err == nil, fmt.Sprint(err))
	busybox, err := image.FindBusybox()
	testenv.Require(t, err == nil, fmt.Sprintf("a static busybox: %v (install busybox-static: scripts/setup-test-host.sh)", err))

	root := testenv.ModuleRoot(t)
	work := t.TempDir()
	bin := testenv.BuildBinary(t)
	guestTest := filepath.Join(work, "guest.test")
	build := exec.Command("go", "test", "-c", "-tags", "vmguest", "-o", guestTest, "./internal/vmtest/guest")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the guest tests: %v\n%s", err, out)
	}
	archive := filepath.Join(work, "busybox.tar")
	spec := image.BusyboxSpec(busybox)
	spec.Ref = "localhost/vmtest/busybox:1"
	if _, err := image.WriteOCIArchiveFile(archive, spec); err != nil {
		t.Fatal(err)
	}
	answers, err := guestAnswers().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	fuse := guestAnswers()
	fuse.Snapshotter = "fuse-overlayfs"
	fuse.AddOns.Bypass4netns = false // proven in the first round; the second is about the snapshotter
	fuseAnswers, err := fuse.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	accel, why := DetectAccel(context.Background(), img, work)
	t.Logf("guest image %s; accelerator %s: %s", img.Dir, accel, why)

	for _, sc := range []struct{ name, run string }{
		{"delegated", "^TestSystemdPath$"},
		{"undelegated", "^TestUndelegatedCgroups$"},
	} {
		// One guest at a time: two TCG guests on two cores slow each other down until timeouts
		// inside them fire (seen: systemctl --user and the live mount test); together they saved
		// only 28 s of 225.
		t.Run(sc.name, func(t *testing.T) {
			logDir := filepath.Join(root, "out/vm-test", sc.name)
			if err := os.RemoveAll(logDir); err != nil {
				t.Fatal(err)
			}
			payload := filepath.Join(work, sc.name+".payload")
			err := WritePayload(payload, []File{
				{Name: "guest.sh", Source: filepath.Join(root, "internal/vmtest/testdata/guest.sh"), Mode: 0o755},
				{Name: "scenario", Data: []byte(sc.name + "\n")},
				{Name: "run", Data: []byte(sc.run + "\n")},
				{Name: "virt-setup", Source: bin, Mode: 0o755},
				{Name: "guest.test", Source: guestTest, Mode: 0o755},
				{Name: "busybox.tar", Source: archive},
				{Name: "answers.toml", Data: answers},
				{Name: "answers-fuse.toml", Data: fuseAnswers},
				{Name: "address", Data: []byte(GuestAddr + "/24\n")},
			})
			if err != nil {
				t.Fatal(err)
			}
			m := Machine{Image: img, Payload: payload, Accel: accel, CPUs: 2, Memory: 2048, LogDir: logDir}
			ctx, cancel := context.WithTimeout(context.Background(), guestTimeout)
			defer cancel()
			start := time.Now()
			rep, err := m.Run(ctx)
			t.Logf("guest %s: %.0f s; logs in %s", sc.name, time.Since(start).Seconds(), logDir)
			if rep != nil {
				for _, name := range rep.Order {
					if werr := os.WriteFile(filepath.Join(logDir, name+".log"), []byte(rep.Sections[name]), 0o644); werr != nil {
						t.Error(werr)
					}
				}
				t.Logf("the guest's test output:\n%s", rep.Sections["test"])
			}
			switch {
			case err != nil:
				t.Fatalf("%v\nlast lines of %s:\n%s", err, m.ConsolePath(), Tail(m.ConsolePath(), 40))
			case !rep.HasExit:
				t.Fatalf("the guest powered off without a test result\nlast lines of %s:\n%s", m.ConsolePath(), Tail(m.ConsolePath(), 40))
			case rep.Exit != 0:
				t.Fatalf("the guest tests failed (exit %d %s); see %s and the journal in %s", rep.Exit, rep.Note,
					filepath.Join(logDir, "test.log"), filepath.Join(logDir, "journal.log"))
			case !rep.Ended:
				t.Errorf("the guest's report ends early; see %s", m.ReportPath())
			}
		})
	}
}
