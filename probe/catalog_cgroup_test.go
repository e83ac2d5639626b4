package probe

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckCgroupVersion(t *testing.T) {
	runCheckCases(t, "VS-CGROUP-001", []checkCase{
		{name: "v2", want: StatusOK},
		{name: "hybrid (this project's VM)", want: StatusWarn, title: "--memory, --cpus and --pids-limit are ignored", mod: func(f *Facts) { f.Cgroup.Version = Known("hybrid") }},
		{name: "v1", want: StatusWarn, title: "nerdctl stats", mod: func(f *Facts) { f.Cgroup.Version = Known("v1") }},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.Cgroup.Version = Unknown[string](errors.New("no cgroup filesystem")) }},
	})
}

func TestCheckDelegation(t *testing.T) {
	delegated := func(cs ...string) func(*Facts) {
		return func(f *Facts) {
			f.Cgroup.Delegated = Known(cs, Evidence{Kind: "file", Source: "cgroup.controllers", Excerpt: strings.Join(cs, " ")})
		}
	}
	runCheckCases(t, "VS-CGROUP-002", []checkCase{
		{name: "all five", want: StatusOK, title: "cpuset cpu io memory pids"},
		{name: "systemd default before 252", want: StatusWarn, title: "Not delegated to alice: cpu, cpuset, io", mod: delegated("memory", "pids")},
		{name: "no pids", want: StatusWarn, title: "--pids-limit cannot be used", mod: delegated("cpu", "cpuset", "io", "memory")},
		{name: "root lacks cpuset", want: StatusOK, title: "the host offers no cpuset controller", mod: func(f *Facts) {
			delegated("cpu", "io", "memory", "pids")(f)
			f.Cgroup.Controllers = Known([]string{"cpu", "io", "memory", "pids"})
		}},
		{name: "v1", want: StatusSkip, title: "see VS-CGROUP-001", mod: func(f *Facts) { f.Cgroup.Version = Known("v1") }},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.Cgroup.Delegated = Unknown[[]string](errors.New("no user@1000.service")) }},
	})
	f := healthyFacts()
	delegated("memory", "pids")(f)
	f.Systemd.Version = Known(239)
	x := runCheck(t, "VS-CGROUP-002", f).Fix
	text := fixText(x)
	for _, want := range []string{"/etc/systemd/system/user@.service.d/delegate.conf", "Delegate=cpu cpuset io memory pids", "systemctl daemon-reload", "since systemd 252", "systemd 239, older than 244"} {
		if !strings.Contains(text, want) {
			t.Errorf("delegation fix lacks %q:\n%s", want, text)
		}
	}
}
