//go:build vmguest

// Package guest holds the tests that run inside the Debian 12 guest of internal/vmtest, as the
// unprivileged user tester in a login session (XDG_RUNTIME_DIR, the user's bus, lingering),
// against systemd's real user manager and cgroup v2. They are built with `go test -c -tags
// vmguest` on the host and never run there: they change the user's systemd units.
package guest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Files guest.sh puts next to the test binary.
const (
	answersFile = "answers.toml"
	// fuseAnswersFile holds the same answers with the fuse-overlayfs snapshotter.
	fuseAnswersFile = "answers-fuse.toml"
	imageFile       = "busybox.tar"
	imageRef        = "localhost/vmtest/busybox:1"
	// addressFile holds the guest's own non-loopback address, as guest.sh set it ("ADDR/BITS").
	addressFile = "address"
)

// hostAddress is the guest's non-loopback address: where a container reaches its host.
func hostAddress(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(addressFile)
	if err != nil {
		t.Fatal(err)
	}
	addr, _, _ := strings.Cut(strings.TrimSpace(string(b)), "/")
	return addr
}

// result is one command's outcome.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// run runs a command and returns its outcome; only a failure to start it is fatal.
func run(t *testing.T, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", name, err)
	}
	t.Logf("$ %s %s  (exit %d, %.1f s)", name, strings.Join(args, " "), code, time.Since(start).Seconds())
	return result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

// must runs a command that has to succeed and returns its standard output.
func must(t *testing.T, name string, args ...string) string {
	t.Helper()
	r := run(t, name, args...)
	if r.Code != 0 {
		t.Fatalf("%s %s: %s", name, strings.Join(args, " "), r)
	}
	return r.Stdout
}

// check is the part of a doctor result the tests look at.
type check struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Title  string `json:"title"`
	Fix    struct {
		Summary string   `json:"summary"`
		User    []string `json:"user"`
		Root    []string `json:"root"`
	} `json:"fix"`
}

// doctor runs `virt-setup doctor --json` and returns its checks by ID, and its exit status.
func doctor(t *testing.T) (map[string]check, int) {
	t.Helper()
	r := run(t, "virt-setup", "doctor", "--json")
	var rep struct {
		Checks []check `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r)
	}
	out := map[string]check{}
	for _, c := range rep.Checks {
		out[c.ID] = c
		if c.Status != "ok" && c.Status != "skip" {
			t.Logf("doctor: %s %s: %s", c.ID, c.Status, c.Title)
		}
	}
	return out, r.Code
}

// event is the part of an engine event the tests look at.
type event struct {
	Kind  string `json:"kind"`
	Step  string `json:"step"`
	Line  string `json:"line"`
	Err   string `json:"error"`
	Fix   string `json:"fix"`
	Title string `json:"title"`
}

// install runs `virt-setup install --yes --json-events` with the answers file and more flags,
// and returns its events.
func install(t *testing.T, flags ...string) ([]event, result) {
	t.Helper()
	return installAnswers(t, answersFile, flags...)
}

func installAnswers(t *testing.T, answers string, flags ...string) ([]event, result) {
	t.Helper()
	r := run(t, "virt-setup", append([]string{"install", "--yes", "--answers", answers, "--json-events"}, flags...)...)
	var events []event
	sc := bufio.NewScanner(strings.NewReader(r.Stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("install --json-events printed a line that is not an event: %q", sc.Text())
		}
		events = append(events, e)
	}
	return events, r
}

func stepsWith(events []event, kind string) []string {
	var ids []string
	for _, e := range events {
		if e.Kind == kind {
			ids = append(ids, e.Step)
		}
	}
	return ids
}

// requireSession checks that the test runs in the login session guest.sh promised.
func requireSession(t *testing.T) {
	t.Helper()
	want := "/run/user/" + strconv.Itoa(os.Getuid())
	if got := os.Getenv("XDG_RUNTIME_DIR"); got != want {
		t.Fatalf("XDG_RUNTIME_DIR=%q, want %q: the test must run in a login session (su -l)", got, want)
	}
	if os.Getuid() == 0 {
		t.Fatal("the guest tests run as an unprivileged user")
	}
	t.Logf("session: user %s, XDG_RUNTIME_DIR=%s, DBUS_SESSION_BUS_ADDRESS=%s", os.Getenv("USER"), os.Getenv("XDG_RUNTIME_DIR"), os.Getenv("DBUS_SESSION_BUS_ADDRESS"))
}

// TestSystemdPath installs rootless containerd as systemd user units on a host prepared as the
// documentation says (cgroup v2, all five controllers delegated, lingering), then checks every
// promise of the systemd service mode with the real tools, and undoes it.
func TestSystemdPath(t *testing.T) {
	requireSession(t)
	home := os.Getenv("HOME")

	checks, code := doctor(t)
	for _, id := range []string{"VS-CGROUP-001", "VS-CGROUP-002", "VS-SYSTEMD-001", "VS-LINGER-001", "VS-DBUS-001", "VS-XDG-001", "VS-SUBID-001"} {
		if c, ok := checks[id]; !ok || c.Status != "ok" {
			t.Errorf("doctor: %s is %q (%s), want ok on a prepared systemd host", id, c.Status, c.Title)
		}
	}
	if code == 3 {
		t.Fatalf("doctor exits 3 (a check failed) on a prepared host")
	}
	followPathFix(t, checks)

	// The user's own nerdctl settings, which install merges into and uninstall restores.
	nerdctlToml := filepath.Join(home, ".config/nerdctl/nerdctl.toml")
	mine := "# my own nerdctl settings\nnamespace = \"default\"\ndebug = false\n"
	if err := os.MkdirAll(filepath.Dir(nerdctlToml), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nerdctlToml, []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}

	events, r := install(t)
	if r.Code != 0 {
		t.Fatalf("install: %s", r)
	}
	if failed := stepsWith(events, "step-failed"); len(failed) > 0 {
		t.Fatalf("install exited 0 with failed steps %v", failed)
	}
	t.Logf("install: applied %v, skipped %v", stepsWith(events, "step-done"), stepsWith(events, "step-skipped"))

	t.Run("containerd.service", func(t *testing.T) {
		if got := strings.TrimSpace(run(t, "systemctl", "--user", "is-active", "containerd.service").Stdout); got != "active" {
			t.Fatalf("containerd.service is %q", got)
		}
		override, err := os.ReadFile(filepath.Join(home, ".config/systemd/user/containerd.service.d/override.conf"))
		if err != nil {
			t.Fatal(err)
		}
		// The answers choose MTU 1500 and the slirp4netns port driver, neither a default.
		for _, want := range []string{"CONTAINERD_ROOTLESS_ROOTLESSKIT_MTU=1500", "CONTAINERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns",
			"CONTAINERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns", "CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS=true"} {
			if !strings.Contains(string(override), want) {
				t.Errorf("override.conf lacks %s:\n%s", want, override)
			}
		}
		// And the running RootlessKit got them: containerd-rootless.sh execs it as the main process.
		pid := strings.TrimSpace(strings.TrimPrefix(must(t, "systemctl", "--user", "show", "--property", "MainPID", "containerd.service"), "MainPID="))
		cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		for _, want := range []string{"--mtu=1500", "--port-driver=slirp4netns", "--net=slirp4netns", "--detach-netns"} {
			if !slices.Contains(args, want) {
				t.Errorf("RootlessKit (pid %s) runs without %s: %q", pid, want, args)
			}
		}
	})

	t.Run("nerdctl info", func(t *testing.T) {
		var info struct {
			Driver, CgroupDriver, CgroupVersion string
		}
		if err := json.Unmarshal([]byte(must(t, "nerdctl", "info", "--format", "{{json .}}")), &info); err != nil {
			t.Fatal(err)
		}
		if info.Driver != "overlayfs" || info.CgroupDriver != "systemd" || info.CgroupVersion != "2" {
			t.Errorf("nerdctl info: driver %q, cgroup driver %q, cgroup version %q; want overlayfs, systemd, 2", info.Driver, info.CgroupDriver, info.CgroupVersion)
		}
	})

	must(t, "nerdctl", "load", "-i", imageFile)

	t.Run("limits in the container's cgroup", func(t *testing.T) {
		out := must(t, "nerdctl", "run", "--rm", "--memory", "64m", "--pids-limit", "20", "--cpus", "0.5", imageRef,
			"cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/cpu.max")
		if got, want := strings.Fields(out), []string{"67108864", "20", "50000", "100000"}; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("memory.max, pids.max, cpu.max in the container: %q, want %q", got, want)
		}
	})

	t.Run("bypass4netns", func(t *testing.T) {
		if got := strings.TrimSpace(run(t, "systemctl", "--user", "is-active", "bypass4netnsd.service").Stdout); got != "active" {
			t.Fatalf("bypass4netnsd.service is %q", got)
		}
		hostAddr := hostAddress(t)
		for _, tt := range []struct {
			name  string
			flags []string
			owner string // the process that owns the connection on the host's side
		}{
			{"without", nil, "slirp4netns"},
			{"with", []string{"--annotation", "nerdctl/bypass4netns=true"}, "nc"},
		} {
			l, err := net.Listen("tcp", hostAddr+":0")
			if err != nil {
				t.Fatal(err)
			}
			port := l.Addr().(*net.TCPAddr).Port
			got := make(chan []string, 1)
			go func() { got <- acceptOwner(l) }()
			args := append([]string{"run", "--rm"}, tt.flags...)
			args = append(args, imageRef, "sh", "-c", fmt.Sprintf("echo hello | nc -w 5 %s %d", hostAddr, port))
			r := run(t, "nerdctl", args...)
			l.Close()
			owner := <-got
			if r.Code != 0 {
				t.Errorf("%s bypass4netns: the container could not connect to the host: %s", tt.name, r)
			}
			if !slices.Contains(owner, tt.owner) || tt.name == "with" && slices.Contains(owner, "slirp4netns") {
				t.Errorf("%s bypass4netns: on the host, the connection is held by %q, want %q", tt.name, owner, tt.owner)
			}
		}
	})

	t.Run("verify", func(t *testing.T) {
		if r := run(t, "virt-setup", "verify"); r.Code != 0 {
			t.Errorf("verify: %s", r)
		}
	})

	t.Run("a second install changes nothing", func(t *testing.T) {
		before := snapshot(t, home)
		events, r := install(t)
		if r.Code != 0 {
			t.Fatalf("second install: %s", r)
		}
		// The verify step runs every time; every step that changes something must be skipped.
		for _, id := range stepsWith(events, "step-done") {
			if !strings.HasPrefix(id, "verify:") {
				t.Errorf("second install applied %s again", id)
			}
		}
		if diff := before.diff(snapshot(t, home)); diff != "" {
			t.Errorf("second install changed files:\n%s", diff)
		}
	})

	t.Run("uninstall", func(t *testing.T) {
		if r := run(t, "virt-setup", "uninstall"); r.Code != 0 {
			t.Fatalf("uninstall: %s", r)
		}
		listed := run(t, "systemctl", "--user", "list-units", "--all", "--no-legend", "containerd.service", "bypass4netnsd.service")
		files := run(t, "systemctl", "--user", "list-unit-files", "--no-legend", "containerd.service", "bypass4netnsd.service")
		if strings.TrimSpace(listed.Stdout+files.Stdout) != "" {
			t.Errorf("systemctl --user still lists the units:\n%s%s", listed.Stdout, files.Stdout)
		}
		for _, p := range []string{".config/systemd/user/containerd.service", ".config/systemd/user/bypass4netnsd.service",
			".config/systemd/user/containerd.service.d/override.conf"} {
			if _, err := os.Stat(filepath.Join(home, p)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("~/%s is still there (%v)", p, err)
			}
		}
		if b, err := os.ReadFile(nerdctlToml); err != nil || string(b) != mine {
			t.Errorf("nerdctl.toml is not restored byte for byte: %v\n%s", err, b)
		}
	})

	// The snapshotter for kernels whose overlayfs refuses user namespaces (Fedora with SELinux
	// before 5.13): its daemon as a third unit, and containerd's config.toml with the proxy plugin.
	t.Run("fuse-overlayfs", func(t *testing.T) {
		config := filepath.Join(home, ".config/containerd/config.toml")
		events, r := installAnswers(t, fuseAnswersFile)
		if r.Code != 0 {
			t.Fatalf("install with fuse-overlayfs: %s", r)
		}
		if done := stepsWith(events, "step-done"); !slices.Contains(done, "verify:containerd") {
			t.Errorf("install did not verify a container on fuse-overlayfs: applied %v", done)
		}
		if got := strings.TrimSpace(run(t, "systemctl", "--user", "is-active", "containerd-fuse-overlayfs.service").Stdout); got != "active" {
			t.Errorf("containerd-fuse-overlayfs.service is %q", got)
		}
		b, err := os.ReadFile(config)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			ProxyPlugins map[string]struct {
				Type, Address string
			} `toml:"proxy_plugins"`
		}
		if err := toml.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("config.toml: %v\n%s", err, b)
		}
		want := fmt.Sprintf("/run/user/%d/containerd-fuse-overlayfs.sock", os.Getuid())
		if p := cfg.ProxyPlugins["fuse-overlayfs"]; p.Type != "snapshot" || p.Address != want {
			t.Errorf("config.toml registers fuse-overlayfs as %+v, want a snapshot proxy at %s:\n%s", p, want, b)
		}
		// Install's last step already ran a container with this snapshotter (verify); nerdctl must
		// pick it up by default.
		if got := strings.TrimSpace(must(t, "nerdctl", "info", "--format", "{{.Driver}}")); got != "fuse-overlayfs" {
			t.Errorf("nerdctl info: driver %q, want fuse-overlayfs", got)
		}
		if r := run(t, "virt-setup", "uninstall"); r.Code != 0 {
			t.Fatalf("uninstall: %s", r)
		}
		files := run(t, "systemctl", "--user", "list-unit-files", "--no-legend", "containerd.service", "containerd-fuse-overlayfs.service", "bypass4netnsd.service")
		if strings.TrimSpace(files.Stdout) != "" {
			t.Errorf("systemctl --user still lists the units:\n%s", files.Stdout)
		}
		if _, err := os.Stat(config); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("config.toml, which install created, is still there (%v)", err)
		}
	})
}

// TestUndelegatedCgroups runs on a stock Debian 12, where systemd delegates only memory and pids to
// users: doctor must say exactly that, with the fix, and install must stop before it changes
// anything: only the root script, saved for review, is new.
func TestUndelegatedCgroups(t *testing.T) {
	requireSession(t)
	home := os.Getenv("HOME")

	// The oracle: the controllers systemd enabled for the user's manager, read directly.
	missing := undelegated(t)
	if len(missing) == 0 {
		t.Fatal("every controller is delegated: the scenario needs Debian's default")
	}
	t.Logf("not delegated, read from cgroup.controllers: %v", missing)

	checks, _ := doctor(t)
	c := checks["VS-CGROUP-002"]
	if c.Status != "warn" && c.Status != "fail" {
		t.Fatalf("doctor: VS-CGROUP-002 is %q (%s) with %v not delegated", c.Status, c.Title, missing)
	}
	words := strings.FieldsFunc(c.Title, func(r rune) bool { return r == ' ' || r == ',' || r == ':' })
	for _, want := range missing {
		if !slices.Contains(words, want) {
			t.Errorf("VS-CGROUP-002 does not name the missing controller %s: %q", want, c.Title)
		}
	}
	if root := strings.Join(c.Fix.Root, "\n"); !strings.Contains(root, "/etc/systemd/system/user@.service.d/delegate.conf") ||
		!strings.Contains(root, "Delegate=cpu cpuset io memory pids") {
		t.Errorf("VS-CGROUP-002's fix does not write delegate.conf:\n%s", root)
	}
	for id, c := range checks {
		if c.Status == "fail" {
			t.Errorf("doctor: %s fails (%s); only the delegation is broken here", id, c.Title)
		}
	}
	followPathFix(t, checks)

	before := snapshot(t, home)
	events, r := install(t)
	if r.Code != 3 {
		t.Fatalf("install: want exit 3 (the root script must run first): %s", r)
	}
	if done := stepsWith(events, "step-done"); len(done) > 0 {
		t.Errorf("install applied %v before the root script ran", done)
	}
	var fix string
	for _, e := range events {
		if e.Kind == "step-failed" {
			fix = e.Fix
		}
	}
	script := filepath.Join(home, ".local/state/virt-setup/privileged.sh")
	if !strings.Contains(fix, script) {
		t.Errorf("install's fix does not name the saved script %s: %q", script, fix)
	}
	b, err := os.ReadFile(script)
	if err != nil || !strings.Contains(string(b), "Delegate=cpu cpuset io memory pids") {
		t.Errorf("the saved root script does not delegate the controllers: %v\n%s", err, b)
	}
	if diff := before.diff(snapshot(t, home)); diff != "" {
		t.Errorf("install changed files before the root script ran:\n%s", diff)
	}
	if r := run(t, "systemctl", "--user", "list-unit-files", "--no-legend", "containerd.service"); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("install created containerd.service: %s", r.Stdout)
	}

	// The user reviews the script and lets virt-setup run it through sudo (passwordless here). On
	// systemd 252 the daemon-reload in the script hands the controllers to the running user
	// manager at once, so the same run goes on to install and verify.
	t.Run("install --sudo", func(t *testing.T) {
		events, r := install(t, "--sudo")
		if r.Code != 0 {
			t.Fatalf("install --sudo: %s", r)
		}
		if done := stepsWith(events, "step-done"); len(done) == 0 || done[0] != "privileged" {
			t.Errorf("install --sudo applied %v, want the root script first", done)
		}
		if b, err := os.ReadFile("/etc/systemd/system/user@.service.d/delegate.conf"); err != nil || !strings.Contains(string(b), "Delegate=cpu cpuset io memory pids") {
			t.Errorf("the root script did not write delegate.conf: %v\n%s", err, b)
		}
		if left := undelegated(t); len(left) > 0 {
			t.Errorf("after the root script, %v are still not delegated", left)
		}
		checks, _ := doctor(t)
		if c := checks["VS-CGROUP-002"]; c.Status != "ok" {
			t.Errorf("doctor after the root script: VS-CGROUP-002 is %s (%s)", c.Status, c.Title)
		}
		// A container gets the controllers that were missing, and a cpuset limit holds.
		must(t, "nerdctl", "load", "-i", imageFile)
		out := strings.Fields(must(t, "nerdctl", "run", "--rm", "--cpuset-cpus", "0", imageRef,
			"cat", "/sys/fs/cgroup/cpuset.cpus", "/sys/fs/cgroup/cgroup.controllers"))
		if len(out) == 0 || out[0] != "0" {
			t.Errorf("cpuset.cpus in the container: %q, want 0", out)
		}
		for _, c := range missing {
			if !slices.Contains(out, c) {
				t.Errorf("the container's cgroup lacks the %s controller: %q", c, out)
			}
		}
	})
}

// undelegated returns the controllers rootless containers want that systemd has not enabled for
// the user's manager (its cgroup.controllers file).
func undelegated(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/sys/fs/cgroup/user.slice/user-%d.slice/user@%d.service/cgroup.controllers", os.Getuid(), os.Getuid()))
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, c := range []string{"cpu", "cpuset", "io", "memory", "pids"} {
		if !slices.Contains(strings.Fields(string(b)), c) {
			missing = append(missing, c)
		}
	}
	return missing
}

// followPathFix does what VS-IPTABLES-002 tells a Debian user whose PATH lacks /usr/sbin, where
// iptables lives (Debian gives only root /usr/sbin): nerdctl run needs it to set up networks.
func followPathFix(t *testing.T, checks map[string]check) {
	t.Helper()
	if c := checks["VS-IPTABLES-002"]; c.Status == "warn" {
		if !strings.Contains(strings.Join(c.Fix.User, "\n"), "/usr/sbin") {
			t.Errorf("VS-IPTABLES-002 warns without telling the user to add /usr/sbin to PATH: %+v", c.Fix)
		}
		os.Setenv("PATH", os.Getenv("PATH")+":/usr/sbin")
	}
}

// tree maps every file below a directory to a digest of its mode and content (symlinks to their
// target), leaving out virt-setup's own state and the test's files.
type tree map[string]string

func snapshot(t *testing.T, home string) tree {
	t.Helper()
	out := tree{}
	// containerd's and nerdctl's data (images, snapshots, the metadata database) change whenever
	// a container runs; the tests look at configuration, units and backups.
	skip := map[string]bool{".local/state/virt-setup": true, "vmtest": true, ".cache": true,
		".local/share/containerd": true, ".local/share/nerdctl": true}
	// virt-setup may create its state directory's parents.
	parents := map[string]bool{".local": true, ".local/state": true}
	err := filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(home, p)
		if errors.Is(err, fs.ErrPermission) {
			// The snapshotter's directories belong to the user namespace's sub-ids.
			out[rel] = "unreadable"
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if skip[rel] {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "-> " + target
		case d.IsDir() && !parents[rel]:
			out[rel] = "dir " + info.Mode().String()
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("%s %x", info.Mode(), sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (a tree) diff(b tree) string {
	var lines []string
	for p, v := range a {
		if w, ok := b[p]; !ok {
			lines = append(lines, "removed "+p)
		} else if v != w {
			lines = append(lines, "changed "+p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			lines = append(lines, "added "+p)
		}
	}
	return strings.Join(lines, "\n")
}

// acceptOwner accepts one connection and returns the command names of the processes on this host
// that hold the connection's other end: with bypass4netns the container's own process, else
// slirp4netns, which forwards the container's traffic.
func acceptOwner(l net.Listener) []string {
	c, err := l.Accept()
	if err != nil {
		return []string{"accept: " + err.Error()}
	}
	defer c.Close()
	peer := c.RemoteAddr().(*net.TCPAddr)
	local := c.LocalAddr().(*net.TCPAddr)
	inode := socketInode(peer, local)
	if inode == "" {
		return []string{fmt.Sprintf("no socket %s -> %s in /proc/net/tcp", peer, local)}
	}
	owner := socketOwner(inode)
	// Keep the connection until the client is done, so its process is still there.
	bufio.NewReader(c).ReadString('\n')
	return owner
}

// socketInode finds the inode of the TCP socket whose local end is from and remote end is to.
func socketInode(from, to *net.TCPAddr) string {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return ""
	}
	hexAddr := func(a *net.TCPAddr) string {
		ip := a.IP.To4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == hexAddr(from) && f[2] == hexAddr(to) {
			return f[9]
		}
	}
	return ""
}

// socketOwner returns the command names of the processes with a descriptor on the socket.
func socketOwner(inode string) []string {
	var owners []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); l == "socket:["+inode+"]" {
				comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
				owners = append(owners, strings.TrimSpace(string(comm)))
			}
		}
	}
	return owners
}
