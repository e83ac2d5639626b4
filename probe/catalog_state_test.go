package probe

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCheckRunNRI(t *testing.T) {
	nri := func(f *Facts) {
		f.State.RunNRI = Known(true, Evidence{Kind: "file", Source: "/run/nri", Excerpt: "directory"})
	}
	runCheckCases(t, "VS-NRI-001", []checkCase{
		{name: "absent", want: StatusOK},
		{name: "present, containerd 2", want: StatusFail, title: "bind: permission denied", mod: nri},
		{name: "present, containerd 1.7", want: StatusWarn, title: "rootless containerd 2.x", mod: func(f *Facts) {
			nri(f)
			setBin(f, "containerd", "1.7.27")
		}},
		{name: "present, nerdctl with the fix", want: StatusOK, title: "removes the symlink", mod: func(f *Facts) {
			nri(f)
			setBin(f, "nerdctl", "2.4.0")
		}},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.State.RunNRI = Unknown[bool](errors.New("stat: permission denied")) }},
	})
}

func TestCheckNerdctlConfig(t *testing.T) {
	set := func(c ConfigFile) func(*Facts) {
		return func(f *Facts) {
			c.Path = "/home/alice/.config/nerdctl/nerdctl.toml"
			f.State.NerdctlConfig = Known(c, Evidence{Kind: "file", Source: c.Path})
		}
	}
	runCheckCases(t, "VS-CONFIG-001", []checkCase{
		{name: "absent", want: StatusOK, title: "nerdctl uses its defaults"},
		{name: "valid", want: StatusOK, title: "is valid", mod: set(ConfigFile{Exists: true, Valid: true, Snapshotter: "native"})},
		{name: "syntax error", want: StatusFail, title: "does not parse (toml: line 3", mod: set(ConfigFile{Exists: true, ParseError: "toml: line 3: expected '='"})},
		{name: "unknown keys", want: StatusFail, title: "keys nerdctl rejects: snapshoter", mod: set(ConfigFile{Exists: true, Valid: true, UnknownKeys: []string{"snapshoter"}})},
		{name: "a containerd config", want: StatusFail, title: "looks like containerd's config.toml", mod: set(ConfigFile{Exists: true, Valid: true, UnknownKeys: []string{"version", "plugins"}})},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.State.NerdctlConfig = Unknown[ConfigFile](errors.New("$HOME unknown")) }},
		{name: "newer keys with nerdctl 2.1.6", want: StatusOK, title: "is valid", mod: set(ConfigFile{Exists: true, Valid: true, NewerKeys: []string{"dns"}})},
		{name: "newer keys with nerdctl 2.0.5", want: StatusFail, title: "keys nerdctl 2.0.5 does not know yet (dns)", mod: func(f *Facts) {
			set(ConfigFile{Exists: true, Valid: true, NewerKeys: []string{"dns"}})(f)
			b := f.Binaries["nerdctl"]
			b.Value.Version = "2.0.5"
			f.Binaries["nerdctl"] = b
		}},
		{name: "newer keys, nerdctl version unknown", want: StatusWarn, title: "nerdctl's version is unknown", mod: func(f *Facts) {
			set(ConfigFile{Exists: true, Valid: true, NewerKeys: []string{"cdi_spec_dirs"}})(f)
			f.Binaries["nerdctl"] = Unknown[Binary](errors.New("hung"))
		}},
	})
}

func TestParseNerdctlConfigNewerKeys(t *testing.T) {
	c := ParseNerdctlConfig([]byte("snapshotter = \"native\"\ndns = [\"1.1.1.1\"]\n"))
	if !c.Valid || len(c.UnknownKeys) != 0 || len(c.NewerKeys) != 1 || c.NewerKeys[0] != "dns" {
		t.Errorf("ParseNerdctlConfig = %+v", c)
	}
	for _, k := range nerdctl20ConfigKeys {
		if slices.Contains(nerdctlLaterConfigKeys, k) {
			t.Errorf("%s is in both key lists", k)
		}
	}
}

func TestCheckContainerdConfig(t *testing.T) {
	set := func(c ConfigFile) func(*Facts) {
		return func(f *Facts) {
			c.Path = "/home/alice/.config/containerd/config.toml"
			f.State.ContainerdConfig = Known(c, Evidence{Kind: "file", Source: c.Path})
		}
	}
	runCheckCases(t, "VS-CONFIG-002", []checkCase{
		{name: "version 3", want: StatusOK, title: "config version 3"},
		{name: "absent", want: StatusOK, title: "containerd uses its defaults", mod: set(ConfigFile{})},
		{name: "broken", want: StatusFail, title: "containerd will not start", mod: set(ConfigFile{Exists: true, ParseError: "toml: table proxy_plugins already exists"})},
		{name: "no version", want: StatusWarn, title: "no version line", mod: set(ConfigFile{Exists: true, Valid: true})},
		{name: "version 1", want: StatusWarn, title: "config version 1", mod: set(ConfigFile{Exists: true, Valid: true, Version: 1})},
		{name: "version 3 with containerd 1.7", want: StatusFail, title: "containerd 1.7.27 cannot read", mod: func(f *Facts) {
			set(ConfigFile{Exists: true, Valid: true, Version: 3})(f)
			setBin(f, "containerd", "1.7.27")
		}},
		{name: "version 2 with containerd 1.7", want: StatusOK, mod: func(f *Facts) {
			set(ConfigFile{Exists: true, Valid: true, Version: 2})(f)
			setBin(f, "containerd", "1.7.27")
		}},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.State.ContainerdConfig = Unknown[ConfigFile](errors.New("unreadable")) }},
	})
	f := healthyFacts()
	set(ConfigFile{Exists: true, Valid: true})(f)
	if x := runCheck(t, "VS-CONFIG-002", f).Fix; !strings.Contains(strings.Join(x.User, "\n"), "config migrate") {
		t.Errorf("unversioned config: fix = %+v", x.User)
	}
	set(ConfigFile{Exists: true, ParseError: "bad"})(f)
	if x := runCheck(t, "VS-CONFIG-002", f).Fix; strings.Contains(strings.Join(x.User, "\n"), "config migrate") {
		t.Errorf("containerd cannot migrate a file it cannot parse: %+v", x.User)
	}
}

func TestCheckRootlessKitState(t *testing.T) {
	set := func(s RootlessKitState) func(*Facts) {
		return func(f *Facts) {
			s.StateDir = "/run/user/1000/containerd-rootless"
			f.State.RootlessKit = Known(s, Evidence{Kind: "file", Source: s.StateDir + "/child_pid"})
		}
	}
	runCheckCases(t, "VS-STATE-001", []checkCase{
		{name: "running", want: StatusOK, title: "child pid 4242"},
		{name: "not running", want: StatusOK, title: "not running", mod: set(RootlessKitState{})},
		{name: "stale", want: StatusWarn, title: "child_pid 999 is not running", mod: set(RootlessKitState{Exists: true, ChildPID: 999})},
		{name: "no child_pid", want: StatusWarn, title: "without a child_pid", mod: set(RootlessKitState{Exists: true})},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.State.RootlessKit = Unknown[RootlessKitState](errors.New("XDG_RUNTIME_DIR unset")) }},
	})
	f := healthyFacts()
	set(RootlessKitState{Exists: true, ChildPID: 999})(f)
	if x := runCheck(t, "VS-STATE-001", f).Fix; strings.Join(x.User, ";") != "rm -rf /run/user/1000/containerd-rootless" {
		t.Errorf("fix = %+v", x.User)
	}
}
