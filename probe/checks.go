package probe

import (
	"fmt"
	"slices"
	"strings"
)

// Status is the outcome of one check.
type Status string

// Check statuses. A check is skipped when the facts it needs are unknown or it does not apply to
// this host; the result's title says which.
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
	StatusSkip Status = "skip"
)

// Exit statuses of `virt-setup doctor`, following the exit-code contract (1 failed to run, 2 usage
// error, 124 timeout and 130 aborted belong to the command, not to the checks).
const (
	// ExitOK means every check passed or was skipped.
	ExitOK = 0
	// ExitFailed means at least one check failed: rootless containerd will not work until it is fixed.
	ExitFailed = 3
	// ExitWarnings means nothing failed but at least one check warned.
	ExitWarnings = 4
)

// Fix is what to do about a warning or a failure. Commands that need root are kept apart from the
// ones the user runs, so the installer can gather every root command into one script the user
// reviews before running it.
type Fix struct {
	// Summary says in one sentence what the fix does.
	Summary string `json:"summary,omitempty"`
	// User are shell commands the user runs as themselves, in order.
	User []string `json:"user,omitempty"`
	// Root are shell commands that need root, in order, written without sudo: they are run as one
	// reviewed script (sudo sh -eux). Lines may repeat across results ("apt-get update"); a gatherer
	// should drop exact duplicates.
	Root []string `json:"root,omitempty"`
	// Notes are alternatives, caveats and what to do afterwards.
	Notes []string `json:"notes,omitempty"`
}

// IsZero reports whether the fix says nothing.
func (x Fix) IsZero() bool {
	return x.Summary == "" && len(x.User) == 0 && len(x.Root) == 0 && len(x.Notes) == 0
}

// Result is the outcome of one check on one host.
type Result struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Title says what was seen ("newuidmap is not setuid and has no file capability").
	Title string `json:"title"`
	// Evidence are the exact values the check looked at, each with where it came from.
	Evidence []string `json:"evidence,omitempty"`
	Why      string   `json:"why"`
	Fix      Fix      `json:"fix"`
	Doc      string   `json:"doc"`
}

// Check is one entry of the doctor's catalog. IDs are stable: a check is never renumbered, and a
// retired ID is never reused, because users put them in --skip-check and bug reports.
type Check struct {
	// ID matches ^VS-[A-Z0-9]+-[0-9]{3}$.
	ID string
	// Title names what is checked, in one line.
	Title string
	// Why says in one or two sentences what breaks when the check fails.
	Why string
	// Doc links to the page that explains the requirement.
	Doc string

	run func(f *Facts, h checkHost) Result
	fix func(h checkHost) Fix
}

// Run evaluates the check against facts. It never panics on missing facts: a check whose facts are
// unknown is skipped with the reason.
func (c Check) Run(f *Facts) (r Result) {
	if f == nil {
		f = &Facts{}
	}
	h := newCheckHost(f)
	defer func() {
		// A bug in one check must not take the doctor down; the result says so instead.
		if p := recover(); p != nil {
			r = Result{Status: StatusSkip, Title: fmt.Sprintf("internal error in check %s: %v", c.ID, p)}
			c.complete(&r, h)
		}
	}()
	r = c.run(f, h)
	c.complete(&r, h)
	return r
}

// complete fills what every result of the check shares.
func (c Check) complete(r *Result, h checkHost) {
	r.ID = c.ID
	// Several facts can rest on the same source; show each piece of evidence once.
	r.Evidence = uniqueLines(r.Evidence)
	if r.Why == "" {
		r.Why = c.Why
	}
	if r.Doc == "" {
		r.Doc = c.Doc
	}
	if (r.Status == StatusWarn || r.Status == StatusFail) && r.Fix.IsZero() && c.fix != nil {
		r.Fix = c.fix(h)
	}
	if r.Status == StatusOK || r.Status == StatusSkip {
		r.Fix = Fix{}
	}
}

// FixFor returns the check's fix written for a distro family ("debian" for Debian and Ubuntu,
// "fedora" for Fedora and RHEL, "" for both), with placeholders for the user: what `virt-setup
// explain ID` prints.
func (c Check) FixFor(family string) Fix {
	if c.fix == nil {
		return Fix{}
	}
	f := &Facts{}
	if family != "" {
		id := map[string]string{"debian": "ubuntu", "fedora": "fedora"}[family]
		f.OS.Distro = Known(Distro{ID: id, Family: family})
	}
	return c.fix(newCheckHost(f))
}

// Catalog returns every check in the order the doctor runs and reports them.
func Catalog() []Check {
	return slices.Concat(
		identityChecks,
		systemdChecks,
		usernsChecks,
		storageChecks,
		cgroupChecks,
		networkChecks,
		binaryChecks,
		stateChecks,
	)
}

// CheckByID finds a check by its ID, ignoring case.
func CheckByID(id string) (Check, bool) {
	for _, c := range Catalog() {
		if strings.EqualFold(c.ID, id) {
			return c, true
		}
	}
	return Check{}, false
}

// Diagnose runs every check against facts, in catalog order.
func Diagnose(f *Facts) []Result {
	cat := Catalog()
	out := make([]Result, 0, len(cat))
	for _, c := range cat {
		out = append(out, c.Run(f))
	}
	return out
}

// ExitCode is the doctor's exit status for a set of results: ExitFailed when any check failed,
// ExitWarnings when some warned and none failed, ExitOK otherwise (skipped checks count as ok).
func ExitCode(results []Result) int {
	code := ExitOK
	for _, r := range results {
		switch r.Status {
		case StatusFail:
			return ExitFailed
		case StatusWarn:
			code = ExitWarnings
		}
	}
	return code
}

// Documentation the checks link to: rootlesscontaine.rs for host requirements, the nerdctl and
// RootlessKit docs for what those tools do with them.
const (
	docCommon       = "https://rootlesscontaine.rs/getting-started/common/"
	docLogin        = "https://rootlesscontaine.rs/getting-started/common/login/"
	docSubuid       = "https://rootlesscontaine.rs/getting-started/common/subuid/"
	docSysctl       = "https://rootlesscontaine.rs/getting-started/common/sysctl/"
	docCgroup2      = "https://rootlesscontaine.rs/getting-started/common/cgroup2/"
	docAppArmor     = "https://rootlesscontaine.rs/getting-started/common/apparmor/"
	docContainerd   = "https://rootlesscontaine.rs/getting-started/containerd/"
	docOverlayfs    = "https://rootlesscontaine.rs/how-it-works/overlayfs/"
	docNetns        = "https://rootlesscontaine.rs/how-it-works/netns/"
	docGlossary     = "https://rootlesscontaine.rs/glossary/"
	docNerdctlRL    = "https://github.com/containerd/nerdctl/blob/main/docs/rootless.md"
	docNerdctlFAQ   = "https://github.com/containerd/nerdctl/blob/main/docs/faq.md"
	docNerdctlCfg   = "https://github.com/containerd/nerdctl/blob/main/docs/config.md"
	docRootlessKitN = "https://github.com/rootless-containers/rootlesskit/blob/master/docs/network.md"
	docRootlessKitP = "https://github.com/rootless-containers/rootlesskit/blob/master/docs/port.md"
	docNerdctlRel   = "https://github.com/containerd/nerdctl/releases"
)

// checkHost is what a fix is written for: the distro family and the user, with placeholders when they
// are unknown (and always in `explain`, which describes no particular host).
type checkHost struct {
	f *Facts
	// family is "debian", "fedora" or "" when the fix must cover both.
	family string
	// user is the login name, or "<user>".
	user string
	// uid is the numeric uid, or "$(id -u)" which the user's own shell expands.
	uid string
	// rootUID is the numeric uid, or "$(id -u <user>)" for a command that runs as root.
	rootUID string
}

func newCheckHost(f *Facts) checkHost {
	h := checkHost{f: f, user: "<user>", uid: "$(id -u)"}
	if d := f.OS.Distro; d.Known {
		switch d.Value.Family {
		case "debian", "fedora":
			h.family = d.Value.Family
		}
	}
	if u := f.Identity.User; u.Known && u.Value != "" {
		h.user = u.Value
	}
	if u := f.Identity.UID; u.Known {
		h.uid = fmt.Sprint(u.Value)
		h.rootUID = h.uid
	}
	if r := f.Identity.Root; r.Known && r.Value {
		// Fixes are for the ordinary user the setup is meant for, never for root: the one sudo came
		// from when there is one.
		h.user, h.uid, h.rootUID = "<user>", "$(id -u)", ""
		if s := f.Identity.SudoUser; s.Known && s.Value != "" {
			h.user = s.Value
		}
	}
	if h.rootUID == "" {
		h.rootUID = "$(id -u " + h.user + ")"
	}
	return h
}

// install returns the root commands that install a package: apt on Debian and Ubuntu, dnf on
// Fedora and RHEL, and a line that picks by the package manager present when the family is unknown.
// The names differ between the two worlds (uidmap vs shadow-utils), which is why both are given.
func (h checkHost) install(deb, rpm string) []string {
	switch h.family {
	case "debian":
		return []string{"apt-get update", "apt-get install -y " + deb}
	case "fedora":
		return []string{"dnf install -y " + rpm}
	}
	return []string{fmt.Sprintf("if command -v apt-get >/dev/null 2>&1; then apt-get update && apt-get install -y %s; else dnf install -y %s; fi", deb, rpm)}
}

// reinstall returns the root commands that reinstall a package, which restores file modes and
// capabilities the package ships.
func (h checkHost) reinstall(deb, rpm string) []string {
	switch h.family {
	case "debian":
		return []string{"apt-get update", "apt-get install --reinstall -y " + deb}
	case "fedora":
		return []string{"dnf reinstall -y " + rpm}
	}
	return []string{fmt.Sprintf("if command -v apt-get >/dev/null 2>&1; then apt-get update && apt-get install --reinstall -y %s; else dnf reinstall -y %s; fi", deb, rpm)}
}

// pkgName is the package name in prose: "uidmap" on Debian, "shadow-utils" on Fedora, both otherwise.
func (h checkHost) pkgName(deb, rpm string) string {
	switch h.family {
	case "debian":
		return deb
	case "fedora":
		return rpm
	}
	return deb + " (Debian/Ubuntu) or " + rpm + " (Fedora/RHEL)"
}

// sysctlDropIn persists a sysctl in its own drop-in (so two fixes never overwrite each other's file)
// and applies it at once.
func sysctlDropIn(name, value, file string) []string {
	return []string{
		fmt.Sprintf("printf '%%s\\n' '%s=%s' > /etc/sysctl.d/%s", name, value, file),
		"sysctl --system",
	}
}

// evidenceLines renders facts' evidence as "kind source: excerpt", the exact values seen with where
// they came from.
func evidenceLines(evs ...[]Evidence) []string {
	var out []string
	for _, list := range evs {
		for _, e := range list {
			s := strings.TrimSpace(e.Kind + " " + e.Source)
			if e.Excerpt != "" {
				s += ": " + e.Excerpt
			}
			out = append(out, s)
		}
	}
	return out
}

// factLines is a fact's evidence plus the error that kept it unknown.
func factLines[T any](x Fact[T]) []string {
	out := evidenceLines(x.Evidence)
	if len(out) == 0 && x.Known {
		// A fact always shows the value seen, even when whoever made it recorded no source.
		out = append(out, fmt.Sprintf("value: %+v", x.Value))
	}
	if x.Error != "" {
		// A known fact can carry an error too: part of it could not be learned.
		out = append(out, "error: "+x.Error)
	}
	return out
}

// unknownResult skips a check whose fact could not be learned, saying which and why.
func unknownResult[T any](what string, x Fact[T]) Result {
	title := what + " is unknown"
	if x.Error != "" {
		title += ": " + x.Error
	}
	return Result{Status: StatusSkip, Title: title, Evidence: factLines(x)}
}

// bin looks up a binary fact; a name the probe did not record is unknown.
func (h checkHost) bin(name string) Fact[Binary] {
	b, ok := h.f.Binaries[name]
	if !ok {
		return Unknown[Binary](fmt.Errorf("%s was not looked for", name))
	}
	return b
}

// found reports whether the binary is known to be installed.
func (h checkHost) found(name string) bool {
	b := h.bin(name)
	return b.Known && b.Value.Found
}

// atLeast reports whether the binary is installed and its version is known and at least min.
func (h checkHost) atLeast(name, min string) bool {
	b := h.bin(name)
	return b.Known && b.Value.Found && VersionAtLeast(b.Value.Version, min)
}

// below reports whether the binary is installed with a known version older than min.
func (h checkHost) below(name, min string) bool {
	b := h.bin(name)
	return b.Known && b.Value.Found && VersionAtLeast(b.Value.Version, "0") && !VersionAtLeast(b.Value.Version, min)
}

// feature reports whether the binary is installed and has the feature.
func (h checkHost) feature(name, feature string) bool {
	b := h.bin(name)
	return b.Known && b.Value.Found && b.Value.Features[feature]
}

// binaryLabel is "rootlesskit 2.3.6 at /usr/local/bin/rootlesskit" for titles and reasons.
func binaryLabel(b Binary) string {
	s := b.Name
	if b.Version != "" {
		s += " " + b.Version
	}
	if b.Path != "" {
		s += " at " + b.Path
	}
	return s
}

// uniqueLines drops repeated lines, keeping the first of each in order.
func uniqueLines(lines []string) []string {
	seen := make(map[string]bool, len(lines))
	out := lines[:0:0]
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}
