package installer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/virt-setup/virt-setup/probe"
)

// PlanInput is what a plan is built from.
type PlanInput struct {
	Facts   *probe.Facts
	Answers Answers
	Runtime *Runtime
	// Reprobe gathers fresh facts; the privileged step uses it to tell whether its work is done.
	Reprobe func(ctx context.Context) (*probe.Facts, error)
}

// PlanError lists why the answers cannot be carried out on this host, each with what to do.
type PlanError struct{ Problems []string }

// Error implements error.
func (e *PlanError) Error() string {
	return "the answers cannot be carried out on this host:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// binPath returns the path the probe found for a binary.
func binPath(f *probe.Facts, name string) (string, bool) {
	b, ok := f.Binaries[name]
	if !ok || !b.Known || !b.Value.Found {
		return "", false
	}
	return b.Value.Path, true
}

// BuildPlan turns facts and answers into the ordered steps of an install. It reads the host (the
// files it will change, for the diffs) but changes nothing.
func BuildPlan(in PlanInput) (*Plan, error) {
	a, f, rt := in.Answers, in.Facts, in.Runtime
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if f == nil || rt == nil {
		return nil, errors.New("build plan: facts and runtime are required")
	}
	var problems []string
	if r := f.Identity.Root; r.Known && r.Value {
		// containerd-rootless.sh and the setup tool refuse root too, but only half-way through.
		problems = append(problems, "virt-setup sets up rootless containerd for your own user: run it as that user, not as root (virt-setup explain VS-ROOT-001)")
	}
	need := func(name, why string) string {
		p, ok := binPath(f, name)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is not installed; %s needs it (virt-setup doctor says how to install it)", name, why))
		}
		return p
	}
	need("containerd", "rootless containerd")
	need("rootlesskit", "rootless containerd")
	need("nerdctl", "the setup")
	rootlessSh := need("containerd-rootless.sh", "rootless containerd")
	bins := InstalledBinaries(f)
	bins["containerd-rootless.sh"] = rootlessSh
	if a.ServiceMode == "systemd" {
		bins["containerd-rootless-setuptool.sh"] = need("containerd-rootless-setuptool.sh", "service_mode = systemd")
		switch um := f.Systemd.UserManager; {
		case !um.Known:
			// A slow or busy machine can make `systemctl --user` time out: that is not an answer.
			problems = append(problems, fmt.Sprintf(`service_mode = "systemd": could not tell whether your systemd user manager answers (%s); run virt-setup doctor to see why, then try again`, um.Error))
		case !um.Value:
			problems = append(problems, `service_mode = "systemd" needs a reachable systemd user manager (VS-SYSTEMD-001); use service_mode = "direct" on this host`)
		}
	} else {
		bins["containerd-rootless-setuptool.sh"] = need("containerd-rootless-setuptool.sh", "starting add-ons inside the rootless namespaces")
	}
	if a.Snapshotter == "fuse-overlayfs" {
		bins["containerd-fuse-overlayfs-grpc"] = need("containerd-fuse-overlayfs-grpc", `snapshotter = "fuse-overlayfs"`)
		need("fuse-overlayfs", `snapshotter = "fuse-overlayfs"`)
	}
	if a.AddOns.Stargz {
		bins["containerd-stargz-grpc"] = need("containerd-stargz-grpc", "addons.stargz")
	}
	if a.AddOns.Bypass4netns {
		bins["bypass4netnsd"] = need("bypass4netnsd", "addons.bypass4netns")
		need("bypass4netns", "addons.bypass4netns")
	}
	if a.AddOns.BuildKit {
		bins["buildkitd"] = need("buildkitd", "addons.buildkit")
	}
	if rt.Paths.RuntimeDir == "" && !f.Identity.XDGRuntimeDir.Value.Set {
		// The privileged step below creates the directory; the user's shell must still export it.
		problems = append(problems, "XDG_RUNTIME_DIR is not set: export XDG_RUNTIME_DIR=/run/user/$(id -u) (virt-setup explain VS-XDG-001), then run virt-setup again")
	}
	if len(problems) > 0 {
		return nil, &PlanError{Problems: problems}
	}

	plan := &Plan{Answers: a}
	add := func(s Step) {
		if s != nil {
			plan.Steps = append(plan.Steps, s)
		}
	}

	report := probe.NewReport(f)
	lines, reasons := GatherPrivileged(a, report.Checks)
	add(NewPrivilegedStep(lines, reasons, func(ctx context.Context) ([]string, error) {
		if in.Reprobe == nil {
			return nil, errors.New("cannot re-probe the host")
		}
		nf, err := in.Reprobe(ctx)
		if err != nil {
			return nil, err
		}
		return StillFailing(a, probe.Diagnose(nf)), nil
	}))

	p := rt.Paths
	add(NewFileStep("file:nerdctl.toml", "Set nerdctl's default snapshotter to "+a.Snapshotter,
		filepath.Join(p.ConfigHome, "nerdctl/nerdctl.toml"), 0o644,
		func(cur []byte, _ bool) ([]byte, error) { return SetNerdctlSnapshotter(cur, a.Snapshotter) }))

	plugins := ContainerdPlugins{
		FuseOverlayfs: a.Snapshotter == "fuse-overlayfs",
		Stargz:        a.AddOns.Stargz,
		RuntimeDir:    p.RuntimeDir,
		DataHome:      p.DataHome,
	}
	cfgPath := filepath.Join(p.ConfigHome, "containerd/config.toml")
	if plugins.FuseOverlayfs || plugins.Stargz || fileHasManagedBlock(cfgPath) {
		major := 2
		if v := f.Binaries["containerd"].Value.Version; strings.HasPrefix(v, "1.") {
			major = 1
		}
		add(NewFileStep("file:containerd-config", "Register the snapshotter plugins in containerd's config.toml", cfgPath, 0o644,
			func(cur []byte, _ bool) ([]byte, error) { return MergeContainerdConfig(cur, plugins, major) }))
	}

	switch a.ServiceMode {
	case "direct":
		svcs, err := DirectServices(a, rt, bins)
		if err != nil {
			return nil, err
		}
		for _, s := range svcs {
			add(NewDirectServiceStep(s))
		}
	case "systemd":
		tool := bins["containerd-rootless-setuptool.sh"]
		add(NewSetuptoolStep(tool, "install", "uninstall", []string{"containerd.service"}))
		override := filepath.Join(p.ConfigHome, "systemd/user/containerd.service.d/override.conf")
		env := a.RootlessKitEnv()
		add(NewFileStep("file:containerd-override", "Set RootlessKit's options for containerd.service", override, 0o644,
			func(cur []byte, _ bool) ([]byte, error) { return RenderOverride(cur, env) }))
		add(newRestartStep("containerd.service", override))
		if a.Snapshotter == "fuse-overlayfs" {
			add(NewSetuptoolStep(tool, "install-fuse-overlayfs", "uninstall-fuse-overlayfs", []string{"containerd-fuse-overlayfs.service"}))
		}
		if a.AddOns.Stargz {
			add(NewSetuptoolStep(tool, "install-stargz", "uninstall-stargz", []string{"stargz-snapshotter.service"}))
		}
		if a.AddOns.Bypass4netns {
			add(NewSetuptoolStep(tool, "install-bypass4netnsd", "uninstall-bypass4netnsd", []string{"bypass4netnsd.service"}))
		}
		if a.AddOns.BuildKit {
			add(NewSetuptoolStep(tool, "install-buildkit", "uninstall-buildkit", []string{"buildkit.service"}))
		}
	}
	add(NewVerifyStep(VerifyOptions{Snapshotter: a.Snapshotter, StateDir: filepath.Join(p.RuntimeDir, "containerd-rootless"), LogPath: ContainerdLogHint(a, p), ServiceMode: a.ServiceMode}))
	return plan, nil
}

// ContainerdLogHint says where containerd's log is: a file in direct mode, the journalctl command
// in systemd mode. Verify names it in its error messages.
func ContainerdLogHint(a Answers, p Paths) string {
	if a.ServiceMode == "systemd" {
		return "journalctl --user -u containerd.service"
	}
	return filepath.Join(p.VirtSetupState(), "logs/containerd.log")
}

// InstalledBinaries maps the name of every binary the probe found to its path.
func InstalledBinaries(f *probe.Facts) map[string]string {
	out := map[string]string{}
	for name := range f.Binaries {
		if p, ok := binPath(f, name); ok {
			out[name] = p
		}
	}
	return out
}
