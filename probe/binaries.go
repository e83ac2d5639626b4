package probe

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// Features a binary can have, as keys of Binary.Features.
const (
	// FeatureDetachNetns: rootlesskit ≥ 2.0 has --detach-netns; containerd-rootless.sh from
	// nerdctl ≥ 2.0 uses it (CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS).
	FeatureDetachNetns = "detach-netns"
	// FeaturePasta: rootlesskit knows the pasta network driver.
	FeaturePasta = "pasta"
	// FeatureGvisorTapVsock: rootlesskit ≥ 3.0 has the gvisor-tap-vsock network driver.
	FeatureGvisorTapVsock = "gvisor-tap-vsock"
	// FeatureGvisorFallback: containerd-rootless.sh from nerdctl ≥ 2.3 falls back to
	// gvisor-tap-vsock when neither slirp4netns nor vpnkit is installed.
	FeatureGvisorFallback = "gvisor-fallback"
	// FeatureNetnsType: slirp4netns ≥ 0.4.0 has --netns-type; containerd-rootless.sh ignores an
	// slirp4netns without it.
	FeatureNetnsType = "netns-type"
	// FeatureNft: iptables uses the nf_tables backend.
	FeatureNft = "nft"
	// FeatureLegacy: iptables uses the legacy xtables backend.
	FeatureLegacy = "legacy"
)

// FeatureRule sets Feature to whether a program's text contains Contains.
type FeatureRule struct {
	Feature  string
	Contains string
}

// BinarySpec is how the probe learns about one program: how to ask its version and features, or
// why it must never be run.
type BinarySpec struct {
	Name string
	// NeverRun, when set, says why the probe must not execute the program; only its presence,
	// path and TextFeatures are recorded.
	NeverRun string
	// VersionArgs print the version (usually --version).
	VersionArgs []string
	// VersionLine are line prefixes that carry the program's own version when the output also
	// names other versions before it (fuse-overlayfs prints fusermount3's version first).
	VersionLine []string
	// HelpFeatures are looked for in the output of --help; absence is recorded as false.
	HelpFeatures []FeatureRule
	// VersionFeatures are looked for in the version output; only a match is recorded, since a
	// version line that does not mention a feature does not rule it out.
	VersionFeatures []FeatureRule
	// TextFeatures are looked for in the file itself (scripts that are never run).
	TextFeatures []FeatureRule
	// ExtraDirs are searched after the usual directories (programs kept out of PATH).
	ExtraDirs []string
	// NeedsRuntimeDir marks programs that refuse to start, even for --version, without
	// $XDG_RUNTIME_DIR.
	NeedsRuntimeDir bool
}

// Runs reports whether the probe may execute the program.
func (s BinarySpec) Runs() bool { return s.NeverRun == "" }

var binVersionFlag = []string{"--version"}

// binaryCatalog is every program the setup uses, one line each.
var binaryCatalog = []BinarySpec{
	{Name: "containerd", VersionArgs: binVersionFlag},
	// The shim has answered -v since containerd 1.x; only the 2.x shim also takes --version.
	{Name: "containerd-shim-runc-v2", VersionArgs: []string{"-v"}, VersionLine: []string{"Version:"}},
	{Name: "nerdctl", VersionArgs: binVersionFlag},
	{Name: "rootlesskit", VersionArgs: binVersionFlag, HelpFeatures: []FeatureRule{{FeatureDetachNetns, "--detach-netns"}, {FeaturePasta, "pasta"}, {FeatureGvisorTapVsock, "gvisor-tap-vsock"}}},
	{Name: "rootlessctl", VersionArgs: binVersionFlag},
	// containerd-rootless.sh tells slirp4netns ≥ 0.4.0 by --netns-type in its help, so do we.
	{Name: "slirp4netns", VersionArgs: binVersionFlag, HelpFeatures: []FeatureRule{{FeatureNetnsType, "--netns-type"}}},
	{Name: "vpnkit", VersionArgs: binVersionFlag},
	{Name: "pasta", VersionArgs: binVersionFlag, VersionLine: []string{"pasta "}},
	{Name: "lxc-user-nic", NeverRun: "setuid helper without a version flag", ExtraDirs: []string{"/usr/lib/x86_64-linux-gnu/lxc", "/usr/lib/lxc", "/usr/libexec/lxc"}},
	{Name: "runc", VersionArgs: binVersionFlag, VersionLine: []string{"runc version"}},
	{Name: "crun", VersionArgs: binVersionFlag, VersionLine: []string{"crun version"}},
	{Name: "containerd-rootless.sh", NeverRun: "running it starts containerd", TextFeatures: []FeatureRule{{FeatureDetachNetns, "CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS"}, {FeatureGvisorFallback, "gvisor-tap-vsock"}}},
	{Name: "containerd-rootless-setuptool.sh", NeverRun: "it has no version flag and its subcommands change the user's setup"},
	{Name: "buildkitd", VersionArgs: binVersionFlag},
	{Name: "buildctl", VersionArgs: binVersionFlag},
	{Name: "containerd-stargz-grpc", VersionArgs: []string{"-version"}},
	{Name: "containerd-fuse-overlayfs-grpc", NeverRun: "its first argument is the socket path it listens on"},
	{Name: "fuse-overlayfs", VersionArgs: binVersionFlag, VersionLine: []string{"fuse-overlayfs"}},
	{Name: "fusermount3", VersionArgs: binVersionFlag, VersionLine: []string{"fusermount3"}},
	// bypass4netns v0.4.2 prints "bypass4netns version X" then "libseccomp: 2.5.4".
	{Name: "bypass4netns", VersionArgs: binVersionFlag, VersionLine: []string{"bypass4netns version"}, NeedsRuntimeDir: true},
	{Name: "bypass4netnsd", VersionArgs: binVersionFlag, VersionLine: []string{"bypass4netnsd version"}, NeedsRuntimeDir: true},
	{Name: "iperf3", VersionArgs: binVersionFlag, VersionLine: []string{"iperf "}},
	{Name: "iptables", VersionArgs: binVersionFlag, VersionLine: []string{"iptables"}, VersionFeatures: []FeatureRule{{FeatureNft, "(nf_tables)"}, {FeatureLegacy, "(legacy)"}}},
	{Name: "nsenter", VersionArgs: binVersionFlag},
	{Name: "systemctl", VersionArgs: binVersionFlag, VersionLine: []string{"systemd "}},
	{Name: "dbus-daemon", VersionArgs: binVersionFlag},
}

// BinaryCatalog returns the programs the probe looks for, in catalog order. The doctor reads it,
// and builders of fake hosts use it to know which programs the probe will run. The result is a
// copy the caller may change.
func BinaryCatalog() []BinarySpec {
	out := make([]BinarySpec, len(binaryCatalog))
	for i, s := range binaryCatalog {
		out[i] = s.clone()
	}
	return out
}

// LookupBinarySpec returns (a copy of) the catalog entry for a program name.
func LookupBinarySpec(name string) (BinarySpec, bool) {
	for _, s := range binaryCatalog {
		if s.Name == name {
			return s.clone(), true
		}
	}
	return BinarySpec{}, false
}

func (s BinarySpec) clone() BinarySpec {
	s.VersionArgs = slices.Clone(s.VersionArgs)
	s.VersionLine = slices.Clone(s.VersionLine)
	s.HelpFeatures = slices.Clone(s.HelpFeatures)
	s.VersionFeatures = slices.Clone(s.VersionFeatures)
	s.TextFeatures = slices.Clone(s.TextFeatures)
	s.ExtraDirs = slices.Clone(s.ExtraDirs)
	return s
}

// binaryCommandTimeout bounds one --version or --help run; a program that hangs on --version
// (a daemon that ignores the flag) must not hold up the probe.
const binaryCommandTimeout = 2 * time.Second

// binaryPool bounds how many programs run at once; a handful is enough to hide their start-up
// time without loading a small machine.
const binaryPool = 8

// probeBinaries finds every catalog program, asks those that may be run for their version and
// features, and reads the features of scripts from their text.
func probeBinaries(ctx context.Context, e *Env) func(*Facts) {
	results := make([]Fact[Binary], len(binaryCatalog))
	sem := make(chan struct{}, binaryPool)
	var wg sync.WaitGroup
	for i, spec := range binaryCatalog {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = probeBinary(ctx, e, spec, sem)
		}()
	}
	wg.Wait()
	return func(f *Facts) {
		if f.Binaries == nil {
			f.Binaries = map[string]Fact[Binary]{}
		}
		for i, spec := range binaryCatalog {
			f.Binaries[spec.Name] = results[i]
		}
	}
}

// probeBinary learns everything about one program. sem bounds the commands run at once.
func probeBinary(ctx context.Context, e *Env, spec BinarySpec, sem chan struct{}) Fact[Binary] {
	b := Binary{Name: spec.Name}
	path, dirs, found := findBinary(e, spec)
	if !found {
		return Known(b, Evidence{Kind: "file", Source: strings.Join(dirs, ":"), Excerpt: spec.Name + " not found in these directories"})
	}
	b.Found, b.Path = true, path
	evidence := []Evidence{{Kind: "file", Source: path}}
	var errs []string

	if len(spec.TextFeatures) > 0 {
		text, err := e.Root.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Sprintf("read %s: %v", path, err))
		} else {
			var seen []string
			for _, r := range spec.TextFeatures {
				has := strings.Contains(string(text), r.Contains)
				binSetFeature(&b, r.Feature, has)
				if has {
					seen = append(seen, r.Contains)
				}
			}
			ev := Evidence{Kind: "file", Source: path, Excerpt: "mentions: " + strings.Join(seen, ", ")}
			if len(seen) == 0 {
				ev.Excerpt = "mentions none of: " + binRuleNeedles(spec.TextFeatures)
			}
			evidence = append(evidence, ev)
		}
	}
	if !spec.Runs() {
		return binFact(b, evidence, errs)
	}

	// --version and --help are independent; run them side by side within the pool.
	var helpOut string
	var helpErr error
	var helpEv Evidence
	var wg sync.WaitGroup
	if len(spec.HelpFeatures) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			helpOut, helpEv, helpErr = runBinary(ctx, e, spec, path, []string{"--help"}, sem)
		}()
	}
	verOut, verEv, verErr := runBinary(ctx, e, spec, path, spec.VersionArgs, sem)
	wg.Wait()

	evidence = append(evidence, verEv)
	if verErr != nil {
		errs = append(errs, verErr.Error())
	}
	v, perr := ParseVersion(versionText(verOut, spec.VersionLine))
	if perr != nil {
		// A go-installed build often carries no version of its own (bypass4netns prints
		// "<unknown>"), but the Go toolchain recorded the module version in the binary.
		if mv, ev, ok := goModuleVersion(e, path); ok {
			v, perr = mv, nil
			evidence = append(evidence, ev)
		}
	}
	switch {
	case perr == nil:
		b.Version = v
	case verErr == nil:
		errs = append(errs, fmt.Sprintf("parse version of %s: %v", spec.Name, perr))
	}
	for _, r := range spec.VersionFeatures {
		if strings.Contains(verOut, r.Contains) {
			binSetFeature(&b, r.Feature, true)
		}
	}
	if spec.Name == "iptables" && b.Version != "" && !VersionAtLeast(b.Version, "1.8") {
		// iptables gained the nf_tables backend (and the "(legacy)" tag) in 1.8.0; older ones
		// are legacy even though they do not say so.
		binSetFeature(&b, FeatureLegacy, true)
	}

	if len(spec.HelpFeatures) > 0 {
		evidence = append(evidence, helpEv)
		if helpErr != nil {
			errs = append(errs, fmt.Sprintf("learn features of %s: %v", spec.Name, helpErr))
		} else {
			// runBinary accepts a usage text printed with a non-zero exit: it is still the help.
			for _, r := range spec.HelpFeatures {
				binSetFeature(&b, r.Feature, strings.Contains(helpOut, r.Contains))
			}
		}
	}
	return binFact(b, evidence, errs)
}

func binFact(b Binary, ev []Evidence, errs []string) Fact[Binary] {
	f := Known(b, ev...)
	f.Error = strings.Join(errs, "; ")
	return f
}

func binSetFeature(b *Binary, name string, v bool) {
	if b.Features == nil {
		b.Features = map[string]bool{}
	}
	b.Features[name] = v
}

func binRuleNeedles(rules []FeatureRule) string {
	var s []string
	for _, r := range rules {
		s = append(s, r.Contains)
	}
	return strings.Join(s, ", ")
}

// findBinary returns the host path of the program, or the directories searched for it.
func findBinary(e *Env, spec BinarySpec) (path string, searched []string, found bool) {
	if p, ok := e.LookPath(spec.Name); ok {
		return p, nil, true
	}
	searched = append(searched, e.LookupDirs...)
	for _, d := range spec.ExtraDirs {
		p := filepath.Join(d, spec.Name)
		searched = append(searched, d)
		if fi, err := e.Root.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil, true
		}
	}
	return "", searched, false
}

// runBinary runs the program with args and returns its output (stdout then stderr: programs
// disagree on where a version goes). The error is set when the command could not run, timed out,
// or failed without printing anything.
func runBinary(ctx context.Context, e *Env, spec BinarySpec, path string, args []string, sem chan struct{}) (string, Evidence, error) {
	ev := Evidence{Kind: "command", Source: sys.Command{Path: path, Args: args}.String()}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return "", ev, fmt.Errorf("run %s: %w", ev.Source, ctx.Err())
	}
	defer func() { <-sem }()
	env := append(append([]string(nil), e.Environ...), "LC_ALL=C")
	if spec.NeedsRuntimeDir && e.Getenv("XDG_RUNTIME_DIR") == "" {
		// bypass4netns(d) v0.4.2 build their default socket paths from $XDG_RUNTIME_DIR before
		// parsing flags and die when it is unset; --version never touches the directory.
		env = append(env, "XDG_RUNTIME_DIR="+os.TempDir())
	}
	res, err := e.Runner.Run(ctx, sys.Command{Path: e.Root.Path(path), Args: args, Env: env, Timeout: binaryCommandTimeout})
	out := res.Combined()
	ev.Excerpt = verExcerpt(binFirstLines(out, 3), 300)
	// The runner's errors name the command below the fake root; name the host path instead.
	var ee *sys.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		// Output is what matters; a non-zero exit after printing a version or usage is common.
		if strings.TrimSpace(out) == "" {
			return out, ev, fmt.Errorf("%s: exit status %d", ev.Source, ee.ExitCode)
		}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return out, ev, fmt.Errorf("run %s: %w", ev.Source, binCtxErr(ctx, err))
	default:
		return out, ev, err
	}
	return out, ev, nil
}

// binCtxErr is the context's error when it ended, else context.DeadlineExceeded (the command's own
// timeout ran out).
func binCtxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, context.Canceled) {
		return context.Canceled
	}
	return context.DeadlineExceeded
}

// versionText picks the line that carries the program's own version: the first line that starts
// with one of prefixes, or all of out when none does. Only that line: the lines after it name
// libraries ("libseccomp: 2.5.4" after bypass4netns's "version <unknown>").
func versionText(out string, prefixes []string) string {
	if len(prefixes) == 0 {
		return out
	}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		for _, p := range prefixes {
			if len(l) >= len(p) && strings.EqualFold(l[:len(p)], p) {
				return l
			}
		}
	}
	return out
}

func binFirstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// goModuleVersion reads the main module's version from a Go binary's build info (what
// `go version -m` shows). Pseudo-versions of untagged builds and "(devel)" are not versions.
func goModuleVersion(e *Env, path string) (string, Evidence, bool) {
	bi, err := buildinfo.ReadFile(e.Root.Path(path))
	if err != nil || bi.Main.Version == "" || bi.Main.Version == "(devel)" || strings.HasPrefix(bi.Main.Version, "v0.0.0-") {
		return "", Evidence{}, false
	}
	v := verNormalize(bi.Main.Version)
	if !verIsToken(v) {
		return "", Evidence{}, false
	}
	return v, Evidence{Kind: "file", Source: path, Excerpt: "Go build info: mod " + bi.Main.Path + " " + bi.Main.Version}, true
}

// BinaryNames lists the catalog's program names, sorted.
func BinaryNames() []string {
	names := make([]string, 0, len(binaryCatalog))
	for _, s := range binaryCatalog {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return names
}
