package probe

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virt-setup/virt-setup/internal/testenv"
	"github.com/virt-setup/virt-setup/probe/probetest"
)

func runUserNS(t *testing.T, e *Env) UserNS {
	t.Helper()
	var f Facts
	probeUserNS(context.Background(), e)(&f)
	return f.UserNS
}

func TestParseSubIDs(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		user    string
		uid     int
		want    []IDRange
		wantErr bool
	}{
		{"by name", "vstest:100000:65536\n", "vstest", 1001, []IDRange{{100000, 65536}}, false},
		{"by uid", "1001:165536:65536\n", "vstest", 1001, []IDRange{{165536, 65536}}, false},
		{"name and uid lines both apply", "vstest:100000:65536\nother:165536:65536\n1001:231072:1000\n", "vstest", 1001,
			[]IDRange{{100000, 65536}, {231072, 1000}}, false},
		{"other users only", "alice:100000:65536\nbob:165536:65536\n", "vstest", 1001, []IDRange{}, false},
		{"empty file", "", "vstest", 1001, []IDRange{}, false},
		{"comments, blanks, garbage, CRLF", "# subuid\r\n\r\nvstest:100000\nvstest:1:2:3\n:1:2\nrandom text\nvstest:100000:65536\r\n", "vstest", 1001,
			[]IDRange{{100000, 65536}}, false},
		{"systemd-homed range", "vstest:524288:65536\n", "vstest", 1001, []IDRange{{524288, 65536}}, false},
		{"largest possible range", "vstest:0:4294967295\n", "vstest", 1001, []IDRange{{0, 4294967295}}, false},
		{"zero count is kept for the doctor to judge", "vstest:100000:0\n", "vstest", 1001, []IDRange{{100000, 0}}, false},
		{"uid -1 matches no numeric line", "4294967295:1:1\n-1:5:5\n", "nobody-known", -1, []IDRange{}, false},
		{"another user's broken line is not ours", "alice:-1:65536\nvstest:100000:65536\n", "vstest", 1001, []IDRange{{100000, 65536}}, false},
		{"negative start", "vstest:-100000:65536\n", "vstest", 1001, nil, true},
		{"negative count", "vstest:100000:-1\n", "vstest", 1001, nil, true},
		{"plus sign", "vstest:+100000:65536\n", "vstest", 1001, nil, true},
		{"number too large", "vstest:4294967296:1\n", "vstest", 1001, nil, true},
		{"huge number", "vstest:99999999999999999999999:1\n", "vstest", 1001, nil, true},
		{"range past the last ID", "vstest:4294967295:1\n", "vstest", 1001, nil, true},
		{"range past the last ID by sum", "vstest:4000000000:300000000\n", "vstest", 1001, nil, true},
		{"space inside a field", "vstest: 100000:65536\n", "vstest", 1001, nil, true},
		{"hex", "vstest:0x10000:65536\n", "vstest", 1001, nil, true},
		{"empty field", "vstest::65536\n", "vstest", 1001, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSubIDs([]byte(tt.in), tt.user, tt.uid)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				if !strings.Contains(err.Error(), "line ") {
					t.Errorf("error %q does not say which line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProbeUserNSSysctls(t *testing.T) {
	const (
		maxNS = "/proc/sys/user/max_user_namespaces"
		clone = "/proc/sys/kernel/unprivileged_userns_clone"
	)
	tests := []struct {
		kind, content string
		wantMax       int
		maxUnknown    bool
		wantClone     int
		cloneUnknown  bool
	}{
		{"file", "0\n", 0, false, 0, false},
		{"file", "63412", 63412, false, 63412, false},
		// user.max_user_namespaces is on every kernel since 4.9; unprivileged_userns_clone is a patch.
		{"missing", "", 0, true, -1, false},
		{"empty", "", 0, true, 0, true},
		{"file", "lots", 0, true, 0, true},
		{"binary", "", 0, true, 0, true},
		{"dir", "", 0, true, 0, true},
		{"loop", "", 0, true, 0, true},
		{"unreadable", "7", 7, !rootReads(), 7, !rootReads()},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"_"+strings.TrimSpace(tt.content), func(t *testing.T) {
			h := newFakeOSHost(t)
			h.place(tt.kind, maxNS, tt.content)
			h.place(tt.kind, clone, tt.content)
			got := runUserNS(t, h.env())
			check := func(name string, f Fact[int], want int, unknown bool) {
				t.Helper()
				if unknown {
					if f.Known || f.Error == "" {
						t.Errorf("%s = %+v, want unknown with an error", name, f)
					}
					return
				}
				if !f.Known || f.Value != want {
					t.Errorf("%s = %+v, want known %d", name, f, want)
				}
			}
			check("max_user_namespaces", got.MaxUserNamespaces, tt.wantMax, tt.maxUnknown)
			check("unprivileged_userns_clone", got.UnprivilegedClone, tt.wantClone, tt.cloneUnknown)
		})
	}
}

func TestProbeUserNSSubIDs(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		content string
		want    []IDRange
		unknown bool
		excerpt string
	}{
		{"entry", "file", "alice:165536:65536\nvstest:100000:65536\n", []IDRange{{100000, 65536}}, false, "vstest:100000:65536"},
		{"no entry for the user", "file", "alice:165536:65536\n", []IDRange{}, false, "no entry for vstest"},
		{"file does not exist", "missing", "", []IDRange{}, false, "file does not exist"},
		{"empty file", "empty", "", []IDRange{}, false, "no entry for vstest"},
		{"broken entry for the user", "file", "vstest:-5:65536\n", nil, true, "vstest:-5:65536"},
		{"binary", "binary", "", nil, true, ""},
		{"directory", "dir", "", nil, true, ""},
		{"symlink loop", "loop", "", nil, true, ""},
		{"unreadable", "unreadable", "vstest:100000:65536\n", []IDRange{{100000, 65536}}, !rootReads(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeOSHost(t)
			h.place(tt.kind, "/etc/subuid", tt.content)
			h.place(tt.kind, "/etc/subgid", tt.content)
			got := runUserNS(t, h.env())
			for name, f := range map[string]Fact[[]IDRange]{"subuid": got.SubUID, "subgid": got.SubGID} {
				if tt.unknown {
					if f.Known || f.Error == "" {
						t.Errorf("%s = %+v, want unknown with an error", name, f)
					}
				} else if !f.Known || !reflect.DeepEqual(f.Value, tt.want) {
					t.Errorf("%s = %+v, want known %v", name, f, tt.want)
				}
				if tt.excerpt != "" && (len(f.Evidence) == 0 || !strings.Contains(f.Evidence[0].Excerpt, tt.excerpt)) {
					t.Errorf("%s evidence %+v, want an excerpt with %q", name, f.Evidence, tt.excerpt)
				}
			}
		})
	}
	t.Run("unknown user", func(t *testing.T) {
		h := newFakeOSHost(t)
		h.write("/etc/subuid", "vstest:100000:65536\n")
		e := h.env()
		e.User = User{}
		if got := runUserNS(t, e).SubUID; got.Known || got.Error == "" {
			t.Fatalf("subuid = %+v, want unknown for an unresolved user", got)
		}
	})
}

// writeExecutable creates an executable script below the fake root.
func (h *fakeOSHost) writeExecutable(p string, mode os.FileMode) string {
	h.t.Helper()
	h.write(p, "#!/bin/sh\nexit 0\n")
	if err := os.Chmod(h.path(p), mode); err != nil {
		h.t.Fatal(err)
	}
	return h.path(p)
}

// canSetFileCaps reports whether security.capability can be set in dir: it needs CAP_SETFCAP and a
// filesystem with xattrs.
func canSetFileCaps(dir string) bool {
	if os.Geteuid() != 0 {
		return false
	}
	f, err := os.CreateTemp(dir, "caps")
	if err != nil {
		return false
	}
	f.Close()
	defer os.Remove(f.Name())
	b, _ := probetest.EncodeFileCaps("cap_setuid=ep")
	return unix.Setxattr(f.Name(), "security.capability", b, 0) == nil
}

func TestProbeUserNSIDMappers(t *testing.T) {
	t.Run("not installed", func(t *testing.T) {
		h := newFakeOSHost(t)
		got := runUserNS(t, h.env())
		for name, f := range map[string]Fact[IDMapper]{"newuidmap": got.NewUIDMap, "newgidmap": got.NewGIDMap} {
			if !f.Known || f.Value.Found || len(f.Evidence) == 0 || !strings.Contains(f.Evidence[0].Excerpt, "/usr/bin") {
				t.Errorf("%s = %+v, want known not found, with the searched directories", name, f)
			}
		}
	})
	t.Run("not setuid", func(t *testing.T) {
		h := newFakeOSHost(t)
		h.writeExecutable("/usr/bin/newuidmap", 0o755)
		got := runUserNS(t, h.env()).NewUIDMap
		want := IDMapper{Path: "/usr/bin/newuidmap", Found: true}
		if !got.Known || got.Value != want {
			t.Fatalf("newuidmap = %+v, want known %+v", got, want)
		}
	})
	t.Run("setuid but not owned by root", func(t *testing.T) {
		testenv.Require(t, os.Geteuid() == 0, "changing a file's owner needs root")
		h := newFakeOSHost(t)
		full := h.writeExecutable("/usr/bin/newuidmap", 0o755)
		if err := os.Chown(full, 1001, 1001); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, 0o755|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
		if got := runUserNS(t, h.env()).NewUIDMap; !got.Known || got.Value.Setuid {
			t.Fatalf("newuidmap = %+v, want known and not setuid root", got)
		}
	})
	t.Run("setuid root, Debian's uidmap", func(t *testing.T) {
		testenv.Require(t, os.Geteuid() == 0, "a root-owned setuid file needs root to create")
		h := newFakeOSHost(t)
		full := h.writeExecutable("/usr/bin/newgidmap", 0o755)
		if err := os.Chmod(full, 0o755|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
		got := runUserNS(t, h.env()).NewGIDMap
		want := IDMapper{Path: "/usr/bin/newgidmap", Found: true, Setuid: true}
		if !got.Known || got.Value != want {
			t.Fatalf("newgidmap = %+v, want known %+v", got, want)
		}
	})
	t.Run("file capabilities, Fedora's shadow-utils", func(t *testing.T) {
		h := newFakeOSHost(t)
		testenv.Require(t, canSetFileCaps(h.dir), "setting security.capability needs root (CAP_SETFCAP) and a filesystem with xattrs for the test's temp dir")
		for name, caps := range map[string]string{"newuidmap": "cap_setuid=ep", "newgidmap": "cap_setgid=ep"} {
			full := h.writeExecutable("/usr/bin/"+name, 0o755)
			b, err := probetest.EncodeFileCaps(caps)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Setxattr(full, "security.capability", b, 0); err != nil {
				t.Fatal(err)
			}
		}
		got := runUserNS(t, h.env())
		if f := got.NewUIDMap; !f.Known || f.Value != (IDMapper{Path: "/usr/bin/newuidmap", Found: true, Caps: "cap_setuid=ep"}) {
			t.Errorf("newuidmap = %+v", f)
		}
		if f := got.NewGIDMap; !f.Known || f.Value != (IDMapper{Path: "/usr/bin/newgidmap", Found: true, Caps: "cap_setgid=ep"}) {
			t.Errorf("newgidmap = %+v", f)
		}
	})
	t.Run("found through a symlink, judged by its target", func(t *testing.T) {
		testenv.Require(t, os.Geteuid() == 0, "a root-owned setuid file needs root to create")
		h := newFakeOSHost(t)
		full := h.writeExecutable("/usr/libexec/shadow/newuidmap", 0o755)
		if err := os.Chmod(full, 0o755|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
		h.symlink("../libexec/shadow/newuidmap", "/usr/bin/newuidmap")
		if got := runUserNS(t, h.env()).NewUIDMap; !got.Known || !got.Value.Setuid {
			t.Fatalf("newuidmap = %+v, want setuid from the symlink's target", got)
		}
	})
	t.Run("a directory named newuidmap is not the program", func(t *testing.T) {
		h := newFakeOSHost(t)
		h.mkdir("/usr/bin/newuidmap")
		if got := runUserNS(t, h.env()).NewUIDMap; !got.Known || got.Value.Found {
			t.Fatalf("newuidmap = %+v, want known not found", got)
		}
	})
}

func TestProbeUserNSLive(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	testenv.Require(t, err == nil, "/proc/sys/user/max_user_namespaces (Linux 4.9+) is needed")
	want, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	got := runUserNS(t, liveEnv(t))
	if !got.MaxUserNamespaces.Known || got.MaxUserNamespaces.Value != want {
		t.Errorf("max_user_namespaces = %+v, want %d", got.MaxUserNamespaces, want)
	}
	newuidmap, err := exec.LookPath("newuidmap")
	testenv.Require(t, err == nil, "newuidmap (package uidmap or shadow-utils) is needed")
	fi, err := os.Stat(newuidmap)
	if err != nil {
		t.Fatal(err)
	}
	if m := got.NewUIDMap; !m.Known || !m.Value.Found || m.Value.Setuid != (fi.Mode()&os.ModeSetuid != 0) {
		t.Errorf("newuidmap = %+v, but %s has mode %s", m, newuidmap, fi.Mode())
	}
}

// TestProbeUserNSLiveTestUser reads the real /etc/subuid for the test user that
// scripts/setup-test-host.sh creates with the range 100000:65536.
func TestProbeUserNSLiveTestUser(t *testing.T) {
	u := testenv.RequireTestUser(t)
	e := liveEnv(t)
	e.User = User{Name: u.Name, UID: u.UID, GID: u.GID, Home: u.Home, Known: true}
	got := runUserNS(t, e)
	for name, f := range map[string]Fact[[]IDRange]{"subuid": got.SubUID, "subgid": got.SubGID} {
		if !f.Known || len(f.Value) == 0 {
			t.Errorf("%s of %s = %+v, want the range setup-test-host.sh wrote", name, u.Name, f)
			continue
		}
		if f.Value[0].Count < 65536 {
			t.Errorf("%s of %s = %v, want at least 65536 IDs", name, u.Name, f.Value)
		}
	}
}

// capsXattr builds a security.capability value by hand, independent of probetest's encoder.
func capsXattr(magic uint32, words ...uint32) []byte {
	b := make([]byte, 4+4*len(words))
	binary.LittleEndian.PutUint32(b, magic)
	for i, w := range words {
		binary.LittleEndian.PutUint32(b[4+4*i:], w)
	}
	return b
}

func TestDecodeFileCaps(t *testing.T) {
	const (
		rev1 = 0x01000000
		rev2 = 0x02000000
		rev3 = 0x03000000
		eff  = 0x000001
	)
	setuid, setgid := uint32(1<<7), uint32(1<<6)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"Fedora newuidmap", capsXattr(rev2|eff, setuid, 0, 0, 0), "cap_setuid=ep"},
		{"permitted only", capsXattr(rev2, setgid, 0, 0, 0), "cap_setgid=p"},
		{"two caps grouped in number order", capsXattr(rev2|eff, setuid|setgid, 0, 0, 0), "cap_setgid,cap_setuid=ep"},
		{"revision 1", capsXattr(rev1|eff, setuid, 0), "cap_setuid=ep"},
		{"revision 3 in the initial namespace", capsXattr(rev3|eff, setuid, 0, 0, 0, 0), "cap_setuid=ep"},
		{"revision 3 for another namespace root", capsXattr(rev3|eff, setuid, 0, 0, 0, 100000), "cap_setuid=ep [rootid=100000]"},
		{"inheritable and permitted differ", capsXattr(rev2|eff, setuid, setgid|setuid, 0, 0), "cap_setgid=ei cap_setuid=eip"},
		{"high word: cap_bpf and an unnamed one", capsXattr(rev2, 0, 0, 1<<(39-32)|1<<(45-32), 0), "cap_bpf,cap_45=p"},
		{"net_bind_service for rootlesskit", capsXattr(rev2|eff, 1<<10, 0, 0, 0), "cap_net_bind_service=ep"},
		{"no capabilities", capsXattr(rev2|eff, 0, 0, 0, 0), ""},
		{"unknown low bits ignored", capsXattr(rev2|eff|0x10, setuid, 0, 0, 0), "cap_setuid=ep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeFileCaps(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("DecodeFileCaps = %q, want %q", got, tt.want)
			}
		})
	}
	bad := map[string][]byte{
		"empty":                   nil,
		"short header":            {1, 0, 0},
		"revision 0":              capsXattr(0, 1, 0, 0, 0),
		"revision 4":              capsXattr(0x04000000, 1, 0, 0, 0),
		"revision 1 of 20 bytes":  capsXattr(rev1, 1, 0, 0, 0),
		"revision 2 of 12 bytes":  capsXattr(rev2, 1, 0),
		"revision 2 of 24 bytes":  capsXattr(rev2, 1, 0, 0, 0, 0),
		"revision 3 of 20 bytes":  capsXattr(rev3, 1, 0, 0, 0),
		"revision 2 plus garbage": append(capsXattr(rev2, 1, 0, 0, 0), 0xff),
	}
	for name, in := range bad {
		if got, err := DecodeFileCaps(in); err == nil {
			t.Errorf("%s: DecodeFileCaps = %q, want an error", name, got)
		}
	}
}

// TestDecodeFileCapsMatchesEncoder round-trips the texts the fake-host builder writes.
func TestDecodeFileCapsMatchesEncoder(t *testing.T) {
	for _, text := range []string{"cap_setuid=ep", "cap_setgid=ep", "cap_setgid,cap_setuid=p", "cap_net_bind_service=ep", "cap_chown,cap_sys_admin=eip"} {
		b, err := probetest.EncodeFileCaps(text)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeFileCaps(b); err != nil || got != text {
			t.Errorf("DecodeFileCaps(EncodeFileCaps(%q)) = %q, %v", text, got, err)
		}
	}
}

func FuzzParseSubIDs(f *testing.F) {
	f.Add([]byte("vstest:100000:65536\n"), "vstest", 1001)
	f.Add([]byte("1001:1:4294967294\n# c\nx:y\n"), "vstest", 1001)
	f.Add([]byte("vstest:-1:18446744073709551616\n"), "vstest", -1)
	f.Add([]byte("::\n:::\n"), "", 0)
	f.Fuzz(func(t *testing.T, b []byte, name string, uid int) {
		ranges, err := ParseSubIDs(b, name, uid)
		if err != nil {
			if ranges != nil {
				t.Fatalf("error %v with ranges %v", err, ranges)
			}
			return
		}
		if ranges == nil {
			t.Fatal("nil ranges without an error; want an empty list")
		}
		for _, r := range ranges {
			if r.Start < 0 || r.Count < 0 || r.Start+r.Count > math.MaxUint32 {
				t.Fatalf("range %+v is outside the 32-bit ID space", r)
			}
		}
	})
}

func FuzzDecodeFileCaps(f *testing.F) {
	f.Add(capsXattr(0x02000001, 1<<7, 0, 0, 0))
	f.Add(capsXattr(0x01000000, 1<<6, 0))
	f.Add(capsXattr(0x03000001, 1<<7, 0, 0, 0, 7))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		text, err := DecodeFileCaps(b)
		if err != nil {
			return
		}
		if len(b) != 12 && len(b) != 20 && len(b) != 24 {
			t.Fatalf("accepted %d bytes", len(b))
		}
		for _, group := range strings.Fields(text) {
			if strings.HasPrefix(group, "[rootid=") {
				continue
			}
			names, flags, ok := strings.Cut(group, "=")
			if !ok || flags == "" || strings.Trim(flags, "eip") != "" {
				t.Fatalf("group %q of %q is not NAMES=FLAGS", group, text)
			}
			for _, n := range strings.Split(names, ",") {
				if !strings.HasPrefix(n, "cap_") {
					t.Fatalf("name %q in %q", n, text)
				}
			}
		}
		// The effective bit must show in the text exactly when there are capabilities to apply it to.
		flipped := append([]byte(nil), b...)
		flipped[0] ^= 1
		other, err := DecodeFileCaps(flipped)
		if err != nil {
			t.Fatalf("flipping the effective bit made %x undecodable: %v", b, err)
		}
		if (text == "") != (other == "") || text != "" && strings.Contains(text, "=e") == strings.Contains(other, "=e") {
			t.Fatalf("effective bit: %q vs %q", text, other)
		}
	})
}
