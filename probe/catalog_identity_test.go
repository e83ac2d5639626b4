package probe

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCheckNotRoot(t *testing.T) {
	runCheckCases(t, "VS-ROOT-001", []checkCase{
		{name: "ordinary user", want: StatusOK, title: "Running as alice (uid 1000)"},
		{name: "root", want: StatusFail, title: "Running as root", mod: func(f *Facts) {
			f.Identity.Root, f.Identity.UID, f.Identity.User = Known(true), Known(0), Known("root")
		}},
		{name: "root through sudo", want: StatusFail, title: "through sudo from bob", mod: func(f *Facts) {
			f.Identity.Root, f.Identity.UID, f.Identity.User = Known(true), Known(0), Known("root")
			f.Identity.SudoUser = Known("bob")
		}},
		{name: "unknown", want: StatusSkip, title: "unknown", mod: func(f *Facts) {
			f.Identity.Root = Unknown[bool](errors.New("no user"))
		}},
	})
	f := healthyFacts()
	f.Identity.Root, f.Identity.SudoUser = Known(true), Known("bob")
	if r := runCheck(t, "VS-ROOT-001", f); !strings.Contains(r.Fix.Summary, "bob without sudo") {
		t.Errorf("fix after sudo = %q", r.Fix.Summary)
	}
}

func TestCheckRuntimeDir(t *testing.T) {
	rd := func(mod func(*RuntimeDir)) func(*Facts) {
		return func(f *Facts) {
			d := f.Identity.XDGRuntimeDir.Value
			mod(&d)
			f.Identity.XDGRuntimeDir = Known(d, Evidence{Kind: "env", Source: "XDG_RUNTIME_DIR", Excerpt: d.Path})
		}
	}
	runCheckCases(t, "VS-XDG-001", []checkCase{
		{name: "fine", want: StatusOK, title: "/run/user/1000"},
		{name: "unset", want: StatusFail, title: "XDG_RUNTIME_DIR is not set", mod: rd(func(d *RuntimeDir) { *d = RuntimeDir{} })},
		{name: "missing", want: StatusFail, title: "does not exist", mod: rd(func(d *RuntimeDir) { d.Exists, d.Owned, d.Writable, d.Mode = false, false, false, "" })},
		{name: "a file", want: StatusFail, title: "is not a directory", mod: rd(func(d *RuntimeDir) { d.Exists, d.Owned, d.Writable, d.Mode = false, true, false, "0644" })},
		{name: "another user's", want: StatusFail, title: "belongs to another user's session (uid 1001)", mod: rd(func(d *RuntimeDir) { d.Path, d.Owned, d.Writable = "/run/user/1001", false, false })},
		{name: "not owned", want: StatusFail, title: "is not owned by alice", mod: rd(func(d *RuntimeDir) { d.Path, d.Owned = "/tmp/rt", false })},
		{name: "not writable", want: StatusFail, title: "not writable by alice (mode 0500)", mod: rd(func(d *RuntimeDir) { d.Writable, d.Mode = false, "0500" })},
		{name: "after sudo", want: StatusFail, title: "came from sudo (SUDO_USER=bob)", mod: func(f *Facts) {
			rd(func(d *RuntimeDir) { *d = RuntimeDir{} })(f)
			f.Identity.SudoUser = Known("bob")
		}},
		{name: "unknown", want: StatusSkip, title: "unknown: stat", mod: func(f *Facts) {
			f.Identity.XDGRuntimeDir = Unknown[RuntimeDir](errors.New("stat /run/user/1000: permission denied"))
		}},
	})
}

func TestFixRuntimeDir(t *testing.T) {
	f := healthyFacts()
	f.Identity.XDGRuntimeDir = Known(RuntimeDir{})
	plain := runCheck(t, "VS-XDG-001", f).Fix
	if !slices.Contains(plain.Root, "loginctl enable-linger alice") {
		t.Errorf("fix with systemd = %+v", plain)
	}
	if strings.Contains(fixText(plain), "su and sudo") {
		t.Errorf("the su/sudo explanation belongs only to a shell that came from sudo: %s", fixText(plain))
	}
	f.Identity.SudoUser = Known("bob")
	if sudo := runCheck(t, "VS-XDG-001", f).Fix; !strings.Contains(fixText(sudo), "su and sudo start no pam_systemd login session") {
		t.Errorf("fix after sudo lacks the explanation: %s", fixText(sudo))
	}
	// Without systemd nothing makes /run/user/UID: the fix makes it by hand, for this uid.
	f.Systemd.PID1 = Known(false)
	noInit := runCheck(t, "VS-XDG-001", f).Fix
	if !slices.Contains(noInit.Root, "chown alice: /run/user/1000") || slices.ContainsFunc(noInit.Root, func(s string) bool { return strings.Contains(s, "loginctl") }) {
		t.Errorf("fix without systemd = %+v", noInit.Root)
	}
}

func TestIsUbuntu(t *testing.T) {
	for _, tc := range []struct {
		d    Distro
		want bool
	}{
		{Distro{ID: "ubuntu"}, true},
		{Distro{ID: "linuxmint", IDLike: []string{"ubuntu", "debian"}}, true},
		{Distro{ID: "debian"}, false},
		{Distro{ID: "fedora"}, false},
	} {
		if got := isUbuntu(tc.d); got != tc.want {
			t.Errorf("isUbuntu(%+v) = %v", tc.d, got)
		}
	}
}
