package probe

import (
	"strings"
	"testing"
)

func TestCheckRequiredBinaries(t *testing.T) {
	for id, name := range map[string]string{
		"VS-BIN-001": "containerd",
		"VS-BIN-002": "rootlesskit",
		"VS-BIN-003": "nerdctl",
		"VS-BIN-005": "containerd-rootless.sh",
		"VS-BIN-006": "nsenter",
	} {
		t.Run(id, func(t *testing.T) {
			runCheckCases(t, id, []checkCase{
				{name: "installed", want: StatusOK, title: name},
				{name: "missing", want: StatusFail, title: name + " is not installed", mod: func(f *Facts) { dropBin(f, name) }},
				{name: "unknown", want: StatusSkip, mod: func(f *Facts) { unknownBin(f, name) }},
				{name: "never looked for", want: StatusSkip, title: "was not looked for", mod: func(f *Facts) { delete(f.Binaries, name) }},
			})
		})
	}
	runCheckCases(t, "VS-BIN-002", []checkCase{
		{name: "0.10", want: StatusOK, mod: func(f *Facts) { setBin(f, "rootlesskit", "0.10.0") }},
		{name: "0.9", want: StatusFail, title: "rootlesskit 0.9.5 at /home/alice/.local/bin/rootlesskit is older than 0.10", mod: func(f *Facts) { setBin(f, "rootlesskit", "0.9.5") }},
		{name: "unknown version", want: StatusOK, mod: func(f *Facts) { setBin(f, "rootlesskit", "") }},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { unknownBin(f, "rootlesskit") }},
	})
}

func TestFixStackBinary(t *testing.T) {
	f := healthyFacts()
	dropBin(f, "containerd")
	x := runCheck(t, "VS-BIN-001", f).Fix
	if !strings.Contains(strings.Join(x.User, "\n"), "tar -C ~/.local -xzf nerdctl-full-<version>-linux-amd64.tar.gz") {
		t.Errorf("fix = %+v", x.User)
	}
	if len(x.Root) != 0 {
		t.Errorf("nerdctl-full unpacks into ~/.local without root: %+v", x.Root)
	}
	f.OS.Arch = Known("aarch64")
	if x := runCheck(t, "VS-BIN-001", f).Fix; !strings.Contains(strings.Join(x.User, "\n"), "linux-arm64") {
		t.Errorf("arm64 tarball: %+v", x.User)
	}
}

func TestCheckRuntime(t *testing.T) {
	runCheckCases(t, "VS-BIN-004", []checkCase{
		{name: "runc", want: StatusOK, title: "runc 1.3.0"},
		{name: "crun only", want: StatusOK, title: "crun 1.14", mod: func(f *Facts) {
			dropBin(f, "runc")
			setBin(f, "crun", "1.14")
		}},
		{name: "neither", want: StatusFail, title: "Neither runc nor crun", mod: func(f *Facts) { dropBin(f, "runc") }},
		{name: "runc missing, crun unknown", want: StatusSkip, title: "whether crun is installed is unknown", mod: func(f *Facts) {
			dropBin(f, "runc")
			unknownBin(f, "crun")
		}},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) {
			unknownBin(f, "runc")
			unknownBin(f, "crun")
		}},
	})
}
