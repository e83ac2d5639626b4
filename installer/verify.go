package installer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"

	"github.com/virt-setup/virt-setup/installer/image"
	"github.com/virt-setup/virt-setup/internal/sys"
)

// VerifyHelperEnv, in the environment of a re-executed virt-setup, holds the request (JSON) of the
// verification's inside half: the part that runs in RootlessKit's namespaces and talks to
// containerd there.
const VerifyHelperEnv = "VIRT_SETUP_VERIFY_HELPER"

// verifyProgressPrefix marks the inside half's progress lines on stderr, one per finished check,
// so the outside half can pass them on live and tell them from other messages.
const verifyProgressPrefix = "virt-setup-verify: "

// snapshotterPluginType is the introspection type of every snapshotter, built-in or a proxy
// plugin such as fuse-overlayfs (containerd's plugins.SnapshotPlugin).
const snapshotterPluginType = "io.containerd.snapshotter.v1"

// The checks a verification runs, in order. They name report items and select the hints.
const (
	CheckFindContainerd = "find rootless containerd"
	CheckEnterNamespace = "enter RootlessKit's namespaces"
	CheckConnect        = "connect to containerd"
	CheckSnapshotter    = "snapshotter"
	CheckBuildImage     = "build the test image"
	CheckImportImage    = "import the test image"
	CheckUnpackImage    = "unpack the test image"
	CheckRunContainer   = "run a container"
	CheckCleanUp        = "remove the test container"
)

// VerifyOptions say which rootless containerd to verify and how.
type VerifyOptions struct {
	// Snapshotter is the one to unpack and run with ("overlayfs", "fuse-overlayfs", "native").
	Snapshotter string `json:"snapshotter"`
	// StateDir is RootlessKit's state directory; empty means $XDG_RUNTIME_DIR/containerd-rootless,
	// the one containerd-rootless.sh uses.
	StateDir string `json:"state_dir,omitempty"`
	// Namespace is the containerd namespace; empty means "default", nerdctl's.
	Namespace string `json:"namespace,omitempty"`
	// Image is the test image; it must hold /bin/echo (image.EchoPath). A zero Image means the
	// busybox image built from this host's static busybox (image.BusyboxSpec) or, on a host
	// without one, the image of this host's own echo (image.EchoSpec).
	Image image.Spec `json:"image"`
	// LogPath is where containerd's log is: a file (direct mode) or a command that shows it
	// ("journalctl --user -u containerd.service"). It and ServiceMode ("systemd" or "direct") only
	// shape the hints of a failure.
	LogPath     string `json:"log_path,omitempty"`
	ServiceMode string `json:"service_mode,omitempty"`
}

// VerifyItem is the outcome of one check.
type VerifyItem struct {
	Check string `json:"check"`
	OK    bool   `json:"ok"`
	// Detail says what was found ("containerd v2.4.2").
	Detail string `json:"detail,omitempty"`
	// Error says what went wrong; LookAt says where to look for the cause (a log, a command).
	Error    string        `json:"error,omitempty"`
	LookAt   []string      `json:"look_at,omitempty"`
	Duration time.Duration `json:"duration"`
}

// String renders the item as one line, with a glyph and a word so nothing is lost without colour.
func (it VerifyItem) String() string {
	d := it.Duration.Round(time.Millisecond)
	if it.OK {
		if it.Detail != "" {
			return fmt.Sprintf("✓ ok    %s: %s (%s)", it.Check, it.Detail, d)
		}
		return fmt.Sprintf("✓ ok    %s (%s)", it.Check, d)
	}
	return fmt.Sprintf("✗ fail  %s: %s", it.Check, it.Error)
}

// ContainerRun is what the test container did.
type ContainerRun struct {
	OK       bool          `json:"ok"`
	ID       string        `json:"id,omitempty"`
	Output   string        `json:"output,omitempty"`
	ExitCode int           `json:"exit_code"`
	Duration time.Duration `json:"duration"`
}

// VerifyReport is the result of a verification.
type VerifyReport struct {
	ServerVersion  string `json:"server_version,omitempty"`
	ServerRevision string `json:"server_revision,omitempty"`
	Snapshotter    string `json:"snapshotter"`
	// SnapshotterStatus is "ok", "not loaded" or "init error: …".
	SnapshotterStatus string `json:"snapshotter_status,omitempty"`
	Image             string `json:"image,omitempty"`
	ImageDigest       string `json:"image_digest,omitempty"`
	// ImageImported is true when this run imported the image (it was missing).
	ImageImported bool          `json:"image_imported"`
	Container     ContainerRun  `json:"container"`
	Items         []VerifyItem  `json:"items"`
	Duration      time.Duration `json:"duration"`
}

// OK reports whether every check passed.
func (r VerifyReport) OK() bool {
	return len(r.Items) > 0 && !slices.ContainsFunc(r.Items, func(it VerifyItem) bool { return !it.OK })
}

// Failed returns the first failed check.
func (r VerifyReport) Failed() (VerifyItem, bool) {
	i := slices.IndexFunc(r.Items, func(it VerifyItem) bool { return !it.OK })
	if i < 0 {
		return VerifyItem{}, false
	}
	return r.Items[i], true
}

// VerifyError is returned by Verify when a check failed.
type VerifyError struct {
	Item VerifyItem
}

// Error implements error.
func (e *VerifyError) Error() string {
	return fmt.Sprintf("verify: %s: %s", e.Item.Check, e.Item.Error)
}

// UserFix says where to look for the cause (the engine shows it apart from the error).
func (e *VerifyError) UserFix() string {
	if len(e.Item.LookAt) == 0 {
		return ""
	}
	return "look at " + strings.Join(e.Item.LookAt, "; ")
}

// verifyRequest is what the outside half hands the inside half.
type verifyRequest struct {
	Address     string        `json:"address"`
	Namespace   string        `json:"namespace"`
	Snapshotter string        `json:"snapshotter"`
	Image       image.Spec    `json:"image"`
	ContainerID string        `json:"container_id"`
	Token       string        `json:"token"`
	Timeout     time.Duration `json:"timeout"`
}

// verifyLabel marks the test containers, so a run can remove what a killed earlier run left.
const verifyLabel = "io.virt-setup/verify"

// verifyTimeout bounds the inside half when the caller's context has no deadline.
const verifyTimeout = 2 * time.Minute

// Verify proves that the rootless containerd works: it reaches containerd the way nerdctl does
// (RootlessKit's child_pid, then its user and mount namespaces, and its network namespace unless
// RootlessKit detached it), checks the snapshotter, imports and unpacks a small image built on
// this host and runs a container that echoes a random word. Every check is an item of the report
// and is streamed through rt.Output; the first failed one is also returned as a *VerifyError.
func Verify(ctx context.Context, rt *Runtime, opts VerifyOptions) (VerifyReport, error) {
	start := time.Now()
	opts = verifyDefaults(rt, opts)
	rep := VerifyReport{Snapshotter: opts.Snapshotter}
	emit := func(line string) {
		if rt.Output != nil {
			rt.Output(line)
		}
	}
	add := func(it VerifyItem) {
		if !it.OK {
			it.LookAt = verifyHints(rt, opts, it.Check)
		}
		rep.Items = append(rep.Items, it)
		emit(it.String())
		for _, h := range it.LookAt {
			emit("        look at: " + h)
		}
	}
	finish := func() (VerifyReport, error) {
		rep.Duration = time.Since(start)
		if it, failed := rep.Failed(); failed {
			return rep, &VerifyError{Item: it}
		}
		return rep, nil
	}

	t0 := time.Now()
	childPID, detached, err := findRootlessChild(opts.StateDir)
	if err != nil {
		add(VerifyItem{Check: CheckFindContainerd, Error: err.Error(), Duration: time.Since(t0)})
		return finish()
	}
	netns := "RootlessKit's network namespace"
	if detached {
		netns = "host network namespace (detach-netns)"
	}
	add(VerifyItem{Check: CheckFindContainerd, OK: true, Duration: time.Since(t0),
		Detail: fmt.Sprintf("RootlessKit child %d, %s", childPID, netns)})

	if opts.Image.Ref == "" {
		spec, err := testImage(ctx, rt.Runner)
		if err != nil {
			add(VerifyItem{Check: CheckBuildImage, Error: err.Error()})
			return finish()
		}
		opts.Image = spec
	}
	req := verifyRequest{
		Address:     defaults.DefaultAddress,
		Namespace:   opts.Namespace,
		Snapshotter: opts.Snapshotter,
		Image:       opts.Image,
		ContainerID: "virt-setup-verify-" + randomHex(6),
		Token:       "virt-setup-verify-" + randomHex(8),
		Timeout:     verifyTimeout,
	}
	if dl, ok := ctx.Deadline(); ok {
		// Leave the inside half time to clean up and answer before the runner kills it.
		req.Timeout = max(time.Until(dl)-5*time.Second, time.Second)
	}
	t0 = time.Now()
	streamed := 0
	inside, err := runVerifyInside(ctx, rt, childPID, detached, req, func(line string) {
		streamed++
		emit(line)
	})
	if err != nil {
		add(VerifyItem{Check: CheckEnterNamespace, Error: err.Error(), Duration: time.Since(t0)})
		return finish()
	}
	// The inside half streamed its items as they finished (unless the runner could not pass its
	// stderr on); what is left to show is the rest and the hints.
	rep.ServerVersion, rep.ServerRevision = inside.ServerVersion, inside.ServerRevision
	rep.SnapshotterStatus = inside.SnapshotterStatus
	rep.Image, rep.ImageDigest, rep.ImageImported = inside.Image, inside.ImageDigest, inside.ImageImported
	rep.Container = inside.Container
	for i, it := range inside.Items {
		if i >= streamed {
			emit(it.String())
		}
		if !it.OK {
			it.LookAt = verifyHints(rt, opts, it.Check)
			for _, h := range it.LookAt {
				emit("        look at: " + h)
			}
		}
		rep.Items = append(rep.Items, it)
	}
	if len(inside.Items) == 0 {
		add(VerifyItem{Check: CheckEnterNamespace, Error: "the verification helper reported nothing", Duration: time.Since(t0)})
	}
	return finish()
}

func verifyDefaults(rt *Runtime, opts VerifyOptions) VerifyOptions {
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(rt.Paths.RuntimeDir, "containerd-rootless")
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Snapshotter == "" {
		opts.Snapshotter = "overlayfs"
	}
	return opts
}

// findRootlessChild reads RootlessKit's child pid and whether it runs with --detach-netns
// ($STATE/netns exists), as nerdctl's rootlessutil does.
func findRootlessChild(stateDir string) (pid int, detached bool, err error) {
	if rt := filepath.Dir(stateDir); rt == "." || rt == "/" || !filepath.IsAbs(stateDir) {
		return 0, false, fmt.Errorf("no RootlessKit state directory (%q): XDG_RUNTIME_DIR is not set", stateDir)
	}
	b, err := os.ReadFile(filepath.Join(stateDir, "child_pid"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, fmt.Errorf("rootless containerd is not running: %s/child_pid does not exist", stateDir)
	}
	if err != nil {
		return 0, false, fmt.Errorf("read RootlessKit's child pid: %w", err)
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false, fmt.Errorf("read RootlessKit's child pid: %s/child_pid holds %q", stateDir, strings.TrimSpace(string(b)))
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return 0, false, fmt.Errorf("rootless containerd is not running: RootlessKit's child %d (from %s/child_pid) is gone", pid, stateDir)
	}
	if _, err := os.Stat(filepath.Join(stateDir, "netns")); err == nil {
		detached = true
	}
	return pid, detached, nil
}

// NsenterArgs are the arguments of the nsenter command that runs argv in RootlessKit's
// namespaces. nerdctl does the same (pkg/rootlessutil): Go cannot enter a user namespace from a
// multithreaded process, so the program is executed again, already inside.
func NsenterArgs(childPID int, detached bool, argv ...string) []string {
	args := []string{"-U", "--preserve-credentials", "-m"}
	if !detached {
		args = append(args, "-n")
	}
	// -F: no PID namespace is entered, so nsenter need not fork; it execs the helper in its own
	// place, and the runner's kill at the deadline reaches the helper itself.
	args = append(args, "-t", strconv.Itoa(childPID), "-F", "--")
	return append(args, argv...)
}

// runVerifyInside runs the inside half under nsenter and returns its result.
func runVerifyInside(ctx context.Context, rt *Runtime, childPID int, detached bool, req verifyRequest, emit func(string)) (verifyResult, error) {
	self, err := os.Executable()
	if err != nil {
		return verifyResult{}, fmt.Errorf("find this program to run it inside: %w", err)
	}
	reqJSON, err := json.Marshal(req)
	if err != nil {
		return verifyResult{}, fmt.Errorf("encode the verification request: %w", err)
	}
	env := rt.Env
	if env == nil {
		env = os.Environ()
	}
	env = append(slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, VerifyHelperEnv+"=")
	}), VerifyHelperEnv+"="+string(reqJSON))
	cmd := sys.Command{
		Path: "nsenter",
		Args: NsenterArgs(childPID, detached, self),
		Env:  env,
		OnLine: func(stream, line string) {
			if s, ok := strings.CutPrefix(line, verifyProgressPrefix); ok && stream == "stderr" {
				emit(s)
			}
		},
	}
	res, runErr := rt.Runner.Run(ctx, cmd)
	var out verifyResult
	if line := lastJSONLine(res.Stdout); line != nil {
		if err := json.Unmarshal(line, &out); err != nil {
			return verifyResult{}, fmt.Errorf("read the verification helper's answer: %w", err)
		}
		return out, nil
	}
	msg := lastNonProgressLine(res.Stderr)
	switch {
	case runErr != nil && msg != "":
		return verifyResult{}, fmt.Errorf("%s: %s", cmd.Path+" "+strings.Join(cmd.Args[:len(cmd.Args)-1], " "), msg)
	case runErr != nil:
		return verifyResult{}, runErr
	case msg != "":
		return verifyResult{}, fmt.Errorf("the verification helper gave no answer: %s", msg)
	}
	return verifyResult{}, errors.New("the verification helper gave no answer")
}

func lastJSONLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if l := bytes.TrimSpace(lines[i]); len(l) > 0 && l[0] == '{' {
			return l
		}
	}
	return nil
}

func lastNonProgressLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, verifyProgressPrefix) {
			return l
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// verifyHints says where to look when a check failed.
func verifyHints(rt *Runtime, opts VerifyOptions, check string) []string {
	var logs []string
	switch {
	case filepath.IsAbs(opts.LogPath):
		logs = append(logs, "the containerd log: "+opts.LogPath)
	case opts.LogPath != "":
		logs = append(logs, "`"+opts.LogPath+"`")
	case opts.ServiceMode == "systemd":
		logs = append(logs, "`journalctl --user -u containerd.service`")
	}
	info := "`nerdctl info` (it reaches containerd the same way)"
	config := filepath.Join(rt.Paths.ConfigHome, "containerd", "config.toml")
	switch check {
	case CheckFindContainerd:
		start := "start it: `virt-setup install` (direct mode runs containerd-rootless.sh in the background)"
		if opts.ServiceMode == "systemd" {
			start = "`systemctl --user status containerd`"
		}
		return append([]string{start}, logs...)
	case CheckEnterNamespace:
		return append([]string{"nsenter must be installed (util-linux)", info}, logs...)
	case CheckConnect:
		return append(slices.Clone(logs), info)
	case CheckSnapshotter:
		h := append(slices.Clone(logs), info)
		if opts.Snapshotter == "fuse-overlayfs" || opts.Snapshotter == "stargz" {
			h = append(h, "the [proxy_plugins] section of "+config+" and that the "+opts.Snapshotter+" daemon runs")
		}
		if opts.Snapshotter == "overlayfs" {
			h = append(h, "`virt-setup doctor` (overlayfs in a user namespace needs Linux 5.11 or newer)")
		}
		return h
	case CheckBuildImage:
		return []string{image.BusyboxInstallHint}
	case CheckImportImage, CheckUnpackImage:
		return append(slices.Clone(logs), info)
	case CheckRunContainer, CheckCleanUp:
		ref := opts.Image.Ref
		if ref == "" {
			ref = image.BusyboxRef
		}
		return append(slices.Clone(logs), "`nerdctl run --rm "+ref+" echo hi` for the same failure in nerdctl's words")
	}
	return logs
}

// verifyResult is what the inside half answers (one JSON line on stdout).
type verifyResult struct {
	ServerVersion     string       `json:"server_version,omitempty"`
	ServerRevision    string       `json:"server_revision,omitempty"`
	SnapshotterStatus string       `json:"snapshotter_status,omitempty"`
	Image             string       `json:"image,omitempty"`
	ImageDigest       string       `json:"image_digest,omitempty"`
	ImageImported     bool         `json:"image_imported"`
	Container         ContainerRun `json:"container"`
	Items             []VerifyItem `json:"items"`
}

// RunVerifyHelper runs the inside half of Verify when this process was re-executed for it
// (VerifyHelperEnv is set); ran is false otherwise. main() and TestMain call it first thing and
// exit with exitCode when ran is true. The answer is one JSON line on stdout.
func RunVerifyHelper() (exitCode int, ran bool) {
	reqJSON := os.Getenv(VerifyHelperEnv)
	if reqJSON == "" {
		return 0, false
	}
	var req verifyRequest
	var res verifyResult
	code := 0
	if err := json.Unmarshal([]byte(reqJSON), &req); err != nil {
		res.Items = []VerifyItem{{Check: CheckEnterNamespace, Error: fmt.Sprintf("decode the request in %s: %v", VerifyHelperEnv, err)}}
		code = 2
	} else if err := checkInRootlessNamespace(); err != nil {
		res.Items = []VerifyItem{{Check: CheckEnterNamespace, Error: err.Error()}}
		code = 2
	} else {
		res = verifyInside(req, func(it VerifyItem) {
			fmt.Fprintln(os.Stderr, verifyProgressPrefix+it.String())
		})
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "virt-setup verify helper: write result: %v\n", err)
		return 1, true
	}
	return code, true
}

// checkInRootlessNamespace refuses to go on outside a user namespace: run by hand on the host as
// root, the helper would otherwise talk to the system's rootful containerd.
func checkInRootlessNamespace() error {
	m, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return fmt.Errorf("read /proc/self/uid_map: %w", err)
	}
	if f := strings.Fields(string(m)); len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295" {
		return errors.New("the verification helper runs only inside RootlessKit's user namespace")
	}
	return nil
}

// verifyInside is the inside half: the containerd client, in RootlessKit's namespaces.
func verifyInside(req verifyRequest, report func(VerifyItem)) verifyResult {
	var res verifyResult
	add := func(it VerifyItem) bool {
		res.Items = append(res.Items, it)
		report(it)
		return it.OK
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = verifyTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx = namespaces.WithNamespace(ctx, req.Namespace)

	t0 := time.Now()
	client, err := containerd.New(req.Address, containerd.WithDefaultNamespace(req.Namespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		add(VerifyItem{Check: CheckConnect, Error: fmt.Sprintf("connect to %s: %v", req.Address, err), Duration: time.Since(t0)})
		return res
	}
	defer client.Close()
	v, err := client.Version(ctx)
	if err != nil {
		add(VerifyItem{Check: CheckConnect, Error: fmt.Sprintf("ask %s for its version: %v", req.Address, err), Duration: time.Since(t0)})
		return res
	}
	res.ServerVersion, res.ServerRevision = v.Version, v.Revision
	if !add(VerifyItem{Check: CheckConnect, OK: true, Detail: "containerd " + v.Version, Duration: time.Since(t0)}) {
		return res
	}

	if !add(checkSnapshotter(ctx, client, req.Snapshotter, &res)) {
		return res
	}

	img, ok := ensureImage(ctx, client, req, &res, add)
	if !ok {
		return res
	}

	t0 = time.Now()
	unpacked, err := img.IsUnpacked(ctx, req.Snapshotter)
	if err == nil && !unpacked {
		err = img.Unpack(ctx, req.Snapshotter)
	}
	if err != nil {
		add(VerifyItem{Check: CheckUnpackImage, Error: fmt.Sprintf("unpack %s with %s: %v", img.Name(), req.Snapshotter, err), Duration: time.Since(t0)})
		return res
	}
	detail := "unpacked with " + req.Snapshotter
	if unpacked {
		detail = "already unpacked with " + req.Snapshotter
	}
	if !add(VerifyItem{Check: CheckUnpackImage, OK: true, Detail: detail, Duration: time.Since(t0)}) {
		return res
	}

	runTestContainer(ctx, client, img, req, &res, add)
	return res
}

// checkSnapshotter looks the snapshotter up among containerd's plugins: it must be loaded and
// must have initialised (overlayfs, for one, reports an init error where the kernel refuses
// overlay mounts in a user namespace).
func checkSnapshotter(ctx context.Context, client *containerd.Client, name string, res *verifyResult) VerifyItem {
	t0 := time.Now()
	it := VerifyItem{Check: CheckSnapshotter}
	resp, err := client.IntrospectionService().Plugins(ctx, "type=="+snapshotterPluginType)
	if err != nil {
		it.Error, it.Duration = fmt.Sprintf("list containerd's snapshotters: %v", err), time.Since(t0)
		return it
	}
	var loaded []string
	for _, p := range resp.GetPlugins() {
		if p.GetInitErr() == nil {
			loaded = append(loaded, p.GetID())
		}
		if p.GetID() != name {
			continue
		}
		if ie := p.GetInitErr(); ie != nil {
			res.SnapshotterStatus = "init error: " + ie.GetMessage()
			it.Error = fmt.Sprintf("containerd could not initialise the %s snapshotter: %s", name, ie.GetMessage())
			it.Duration = time.Since(t0)
			return it
		}
		res.SnapshotterStatus = "ok"
		it.OK, it.Detail, it.Duration = true, name+" is loaded", time.Since(t0)
		return it
	}
	res.SnapshotterStatus = "not loaded"
	slices.Sort(loaded)
	it.Error = fmt.Sprintf("containerd has no %s snapshotter (it has: %s)", name, strings.Join(loaded, ", "))
	it.Duration = time.Since(t0)
	return it
}

// ensureImage returns the test image, importing it first when containerd does not have it.
func ensureImage(ctx context.Context, client *containerd.Client, req verifyRequest, res *verifyResult, add func(VerifyItem) bool) (containerd.Image, bool) {
	ref, err := req.Image.NormalizedRef()
	if err != nil {
		add(VerifyItem{Check: CheckBuildImage, Error: err.Error()})
		return nil, false
	}
	res.Image = ref
	t0 := time.Now()
	img, err := client.GetImage(ctx, ref)
	if err == nil {
		res.ImageDigest = img.Target().Digest.String()
		ok := add(VerifyItem{Check: CheckImportImage, OK: true, Detail: ref + " is already there", Duration: time.Since(t0)})
		return img, ok
	}
	if !errdefs.IsNotFound(err) {
		add(VerifyItem{Check: CheckImportImage, Error: fmt.Sprintf("look up %s: %v", ref, err), Duration: time.Since(t0)})
		return nil, false
	}

	t0 = time.Now()
	var archive bytes.Buffer
	digest, err := image.WriteOCIArchive(&archive, req.Image)
	if err != nil {
		add(VerifyItem{Check: CheckBuildImage, Error: err.Error(), Duration: time.Since(t0)})
		return nil, false
	}
	if !add(VerifyItem{Check: CheckBuildImage, OK: true, Duration: time.Since(t0),
		Detail: fmt.Sprintf("%s, %d KiB", shortDigest(digest), archive.Len()/1024)}) {
		return nil, false
	}

	t0 = time.Now()
	imgs, err := client.Import(ctx, &archive)
	if err != nil {
		add(VerifyItem{Check: CheckImportImage, Error: fmt.Sprintf("import %s: %v", ref, err), Duration: time.Since(t0)})
		return nil, false
	}
	if i := slices.IndexFunc(imgs, func(im images.Image) bool { return im.Name == ref }); i < 0 {
		add(VerifyItem{Check: CheckImportImage, Error: fmt.Sprintf("import %s: containerd named no image %s", ref, ref), Duration: time.Since(t0)})
		return nil, false
	}
	img, err = client.GetImage(ctx, ref)
	if err != nil {
		add(VerifyItem{Check: CheckImportImage, Error: fmt.Sprintf("look up %s after importing it: %v", ref, err), Duration: time.Since(t0)})
		return nil, false
	}
	res.ImageDigest, res.ImageImported = img.Target().Digest.String(), true
	ok := add(VerifyItem{Check: CheckImportImage, OK: true, Detail: "imported " + ref, Duration: time.Since(t0)})
	return img, ok
}

func shortDigest(d string) string {
	if _, hexd, ok := strings.Cut(d, ":"); ok && len(hexd) > 12 {
		return d[:len(d)-len(hexd)] + hexd[:12]
	}
	return d
}

// testImage is the image verify runs when the caller named none: busybox where the host has a
// static one, else the host's own echo with its libraries, which every distribution has.
func testImage(ctx context.Context, r sys.Runner) (image.Spec, error) {
	bb, err := image.FindBusybox()
	if err == nil {
		return image.BusyboxSpec(bb), nil
	}
	spec, eerr := image.EchoSpec(ctx, r)
	if eerr != nil {
		return image.Spec{}, fmt.Errorf("%w; %w", err, eerr)
	}
	return spec, nil
}

// runTestContainer creates a container from img with the snapshotter, runs
// `/bin/echo TOKEN` in it, checks what it printed and removes it again.
func runTestContainer(ctx context.Context, client *containerd.Client, img containerd.Image, req verifyRequest, res *verifyResult, add func(VerifyItem) bool) {
	t0 := time.Now()
	res.Container.ID = req.ContainerID
	fail := func(format string, args ...any) {
		res.Container.Duration = time.Since(t0)
		add(VerifyItem{Check: CheckRunContainer, Error: fmt.Sprintf(format, args...), Duration: time.Since(t0)})
	}
	stale := removeStaleContainers(ctx, client)
	container, err := client.NewContainer(ctx, req.ContainerID,
		containerd.WithContainerLabels(map[string]string{verifyLabel: "true"}),
		containerd.WithImage(img),
		containerd.WithSnapshotter(req.Snapshotter),
		containerd.WithNewSnapshot(req.ContainerID, img),
		containerd.WithNewSpec(
			oci.WithImageConfig(img),
			oci.WithProcessArgs(image.EchoPath, req.Token),
			// No cgroup: rootless containerd without systemd's delegation cannot use one, and the
			// test sets no limits (nerdctl's cgroup manager "none" does the same). The default
			// spec's new network namespace stays: it needs no CNI for a container that only echoes.
			oci.WithCgroup(""),
		),
	)
	if err != nil {
		// The snapshot is made before the container record; do not leave it behind.
		if rerr := client.SnapshotService(req.Snapshotter).Remove(ctx, req.ContainerID); rerr != nil && !errdefs.IsNotFound(rerr) {
			err = fmt.Errorf("%w (and remove its snapshot: %v)", err, rerr)
		}
		fail("create container %s: %v", req.ContainerID, err)
		return
	}
	// Remove the container and its snapshot whatever happens below, with a context of its own so
	// a run that used up the deadline still cleans up.
	defer func() {
		cctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), req.Namespace), 20*time.Second)
		defer cancel()
		c0 := time.Now()
		if err := container.Delete(cctx, containerd.WithSnapshotCleanup); err != nil {
			add(VerifyItem{Check: CheckCleanUp, Error: fmt.Sprintf("delete container %s and its snapshot: %v", req.ContainerID, err), Duration: time.Since(c0)})
			return
		}
		detail := "container, task and snapshot deleted"
		if stale > 0 {
			detail += fmt.Sprintf(", and %d left by an earlier run", stale)
		}
		add(VerifyItem{Check: CheckCleanUp, OK: true, Detail: detail, Duration: time.Since(c0)})
	}()

	var stdout, stderr bytes.Buffer
	// The FIFOs go to containerd's default FIFO directory, /run/containerd/fifo: inside the
	// mount namespace that is $XDG_RUNTIME_DIR/containerd on the host, writable by the user.
	task, err := container.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr)))
	if err != nil {
		fail("create the task: %v", err)
		return
	}
	deleteTask := func() error {
		cctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), req.Namespace), 20*time.Second)
		defer cancel()
		_, err := task.Delete(cctx, containerd.WithProcessKill)
		return err
	}
	exitCh, err := task.Wait(ctx)
	if err != nil {
		_ = deleteTask()
		fail("wait for the task: %v", err)
		return
	}
	if err := task.Start(ctx); err != nil {
		_ = deleteTask()
		fail("start the task: %v", err)
		return
	}
	var status containerd.ExitStatus
	select {
	case status = <-exitCh:
	case <-ctx.Done():
		_ = deleteTask()
		fail("the container did not exit: %v", ctx.Err())
		return
	}
	code, _, err := status.Result()
	// Deleting the task waits for its output to be copied, so read stdout after it.
	if derr := deleteTask(); derr != nil {
		fail("delete the task: %v", derr)
		return
	}
	res.Container.ExitCode = int(code)
	res.Container.Output = stdout.String()
	res.Container.Duration = time.Since(t0)
	if err != nil {
		fail("wait for the container: %v", err)
		return
	}
	out := strings.TrimSpace(stdout.String())
	if code != 0 {
		msg := strings.TrimSpace(stderr.String())
		fail("the container exited with status %d: %s", code, excerpt(msg, 300))
		return
	}
	if out != req.Token {
		fail("the container printed %q, want %q", excerpt(out, 100), req.Token)
		return
	}
	res.Container.OK = true
	add(VerifyItem{Check: CheckRunContainer, OK: true, Duration: time.Since(t0),
		Detail: fmt.Sprintf("`%s` printed %s and exited 0", image.EchoPath, req.Token)})
}

// removeStaleContainers deletes test containers (with their tasks and snapshots) that an earlier
// run left when it was killed half-way, and returns how many it deleted. Failing to is not an
// error of this run: its own container has a new name.
func removeStaleContainers(ctx context.Context, client *containerd.Client) int {
	cs, err := client.Containers(ctx, fmt.Sprintf("labels.%q==true", verifyLabel))
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range cs {
		if task, err := c.Task(ctx, nil); err == nil {
			_, _ = task.Delete(ctx, containerd.WithProcessKill)
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err == nil {
			n++
		}
	}
	return n
}

func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// NewVerifyStep is the plan's last step: Verify with opts. It always runs (verification is never
// "already done") and changes nothing that needs undoing.
func NewVerifyStep(opts VerifyOptions) Step { return verifyStep{opts: opts} }

type verifyStep struct{ opts VerifyOptions }

// Info implements Step.
func (s verifyStep) Info() StepInfo {
	state := s.opts.StateDir
	if state == "" {
		state = "$XDG_RUNTIME_DIR/containerd-rootless"
	}
	sn := s.opts.Snapshotter
	if sn == "" {
		sn = "overlayfs"
	}
	return StepInfo{
		ID:    "verify:containerd",
		Title: "Verify: run a test container with the " + sn + " snapshotter",
		Kind:  KindVerify,
		// What runs depends on $STATE/netns (-n unless RootlessKit detached the network namespace);
		// the line shows the general form.
		Commands: []string{
			"nsenter -U --preserve-credentials -m [-n] -t \"$(cat " + sys.ShellQuote(state+"/child_pid") + ")\" -F -- virt-setup",
		},
	}
}

// Check implements Step: never done, so the engine always runs the verification.
func (verifyStep) Check(context.Context, *Runtime) (bool, error) { return false, nil }

// Apply implements Step.
func (s verifyStep) Apply(ctx context.Context, rt *Runtime, rec *Record) error {
	rep, err := Verify(ctx, rt, s.opts)
	if b, jerr := json.Marshal(rep); jerr == nil {
		if rec.Data == nil {
			rec.Data = map[string]string{}
		}
		rec.Data["report"] = string(b)
	}
	return err
}

// Undo implements Step: a verification leaves nothing behind but the test image, which nerdctl
// users may keep using.
func (verifyStep) Undo(context.Context, *Runtime, Record) error { return nil }
