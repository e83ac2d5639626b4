package installer

// Direct service mode: on hosts without a systemd user manager (VMs without systemd as PID 1, WSL,
// Alpine) virt-setup runs the rootless stack itself. Each service is a background process in a
// session of its own, with a pid file and a log under virt-setup's state directory, and a
// fingerprint of what it was started with so that changed answers restart it (the setuptool would
// have skipped a unit that already exists).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virt-setup/virt-setup/internal/fsutil"
	"github.com/virt-setup/virt-setup/internal/sys"
)

// Names of the services direct mode runs, in start order.
const (
	ServiceContainerd    = "containerd"
	ServiceBypass4netnsd = "bypass4netnsd"
	ServiceFuseOverlayfs = "containerd-fuse-overlayfs"
	ServiceStargz        = "stargz-snapshotter"
	ServiceBuildKit      = "buildkitd"
)

// Timing of direct services. containerd is usually ready within half a second (test-lab.md); the
// bounds are for slow disks and first starts, not the usual case.
const (
	containerdReadyTimeout = 30 * time.Second
	addOnReadyTimeout      = 20 * time.Second
	// buildkitd initialises its worker (and may probe runc) before it listens.
	buildkitReadyTimeout = 60 * time.Second
	// killWait is how long SIGKILLed processes may take to disappear.
	killWait  = 5 * time.Second
	readyPoll = 50 * time.Millisecond
	// logTailLines is how much of a service's log a start failure shows.
	logTailLines = 20
	// maxLogSize is when a service's log is rotated (to LOG.1) before a start: each start
	// appends, and containerd's log grows with every container.
	maxLogSize = 8 << 20
)

// stopGrace is how long a service has to exit after SIGTERM before it is killed; containerd shuts
// down in well under a second. A variable so that tests of the SIGKILL path need not wait for it.
var stopGrace = 10 * time.Second

// ReadyCheck reports whether a service is ready: nil when it is, otherwise what it is still
// waiting for (shown when the service never gets ready).
type ReadyCheck func(ctx context.Context) error

// DirectService describes one background service virt-setup runs itself.
type DirectService struct {
	// Name is one of the Service… names.
	Name string
	// Argv is the command line; Argv[0] is an absolute path.
	Argv []string
	// Env is the complete environment, sorted.
	Env []string
	// Dir is the working directory (the user's home, as systemd gives user services).
	Dir string
	// PIDFile and LogFile are under virt-setup's state directory.
	PIDFile string
	LogFile string
	// Match is the run of command-line words that identifies the service's process whichever
	// program of its exec chain is running: the setuptool's shell, then nsenter, then the daemon
	// itself all carry the daemon's path and arguments; RootlessKit carries containerd-rootless.sh.
	Match []string
	// Socket, when set, is the unix socket the service listens on; a stale one is removed before
	// a start, and its directory is created.
	Socket string
	// Ready tells when the service can be used, within ReadyTimeout of its start.
	Ready        ReadyCheck
	ReadyTimeout time.Duration
	// RootlessKitStateDir is the state directory of the RootlessKit that runs containerd
	// ($XDG_RUNTIME_DIR/containerd-rootless, which the setuptool's nsenter and nerdctl hard-code).
	RootlessKitStateDir string
	// RunsRootlessKit is true for containerd: its process is RootlessKit, whose child's user
	// namespace holds containerd, the shims and the containers.
	RunsRootlessKit bool
	// InRootlessNamespaces is true for add-ons started inside RootlessKit's namespaces through
	// `containerd-rootless-setuptool.sh nsenter`: they need containerd running, and must start
	// again when containerd restarts (they would be left in the old namespaces).
	InRootlessNamespaces bool
	// ConfigFiles are read by the service when it starts; a change to their content restarts it.
	ConfigFiles []string
	// EnsureFiles are created empty before a start when missing (the stargz snapshotter refuses a
	// -config that does not exist; the setuptool touches it the same way).
	EnsureFiles []string
}

// FingerprintFile is where the fingerprint of the running instance is kept, next to its pid file.
func (s DirectService) FingerprintFile() string {
	return strings.TrimSuffix(s.PIDFile, ".pid") + ".fingerprint"
}

// Fingerprint identifies what the service runs with: its command line, environment, working
// directory and the content of its config files. A running instance with another fingerprint is
// restarted.
func (s DirectService) Fingerprint() (string, error) {
	h := sha256.New()
	// Length-prefixed items, so that no two different inputs hash the same text.
	put := func(tag string, items ...string) {
		fmt.Fprintf(h, "%s %d\n", tag, len(items))
		for _, it := range items {
			fmt.Fprintf(h, "%d:%s\n", len(it), it)
		}
	}
	put("argv", s.Argv...)
	put("env", slices.Sorted(slices.Values(s.Env))...)
	put("dir", s.Dir)
	for _, f := range s.ConfigFiles {
		b, err := os.ReadFile(f)
		switch {
		case err == nil:
			sum := sha256.Sum256(b)
			put("config", f, hex.EncodeToString(sum[:]))
		case errors.Is(err, fs.ErrNotExist):
			put("config", f, "absent")
		default:
			return "", fmt.Errorf("read %s for %s's fingerprint: %w", f, s.Name, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// commandLine renders the start the way a user could type it: the settings virt-setup chooses, the
// program, and where its output goes.
func (s DirectService) commandLine() string {
	var parts []string
	for _, kv := range s.Env {
		if strings.HasPrefix(kv, "CONTAINERD_ROOTLESS_") {
			parts = append(parts, sys.ShellQuote(kv))
		}
	}
	for _, a := range s.Argv {
		parts = append(parts, sys.ShellQuote(a))
	}
	return strings.Join(parts, " ") + " >>" + sys.ShellQuote(s.LogFile) + " 2>&1 & echo $! >" + sys.ShellQuote(s.PIDFile)
}

// pidFileWrapper is the shell that starts a service: it writes its own pid to the pid file
// ($0, through a temporary file and a rename) and then becomes the service, which keeps the pid.
// The pid file therefore exists before the service runs at all, so a virt-setup killed at any
// moment of a start never leaves a service that nothing records.
const pidFileWrapper = `echo $$ >"$0.$$.tmp" && mv -f "$0.$$.tmp" "$0" && exec "$@"`

// directEnvKeys are the variables of the user's environment a service inherits. A daemon gets a
// fixed set, not the whole shell: terminal and session variables (TERM, SSH_*, XDG_SESSION_ID)
// change from one login to the next and would change the fingerprint, restarting the service for
// nothing. CONTAINERD_ROOTLESS_* from the shell are left out too: the answers set RootlessKit's
// options, and a stray export must not change them behind the plan's back (systemd units do not
// see the shell's variables either).
var directEnvKeys = []string{
	"HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR",
	"XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME",
	"XDG_DATA_DIRS", "XDG_CONFIG_DIRS",
	// Pulls and builds go through the user's proxy, as with `systemctl --user import-environment`.
	"http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// baseEnv is the environment every service starts with: the allowed part of the user's
// environment, the resolved directories, and PATH.
func directBaseEnv(rt *Runtime, path string) map[string]string {
	env := map[string]string{}
	for _, kv := range rt.Env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && (slices.Contains(directEnvKeys, k) || strings.HasPrefix(k, "LC_")) {
			env[k] = v
		}
	}
	p := rt.Paths
	// The directories virt-setup resolved are the ones its pid files, config files and checks
	// use; the services must agree with them.
	env["HOME"] = p.Home
	env["XDG_RUNTIME_DIR"] = p.RuntimeDir
	env["XDG_DATA_HOME"] = p.DataHome
	env["XDG_CONFIG_HOME"] = p.ConfigHome
	env["XDG_STATE_HOME"] = p.StateHome
	env["PATH"] = path
	return env
}

func directEnvList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func directEnvValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// DirectServices builds the services the answers need, in start order (containerd first; stop
// them in reverse). bins maps program names to the paths the probe found; a name missing from it
// is looked up on the user's PATH. A program that cannot be found is an error that names it.
// buildkitd is asked for its --help (through rt.Runner) to tell whether it knows the bridge
// network, as the setuptool does.
func DirectServices(a Answers, rt *Runtime, bins map[string]string) ([]DirectService, error) {
	if rt == nil {
		return nil, errors.New("direct services: no runtime")
	}
	p := rt.Paths
	if p.RuntimeDir == "" {
		return nil, &StepError{Err: errors.New("direct services: XDG_RUNTIME_DIR is not set; rootless containerd keeps its sockets there"),
			Fix: "export XDG_RUNTIME_DIR=/run/user/$(id -u) (virt-setup explain VS-XDG-001), then run virt-setup again"}
	}
	userPath := filepath.SplitList(directEnvValue(rt.Env, "PATH"))
	var missing []string
	find := func(name, why string) string {
		if b := bins[name]; b != "" && filepath.IsAbs(b) {
			return b
		}
		if b := directLookPath(name, userPath); b != "" {
			return b
		}
		if why != "" {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, why))
		}
		return ""
	}

	rootlessSh := find("containerd-rootless.sh", "runs rootless containerd")
	// The programs containerd-rootless.sh runs from PATH; the probe's paths go first so that the
	// versions it checked are the ones that run.
	dirs := []string{rootlessSh, find("rootlesskit", "runs rootless containerd"), find("containerd", "rootless containerd")}
	switch n := a.RootlessKit.NetworkDriver; n {
	case "slirp4netns", "pasta", "vpnkit":
		dirs = append(dirs, find(n, "rootlesskit.network_driver = "+n))
	}
	var setuptool string
	needsNsenter := a.Snapshotter == "fuse-overlayfs" || a.AddOns.Stargz || a.AddOns.BuildKit
	if needsNsenter {
		setuptool = find("containerd-rootless-setuptool.sh", "starts add-ons inside RootlessKit's namespaces")
		dirs = append(dirs, setuptool, find("nsenter", "starts add-ons inside RootlessKit's namespaces"))
	}
	var b4nnd, fuseGRPC, stargz, buildkitd string
	if a.AddOns.Bypass4netns {
		b4nnd = find("bypass4netnsd", "addons.bypass4netns")
		dirs = append(dirs, b4nnd, find("bypass4netns", "addons.bypass4netns"))
	}
	if a.Snapshotter == "fuse-overlayfs" {
		fuseGRPC = find("containerd-fuse-overlayfs-grpc", `snapshotter = "fuse-overlayfs"`)
		dirs = append(dirs, fuseGRPC, find("fuse-overlayfs", `snapshotter = "fuse-overlayfs"`))
	}
	if a.AddOns.Stargz {
		stargz = find("containerd-stargz-grpc", "addons.stargz")
		dirs = append(dirs, stargz)
	}
	if a.AddOns.BuildKit {
		buildkitd = find("buildkitd", "addons.buildkit")
		dirs = append(dirs, buildkitd)
	}
	if len(missing) > 0 {
		return nil, &StepError{Err: fmt.Errorf("direct services: not found: %s", strings.Join(missing, ", ")),
			Fix: "install the missing programs (virt-setup doctor says how) or put them on PATH, then run virt-setup again"}
	}

	// Like the setuptool's units (PATH=$BIN:/sbin:/usr/sbin:$PATH): iptables, which the CNI
	// plugins run inside the namespaces, lives in /usr/sbin, often not on a user's PATH.
	var pathDirs []string
	for _, b := range dirs {
		if b != "" {
			pathDirs = append(pathDirs, filepath.Dir(b))
		}
	}
	pathDirs = append(pathDirs, "/sbin", "/usr/sbin")
	if len(userPath) == 0 {
		userPath = []string{"/usr/local/bin", "/usr/bin", "/bin"}
	}
	pathDirs = append(pathDirs, userPath...)
	var cleaned []string
	for _, d := range pathDirs {
		// Relative entries would resolve against the daemon's working directory.
		if filepath.IsAbs(d) && !slices.Contains(cleaned, filepath.Clean(d)) {
			cleaned = append(cleaned, filepath.Clean(d))
		}
	}
	path := strings.Join(cleaned, ":")

	state := p.VirtSetupState()
	rkState := filepath.Join(p.RuntimeDir, "containerd-rootless")
	files := func(name string) (pid, log string) {
		return filepath.Join(state, "run", name+".pid"), filepath.Join(state, "logs", name+".log")
	}
	mk := func(name string, extra map[string]string) DirectService {
		env := directBaseEnv(rt, path)
		for k, v := range extra {
			env[k] = v
		}
		pid, log := files(name)
		return DirectService{Name: name, Env: directEnvList(env), Dir: p.Home, PIDFile: pid, LogFile: log}
	}
	// nsentered builds an add-on started inside RootlessKit's namespaces by the setuptool.
	nsentered := func(name string, daemon []string, dashes bool) DirectService {
		s := mk(name, nil)
		s.Argv = []string{setuptool, "nsenter"}
		if dashes {
			// The setuptool parses options with getopt; "--" keeps the daemon's flags away from it.
			s.Argv = append(s.Argv, "--")
		}
		s.Argv = append(s.Argv, daemon...)
		s.Match = slices.Clone(daemon)
		s.RootlessKitStateDir = rkState
		s.InRootlessNamespaces = true
		s.ReadyTimeout = addOnReadyTimeout
		return s
	}

	var out []DirectService
	c := mk(ServiceContainerd, a.RootlessKitEnv())
	c.Argv = []string{rootlessSh}
	c.Match = []string{rootlessSh}
	c.Ready = containerdReady(rkState)
	c.ReadyTimeout = containerdReadyTimeout
	c.RootlessKitStateDir = rkState
	c.RunsRootlessKit = true
	c.ConfigFiles = []string{filepath.Join(p.ConfigHome, "containerd", "config.toml")}
	out = append(out, c)

	if a.AddOns.Bypass4netns {
		s := mk(ServiceBypass4netnsd, nil)
		s.Argv = []string{b4nnd}
		s.Match = []string{b4nnd}
		s.Socket = filepath.Join(p.RuntimeDir, "bypass4netnsd.sock")
		s.Ready = socketReady(s.Socket)
		s.ReadyTimeout = addOnReadyTimeout
		out = append(out, s)
	}
	if a.Snapshotter == "fuse-overlayfs" {
		sock := filepath.Join(p.RuntimeDir, "containerd-fuse-overlayfs.sock")
		// The setuptool's unit has no "--" here; the arguments are the same.
		s := nsentered(ServiceFuseOverlayfs, []string{fuseGRPC, sock, filepath.Join(p.DataHome, "containerd-fuse-overlayfs")}, false)
		s.Socket = sock
		s.Ready = socketReady(sock)
		out = append(out, s)
	}
	if a.AddOns.Stargz {
		sock := filepath.Join(p.RuntimeDir, "containerd-stargz-grpc", "containerd-stargz-grpc.sock")
		cfg := filepath.Join(p.ConfigHome, "containerd-stargz-grpc", "config.toml")
		s := nsentered(ServiceStargz, []string{stargz, "-address", sock, "-root", filepath.Join(p.DataHome, "containerd-stargz-grpc"), "-config", cfg}, true)
		s.Socket = sock
		s.Ready = socketReady(sock)
		s.ConfigFiles = []string{cfg}
		s.EnsureFiles = []string{cfg}
		out = append(out, s)
	}
	if a.AddOns.BuildKit {
		flags := []string{"--oci-worker=true", "--oci-worker-rootless=true", "--containerd-worker=false"}
		// BuildKit 0.13 added the bridge network for the OCI worker; the setuptool asks --help too.
		runner := rt.Runner
		if runner == nil {
			runner = sys.Exec{}
		}
		res, _ := runner.Run(context.Background(), sys.Command{Path: buildkitd, Args: []string{"--help"}, Env: directEnvList(directBaseEnv(rt, path)), Timeout: 15 * time.Second})
		if strings.Contains(res.Combined(), "bridge") {
			flags = append(flags, "--oci-worker-net=bridge")
		}
		s := nsentered(ServiceBuildKit, append([]string{buildkitd}, flags...), true)
		// Rootless buildkitd listens here by default; nerdctl looks here (rootless.md §3.4).
		s.Socket = filepath.Join(p.RuntimeDir, "buildkit", "buildkitd.sock")
		s.Ready = socketReady(s.Socket)
		s.ReadyTimeout = buildkitReadyTimeout
		s.ConfigFiles = []string{filepath.Join(p.ConfigHome, "buildkit", "buildkitd.toml")}
		out = append(out, s)
	}
	return out, nil
}

// directLookPath finds an executable regular file called name in dirs (absolute entries only).
func directLookPath(name string, dirs []string) string {
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// socketReady is ready when the unix socket at path accepts a connection.
func socketReady(path string) ReadyCheck {
	return func(ctx context.Context) error { return dialUnix(ctx, path) }
}

func dialUnix(ctx context.Context, path string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", path, err)
	}
	c.Close()
	return nil
}

// containerdReady is ready when RootlessKit's child is up and containerd's socket inside the child's
// mount namespace accepts a connection. The socket is reached through /proc/CHILD/root, the
// address nerdctl itself uses for `nerdctl version` (rootless.md §3.3).
func containerdReady(rkState string) ReadyCheck {
	return func(ctx context.Context) error {
		pid, err := rootlessChild(rkState)
		if err != nil {
			return err
		}
		return dialUnix(ctx, fmt.Sprintf("/proc/%d/root/run/containerd/containerd.sock", pid))
	}
}

// rootlessChild returns the pid of RootlessKit's child when it is running.
func rootlessChild(rkState string) (int, error) {
	f := filepath.Join(rkState, "child_pid")
	pid, err := readPIDFile(f)
	if err != nil {
		return 0, fmt.Errorf("RootlessKit's child is not up: %w", err)
	}
	if !procAlive(pid) {
		return 0, fmt.Errorf("RootlessKit's child (pid %d, from %s) is not running", pid, f)
	}
	return pid, nil
}

// directServiceStep runs one DirectService.
type directServiceStep struct{ svc DirectService }

// NewDirectServiceStep returns the step that keeps svc running with its current configuration.
// Check is true when the process in the pid file is alive, is the service (its command line
// matches), runs in the current RootlessKit namespaces (add-ons), and was started with the
// service's current Fingerprint. Apply stops an old instance, starts the service and waits until
// it is ready; Undo stops it.
func NewDirectServiceStep(svc DirectService) Step { return &directServiceStep{svc: svc} }

// Info implements Step.
func (s *directServiceStep) Info() StepInfo {
	title := "Run " + s.svc.Name + " in the background (no systemd user manager)"
	if s.svc.RunsRootlessKit {
		title = "Run rootless containerd in the background (no systemd user manager)"
	}
	return StepInfo{
		ID:       "service:" + s.svc.Name,
		Title:    title,
		Kind:     KindService,
		Commands: []string{s.svc.commandLine()},
		// Stopping an old instance, then the start itself.
		Timeout: s.svc.ReadyTimeout + 2*(stopGrace+killWait) + 10*time.Second,
	}
}

// Check implements Step.
func (s *directServiceStep) Check(ctx context.Context, rt *Runtime) (bool, error) {
	svc := s.svc
	pid, ok := svc.running()
	if !ok {
		return false, nil
	}
	if svc.InRootlessNamespaces && !inRootlessNamespaces(pid, svc.RootlessKitStateDir) {
		return false, nil
	}
	want, err := svc.Fingerprint()
	if err != nil {
		return false, err
	}
	got, err := os.ReadFile(svc.FingerprintFile())
	if err != nil {
		return false, nil
	}
	return strings.TrimSpace(string(got)) == want, nil
}

// running returns the pid in the pid file when that process is alive, belongs to this user and is
// the service.
func (s DirectService) running() (int, bool) {
	pid, err := readPIDFile(s.PIDFile)
	if err != nil {
		return 0, false
	}
	return pid, s.isService(pid)
}

// isService tells whether pid is a live process of this user running the service. A pid file can
// outlive its process and the pid be reused, so nothing is signalled without this check.
func (s DirectService) isService(pid int) bool {
	if pid == os.Getpid() || !procAlive(pid) {
		return false
	}
	if uid, err := procUID(pid); err != nil || uid != os.Getuid() {
		return false
	}
	cmd, err := procCmdline(pid)
	return err == nil && containsRun(cmd, s.Match)
}

// inRootlessNamespaces tells whether pid shares the mount namespace of RootlessKit's current child.
func inRootlessNamespaces(pid int, rkState string) bool {
	child, err := rootlessChild(rkState)
	if err != nil {
		return false
	}
	a, errA := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	b, errB := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", child))
	return errA == nil && errB == nil && a == b
}

// containsRun reports whether run appears in words as a contiguous run.
func containsRun(words, run []string) bool {
	if len(run) == 0 {
		return false
	}
	for i := 0; i+len(run) <= len(words); i++ {
		if slices.Equal(words[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

// Apply implements Step.
func (s *directServiceStep) Apply(ctx context.Context, rt *Runtime, rec *Record) error {
	svc := s.svc
	if len(svc.Argv) == 0 || len(svc.Match) == 0 {
		return fmt.Errorf("start %s: the service has no command line", svc.Name)
	}
	// Recorded before anything starts, so that a run that dies half-way can still be undone.
	if !slices.ContainsFunc(rec.Processes, func(p ProcessRecord) bool { return p.PIDFile == svc.PIDFile }) {
		// Named by the program the process runs as, which is what uninstall's generic undo (used
		// when no step can be built any more) looks for in its command line.
		rec.Processes = append(rec.Processes, ProcessRecord{Name: filepath.Base(svc.Match[0]), PIDFile: svc.PIDFile})
	}
	// The journal must name the pid file before the process exists, so a kill of virt-setup right
	// after the start still leaves something uninstall can stop.
	if err := rt.checkpoint(rec); err != nil {
		return fmt.Errorf("record %s before starting it: %w", svc.Name, err)
	}
	if err := checkRuntimeDir(rt.Paths.RuntimeDir); err != nil {
		return err
	}
	if err := stopService(ctx, rt, svc); err != nil {
		return fmt.Errorf("stop the old %s: %w", svc.Name, err)
	}
	if svc.InRootlessNamespaces {
		if _, err := rootlessChild(svc.RootlessKitStateDir); err != nil {
			return &StepError{Err: fmt.Errorf("start %s: containerd is not running: %w", svc.Name, err),
				Fix: "start containerd first: virt-setup start"}
		}
	}
	// Something that answers before we start anything is an instance virt-setup did not start
	// (a manual containerd-rootless.sh, an old systemd unit): starting a second one would fail
	// on RootlessKit's lock or steal the socket.
	if svc.Ready != nil && svc.Ready(ctx) == nil {
		return &StepError{Err: fmt.Errorf("start %s: another %s is already running, not started by virt-setup", svc.Name, svc.Name),
			Fix: fmt.Sprintf("stop it (look for it with: ps -fu %d), then run virt-setup again", os.Getuid())}
	}
	if svc.Socket != "" {
		if err := prepareSocket(svc.Socket); err != nil {
			return fmt.Errorf("start %s: %w", svc.Name, err)
		}
	}
	for _, f := range svc.EnsureFiles {
		if err := ensureEmptyFile(f, rec); err != nil {
			return fmt.Errorf("start %s: %w", svc.Name, err)
		}
	}
	fp, err := svc.Fingerprint()
	if err != nil {
		return err
	}
	_, err = startService(ctx, rt, svc, fp)
	return err
}

// Undo implements Step.
func (s *directServiceStep) Undo(ctx context.Context, rt *Runtime, rec Record) error {
	var errs []error
	// The service's own pid file always: a run that died before its record was saved left none.
	pidFiles := []string{s.svc.PIDFile}
	for _, p := range rec.Processes {
		if !slices.Contains(pidFiles, p.PIDFile) {
			pidFiles = append(pidFiles, p.PIDFile)
		}
	}
	for _, pf := range pidFiles {
		svc := s.svc
		svc.PIDFile = pf
		if err := stopService(ctx, rt, svc); err != nil {
			errs = append(errs, err)
		}
	}
	for _, f := range rec.Files {
		if f.Existed {
			continue
		}
		// Only the empty file the step created: content means the user has started using it.
		if fi, err := os.Stat(f.Path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			if err := os.Remove(f.Path); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", f.Path, err))
			}
		}
		if err := fsutil.RemoveEmptyDirs(f.CreatedDirs); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkRuntimeDir makes sure the services can create their sockets.
func checkRuntimeDir(dir string) error {
	if dir == "" {
		return &StepError{Err: errors.New("XDG_RUNTIME_DIR is not set"),
			Fix: "export XDG_RUNTIME_DIR=/run/user/$(id -u) (virt-setup explain VS-XDG-001), then run virt-setup again"}
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return &StepError{Err: fmt.Errorf("XDG_RUNTIME_DIR %s is not writable: %w", dir, err),
			Fix: fmt.Sprintf("create it as root: install -d -m 0700 -o %d -g %d %s", os.Getuid(), os.Getgid(), dir)}
	}
	return nil
}

// prepareSocket creates the socket's directory and removes a stale socket (one nothing listens
// on), which some daemons refuse to replace.
func prepareSocket(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != fs.ModeSocket {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// ensureEmptyFile creates path empty when it is missing, recording it for undo.
func ensureEmptyFile(path string, rec *Record) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	fr := FileRecord{Path: path}
	rec.Files = append(rec.Files, fr)
	created, err := fsutil.MkdirAllRecord(filepath.Dir(path), 0o755)
	rec.Files[len(rec.Files)-1].CreatedDirs = created
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

// startService starts svc in a session of its own, writes its pid and fingerprint files and waits
// until it is ready, streaming its new log lines through rt.Output. When it does not get ready,
// everything it started is stopped and the error carries the end of its log.
func startService(ctx context.Context, rt *Runtime, svc DirectService, fingerprint string) (int, error) {
	say := func(format string, args ...any) {
		if rt.Output != nil {
			rt.Output(fmt.Sprintf(format, args...))
		}
	}
	for _, d := range []string{filepath.Dir(svc.PIDFile), filepath.Dir(svc.LogFile)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return 0, fmt.Errorf("start %s: create %s: %w", svc.Name, d, err)
		}
	}
	if fi, err := os.Stat(svc.LogFile); err == nil && fi.Size() > maxLogSize {
		// One old log is kept; a failed start's log is still the current one.
		_ = os.Rename(svc.LogFile, svc.LogFile+".1")
	}
	// The fingerprint goes first: once the service runs, it says what it runs with.
	if err := fsutil.WriteFileAtomic(svc.FingerprintFile(), []byte(fingerprint+"\n"), 0o644); err != nil {
		return 0, &StepError{Err: fmt.Errorf("start %s: write fingerprint: %w", svc.Name, err), Fix: "make " + filepath.Dir(svc.PIDFile) + " writable by you"}
	}
	logf, err := os.OpenFile(svc.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		os.Remove(svc.FingerprintFile())
		return 0, fmt.Errorf("start %s: open log: %w", svc.Name, err)
	}
	fmt.Fprintf(logf, "=== %s virt-setup: starting %s: %s\n", time.Now().Format(time.RFC3339), svc.Name, strings.Join(svc.Argv, " "))
	offset, _ := logf.Seek(0, io.SeekEnd)

	cmd := exec.Command("/bin/sh", append([]string{"-c", pidFileWrapper, svc.PIDFile}, svc.Argv...)...)
	cmd.Env = svc.Env
	cmd.Dir = svc.Dir
	// The log file itself, not a pipe: the service outlives virt-setup.
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: a Ctrl-C or hang-up of virt-setup's terminal does not reach it, and
	// its process group is what stop signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	start := time.Now()
	err = cmd.Start()
	logf.Close()
	if err != nil {
		os.Remove(svc.FingerprintFile())
		return 0, fmt.Errorf("start %s: %w", svc.Name, err)
	}
	pid := cmd.Process.Pid
	// Reaped here while virt-setup runs, so that an early exit is seen at once (and leaves no
	// zombie); when virt-setup exits first, init adopts the service.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	fail := func(err error, fix string) (int, error) {
		// The process is our unreaped child (or just reaped), so its pid cannot have been reused:
		// it is stopped without the command-line check.
		killErr := terminateService(context.WithoutCancel(ctx), pid, svc, exited)
		for _, f := range []string{svc.PIDFile, fmt.Sprintf("%s.%d.tmp", svc.PIDFile, pid), svc.FingerprintFile()} {
			os.Remove(f)
		}
		tail := logTailSince(svc.LogFile, offset, logTailLines)
		if len(tail) > 0 {
			err = fmt.Errorf("%w\nlast lines of %s:\n  %s", err, svc.LogFile, strings.Join(tail, "\n  "))
		}
		if killErr != nil {
			err = errors.Join(err, killErr)
		}
		return 0, &StepError{Err: err, Fix: fix}
	}
	logFix := fmt.Sprintf("read the whole log: %s; fix what it reports, then run virt-setup again", svc.LogFile)

	ready := svc.Ready
	if ready == nil {
		ready = func(context.Context) error { return nil }
	}
	readyTimeout := svc.ReadyTimeout
	if readyTimeout <= 0 {
		readyTimeout = addOnReadyTimeout
	}
	follow := &logFollower{path: svc.LogFile, offset: offset, emit: func(format string, args ...any) {
		if line := fmt.Sprintf(format, args...); worthShowing(line) {
			say("%s", line)
		}
	}}
	timeout := time.NewTimer(readyTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	var notReady error
	for {
		follow.poll()
		select {
		case werr := <-exited:
			follow.poll()
			exited <- werr // terminate waits on it too
			return fail(fmt.Errorf("start %s: it exited before it was ready (%v)", svc.Name, describeExit(werr)), logFix)
		case <-ctx.Done():
			return fail(fmt.Errorf("start %s: %w", svc.Name, ctx.Err()), "")
		case <-timeout.C:
			follow.poll()
			return fail(fmt.Errorf("start %s: not ready after %s: %v", svc.Name, readyTimeout, notReady), logFix)
		case <-tick.C:
		}
		// The wrapper writes the pid file before it becomes the service: a ready service has one.
		if p, err := readPIDFile(svc.PIDFile); err != nil || p != pid {
			notReady = fmt.Errorf("the pid file %s does not name pid %d yet", svc.PIDFile, pid)
			continue
		}
		if notReady = ready(ctx); notReady == nil {
			follow.poll()
			say("%s is ready after %.2fs (pid %d, log %s)", svc.Name, time.Since(start).Seconds(), pid, svc.LogFile)
			return pid, nil
		}
	}
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// stopService stops the instance named by svc's pid file, when it is the service, and removes the
// pid and fingerprint files.
func stopService(ctx context.Context, rt *Runtime, svc DirectService) error {
	pid, err := readPIDFile(svc.PIDFile)
	switch {
	case err == nil && svc.isService(pid):
		if rt.Output != nil {
			rt.Output(fmt.Sprintf("stopping %s (pid %d)", svc.Name, pid))
		}
		if err := terminateService(ctx, pid, svc, nil); err != nil {
			return err
		}
	case err == nil && svc.RunsRootlessKit:
		// The RootlessKit virt-setup started is gone (killed), but its child, containerd and the
		// containers may still run in the child's namespaces. Without a pid file of ours the
		// child would be someone else's instance, and is left alone.
		if child, err := rootlessChild(svc.RootlessKitStateDir); err == nil && svc.isService(child) {
			if err := terminateService(ctx, child, svc, nil); err != nil {
				return err
			}
		}
	}
	var errs []error
	for _, f := range []string{svc.PIDFile, svc.FingerprintFile()} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", f, err))
		}
	}
	return errors.Join(errs...)
}

// terminate stops pid and everything that belongs to it: its process group and session (it was
// started with setsid), its descendants and, for RootlessKit, every process in its child's user
// namespace (containerd, the shims and the containers, which containerd leaves running when it
// stops). SIGTERM first; what is still there after stopGrace gets SIGKILL. exited, when not nil,
// delivers the reaped exit of pid (a child of this process).
func terminateService(ctx context.Context, pid int, svc DirectService, exited chan error) error {
	leaderGone := func() bool {
		if exited != nil {
			select {
			case err := <-exited:
				exited <- err
				return true
			default:
				return false
			}
		}
		return !procAlive(pid)
	}
	var userNS string
	if svc.RunsRootlessKit {
		userNS = rootlessUserNS(pid, svc)
	}
	members := func() []int { return serviceMembers(pid, userNS) }

	// RootlessKit forwards SIGTERM to its child; containerd shuts down cleanly on it.
	before := members()
	signalGroup(pid, unix.SIGTERM)
	waitUntil(ctx, stopGrace, leaderGone)
	// What outlives the leader: shims and containers, which containerd leaves running on purpose
	// (so that a restart can adopt them), and anything that ignored the group's SIGTERM.
	rest := livePIDs(unionPIDs(before, members()))
	for _, p := range rest {
		unix.Kill(p, unix.SIGTERM)
	}
	waitUntil(ctx, 2*time.Second, func() bool { return len(livePIDs(rest)) == 0 })
	if !leaderGone() {
		signalGroup(pid, unix.SIGKILL)
	}
	rest = livePIDs(unionPIDs(rest, members()))
	for _, p := range rest {
		unix.Kill(p, unix.SIGKILL)
	}
	waitUntil(ctx, killWait, func() bool { return leaderGone() && len(livePIDs(unionPIDs(rest, members()))) == 0 })
	if left := livePIDs(unionPIDs(rest, members())); len(left) > 0 || !leaderGone() {
		return fmt.Errorf("stop %s: processes still running after SIGKILL: %v", svc.Name, append([]int{pid}, left...))
	}
	return nil
}

func unionPIDs(a, b []int) []int {
	out := slices.Clone(a)
	for _, p := range b {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// rootlessUserNS returns the user namespace of RootlessKit's child under pid, or "" when it cannot
// be told safely. It is never this process's own namespace or init's, so that a mistake cannot
// make stop kill everything the user runs.
func rootlessUserNS(pid int, svc DirectService) string {
	child := pid
	if c, err := rootlessChild(svc.RootlessKitStateDir); err == nil {
		if st, err := readProcStat(c); err == nil && st.PPID == pid {
			child = c
		}
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", child))
	if err != nil {
		return ""
	}
	if own, err := os.Readlink("/proc/self/ns/user"); err != nil || own == ns {
		return ""
	}
	// init's namespace cannot be read by a user (EACCES); when it can, it must differ too.
	if initNS, err := os.Readlink("/proc/1/ns/user"); err == nil && initNS == ns {
		return ""
	}
	return ns
}

// serviceMembers lists the live processes that belong to the service led by pid (pid excluded).
func serviceMembers(pid int, userNS string) []int {
	pids, err := listPIDs()
	if err != nil {
		return nil
	}
	self := os.Getpid()
	stats := map[int]procStat{}
	children := map[int][]int{}
	for _, p := range pids {
		st, err := readProcStat(p)
		if err != nil || st.State == 'Z' || st.State == 'X' {
			continue
		}
		stats[p] = st
		children[st.PPID] = append(children[st.PPID], p)
	}
	in := map[int]bool{}
	for p, st := range stats {
		if st.SID == pid || st.PGID == pid {
			in[p] = true
		}
		if userNS != "" {
			if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", p)); err == nil && ns == userNS {
				in[p] = true
			}
		}
	}
	seen := map[int]bool{pid: true}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !seen[c] {
				seen[c], in[c] = true, true
				queue = append(queue, c)
			}
		}
	}
	var out []int
	for p := range in {
		if p != pid && p != self && p > 1 {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func signalGroup(pid int, sig unix.Signal) {
	// Only a group this process leads: signalling -pid of a process that is not a group leader
	// would hit an unrelated group of the same number.
	if st, err := readProcStat(pid); err == nil && st.PGID == pid {
		unix.Kill(-pid, sig)
		return
	}
	unix.Kill(pid, sig)
}

func livePIDs(pids []int) []int {
	var out []int
	for _, p := range pids {
		if procAlive(p) {
			out = append(out, p)
		}
	}
	return out
}

// waitGone polls done until it is true or d has passed.
func waitUntil(ctx context.Context, d time.Duration, done func() bool) {
	deadline := time.Now().Add(d)
	for !done() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(readyPoll):
		}
	}
}

// StartDirect starts the services that are not running with their current configuration, in order,
// and waits for each to be ready: `virt-setup start`. It stops at the first failure, since the
// later services need the earlier ones.
func StartDirect(ctx context.Context, rt *Runtime, services []DirectService) error {
	for _, svc := range services {
		step := NewDirectServiceStep(svc)
		done, err := step.Check(ctx, rt)
		if err != nil {
			return err
		}
		if done {
			if rt.Output != nil {
				pid, _ := svc.running()
				rt.Output(fmt.Sprintf("%s is already running (pid %d)", svc.Name, pid))
			}
			continue
		}
		if err := step.Apply(ctx, rt, &Record{}); err != nil {
			return err
		}
	}
	return nil
}

// StopDirect stops the services in reverse order: `virt-setup stop`. It goes on after a failure
// and returns all of them.
func StopDirect(ctx context.Context, rt *Runtime, services []DirectService) error {
	var errs []error
	for _, svc := range slices.Backward(services) {
		if err := stopService(ctx, rt, svc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// logFollower passes the lines appended to a log file on, from an offset.
type logFollower struct {
	path    string
	offset  int64
	partial []byte
	emit    func(format string, args ...any)
}

func (f *logFollower) poll() {
	fh, err := os.Open(f.path)
	if err != nil {
		return
	}
	defer fh.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := fh.ReadAt(buf, f.offset)
		f.offset += int64(n)
		f.partial = append(f.partial, buf[:n]...)
		for {
			i := bytes.IndexByte(f.partial, '\n')
			if i < 0 {
				break
			}
			f.emit("%s", strings.TrimRight(string(f.partial[:i]), "\r"))
			f.partial = f.partial[i+1:]
		}
		if len(f.partial) > 4096 { // a "line" without end
			f.emit("%s", string(f.partial))
			f.partial = nil
		}
		if err != nil || n == 0 {
			return
		}
	}
}

// logTail returns the last n lines of the log written since offset (at most 64 KiB of it).
func logTailSince(path string, offset int64, n int) []string {
	fh, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil
	}
	from := max(offset, fi.Size()-64<<10)
	b := make([]byte, fi.Size()-from)
	m, _ := fh.ReadAt(b, from)
	lines := strings.Split(strings.TrimRight(string(b[:m]), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// procStat is what direct mode reads from /proc/PID/stat.
type procStat struct {
	State           byte
	PPID, PGID, SID int
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(pid, b)
}

func parseProcStat(pid int, b []byte) (procStat, error) {
	// The command name is in parentheses and may itself contain spaces and ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 4 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	var st procStat
	st.State = f[0][0]
	var errs [3]error
	st.PPID, errs[0] = strconv.Atoi(f[1])
	st.PGID, errs[1] = strconv.Atoi(f[2])
	st.SID, errs[2] = strconv.Atoi(f[3])
	if err := errors.Join(errs[:]...); err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// procAlive is true for a process that exists and is not a zombie.
func procAlive(pid int) bool {
	st, err := readProcStat(pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

// procUID returns the real uid of pid.
func procUID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, fmt.Errorf("no Uid line in /proc/%d/status", pid)
}

func procCmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(string(b), "\x00"), nil
}

func listPIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// worthShowing keeps a service's log line for the live output unless it is an info or debug line
// of the logrus format containerd, RootlessKit and bypass4netnsd write: a start prints dozens of
// those. The log file keeps everything, and a failure shows its last lines unfiltered.
func worthShowing(line string) bool { return !quietLogLevel.MatchString(line) }

var quietLogLevel = regexp.MustCompile(`(^|\s)level=(info|debug|trace)(\s|$)`)
