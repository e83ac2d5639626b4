package probe

import (
	"fmt"
	"slices"
	"strings"
)

// stateChecks are about what an earlier setup, or a rootful containerd, left on the host.
var stateChecks = []Check{
	{
		ID:    "VS-NRI-001",
		Title: "No rootful containerd's /run/nri in the way",
		Why: "containerd 2.x enables NRI; a rootful one creates /run/nri, which containerd-rootless.sh (nerdctl up to 2.3.5) turns into a symlink " +
			"to the root-owned directory, so rootless containerd fails with \"listen unix /var/run/nri/nri.sock: bind: permission denied\".",
		Doc: docNerdctlFAQ,
		run: checkRunNRI,
		fix: fixRunNRI,
	},
	{
		ID:    "VS-CONFIG-001",
		Title: "nerdctl.toml is valid",
		Why:   "nerdctl decodes nerdctl.toml strictly: a syntax error or an unknown key (often from a pasted containerd config) makes every nerdctl command fail with \"failed to load nerdctl config\".",
		Doc:   docNerdctlCfg,
		run:   checkNerdctlConfig,
		fix:   fixNerdctlConfig,
	},
	{
		ID:    "VS-CONFIG-002",
		Title: "containerd's config.toml is valid and versioned",
		Why: "containerd will not start on a config.toml that does not parse, and reads a file without a version line as the old " +
			"version 1 format; rootless containerd reads ~/.config/containerd/config.toml.",
		Doc: docNerdctlRL,
		run: checkContainerdConfig,
		fix: fixContainerdConfig,
	},
	{
		ID:    "VS-STATE-001",
		Title: "No stale RootlessKit state",
		Why: "nerdctl enters rootless containerd through the pid in RootlessKit's state directory; a directory left by a containerd that " +
			"died points at a process that no longer exists, and nerdctl fails instead of saying containerd is not running.",
		Doc: docNerdctlRL,
		run: checkRootlessKitState,
		fix: fixRootlessKitState,
	},
}

func checkRunNRI(f *Facts, h checkHost) Result {
	r := f.State.RunNRI
	if !r.Known {
		return unknownResult("Whether /run/nri exists", r)
	}
	ev := factLines(r)
	if !r.Value {
		return Result{Status: StatusOK, Title: "/run/nri does not exist", Evidence: ev}
	}
	n := h.bin("nerdctl")
	ev = append(ev, factLines(n)...)
	if h.atLeast("nerdctl", "2.3.6") {
		// nerdctl PR #5035 (commit f6400592) removes the symlink in the child; it landed after v2.3.5,
		// so any later release is taken to have it.
		return Result{Status: StatusOK, Title: fmt.Sprintf("/run/nri exists, and containerd-rootless.sh of nerdctl %s removes the symlink to it", n.Value.Version), Evidence: ev}
	}
	c := h.bin("containerd")
	ev = append(ev, factLines(c)...)
	if h.atLeast("containerd", "2.0.0") {
		return Result{Status: StatusFail, Title: fmt.Sprintf("/run/nri exists (a rootful containerd made it), and rootless containerd %s enables NRI: it fails with \"bind: permission denied\" on /var/run/nri/nri.sock", c.Value.Version), Evidence: ev}
	}
	return Result{Status: StatusWarn, Title: "/run/nri exists (a rootful containerd made it): a rootless containerd 2.x with NRI enabled fails with \"bind: permission denied\" on /var/run/nri/nri.sock", Evidence: ev}
}

func fixRunNRI(h checkHost) Fix {
	return Fix{
		Summary: "Turn NRI off in rootless containerd's config, or upgrade to a nerdctl released after 2.3.5, whose containerd-rootless.sh removes the /run/nri symlink.",
		Notes: []string{
			"To turn NRI off, add to ~/.config/containerd/config.toml (merging with a table of that name if the file has one): [plugins.\"io.containerd.nri.v1.nri\"] with disable = true, then restart rootless containerd.",
			"Or, if the rootful containerd is not needed, stop it (systemctl disable --now containerd as root) and remove /run/nri.",
		},
	}
}

// containerdConfigKeys are top-level keys of containerd's config.toml that show up in nerdctl.toml
// when the two files are mixed up.
var containerdConfigKeys = []string{"version", "root", "state", "plugins", "proxy_plugins", "grpc", "imports", "disabled_plugins", "required_plugins", "oom_score", "timeouts", "debug.level"}

func checkNerdctlConfig(f *Facts, h checkHost) Result {
	c := f.State.NerdctlConfig
	if !c.Known {
		return unknownResult("The state of nerdctl.toml", c)
	}
	v, ev := c.Value, factLines(c)
	switch {
	case !v.Exists:
		return Result{Status: StatusOK, Title: fmt.Sprintf("There is no %s: nerdctl uses its defaults", v.Path), Evidence: ev}
	case !v.Valid:
		return Result{Status: StatusFail, Title: fmt.Sprintf("%s does not parse (%s): every nerdctl command fails", v.Path, v.ParseError), Evidence: ev}
	case len(v.UnknownKeys) > 0:
		title := fmt.Sprintf("%s has keys nerdctl rejects: %s; every nerdctl command fails", v.Path, strings.Join(v.UnknownKeys, ", "))
		for _, k := range v.UnknownKeys {
			if slices.Contains(containerdConfigKeys, k) {
				title += " (this looks like containerd's config.toml)"
				break
			}
		}
		return Result{Status: StatusFail, Title: title, Evidence: ev}
	case len(v.NewerKeys) > 0:
		keys := strings.Join(v.NewerKeys, ", ")
		n := h.bin("nerdctl")
		switch {
		case n.Known && n.Value.Found && n.Value.Version != "" && !VersionAtLeast(n.Value.Version, "2.1"):
			return Result{Status: StatusFail, Title: fmt.Sprintf("%s uses keys nerdctl %s does not know yet (%s); every nerdctl command fails", v.Path, n.Value.Version, keys),
				Evidence: append(ev, factLines(n)...)}
		case !n.Known || !n.Value.Found || n.Value.Version == "":
			return Result{Status: StatusWarn, Title: fmt.Sprintf("%s uses keys only nerdctl newer than 2.0 accepts (%s), and nerdctl's version is unknown", v.Path, keys), Evidence: ev}
		}
	}
	return Result{Status: StatusOK, Title: v.Path + " is valid", Evidence: ev}
}

func fixNerdctlConfig(h checkHost) Fix {
	p := "~/.config/nerdctl/nerdctl.toml"
	if c := h.f.State.NerdctlConfig; c.Known && c.Value.Path != "" {
		p = c.Value.Path
	}
	return Fix{
		Summary: "Fix or remove the keys nerdctl does not know, or move the file away so nerdctl uses its defaults.",
		User:    []string{fmt.Sprintf("mv %[1]s %[1]s.bak", p)},
		Notes: []string{
			"nerdctl.toml takes only nerdctl's own keys (address, namespace, snapshotter, cni_path, data_root, cgroup_manager, …); containerd's daemon settings belong in ~/.config/containerd/config.toml.",
			"$NERDCTL_TOML, when set, names the file nerdctl reads instead.",
		},
	}
}

func checkContainerdConfig(f *Facts, h checkHost) Result {
	c := f.State.ContainerdConfig
	if !c.Known {
		return unknownResult("The state of containerd's config.toml", c)
	}
	v, ev := c.Value, factLines(c)
	switch {
	case !v.Exists:
		return Result{Status: StatusOK, Title: fmt.Sprintf("There is no %s: containerd uses its defaults", v.Path), Evidence: ev}
	case !v.Valid:
		return Result{Status: StatusFail, Title: fmt.Sprintf("%s does not parse (%s): containerd will not start", v.Path, v.ParseError), Evidence: ev}
	case v.Version == 0:
		return Result{Status: StatusWarn, Title: fmt.Sprintf("%s has no version line: containerd reads it as the old version 1 format, which containerd 2.x has at times refused", v.Path), Evidence: ev}
	case v.Version == 1:
		return Result{Status: StatusWarn, Title: fmt.Sprintf("%s is config version 1, an old format containerd 2.x has at times refused", v.Path), Evidence: ev}
	}
	if v.Version >= 3 && h.below("containerd", "2.0.0") {
		cb := h.bin("containerd")
		return Result{Status: StatusFail, Title: fmt.Sprintf("%s is config version %d, which containerd %s cannot read (version 3 needs containerd 2.0)", v.Path, v.Version, cb.Value.Version), Evidence: append(ev, factLines(cb)...)}
	}
	return Result{Status: StatusOK, Title: fmt.Sprintf("%s is valid (config version %d)", v.Path, v.Version), Evidence: ev}
}

func fixContainerdConfig(h checkHost) Fix {
	p := "~/.config/containerd/config.toml"
	c := h.f.State.ContainerdConfig
	if c.Known && c.Value.Path != "" {
		p = c.Value.Path
	}
	if c.Known && c.Value.Exists && !c.Value.Valid {
		return Fix{
			Summary: "Fix the TOML error, or move the file away so containerd starts with its defaults.",
			User:    []string{fmt.Sprintf("mv %[1]s %[1]s.bak", p)},
			Notes:   []string{"Pasting the setup tool's proxy_plugins blocks one after another defines [proxy_plugins] twice, which TOML rejects: merge them under one header."},
		}
	}
	return Fix{
		Summary: "Give config.toml an explicit version: let containerd rewrite it in the current format.",
		User: []string{
			fmt.Sprintf("containerd --config %[1]s config migrate > %[1]s.new", p),
			fmt.Sprintf("mv %[1]s %[1]s.bak && mv %[1]s.new %[1]s", p),
		},
		Notes: []string{
			"containerd 2.x writes version = 3; with containerd 1.x put `version = 2` on the first line by hand instead.",
			"Restart rootless containerd afterwards.",
		},
	}
}

func checkRootlessKitState(f *Facts, h checkHost) Result {
	s := f.State.RootlessKit
	if !s.Known {
		return unknownResult("RootlessKit's state", s)
	}
	v, ev := s.Value, factLines(s)
	dir := v.StateDir
	switch {
	case !v.Exists:
		return Result{Status: StatusOK, Title: fmt.Sprintf("No RootlessKit state in %s: rootless containerd is not running", dir), Evidence: ev}
	case v.Running:
		return Result{Status: StatusOK, Title: fmt.Sprintf("Rootless containerd is running (RootlessKit child pid %d)", v.ChildPID), Evidence: ev}
	case v.ChildPID > 0:
		return Result{Status: StatusWarn, Title: fmt.Sprintf("%s is stale: child_pid %d is not running", dir, v.ChildPID), Evidence: ev}
	}
	return Result{Status: StatusWarn, Title: fmt.Sprintf("%s exists without a child_pid: left by a RootlessKit that did not start", dir), Evidence: ev}
}

func fixRootlessKitState(h checkHost) Fix {
	dir := "$XDG_RUNTIME_DIR/containerd-rootless"
	if s := h.f.State.RootlessKit; s.Known && s.Value.StateDir != "" {
		dir = s.Value.StateDir
	}
	return Fix{
		Summary: "Remove the stale state directory and start rootless containerd again.",
		User:    []string{"rm -rf " + dir},
		Notes: []string{
			"Then start it: `systemctl --user restart containerd` with the user unit, or containerd-rootless.sh without systemd.",
			"`journalctl --user -u containerd -n 50` shows why it stopped.",
		},
	}
}
