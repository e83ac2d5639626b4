package probe

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/internal/testenv"
)

func runSecurity(t *testing.T, e *Env) Security {
	t.Helper()
	var f Facts
	probeSecurity(context.Background(), e)(&f)
	return f.Security
}

// ubuntuRootlesskitProfile is what Ubuntu's apparmor package ships as /etc/apparmor.d/rootlesskit.
const ubuntuRootlesskitProfile = `# This profile allows everything and only exists to give the
# application a name instead of having the label "unconfined"

abi <abi/4.0>,
include <tunables/global>

profile rootlesskit /usr/bin/rootlesskit flags=(unconfined) {
  userns,

  # Site-specific additions and overrides. See local/README for details.
  include if exists <local/rootlesskit>
}
`

// perPathProfile is the template of rootless.md §4 (and RootlessKit's own hint) for another path.
const perPathProfile = `abi <abi/4.0>,
include <tunables/global>

"/usr/local/bin/rootlesskit" flags=(unconfined) {
  userns,

  include if exists <local/usr.local.bin.rootlesskit>
}
`

func TestProbeSecuritySELinux(t *testing.T) {
	const p = "/sys/fs/selinux/enforce"
	tests := []struct {
		kind, content string
		want          SELinux
		unknown       bool
	}{
		{"missing", "", SELinux{Mode: "disabled"}, false},
		{"file", "1", SELinux{Enabled: true, Mode: "enforcing"}, false},
		{"file", "0\n", SELinux{Enabled: true, Mode: "permissive"}, false},
		{"file", "2", SELinux{}, true},
		{"empty", "", SELinux{}, true},
		{"binary", "", SELinux{}, true},
		{"dir", "", SELinux{}, true},
		{"loop", "", SELinux{}, true},
		{"unreadable", "1", SELinux{Enabled: true, Mode: "enforcing"}, !rootReads()},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"_"+strings.TrimSpace(tt.content), func(t *testing.T) {
			h := newFakeOSHost(t)
			h.place(tt.kind, p, tt.content)
			got := runSecurity(t, h.env()).SELinux
			if tt.unknown {
				if got.Known || got.Error == "" {
					t.Fatalf("selinux = %+v, want unknown with an error", got)
				}
				return
			}
			if !got.Known || got.Value != tt.want {
				t.Fatalf("selinux = %+v, want known %+v", got, tt.want)
			}
			if len(got.Evidence) == 0 || got.Evidence[0].Source != p {
				t.Errorf("evidence %+v does not name %s", got.Evidence, p)
			}
		})
	}
}

func TestProbeSecurityAppArmor(t *testing.T) {
	const (
		restrict = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
		param    = "/sys/module/apparmor/parameters/enabled"
	)
	tests := []struct {
		name    string
		setup   func(h *fakeOSHost)
		want    AppArmor
		unknown bool
	}{
		{"absent everywhere", func(h *fakeOSHost) {}, AppArmor{RestrictUnprivilegedUserns: -1}, false},
		{"securityfs directory", func(h *fakeOSHost) {
			h.mkdir("/sys/kernel/security/apparmor")
		}, AppArmor{Enabled: true, RestrictUnprivilegedUserns: -1}, false},
		{"module parameter Y without securityfs", func(h *fakeOSHost) {
			h.write(param, "Y\n")
		}, AppArmor{Enabled: true, RestrictUnprivilegedUserns: -1}, false},
		{"module parameter N", func(h *fakeOSHost) {
			h.write(param, "N\n")
		}, AppArmor{RestrictUnprivilegedUserns: -1}, false},
		{"module parameter garbled", func(h *fakeOSHost) { h.write(param, "maybe") }, AppArmor{}, true},
		{"module parameter is a directory", func(h *fakeOSHost) { h.mkdir(param) }, AppArmor{}, true},
		{"Ubuntu 24.04 with its shipped profile", func(h *fakeOSHost) {
			h.mkdir("/sys/kernel/security/apparmor")
			h.write(restrict, "1\n")
			h.write("/etc/apparmor.d/rootlesskit", ubuntuRootlesskitProfile)
			h.write("/etc/apparmor.d/usr.bin.man", "/usr/bin/man {\n  /usr/bin/** rix,\n}\n")
		}, AppArmor{Enabled: true, RestrictUnprivilegedUserns: 1, RootlesskitProfiles: []string{"rootlesskit: /usr/bin/rootlesskit"}}, false},
		{"per-path profile, leftovers and subdirectories ignored", func(h *fakeOSHost) {
			h.mkdir("/sys/kernel/security/apparmor")
			h.write(restrict, "1")
			h.write("/etc/apparmor.d/usr.local.bin.rootlesskit", perPathProfile)
			h.write("/etc/apparmor.d/home.me.bin.rootlesskit.dpkg-old", strings.ReplaceAll(perPathProfile, "/usr/local", "/home/me"))
			h.write("/etc/apparmor.d/.hidden", strings.ReplaceAll(perPathProfile, "/usr/local", "/opt"))
			h.write("/etc/apparmor.d/local/usr.local.bin.rootlesskit", perPathProfile)
			h.symlink("usr.local.bin.rootlesskit", "/etc/apparmor.d/link")
		}, AppArmor{Enabled: true, RestrictUnprivilegedUserns: 1, RootlesskitProfiles: []string{"usr.local.bin.rootlesskit: /usr/local/bin/rootlesskit"}}, false},
		{"restriction off", func(h *fakeOSHost) {
			h.write(param, "Y")
			h.write(restrict, "0\n")
		}, AppArmor{Enabled: true, RestrictUnprivilegedUserns: 0}, false},
		{"restriction garbled", func(h *fakeOSHost) { h.write(restrict, "on\n") }, AppArmor{}, true},
		{"restriction empty", func(h *fakeOSHost) { h.write(restrict, "") }, AppArmor{}, true},
		{"restriction is a directory", func(h *fakeOSHost) { h.mkdir(restrict) }, AppArmor{}, true},
		{"restriction loops", func(h *fakeOSHost) { h.place("loop", restrict, "") }, AppArmor{}, true},
		{"/etc/apparmor.d is a file", func(h *fakeOSHost) { h.write("/etc/apparmor.d", "x") }, AppArmor{}, true},
		{"/sys/kernel/security is a file", func(h *fakeOSHost) { h.write("/sys/kernel/security", "x") }, AppArmor{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeOSHost(t)
			tt.setup(h)
			got := runSecurity(t, h.env()).AppArmor
			if tt.unknown {
				if got.Known || got.Error == "" {
					t.Fatalf("apparmor = %+v, want unknown with an error", got)
				}
				return
			}
			if !got.Known || !reflect.DeepEqual(got.Value, tt.want) {
				t.Fatalf("apparmor = %+v\nwant known %+v", got, tt.want)
			}
		})
	}
}

func TestProbeSecurityAppArmorUnreadableProfile(t *testing.T) {
	h := newFakeOSHost(t)
	h.write("/etc/apparmor.d/usr.bin.man", "/usr/bin/man {\n}\n")
	h.place("unreadable", "/etc/apparmor.d/usr.local.bin.rootlesskit", perPathProfile)
	got := runSecurity(t, h.env()).AppArmor
	if rootReads() {
		if !got.Known || len(got.Value.RootlesskitProfiles) != 1 {
			t.Fatalf("as root a mode-000 profile is readable: apparmor = %+v", got)
		}
		return
	}
	// The unreadable file may be the very profile the doctor asks about, so nothing is claimed.
	if got.Known || !strings.Contains(got.Error, "usr.local.bin.rootlesskit") {
		t.Fatalf("apparmor = %+v, want unknown naming the unreadable profile", got)
	}
}

func TestRootlesskitUsernsProfiles(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"Ubuntu's shipped profile", ubuntuRootlesskitProfile, []string{"/usr/bin/rootlesskit"}},
		{"quoted per-path template", perPathProfile, []string{"/usr/local/bin/rootlesskit"}},
		{"unquoted path, no profile keyword", "abi <abi/4.0>,\n/home/me/bin/rootlesskit flags=(unconfined) {\n  userns,\n}\n", []string{"/home/me/bin/rootlesskit"}},
		{"path with a space", "\"/opt/my tools/rootlesskit\" {\n userns,\n}\n", []string{"/opt/my tools/rootlesskit"}},
		{"alternation in the path", "profile rk /usr/{,local/}bin/rootlesskit flags=(unconfined) {\n  userns,\n}\n", []string{"/usr/{,local/}bin/rootlesskit"}},
		{"flag list with commas", "profile rk /usr/bin/rootlesskit flags=(attach_disconnected,mediate_deleted) {\n  userns,\n}\n", []string{"/usr/bin/rootlesskit"}},
		{"variable path", "@{bin} = /usr/local/bin\nprofile rk @{bin}/rootlesskit {\n  userns,\n}\n", []string{"/usr/local/bin/rootlesskit"}},
		{"undefined variable kept", "profile rk @{HOME}/bin/rootlesskit {\n  userns,\n}\n", []string{"@{HOME}/bin/rootlesskit"}},
		{"userns create with qualifiers", "/usr/bin/rootlesskit {\n  audit allow userns create,\n}\n", []string{"/usr/bin/rootlesskit"}},
		{"old #include syntax", "#include <tunables/global>\n/usr/bin/rootlesskit {\n  #include <abstractions/base>\n  userns,\n}\n", []string{"/usr/bin/rootlesskit"}},
		{"one line", "profile rk /usr/bin/rootlesskit { userns, }", []string{"/usr/bin/rootlesskit"}},
		{"two profiles in one file", "/usr/bin/rootlesskit {\n userns,\n}\n/usr/local/bin/rootlesskit {\n userns,\n}\n/usr/bin/other {\n userns,\n}\n",
			[]string{"/usr/bin/rootlesskit", "/usr/local/bin/rootlesskit"}},
		{"deny userns", "/usr/bin/rootlesskit {\n  deny userns,\n}\n", nil},
		{"no userns rule", "/usr/bin/rootlesskit flags=(unconfined) {\n  capability,\n}\n", nil},
		{"userns only commented out", "/usr/bin/rootlesskit {\n  # userns,\n}\n", nil},
		{"userns only in a hat", "/usr/bin/rootlesskit {\n  ^child {\n    userns,\n  }\n}\n", nil},
		{"userns rule with a target is not a plain grant", "/usr/bin/rootlesskit {\n  userns bogus extra,\n}\n", nil},
		{"block never closed", "/usr/bin/rootlesskit {\n  userns,\n", nil},
		{"name only, no attachment", "profile rootlesskit flags=(unconfined) {\n  userns,\n}\n", nil},
		{"another binary", "/usr/bin/rootlesskit-docker-proxy {\n  userns,\n}\n", nil},
		{"stray closing brace", "}\n/usr/bin/rootlesskit {\n  userns,\n}\n", []string{"/usr/bin/rootlesskit"}},
		{"garbage", "\x00\xff{{{,,,}}}\"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RootlesskitUsernsProfiles([]byte(tt.text))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProbeSecuritySeccomp(t *testing.T) {
	const p = "/proc/sys/kernel/seccomp/actions_avail"
	all := "kill_process kill_thread trap errno user_notif trace log allow\n"
	tests := []struct {
		kind, content string
		want          []string
		unknown       bool
	}{
		{"file", all, strings.Fields(all), false},
		{"file", "kill_process errno allow", []string{"kill_process", "errno", "allow"}, false},
		{"missing", "", []string{}, false}, // kernels before 4.14 list nothing
		{"empty", "", []string{}, false},
		{"file", "KILL {bad}", nil, true},
		{"binary", "", nil, true},
		{"dir", "", nil, true},
		{"loop", "", nil, true},
		{"unreadable", all, strings.Fields(all), !rootReads()},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			h := newFakeOSHost(t)
			h.place(tt.kind, p, tt.content)
			got := runSecurity(t, h.env()).SeccompActions
			if tt.unknown {
				if got.Known || got.Error == "" {
					t.Fatalf("seccomp = %+v, want unknown with an error", got)
				}
				return
			}
			if !got.Known || !reflect.DeepEqual(got.Value, tt.want) {
				t.Fatalf("seccomp = %+v, want known %q", got, tt.want)
			}
		})
	}
}

func TestProbeSecurityLive(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail")
	testenv.Require(t, err == nil, "/proc/sys/kernel/seccomp/actions_avail (Linux 4.14+ with seccomp) is needed")
	got := runSecurity(t, liveEnv(t))
	if !got.SeccompActions.Known || !reflect.DeepEqual(got.SeccompActions.Value, strings.Fields(string(b))) {
		t.Errorf("seccomp = %+v, want %q", got.SeccompActions, strings.Fields(string(b)))
	}
	_, selinuxErr := os.Stat("/sys/fs/selinux/enforce")
	if !got.SELinux.Known || got.SELinux.Value.Enabled != (selinuxErr == nil) {
		t.Errorf("selinux = %+v, but stat /sys/fs/selinux/enforce: %v", got.SELinux, selinuxErr)
	}
	if !got.AppArmor.Known {
		t.Errorf("apparmor unknown on the live host: %s", got.AppArmor.Error)
	}
}

func FuzzRootlesskitUsernsProfiles(f *testing.F) {
	f.Add([]byte(ubuntuRootlesskitProfile))
	f.Add([]byte(perPathProfile))
	f.Add([]byte("@{x} = /a\nprofile p @{x}/rootlesskit flags=(a,b) { ^h { userns, } audit allow userns create, }"))
	f.Add([]byte("\"/unterminated {"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range RootlesskitUsernsProfiles(b) {
			if !strings.HasSuffix(p, "rootlesskit") {
				t.Fatalf("reported %q, which does not end in rootlesskit", p)
			}
		}
	})
}
