package probe

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckMaxUserNS(t *testing.T) {
	runCheckCases(t, "VS-USERNS-001", []checkCase{
		{name: "plenty", want: StatusOK, title: "63331"},
		{name: "1024 is enough", want: StatusOK, mod: func(f *Facts) { f.UserNS.MaxUserNamespaces = Known(1024) }},
		{name: "low", want: StatusWarn, title: "only 1023", mod: func(f *Facts) { f.UserNS.MaxUserNamespaces = Known(1023) }},
		{name: "zero (RHEL 7)", want: StatusFail, title: "is 0", mod: func(f *Facts) { f.UserNS.MaxUserNamespaces = Known(0) }},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.UserNS.MaxUserNamespaces = Unknown[int](errors.New("garbled")) }},
	})
	f := healthyFacts()
	f.UserNS.MaxUserNamespaces = Known(0)
	if x := runCheck(t, "VS-USERNS-001", f).Fix; !strings.Contains(strings.Join(x.Root, "\n"), "user.max_user_namespaces=28633") {
		t.Errorf("fix = %+v", x)
	}
}

func TestCheckUsernsClone(t *testing.T) {
	runCheckCases(t, "VS-USERNS-002", []checkCase{
		{name: "allowed", want: StatusOK},
		{name: "denied (Debian 10)", want: StatusFail, title: "is 0", mod: func(f *Facts) { f.UserNS.UnprivilegedClone = Known(0) }},
		{name: "absent", want: StatusSkip, title: "does not apply", mod: func(f *Facts) { f.UserNS.UnprivilegedClone = Known(-1) }},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.UserNS.UnprivilegedClone = Unknown[int](errors.New("garbled")) }},
	})
}

func TestCheckAppArmor(t *testing.T) {
	restrict := func(profiles ...string) func(*Facts) {
		return func(f *Facts) {
			withFamily(f, "ubuntu", "debian")
			f.Security.AppArmor = Known(AppArmor{Enabled: true, RestrictUnprivilegedUserns: 1, RootlesskitProfiles: profiles})
		}
	}
	runCheckCases(t, "VS-APPARMOR-001", []checkCase{
		{name: "no such sysctl", want: StatusSkip, title: "only Ubuntu 23.10"},
		{name: "restriction off", want: StatusOK, title: "is 0", mod: func(f *Facts) {
			f.Security.AppArmor = Known(AppArmor{Enabled: true, RestrictUnprivilegedUserns: 0})
		}},
		{name: "on, rootlesskit in /usr/bin", want: StatusOK, title: "Ubuntu's rootlesskit profile", mod: func(f *Facts) {
			restrict()(f)
			setBinAt(f, "rootlesskit", "/usr/bin/rootlesskit", "2.0.2")
		}},
		{name: "on, no profile for ~/.local/bin", want: StatusFail, title: "no profile allows them to /home/alice/.local/bin/rootlesskit", mod: restrict("rootlesskit: /usr/bin/rootlesskit")},
		{name: "on, profile for the path", want: StatusOK, title: "a profile allows them to /home/alice/.local/bin/rootlesskit", mod: restrict("home.alice.local.rk: /home/alice/.local/bin/rootlesskit")},
		{name: "on, not installed yet", want: StatusWarn, title: "not installed yet", mod: func(f *Facts) {
			restrict()(f)
			dropBin(f, "rootlesskit")
		}},
		{name: "on, rootlesskit unknown", want: StatusSkip, mod: func(f *Facts) {
			restrict()(f)
			unknownBin(f, "rootlesskit")
		}},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.Security.AppArmor = Unknown[AppArmor](errors.New("unreadable")) }},
	})

	// The fix writes the profile of rootlesscontaine.rs for the real path, named after it.
	f := healthyFacts()
	restrict()(f)
	setBinAt(f, "rootlesskit", "/usr/local/bin/rootlesskit", "2.3.5")
	x := runCheck(t, "VS-APPARMOR-001", f).Fix
	script := strings.Join(x.Root, "\n")
	for _, want := range []string{
		"cat > /etc/apparmor.d/usr.local.bin.rootlesskit <<'EOF'",
		"abi <abi/4.0>,",
		"include <tunables/global>",
		"/usr/local/bin/rootlesskit flags=(unconfined) {",
		"userns,",
		"include if exists <local/usr.local.bin.rootlesskit>",
		"systemctl restart apparmor.service",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("AppArmor fix lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(fixText(x), "Written for") {
		t.Errorf("the path is known, so no placeholder note: %s", fixText(x))
	}
}

func TestApparmorProfileName(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/local/bin/rootlesskit":         "usr.local.bin.rootlesskit",
		"/home/alice/.local/bin/rootlesskit": "home.alice..local.bin.rootlesskit",
		"/opt//nerdctl/bin/rootlesskit":      "opt.nerdctl.bin.rootlesskit",
	} {
		if got := apparmorProfileName(in); got != want {
			t.Errorf("apparmorProfileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckSubIDs(t *testing.T) {
	for _, id := range []string{"VS-SUBID-001", "VS-SUBID-002"} {
		set := func(rs ...IDRange) func(*Facts) {
			return func(f *Facts) {
				x := Known(rs, Evidence{Kind: "file", Source: "/etc/sub?id"})
				if id == "VS-SUBID-001" {
					f.UserNS.SubUID = x
				} else {
					f.UserNS.SubGID = x
				}
			}
		}
		t.Run(id, func(t *testing.T) {
			runCheckCases(t, id, []checkCase{
				{name: "65536", want: StatusOK, title: "65536 subordinate"},
				{name: "two ranges adding up", want: StatusOK, title: "100000–132767, 200000–232767", mod: set(IDRange{100000, 32768}, IDRange{200000, 32768})},
				{name: "none", want: StatusFail, title: "has no range for alice", mod: set()},
				{name: "short", want: StatusFail, title: "only 65535", mod: set(IDRange{100000, 65535})},
				{name: "unknown", want: StatusSkip, mod: func(f *Facts) {
					x := Unknown[[]IDRange](errors.New("parse: garbled"))
					f.UserNS.SubUID, f.UserNS.SubGID = x, x
				}},
			})
		})
	}
	f := healthyFacts()
	f.UserNS.SubGID = Known([]IDRange{})
	x := runCheck(t, "VS-SUBID-002", f).Fix
	if len(x.Root) != 1 || !strings.Contains(x.Root[0], "usermod --add-subgids") || !strings.Contains(x.Root[0], "/etc/subgid") || !strings.HasSuffix(x.Root[0], " alice") {
		t.Errorf("subgid fix = %q", x.Root)
	}
}

// TestSubIDFixPicksFreeRange runs the fix's range arithmetic against sample files: the new range
// must start after every range already given out.
func TestSubIDFixPicksFreeRange(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	if _, err := exec.LookPath("awk"); err != nil {
		t.Skip("no awk")
	}
	x := fixSubIDs("subuid")(newCheckHost(healthyFacts()))
	dir := t.TempDir()
	for _, tc := range []struct {
		file string // contents; "" means the file does not exist
		want string
	}{
		{"", "100000-165535"},
		{"bob:100000:65536\n", "165536-231071"},
		{"bob:100000:65536\ncarol:300000:65536\n", "365536-431071"},
		{"root:10:5\n", "100000-165535"},
	} {
		p := filepath.Join(dir, "subuid")
		cmd := strings.ReplaceAll(x.Root[0], "/etc/subuid", p)
		cmd = strings.Replace(cmd, "usermod ", "echo ", 1)
		if tc.file != "" {
			if err := os.WriteFile(p, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out, err := exec.Command(sh, "-c", cmd).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if got := strings.TrimSpace(string(out)); got != "--add-subuids "+tc.want+" alice" {
			t.Errorf("with %q: %q, want range %s", tc.file, got, tc.want)
		}
	}
}

func TestCheckIDMapper(t *testing.T) {
	for _, tc := range []struct {
		id, name, capName string
		set               func(f *Facts, m Fact[IDMapper])
	}{
		{"VS-IDMAP-001", "newuidmap", "cap_setuid", func(f *Facts, m Fact[IDMapper]) { f.UserNS.NewUIDMap = m }},
		{"VS-IDMAP-002", "newgidmap", "cap_setgid", func(f *Facts, m Fact[IDMapper]) { f.UserNS.NewGIDMap = m }},
	} {
		p := "/usr/bin/" + tc.name
		set := func(m IDMapper) func(*Facts) {
			return func(f *Facts) { tc.set(f, Known(m, Evidence{Kind: "file", Source: p})) }
		}
		t.Run(tc.id, func(t *testing.T) {
			runCheckCases(t, tc.id, []checkCase{
				{name: "setuid (Debian)", want: StatusOK, title: "is setuid root"},
				{name: "file caps (Fedora)", want: StatusOK, title: tc.capName + "=ep", mod: set(IDMapper{Path: p, Found: true, Caps: tc.capName + "=ep"})},
				{name: "missing", want: StatusFail, title: "is not installed", mod: set(IDMapper{})},
				{name: "unprivileged", want: StatusFail, title: "neither setuid root nor", mod: set(IDMapper{Path: p, Found: true})},
				{name: "wrong cap", want: StatusFail, title: "lacks " + tc.capName, mod: set(IDMapper{Path: p, Found: true, Caps: "cap_net_admin=ep"})},
				{name: "unknown", want: StatusSkip, mod: func(f *Facts) { tc.set(f, Unknown[IDMapper](errors.New("stat: permission denied"))) }},
			})
		})
	}
	// Installed but unprivileged: reinstalling restores the mode; missing: install.
	f := withFamily(healthyFacts(), "fedora", "fedora")
	f.UserNS.NewUIDMap = Known(IDMapper{Path: "/usr/bin/newuidmap", Found: true})
	if x := runCheck(t, "VS-IDMAP-001", f).Fix; strings.Join(x.Root, ";") != "dnf reinstall -y shadow-utils" || !strings.Contains(fixText(x), "setcap cap_setuid=ep /usr/bin/newuidmap") {
		t.Errorf("Fedora fix for an unprivileged newuidmap = %+v", x)
	}
	f = healthyFacts()
	f.UserNS.NewGIDMap = Known(IDMapper{})
	if x := runCheck(t, "VS-IDMAP-002", f).Fix; strings.Join(x.Root, ";") != "apt-get update;apt-get install -y uidmap" {
		t.Errorf("Debian fix for a missing newgidmap = %+v", x.Root)
	}
}

func TestFileCapGrants(t *testing.T) {
	tests := []struct {
		caps string
		want bool
	}{
		{"cap_setuid=ep", true},
		{"cap_setgid,cap_setuid=ep", true},
		{"cap_setuid=p", false},   // permitted but not effective: newuidmap is not capability-aware
		{"cap_setuidx=ep", false}, // a name that only starts the same
		{"cap_setgid=ep", false},
		{"cap_setuid=ep [rootid=100000]", false}, // only valid inside that user namespace
		{"", false},
		{"garbage", false},
		{"cap_chown=ep cap_setuid=eip", true},
	}
	for _, tt := range tests {
		if got := fileCapGrants(tt.caps, "cap_setuid"); got != tt.want {
			t.Errorf("fileCapGrants(%q) = %v, want %v", tt.caps, got, tt.want)
		}
	}
}
