package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/installer/image"
	"github.com/virt-setup/virt-setup/internal/testenv"
)

// e2eHome is one isolated user setup: the test user with its own HOME and XDG_RUNTIME_DIR, so
// that nothing here depends on (or disturbs) the test user's real home.
type e2eHome struct {
	u         testenv.TestUser
	bin, home string
	run       string // XDG_RUNTIME_DIR
}

func newE2EHome(t *testing.T, u testenv.TestUser, bin, name string) *e2eHome {
	t.Helper()
	base := testenv.SharedDir(t)
	h := &e2eHome{u: u, bin: bin, home: filepath.Join(base, "home "+name), run: filepath.Join(base, "run")}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{h.home, 0o755}, {h.run, 0o700}} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.path, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { h.killAll(t) })
	return h
}

func (h *e2eHome) env() []string {
	return []string{"HOME=" + h.home, "XDG_RUNTIME_DIR=" + h.run, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"}
}

// cmd builds a command run as the test user in this setup.
func (h *e2eHome) cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	c := h.u.Command(ctx, name, args, h.env()...)
	c.Env = append(c.Env[:0:0], append(filterEnv(c.Env, "HOME=", "PATH="), h.env()...)...)
	return c
}

func filterEnv(env []string, drop ...string) []string {
	var out []string
	for _, kv := range env {
		keep := true
		for _, d := range drop {
			if strings.HasPrefix(kv, d) {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// virtSetup runs the binary as the user and returns its exit code and output.
func (h *e2eHome) virtSetup(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := h.cmd(ctx, h.bin, args...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run virt-setup %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// must runs a command as the user and fails the test unless it succeeds.
func (h *e2eHome) must(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := h.cmd(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("as %s: %s %s: %v\n%s", h.u.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// write puts a file into the user's home, owned by the user.
func (h *e2eHome) write(t *testing.T, rel, content string) string {
	t.Helper()
	p := filepath.Join(h.home, rel)
	for d := filepath.Dir(p); d != h.home && !exists(d); d = filepath.Dir(d) {
		defer os.Chown(d, h.u.UID, h.u.GID)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, h.u.UID, h.u.GID); err != nil {
		t.Fatal(err)
	}
	return p
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// userFiles hashes every regular file and symlink of the user's configuration, leaving out what
// the container stack itself creates as it runs (CNI state, data) and virt-setup's own state.
func (h *e2eHome) userFiles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(h.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(h.home, p)
		for _, skip := range []string{".local/state/virt-setup", ".local/share", ".config/cni"} {
			if rel == skip {
				return filepath.SkipDir
			}
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "-> " + target
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi, _ := d.Info()
			sum := sha256.Sum256(b)
			out[rel] = hex.EncodeToString(sum[:]) + " " + fi.Mode().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// processes lists the test user's processes whose command line or environment mentions this
// setup's runtime directory: everything the setup started, and nothing of other tests.
func (h *e2eHome) processes(t *testing.T) []string {
	t.Helper()
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fi, err := os.Stat("/proc/" + e.Name())
		if err != nil || fi.Sys() == nil {
			continue
		}
		if st, ok := fi.Sys().(interface{ Uid() uint32 }); ok && int(st.Uid()) != h.u.UID {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		environ, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if bytes.Contains(cmdline, []byte(h.run)) || bytes.Contains(environ, []byte(h.run)) {
			out = append(out, strconv.Itoa(pid)+" "+strings.ReplaceAll(string(bytes.TrimRight(cmdline, "\x00")), "\x00", " "))
		}
	}
	return out
}

func (h *e2eHome) killAll(t *testing.T) {
	for _, p := range h.processes(t) {
		if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
			_ = killPID(pid)
		}
	}
}

func killPID(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// answersFile writes answers for the user.
func (h *e2eHome) answersFile(t *testing.T, a installer.Answers) string {
	t.Helper()
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return h.write(t, "answers.toml", string(b))
}

func e2eAnswers(snapshotter string, bypass bool) installer.Answers {
	return installer.Answers{
		SchemaVersion: installer.AnswersSchemaVersion, Snapshotter: snapshotter, ServiceMode: "direct",
		AddOns: installer.AddOnAnswers{Bypass4netns: bypass},
		RootlessKit: installer.RootlessKitAnswers{NetworkDriver: "slirp4netns", MTU: 65520, PortDriver: "builtin",
			Slirp4netnsSandbox: "auto", Slirp4netnsSeccomp: "auto", DetachNetns: "true"},
	}
}

// deviceModes sets the devices to mode 0600 root, as on this kind of machine without udev, so the
// installer has to ask for the privileged script; the original modes come back at the end.
func deviceModes(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		fi, err := os.Stat(p)
		testenv.Require(t, err == nil, p+" is missing")
		orig := fi.Mode().Perm()
		t.Cleanup(func() { os.Chmod(p, orig) })
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// requireStack checks for the pinned rootless stack scripts/install-components.sh installs.
func requireStack(t *testing.T) {
	t.Helper()
	for _, b := range []string{"containerd", "rootlesskit", "nerdctl", "containerd-rootless.sh", "containerd-rootless-setuptool.sh",
		"bypass4netns", "bypass4netnsd", "containerd-fuse-overlayfs-grpc"} {
		_, err := os.Stat("/usr/local/bin/" + b)
		testenv.Require(t, err == nil, "/usr/local/bin/"+b+" is missing: run scripts/install-components.sh (make test-setup)")
	}
	for _, b := range []string{"/usr/bin/slirp4netns", "/usr/bin/fuse-overlayfs", "/bin/busybox", "/opt/cni/bin/bridge"} {
		_, err := os.Stat(b)
		testenv.Require(t, err == nil, b+" is missing: run scripts/setup-test-host.sh and scripts/install-components.sh (make test-setup)")
	}
}

// e2eImage builds a busybox image archive the user can load with nerdctl.
func e2eImage(t *testing.T) string {
	t.Helper()
	src, err := image.FindBusybox()
	testenv.Require(t, err == nil, fmt.Sprintf("a static busybox: %v (install busybox-static: scripts/setup-test-host.sh)", err))
	spec := image.BusyboxSpec(src)
	spec.Ref = "localhost/e2e/busybox:1"
	p := filepath.Join(testenv.SharedDir(t), "busybox.tar")
	if _, err := image.WriteOCIArchiveFile(p, spec); err != nil {
		t.Fatal(err)
	}
	return p
}

// nerdctlDriver is the storage driver `nerdctl info` reports.
func (h *e2eHome) nerdctlDriver(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(h.must(t, "nerdctl", "info", "--format", "{{.Driver}}"))
}

// TestInstallEndToEnd installs rootless containerd for real, as an unprivileged user, in direct
// mode, with each snapshotter this host can run, and checks the result with the real nerdctl.
func TestInstallEndToEnd(t *testing.T) {
	u := testenv.RequireTestUser(t)
	requireStack(t)
	bin := testenv.BuildBinary(t)
	archive := e2eImage(t)
	deviceModes(t, "/dev/net/tun", "/dev/fuse")

	tests := []struct {
		name        string
		snapshotter string
		bypass      bool
		seed        map[string]string
	}{
		{"overlayfs with bypass4netns", "overlayfs", true, map[string]string{
			".config/nerdctl/nerdctl.toml": "# my nerdctl settings\nnamespace = \"default\" # keep this\n",
		}},
		{"native", "native", false, nil},
		{"fuse-overlayfs", "fuse-overlayfs", false, map[string]string{
			".config/containerd/config.toml": "# my containerd config\nversion = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  # a comment inside a table\n  enable_selinux = false\n",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newE2EHome(t, u, bin, tt.name)
			for rel, content := range tt.seed {
				h.write(t, rel, content)
			}
			answers := h.answersFile(t, e2eAnswers(tt.snapshotter, tt.bypass))
			before := h.userFiles(t)

			// The plan changes nothing: not the home, not /etc, not the journal.
			etcBefore := treeDigest(t, "/etc")
			code, plan, errOut := h.virtSetup(t, "plan", "--answers", answers)
			if code != 0 {
				t.Fatalf("plan: exit %d\n%s%s", code, plan, errOut)
			}
			if got := h.userFiles(t); !maps.Equal(before, got) {
				t.Fatalf("plan changed the home:\nbefore %v\nafter  %v", before, got)
			}
			if exists(filepath.Join(h.home, ".local/state")) {
				t.Fatal("plan created virt-setup's state directory (journal, backups)")
			}
			if treeDigest(t, "/etc") != etcBefore {
				t.Fatal("plan changed /etc")
			}
			if tt.snapshotter == "fuse-overlayfs" && (!strings.Contains(plan, `+[proxy_plugins."fuse-overlayfs"]`) || !strings.Contains(plan, "   # a comment inside a table")) {
				t.Errorf("the plan does not show the config.toml merge as a diff against the user's file:\n%s", plan)
			}

			// While a device the setup needs is 0600 root (the first scenario starts so), the first
			// install stops before changing anything and saves the root script for review.
			var wantRoot []string
			if !openToAll(t, "/dev/net/tun") {
				wantRoot = append(wantRoot, "chmod 0666 /dev/net/tun")
			}
			if tt.snapshotter == "fuse-overlayfs" && !openToAll(t, "/dev/fuse") {
				wantRoot = append(wantRoot, "chmod 0666 /dev/fuse")
			}
			code, out, errOut := h.virtSetup(t, "install", "--yes", "--answers", answers)
			script := filepath.Join(h.home, ".local/state/virt-setup/privileged.sh")
			if len(wantRoot) > 0 {
				if code != exitNeedsPrivilege {
					t.Fatalf("first install: exit %d, want %d (needs the root script)\n%s%s", code, exitNeedsPrivilege, out, errOut)
				}
				if got := h.userFiles(t); !maps.Equal(before, got) {
					t.Fatalf("an install that needs root first changed the user's files:\nbefore %v\nafter  %v", before, got)
				}
				b, err := os.ReadFile(script)
				if err != nil {
					t.Fatalf("saved root script: %v", err)
				}
				for _, w := range wantRoot {
					if !strings.Contains(string(b), w) {
						t.Errorf("the root script lacks %q:\n%s", w, b)
					}
				}
				// The administrator reviews and runs it.
				if out, err := exec.Command("sh", "-eu", script).CombinedOutput(); err != nil {
					t.Fatalf("run the root script: %v\n%s", err, out)
				}
			} else if code != 0 {
				t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
			}

			code, out, errOut = h.virtSetup(t, "install", "--yes", "--answers", answers)
			if code != 0 {
				t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
			}
			if !strings.Contains(out, "✓ finished") {
				t.Errorf("install output lacks the summary:\n%s", out)
			}

			if got := h.nerdctlDriver(t); got != tt.snapshotter {
				t.Errorf("nerdctl info: storage driver %q, want %q", got, tt.snapshotter)
			}
			h.must(t, "nerdctl", "load", "-i", archive)
			if got := h.must(t, "nerdctl", "run", "--rm", "localhost/e2e/busybox:1", "/bin/busybox", "echo", "hello "+tt.name); !strings.Contains(got, "hello "+tt.name) {
				t.Errorf("nerdctl run printed %q", got)
			}
			if tt.bypass {
				got := h.must(t, "nerdctl", "run", "--rm", "--annotation", "nerdctl/bypass4netns=true", "localhost/e2e/busybox:1", "/bin/busybox", "echo", "bypassed")
				if !strings.Contains(got, "bypassed") {
					t.Errorf("nerdctl run with bypass4netns printed %q", got)
				}
			}
			for rel, content := range tt.seed {
				b, _ := os.ReadFile(filepath.Join(h.home, rel))
				for _, line := range strings.Split(strings.TrimSpace(content), "\n") {
					if !strings.Contains(string(b), line) {
						t.Errorf("%s lost the user's line %q:\n%s", rel, line, b)
					}
				}
			}

			// A second install changes nothing: every step but verification is skipped.
			pids := h.processes(t)
			filesInstalled := h.userFiles(t)
			code, out, errOut = h.virtSetup(t, "install", "--yes", "--answers", answers, "--json-events")
			if code != 0 {
				t.Fatalf("second install: exit %d\n%s%s", code, out, errOut)
			}
			for _, ev := range decodeEvents(t, out) {
				if ev.Kind == installer.EventStepDone && ev.Step != "verify:containerd" {
					t.Errorf("second install applied %s again", ev.Step)
				}
			}
			if got := h.processes(t); !slices.Equal(pids, got) {
				t.Errorf("second install changed the processes:\nbefore %v\nafter  %v", pids, got)
			}
			if got := h.userFiles(t); !maps.Equal(filesInstalled, got) {
				t.Errorf("second install changed files")
			}

			// Uninstall: the user's files are back byte for byte and nothing of ours runs.
			code, out, errOut = h.virtSetup(t, "uninstall", "--purge")
			if code != 0 {
				t.Fatalf("uninstall: exit %d\n%s%s", code, out, errOut)
			}
			if got := h.userFiles(t); !maps.Equal(before, got) {
				t.Errorf("after uninstall the user's files differ:\nbefore %v\nafter  %v", before, got)
			}
			if left := h.processes(t); len(left) > 0 {
				t.Errorf("processes left after uninstall: %v", left)
			}
		})
	}
}

// TestInstallKilledAndResumed kills virt-setup in the middle of an install and runs it again: the
// second run resumes from the journal and finishes, with no duplicate services, and uninstall
// still restores everything.
func TestInstallKilledAndResumed(t *testing.T) {
	u := testenv.RequireTestUser(t)
	requireStack(t)
	bin := testenv.BuildBinary(t)
	for _, p := range []string{"/dev/net/tun"} {
		fi, err := os.Stat(p)
		testenv.Require(t, err == nil, p+" is missing")
		orig := fi.Mode().Perm()
		t.Cleanup(func() { os.Chmod(p, orig) })
		// What the reviewed root script does (the previous test exercises the script itself).
		if err := os.Chmod(p, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	h := newE2EHome(t, u, bin, "resume")
	h.write(t, ".config/nerdctl/nerdctl.toml", "# mine\n")
	answers := h.answersFile(t, e2eAnswers("overlayfs", true))
	before := h.userFiles(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := h.cmd(ctx, h.bin, "install", "--yes", "--answers", answers, "--json-events")
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	killedAt := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var ev installer.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Kind == installer.EventStepStarted && ev.Step == "service:bypass4netnsd" {
			// The nerdctl.toml write and containerd are done; bypass4netnsd is next.
			killedAt = ev.Step
			if err := c.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	_ = c.Wait()
	if killedAt == "" {
		t.Fatal("the install ended before the step the test kills it at")
	}
	j, err := installer.LoadJournal(filepath.Join(h.home, ".local/state/virt-setup/journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, interrupted := j.Interrupted(); !interrupted {
		t.Fatalf("the journal of a killed run does not say it was interrupted: %+v", j.Runs)
	}

	code, out, errOut := h.virtSetup(t, "install", "--yes", "--answers", answers, "--json-events")
	if code != 0 {
		t.Fatalf("resumed install: exit %d\n%s%s", code, out, errOut)
	}
	skipped := map[string]bool{}
	for _, ev := range decodeEvents(t, out) {
		if ev.Kind == installer.EventStepSkipped {
			skipped[ev.Step] = true
		}
	}
	if !skipped["file:nerdctl.toml"] || !skipped["service:containerd"] {
		t.Errorf("the resumed run redid steps the killed run had finished: skipped %v", skipped)
	}
	rootlesskits := 0
	for _, p := range h.processes(t) {
		if strings.Contains(p, " rootlesskit ") || strings.HasSuffix(strings.Fields(p)[1], "rootlesskit") {
			rootlesskits++
		}
	}
	if rootlesskits != 1 {
		t.Errorf("%d RootlessKit parents run for one setup, want 1: %v", rootlesskits, h.processes(t))
	}
	if got := h.nerdctlDriver(t); got != "overlayfs" {
		t.Errorf("nerdctl info: %q", got)
	}

	// stop and start, as after a reboot: the same setup comes back.
	if code, out, errOut := h.virtSetup(t, "stop"); code != 0 {
		t.Fatalf("stop: exit %d\n%s%s", code, out, errOut)
	}
	if left := h.processes(t); len(left) > 0 {
		t.Errorf("processes left after stop: %v", left)
	}
	if code, out, errOut := h.virtSetup(t, "start"); code != 0 {
		t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
	}
	if got := h.nerdctlDriver(t); got != "overlayfs" {
		t.Errorf("nerdctl info after start: %q", got)
	}
	if code, out, errOut := h.virtSetup(t, "verify"); code != 0 || !strings.Contains(out, "run a container") {
		t.Errorf("verify after start: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := h.virtSetup(t, "uninstall"); code != 0 {
		t.Fatalf("uninstall: exit %d\n%s%s", code, out, errOut)
	}
	if got := h.userFiles(t); !maps.Equal(before, got) {
		t.Errorf("after uninstall the user's files differ:\nbefore %v\nafter  %v", before, got)
	}
	if left := h.processes(t); len(left) > 0 {
		t.Errorf("processes left after uninstall: %v", left)
	}
}

// TestHostileAnswersRunNothing feeds answers with shell syntax in every value: validation names
// the key, install refuses, and nothing the values spell out runs.
func TestHostileAnswersRunNothing(t *testing.T) {
	u := testenv.RequireTestUser(t)
	bin := testenv.BuildBinary(t)
	h := newE2EHome(t, u, bin, "hostile '$(x)';")
	marker := filepath.Join(testenv.SharedDir(t), "pwned")
	evil := "slirp4netns; touch " + marker + " $(touch " + marker + ") `touch " + marker + "`"
	file := h.write(t, "answers evil.toml", strings.Join([]string{
		"schema_version = 1",
		`snapshotter = "overlayfs' ; touch ` + marker + `"`,
		`service_mode = "direct"`,
		"[addons]", "[rootlesskit]",
		`network_driver = "` + strings.ReplaceAll(evil, `"`, `\"`) + `"`,
		"mtu = 1500", `port_driver = "builtin"`, `slirp4netns_sandbox = "auto"`, `slirp4netns_seccomp = "auto"`, `detach_netns = "$(touch ` + marker + `)"`,
	}, "\n")+"\n")
	code, _, errOut := h.virtSetup(t, "validate", file)
	if code != exitUsage {
		t.Errorf("validate: exit %d, want %d", code, exitUsage)
	}
	for _, key := range []string{"snapshotter = ", "rootlesskit.network_driver = ", "rootlesskit.detach_netns = ", "use one of: overlayfs, fuse-overlayfs, native"} {
		if !strings.Contains(errOut, key) {
			t.Errorf("validate does not name %q:\n%s", key, errOut)
		}
	}
	for _, args := range [][]string{{"plan", "--answers", file}, {"install", "--yes", "--answers", file}} {
		if code, out, errOut := h.virtSetup(t, args...); code == 0 {
			t.Errorf("%v accepted hostile answers:\n%s%s", args, out, errOut)
		}
	}
	if exists(marker) {
		t.Fatal("a command from the answers file ran")
	}
	if left := h.processes(t); len(left) > 0 {
		t.Errorf("processes started: %v", left)
	}
}

func decodeEvents(t *testing.T, out string) []installer.Event {
	t.Helper()
	var evs []installer.Event
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev installer.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("not a JSON event: %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// openToAll reports whether everyone may read and write the device, as udev sets it up.
func openToAll(t *testing.T, p string) bool {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()&0o006 == 0o006
}

// treeDigest hashes the names, modes and contents of the regular files below dir.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable corners of /etc do not change what the test compares
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		h.Write([]byte(p + " " + fi.Mode().String() + "\n"))
		if d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				h.Write(b)
			}
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}
