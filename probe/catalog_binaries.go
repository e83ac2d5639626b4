package probe

import (
	"fmt"
	"strings"
)

// binaryChecks are about the programs rootless containerd is made of.
var binaryChecks = []Check{
	{
		ID:    "VS-BIN-001",
		Title: "containerd is installed",
		Why:   "containerd is the daemon that runs the containers; containerd-rootless.sh starts it inside RootlessKit's namespaces.",
		Doc:   docContainerd,
		run:   checkRequiredBinary("containerd", ""),
		fix:   fixStackBinary("containerd"),
	},
	{
		ID:    "VS-BIN-002",
		Title: "rootlesskit is installed (0.10 or newer)",
		Why:   "RootlessKit creates the user, mount and network namespaces rootless containerd runs in; containerd-rootless.sh needs 0.10 or newer and recommends 3.0.",
		Doc:   docContainerd,
		run:   checkRequiredBinary("rootlesskit", "0.10.0"),
		fix:   fixStackBinary("rootlesskit"),
	},
	{
		ID:    "VS-BIN-003",
		Title: "nerdctl is installed",
		Why:   "nerdctl is the command line that reaches rootless containerd inside RootlessKit's namespaces; it also ships containerd-rootless.sh.",
		Doc:   docNerdctlRL,
		run:   checkRequiredBinary("nerdctl", ""),
		fix:   fixStackBinary("nerdctl"),
	},
	{
		ID:    "VS-BIN-004",
		Title: "An OCI runtime (runc or crun) is installed",
		Why:   "containerd starts every container through an OCI runtime; without runc or crun no container can start.",
		Doc:   docContainerd,
		run:   checkRuntime,
		fix:   fixRuntime,
	},
	{
		ID:    "VS-BIN-005",
		Title: "containerd-rootless.sh is installed",
		Why:   "containerd-rootless.sh starts RootlessKit with the right flags and then containerd inside it; the setup tool and virt-setup both run it.",
		Doc:   docNerdctlRL,
		run:   checkRequiredBinary("containerd-rootless.sh", ""),
		fix:   fixStackBinary("containerd-rootless.sh"),
	},
	{
		ID:    "VS-BIN-006",
		Title: "nsenter is installed",
		Why:   "nerdctl re-executes itself through nsenter to enter RootlessKit's namespaces for almost every command, and the add-on services start through it.",
		Doc:   docNerdctlRL,
		run:   checkRequiredBinary("nsenter", ""),
		fix:   fixNsenter,
	},
}

// checkRequiredBinary fails when a program the setup cannot do without is missing, or older than min.
func checkRequiredBinary(name, min string) func(*Facts, checkHost) Result {
	return func(f *Facts, h checkHost) Result {
		b := h.bin(name)
		if !b.Known {
			return unknownResult("Whether "+name+" is installed", b)
		}
		ev := factLines(b)
		if !b.Value.Found {
			return Result{Status: StatusFail, Title: name + " is not installed", Evidence: ev}
		}
		if min != "" && h.below(name, min) {
			return Result{Status: StatusFail, Title: fmt.Sprintf("%s is older than %s", binaryLabel(b.Value), strings.TrimSuffix(min, ".0")), Evidence: ev}
		}
		return Result{Status: StatusOK, Title: binaryLabel(b.Value) + " is installed", Evidence: ev}
	}
}

// tarballArch is the architecture name of nerdctl's release tarballs.
func tarballArch(f *Facts) string {
	if a := f.OS.Arch; a.Known {
		switch a.Value {
		case "x86_64", "amd64":
			return "amd64"
		case "aarch64", "arm64":
			return "arm64"
		}
		if a.Value != "" {
			return a.Value
		}
	}
	return "<arch>"
}

// fixStackBinary installs the nerdctl-full bundle, which holds containerd, RootlessKit, nerdctl,
// runc, the CNI plugins and both rootless scripts at versions that work together; distro packages
// are often too old (Debian 12: RootlessKit 1.1.0, containerd 1.6) or missing.
func fixStackBinary(name string) func(checkHost) Fix {
	return func(h checkHost) Fix {
		x := Fix{
			Summary: fmt.Sprintf("Install nerdctl-full, which bundles %s with containerd, RootlessKit, nerdctl, runc, the CNI plugins and containerd-rootless.sh; virt-setup's installer does this for you.", name),
			User: []string{
				"mkdir -p ~/.local",
				fmt.Sprintf("tar -C ~/.local -xzf nerdctl-full-<version>-linux-%s.tar.gz", tarballArch(h.f)),
			},
			Notes: []string{
				"Download the tarball from " + docNerdctlRel + " and check it against its SHA256SUMS.",
				"Extract into ~/.local (or /usr/local as root), not into a bin directory, so the CNI plugins land in libexec/cni where nerdctl looks; make sure ~/.local/bin is on your PATH.",
			},
		}
		if h.family == "debian" {
			x.Notes = append(x.Notes, "Debian 12's rootlesskit (1.1.0) and containerd (1.6) packages are too old for detach-netns and nerdctl 2.x.")
		}
		return x
	}
}

func checkRuntime(f *Facts, h checkHost) Result {
	runc, crun := h.bin("runc"), h.bin("crun")
	if !runc.Known && !crun.Known {
		return unknownResult("Whether runc or crun is installed", runc)
	}
	ev := append(factLines(runc), factLines(crun)...)
	var have []string
	for _, b := range []Fact[Binary]{runc, crun} {
		if b.Known && b.Value.Found {
			have = append(have, binaryLabel(b.Value))
		}
	}
	if len(have) > 0 {
		verb := " is installed"
		if len(have) > 1 {
			verb = " are installed"
		}
		return Result{Status: StatusOK, Title: strings.Join(have, " and ") + verb, Evidence: ev}
	}
	if !runc.Known || !crun.Known {
		unknown := "runc"
		if runc.Known {
			unknown = "crun"
		}
		return Result{Status: StatusSkip, Title: fmt.Sprintf("No OCI runtime was found, and whether %s is installed is unknown", unknown), Evidence: ev}
	}
	return Result{Status: StatusFail, Title: "Neither runc nor crun is installed", Evidence: ev}
}

func fixRuntime(h checkHost) Fix {
	return Fix{
		Summary: "Install runc (nerdctl-full also bundles it).",
		Root:    h.install("runc", "runc"),
		Notes:   []string{"crun works as well: package crun."},
	}
}

func fixNsenter(h checkHost) Fix {
	return Fix{
		Summary: "Install util-linux, which provides nsenter.",
		Root:    h.install("util-linux", "util-linux"),
		Notes:   []string{"busybox's nsenter works too."},
	}
}
