package probe

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/internal/testenv"
)

func TestParseGroupMembers(t *testing.T) {
	const group = `root:x:0:
# comment:x:5:alice
sudo:x:27:bob,alice
kvm:x:104:
fuse:x:120: alice , carol
+::::
broken line
neg:x:-1:alice
nan:x:abc:alice
dup:x:27:alice
docker:x:999:alicex,xalice
tun:x:500:alice` + "\r\n"
	tests := []struct {
		user string
		want []int
	}{
		{"alice", []int{27, 120, 500}},
		{"bob", []int{27}},
		{"carol", []int{120}},
		{"dave", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := ParseGroupMembers([]byte(group), tt.user); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseGroupMembers(%q) = %v, want %v", tt.user, got, tt.want)
		}
	}
}

func FuzzParseGroupMembers(f *testing.F) {
	f.Add([]byte("sudo:x:27:bob,alice\nfuse:x:120:alice\n"), "alice")
	f.Add([]byte("a:x:1:\n::::\n:x:2:alice"), "alice")
	f.Add([]byte("\xff:x:3:\xff"), "\xff")
	f.Fuzz(func(t *testing.T, b []byte, user string) {
		seen := map[int]bool{}
		for _, gid := range ParseGroupMembers(b, user) {
			if gid < 0 || seen[gid] {
				t.Fatalf("gid %d negative or repeated", gid)
			}
			seen[gid] = true
		}
	})
}

func TestDeviceModeAllows(t *testing.T) {
	alice := sampleUser()
	member := func(gids ...int) func(int) (bool, error) {
		return func(g int) (bool, error) {
			for _, x := range gids {
				if g == x {
					return true, nil
				}
			}
			return false, nil
		}
	}
	unreadable := func(int) (bool, error) { return false, errors.New("read /etc/group: permission denied") }
	tests := []struct {
		name       string
		perm       fs.FileMode
		uid, gid   int
		user       User
		inGroup    func(int) (bool, error)
		want       bool
		errContain string
	}{
		{"udev default 0666", 0o666, 0, 0, alice, member(), true, ""},
		{"no-udev VM 0600 root", 0o600, 0, 0, alice, member(), false, ""},
		{"other read only", 0o664, 0, 0, alice, member(), false, ""},
		{"owned by the user", 0o600, 1000, 0, alice, member(), true, ""},
		{"owned but owner bits lack write", 0o466, 1000, 0, alice, member(), false, ""},
		{"group rw, member", 0o660, 0, 120, alice, member(120), true, ""},
		{"group rw, not member", 0o660, 0, 120, alice, member(27), false, ""},
		{"group denies, other allows, member", 0o606, 0, 120, alice, member(120), false, ""},
		{"group unreadable but irrelevant", 0o666, 0, 120, alice, unreadable, true, ""},
		{"group unreadable and decisive", 0o660, 0, 120, alice, unreadable, false, "cannot tell whether uid 1000 is in group 120"},
		{"root", 0o600, 0, 0, User{Name: "root", Known: true}, member(), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why, err := deviceModeAllows(tt.perm, tt.uid, tt.gid, tt.user, tt.inGroup)
			if tt.errContain != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContain) {
					t.Fatalf("error %v, want %q", err, tt.errContain)
				}
				return
			}
			if err != nil || got != tt.want || why == "" {
				t.Fatalf("got %v %q %v, want %v", got, why, err, tt.want)
			}
		})
	}
}

// TestDevicesFakeHost evaluates regular files standing in for the device nodes by their mode bits.
func TestDevicesFakeHost(t *testing.T) {
	testenv.Require(t, os.Geteuid() == 0, "giving the fake device files other owners needs root")
	alice := sampleUser()
	type dev struct {
		mode     os.FileMode
		uid, gid int
	}
	tests := []struct {
		name      string
		group     *string
		fuse, tun *dev
		user      User
		wantFuse  bool
		wantTun   bool
		fuseErr   string
		tunErr    string
	}{
		{name: "udev modes", fuse: &dev{0o666, 0, 0}, tun: &dev{0o666, 0, 0}, user: alice, wantFuse: true, wantTun: true},
		{name: "no udev", fuse: &dev{0o600, 0, 0}, tun: &dev{0o600, 0, 0}, user: alice},
		{name: "missing nodes", user: alice},
		{
			name: "group access", group: ptr("root:x:0:\nfuse:x:120:alice\nkvm:x:104:bob\n"),
			fuse: &dev{0o660, 0, 120}, tun: &dev{0o660, 0, 104}, user: alice, wantFuse: true,
		},
		{name: "primary group without /etc/group", fuse: &dev{0o660, 0, 1000}, tun: &dev{0o600, 1000, 0}, user: alice, wantFuse: true, wantTun: true},
		{name: "group unknowable", fuse: &dev{0o660, 0, 120}, tun: &dev{0o666, 0, 0}, user: alice, wantTun: true, fuseErr: "cannot tell whether uid 1000 is in group 120"},
		{name: "enormous /etc/group", group: ptr(strings.Repeat("x", 2<<20)), fuse: &dev{0o660, 0, 120}, tun: &dev{0o600, 0, 0}, user: alice, fuseErr: "larger than 1 MiB"},
		{name: "user unknown", fuse: &dev{0o666, 0, 0}, tun: &dev{0o666, 0, 0}, fuseErr: "user is unknown", tunErr: "user is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeRootDir(t)
			if tt.group != nil {
				h.file("/etc/group", *tt.group, 0o644)
			}
			for p, d := range map[string]*dev{devFuse: tt.fuse, devTun: tt.tun} {
				if d == nil {
					continue
				}
				h.file(p, "", d.mode)
				if err := os.Chown(h.path(p), d.uid, d.gid); err != nil {
					t.Fatal(err)
				}
			}
			ds := applyProbe(t, h.env(tt.user), probeDevices).Devices
			check := func(name string, f Fact[Device], d *dev, want bool, errContain string) {
				t.Helper()
				if errContain != "" {
					mustUnknown(t, name, f, errContain)
					return
				}
				got := mustKnown(t, name, f)
				if d == nil {
					if got.Exists || got.Usable {
						t.Errorf("%s: missing node reported %+v", name, got)
					}
					return
				}
				if !got.Exists || got.CharDev || got.How != DeviceHowModeBits || got.OwnerUID != d.uid || got.OwnerGID != d.gid {
					t.Errorf("%s: %+v", name, got)
				}
				if got.Mode != modeOctal(d.mode) {
					t.Errorf("%s: mode %q, want %q", name, got.Mode, modeOctal(d.mode))
				}
				if got.Usable != want {
					t.Errorf("%s: usable %v, want %v (evidence %+v)", name, got.Usable, want, f.Evidence)
				}
			}
			check("fuse", ds.Fuse, tt.fuse, tt.wantFuse, tt.fuseErr)
			check("tun", ds.Tun, tt.tun, tt.wantTun, tt.tunErr)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func modeOctal(m os.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{'0', digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

// TestDevicesFakeHostOddNodes covers a directory where a node should be and a stat failure.
func TestDevicesFakeHostOddNodes(t *testing.T) {
	h := newFakeRootDir(t)
	h.mkdir(devFuse)
	if err := os.Chmod(h.path(devFuse), 0o755); err != nil {
		t.Fatal(err)
	}
	h.file("/dev/net", "not a directory", 0o644)
	ds := applyProbe(t, h.env(sampleUser()), probeDevices).Devices
	if fuse := mustKnown(t, "fuse", ds.Fuse); !fuse.Exists || fuse.CharDev || fuse.Usable {
		t.Errorf("directory at /dev/fuse: %+v", fuse)
	}
	// stat of /dev/net/tun through a regular file fails with ENOTDIR, not ENOENT.
	mustUnknown(t, "tun", ds.Tun, "not a directory")
}

// TestDevicesLive opens the real nodes as the user running the tests and compares the probe's
// answer with a direct open.
func TestDevicesLive(t *testing.T) {
	e, err := NewEnv(Options{})
	if err != nil {
		t.Fatal(err)
	}
	resolveIdentity(e, "")
	ds := applyProbe(t, e, probeDevices).Devices
	for _, c := range []struct {
		path string
		f    Fact[Device]
	}{{devFuse, ds.Fuse}, {devTun, ds.Tun}} {
		d := mustKnown(t, c.path, c.f)
		fi, statErr := os.Stat(c.path)
		if d.Exists != (statErr == nil) {
			t.Fatalf("%s: Exists %v, stat %v", c.path, d.Exists, statErr)
		}
		if !d.Exists {
			continue
		}
		if d.CharDev != (fi.Mode()&fs.ModeCharDevice != 0) || d.Mode != modeOctal(fi.Mode()) {
			t.Errorf("%s: %+v, stat says %v", c.path, d, fi.Mode())
		}
		f, openErr := os.OpenFile(c.path, os.O_RDWR, 0)
		if openErr == nil {
			f.Close()
		}
		if d.CharDev && (d.How != DeviceHowOpened || d.Usable != (openErr == nil)) {
			t.Errorf("%s: %+v, direct open: %v", c.path, d, openErr)
		}
	}
}

// childDevicesEnv marks the copy of the test binary that runs as the unprivileged test user.
const childDevicesEnv = "VIRT_SETUP_TEST_DEVICES_CHILD"

// TestDevicesLiveAsTestUser runs the live device probe as the unprivileged test user, where the
// kernel, not root's privilege, decides: on the project's VM both nodes are 0600 root, so opening
// fails with EACCES, which is what breaks slirp4netns there. The model of the mode bits must agree
// with what the kernel said.
func TestDevicesLiveAsTestUser(t *testing.T) {
	if os.Getenv(childDevicesEnv) == "1" {
		e, err := NewEnv(Options{})
		if err != nil {
			t.Fatal(err)
		}
		resolveIdentity(e, "")
		ds := applyProbe(t, e, probeDevices).Devices
		b, err := json.Marshal(ds)
		if err != nil {
			t.Fatal(err)
		}
		os.Stdout.Write(append([]byte("\nDEVICES "), append(b, '\n')...))
		return
	}
	u := testenv.RequireTestUser(t)
	bin := testenv.CopyTestBinary(t, testenv.SharedDir(t), "probe.test")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := u.Command(ctx, bin, []string{"-test.run", "^TestDevicesLiveAsTestUser$", "-test.count", "1"}, childDevicesEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	_, line, ok := strings.Cut(string(out), "\nDEVICES ")
	if !ok {
		t.Fatalf("child printed no result:\n%s", out)
	}
	line, _, _ = strings.Cut(line, "\n")
	t.Logf("as %s: %s", u.Name, line)
	var ds Devices
	if err := json.Unmarshal([]byte(line), &ds); err != nil {
		t.Fatalf("child result %q: %v", line, err)
	}
	gids, err := supplementaryGroups(u.Name)
	if err != nil {
		t.Fatal(err)
	}
	inGroup := func(g int) (bool, error) { return g == u.GID || gids[g], nil }
	for _, c := range []struct {
		path string
		f    Fact[Device]
	}{{devFuse, ds.Fuse}, {devTun, ds.Tun}} {
		d := mustKnown(t, c.path, c.f)
		if !d.Exists || !d.CharDev {
			continue
		}
		if d.How != DeviceHowOpened {
			t.Errorf("%s: How %q as the test user", c.path, d.How)
		}
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		want, _, _ := deviceModeAllows(fi.Mode().Perm(), d.OwnerUID, d.OwnerGID, User{Name: u.Name, UID: u.UID, GID: u.GID, Known: true}, inGroup)
		if d.Usable != want {
			t.Errorf("%s (mode %s, owner %d:%d): the kernel said usable=%v, the mode bits %v; evidence %+v", c.path, d.Mode, d.OwnerUID, d.OwnerGID, d.Usable, want, c.f.Evidence)
		}
		if !d.Usable {
			if ev := c.f.Evidence[len(c.f.Evidence)-1]; ev.Kind != "syscall" || ev.Excerpt != "permission denied" {
				t.Errorf("%s: evidence %+v, want the EACCES of open()", c.path, ev)
			}
		}
	}
}

func supplementaryGroups(user string) (map[int]bool, error) {
	b, err := os.ReadFile("/etc/group")
	if err != nil {
		return nil, err
	}
	gids := map[int]bool{}
	for _, g := range ParseGroupMembers(b, user) {
		gids[g] = true
	}
	return gids, nil
}
