package probe

import (
	"errors"
	"strings"
	"testing"
)

// Real --version outputs, copied from the programs (the ones installed on the test VM were run;
// the others are from their sources or release builds).
var versionOutputs = []struct {
	name, out, want string
}{
	{"containerd v2 release", "containerd github.com/containerd/containerd/v2 v2.4.2 1e8a6d2ea2b0c9c8f0fe1e0d1a6c4e6f4b9f6a1d\n", "2.4.2"},
	{"containerd v2 go install", "containerd github.com/containerd/containerd/v2 2.4.2+unknown \n", "2.4.2+unknown"},
	{"containerd Debian", "containerd containerd.io 1.6.20 2806fc1057397dbaeefbea0e4e17bddfbd388f38\n", "1.6.20"},
	{"containerd 1.7 Debian", "containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+b4\n", "1.7.24~ds1"},
	{"shim", "containerd-shim-runc-v2:\n  Version:  v2.4.2\n  Revision: 1e8a6d2e\n  Go version: go1.26.8\n\n", "2.4.2"},
	{"nerdctl", "nerdctl version 2.0.5\n", "2.0.5"},
	{"rootlesskit", "rootlesskit version 2.3.6\n", "2.3.6"},
	{"rootlesskit rc", "rootlesskit version 2.3.6-rc.1\n", "2.3.6-rc.1"},
	{"slirp4netns", "slirp4netns version 1.2.0\ncommit: 656041d45cfca7a4176f6b7eed9e4fe6c11e8383\nlibslirp: 4.7.0\nSLIRP_CONFIG_VERSION_MAX: 4\nlibseccomp: 2.5.4\n", "1.2.0"},
	{"slirp4netns old", "slirp4netns version 0.3.0\ncommit: f0c6dbc4e0c1f2c36e5dd8a7b4fba1ef1c6a8c7f\n", "0.3.0"},
	{"runc Debian", "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\nlibseccomp: 2.5.4\n", "1.1.5+ds1"},
	{"crun", "crun version 1.8.1\ncommit: f8a096be060b22ccd3d5f3ebe44108517fbf6c30\nrundir: /run/user/1000/crun\nspec: 1.0.0\n+SYSTEMD +SELINUX +APPARMOR +CAP +SECCOMP +EBPF +YAJL\n", "1.8.1"},
	{"buildkitd", "buildkitd github.com/moby/buildkit v0.13.2 2ae42e0c0c793d7d66b7a23424af6fd6c2f9c8f3\n", "0.13.2"},
	{"buildctl", "buildctl github.com/moby/buildkit v0.34.1 0b7a2d1e\n", "0.34.1"},
	{"fuse-overlayfs", "fuse-overlayfs: version 1.10\nFUSE library version 3.14.0\nusing FUSE kernel interface version 7.31\n", "1.10"},
	{"iperf3", "iperf 3.12 (cJSON 1.7.15)\nLinux host 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01) x86_64\n", "3.12"},
	{"iptables nft", "iptables v1.8.9 (nf_tables)\n", "1.8.9"},
	{"iptables legacy", "iptables v1.8.7 (legacy)\n", "1.8.7"},
	{"iptables old", "iptables v1.6.1\n", "1.6.1"},
	{"nsenter", "nsenter from util-linux 2.38.1\n", "2.38.1"},
	{"busybox nsenter", "BusyBox v1.35.0 (Debian 1:1.35.0-4+b3) multi-call binary.\n", "1.35.0"},
	{"systemd Debian", "systemd 252 (252.39-1~deb12u1)\n+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP\n", "252"},
	{"systemd Fedora", "systemd 256 (256.11-1.fc41)\n+PAM +AUDIT +SELINUX -APPARMOR +IMA\n", "256"},
	{"pasta", "pasta 2023_03_29.b10b983\nCopyright Red Hat\nGNU General Public License, version 2 or later\n", "2023_03_29.b10b983"},
	{"pasta Ubuntu", "pasta 0.0~git20240220.1e6f92b-1\n", "2024_02_20.1e6f92b"},
	{"pasta Fedora", "pasta 0^20241030.gee7d0b6-1.fc41.x86_64\nCopyright Red Hat\nGNU General Public License, version 2 or later\n", "2024_10_30.ee7d0b6"},
	{"fusermount3", "fusermount3 version: 3.14.0\n", "3.14.0"},
	{"stargz", "containerd-stargz-grpc github.com/containerd/stargz-snapshotter v0.15.1 d3b1f9a4\n", "0.15.1"},
	{"bypass4netns", "bypass4netns version 0.4.2\nlibseccomp: 2.5.4\n", "0.4.2"},
	{"bypass4netnsd", "bypass4netnsd version 0.4.2\n", "0.4.2"},
	{"dbus-daemon", "D-Bus Message Bus Daemon 1.14.10\nCopyright (C) 2002, 2003 Red Hat, Inc., CodeFactory AB, and others\n", "1.14.10"},
	{"vpnkit", "v0.5.0\n", "0.5.0"},
	{"CRLF", "nerdctl version 1.7.6\r\n", "1.7.6"},
}

func TestParseVersion(t *testing.T) {
	for _, tc := range versionOutputs {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseVersion(tc.out)
			if err != nil {
				t.Fatalf("ParseVersion(%q): %v", tc.out, err)
			}
			if got != tc.want {
				t.Errorf("ParseVersion(%q) = %q, want %q", tc.out, got, tc.want)
			}
		})
	}
}

func TestParseVersionNone(t *testing.T) {
	for _, out := range []string{
		"",
		"\n\n",
		// go install builds of bypass4netns leave pkg/version.Version at its default.
		"bypass4netns version <unknown>\n",
		"flag provided but not defined: -version\nUsage of containerd-fuse-overlayfs-grpc:\n",
		"commit: 656041d45cfca7a4176f6b7eed9e4fe6c11e8383",
		"go: go1.19.8",
		"\x00\xff\xfe",
	} {
		v, err := ParseVersion(out)
		if !errors.Is(err, ErrNoVersion) {
			t.Errorf("ParseVersion(%q) = %q, %v; want ErrNoVersion", out, v, err)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"2.0", "2.0.0", 0},
		{"v2.4.2", "2.4.2", 0},
		{"2.4.2", "2.0", 1},
		{"0.4.0", "0.10.0", -1},
		{"1.1.5+ds1", "1.1.5", 0},
		{"1.1.5+ds1", "1.1.4", 1},
		{"1.1.5+ds1", "1.1.6", -1},
		{"2.3.6-rc.1", "2.3.6", -1},
		{"2.3.6-rc.1", "2.3.5", 1},
		{"2.3.6-rc.2", "2.3.6-rc.10", -1},
		{"2.3.6-beta.1", "2.3.6-rc.1", -1},
		{"1.0~rc1", "1.0", -1},
		{"252.39-1", "252.39", 1},
		{"252.39-1~deb12u1", "252.39-2", -1},
		{"2023_03_29.b10b983", "2024_02_20.1e6f92b", -1},
		{"2026_05_07.1afd4ed", "2026_05_07.1afd4ed", 0},
		{"2024_10_30.ee7d0b6", "2024_05_10.7288448", 1},
		{"1.10", "1.9", 1},
		{"3.14.0", "3.14", 0},
		{"18446744073709551617.0", "18446744073709551616.0", 1},
		{"007", "7", 0},
	} {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v, min string
		want   bool
	}{
		{"2.0.5", "2.0", true},
		{"1.7.6", "2.0", false},
		{"1.2.0", "0.4.0", true},
		{"0.3.0", "0.4.0", false},
		{"v2.3.6", "2.0", true},
		{"2.3.0-rc.1", "2.3", false},
		{"1.1.5+ds1", "1.1", true},
		{"", "0.1", false},
		{"<unknown>", "0.1", false},
		{"252", "244", true},
		{"2023_03_29.b10b983", "2026_05_07.1afd4ed", false},
	} {
		if got := VersionAtLeast(tc.v, tc.min); got != tc.want {
			t.Errorf("VersionAtLeast(%q, %q) = %v, want %v", tc.v, tc.min, got, tc.want)
		}
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, tc := range versionOutputs {
		f.Add(tc.out)
	}
	f.Add("bypass4netns version <unknown>\n")
	f.Add("((((1.2)")
	f.Add("x 1.2.3-")
	f.Fuzz(func(t *testing.T, out string) {
		v, err := ParseVersion(out)
		if err != nil {
			if v != "" {
				t.Fatalf("ParseVersion(%q) returned %q with error %v", out, v, err)
			}
			return
		}
		if v == "" || strings.ContainsAny(v, " \t\n") {
			t.Fatalf("ParseVersion(%q) = %q: empty or contains space", out, v)
		}
		// Only a rewritten passt snapshot may differ from the text; its commit is still there.
		if !strings.Contains(out, v) {
			_, commit, _ := strings.Cut(v, ".")
			if !verIsDate(v) || commit == "" || !strings.Contains(out, commit) {
				t.Fatalf("ParseVersion(%q) = %q, which is not in the output", out, v)
			}
		}
		if CompareVersions(v, v) != 0 {
			t.Fatalf("CompareVersions(%q, itself) != 0", v)
		}
	})
}

func FuzzCompareVersions(f *testing.F) {
	f.Add("2.0", "2.0.0")
	f.Add("1.1.5+ds1", "1.1.5")
	f.Add("2.3.6-rc.1", "v2.3.6")
	f.Add("252.39-1~deb12u1", "252")
	f.Add("2023_03_29.b10b983", "0.0~git20240220.1e6f92b-1")
	f.Add("1.0+a-b~c", "1.0-+~")
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if ab != -ba {
			t.Fatalf("CompareVersions(%q, %q) = %d but reversed = %d", a, b, ab, ba)
		}
		if ab < -1 || ab > 1 {
			t.Fatalf("CompareVersions(%q, %q) = %d, want -1, 0 or 1", a, b, ab)
		}
		if CompareVersions(a, a) != 0 {
			t.Fatalf("CompareVersions(%q, itself) != 0", a)
		}
		if VersionAtLeast(a, b) && VersionAtLeast(b, a) && ab != 0 {
			t.Fatalf("%q and %q are each at least the other but compare %d", a, b, ab)
		}
	})
}
