package probe

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// binRootFile writes a file below a fake root, making its directories.
func binRootFile(t testing.TB, root, p, content string, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; setuid needs an explicit chmod as well.
	if err := os.Chmod(full, mode); err != nil {
		t.Fatal(err)
	}
}

// binTestEnv is a fake-root Env with the given runner, for an ordinary user with HOME /home/u.
func binTestEnv(t testing.TB, root string, r sys.Runner, environ ...string) *Env {
	t.Helper()
	e := &Env{Root: sys.Root{Dir: root}, Runner: r, Environ: environ, Now: time.Now, SelfExe: "/nonexistent"}
	e.User = User{Name: "u", UID: 1000, GID: 1000, Home: "/home/u", Known: true}
	e.LookupDirs = e.lookupDirs()
	return e
}

func binRun(t testing.TB, ctx context.Context, e *Env) map[string]Fact[Binary] {
	t.Helper()
	f := &Facts{}
	probeBinaries(ctx, e)(f)
	if len(f.Binaries) != len(binaryCatalog) {
		t.Fatalf("got %d binaries, want one per catalog entry (%d)", len(f.Binaries), len(binaryCatalog))
	}
	return f.Binaries
}

// TestProbeBinariesStub lays out a fake host and answers the probe's commands with real outputs.
// The strict stub fails the test if a program that must never run is run.
func TestProbeBinariesStub(t *testing.T) {
	root := t.TempDir()
	exe := "#!/bin/sh\nexit 99\n"
	binRootFile(t, root, "/usr/bin/containerd", exe, 0o755)
	binRootFile(t, root, "/home/u/.local/bin/containerd", exe, 0o755) // found first: ~/.local/bin precedes /usr/bin
	binRootFile(t, root, "/usr/bin/slirp4netns", exe, 0o755)
	binRootFile(t, root, "/usr/local/bin/rootlesskit", exe, 0o755)
	binRootFile(t, root, "/usr/bin/fuse-overlayfs", exe, 0o755)
	binRootFile(t, root, "/usr/sbin/iptables", exe, 0o755)
	binRootFile(t, root, "/usr/bin/runc", exe, 0o755)
	binRootFile(t, root, "/usr/local/bin/containerd-stargz-grpc", exe, 0o755)
	binRootFile(t, root, "/usr/bin/nerdctl", exe, 0o644) // not executable: not found
	// Never run: the stub has no entry for these, so running one fails the test.
	binRootFile(t, root, "/usr/local/bin/containerd-rootless.sh", "#!/bin/sh\n: \"${CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS:=auto}\"\nexec rootlesskit \"$@\"\n", 0o755)
	binRootFile(t, root, "/usr/local/bin/containerd-rootless-setuptool.sh", exe, 0o755)
	binRootFile(t, root, "/usr/local/bin/containerd-fuse-overlayfs-grpc", exe, 0o755)
	binRootFile(t, root, "/usr/lib/x86_64-linux-gnu/lxc/lxc-user-nic", exe, 0o4755)

	stub := sys.NewStub(t)
	q := regexp.QuoteMeta(root)
	stub.Register(q+`/home/u/\.local/bin/containerd --version`, "containerd github.com/containerd/containerd/v2 v2.4.2 1e8a6d2ea2b0c9c8f0fe1e0d1a6c4e6f4b9f6a1d\n", 0)
	stub.Register(q+`/usr/bin/slirp4netns --version`, "slirp4netns version 1.2.0\ncommit: 656041d45cfca7a4176f6b7eed9e4fe6c11e8383\nlibslirp: 4.7.0\nSLIRP_CONFIG_VERSION_MAX: 4\nlibseccomp: 2.5.4\n", 0)
	stub.Register(q+`/usr/bin/slirp4netns --help`, "Usage: slirp4netns [OPTION]... PID|PATH [TAPNAME]\n  -c, --configure          bring up the interface\n      --netns-type=TYPE    specify network namespace type ([path|pid], default=pid)\n", 0)
	stub.Register(q+`/usr/local/bin/rootlesskit --version`, "rootlesskit version 1.1.0\n", 0)
	stub.Register(q+`/usr/local/bin/rootlesskit --help`, "NAME:\n   rootlesskit - Linux-native fakeroot using user namespaces\n   --net value  network driver [host, slirp4netns, vpnkit, lxc-user-nic(experimental)] (default: \"host\")\n", 0)
	stub.Register(q+`/usr/bin/fuse-overlayfs --version`, "unknown argument ignored: lazytime\nfusermount3 version: 3.14.0\nfuse-overlayfs: version 1.10\nFUSE library version 3.14.0\nusing FUSE kernel interface version 7.31\n", 0)
	stub.Register(q+`/usr/sbin/iptables --version`, "iptables v1.8.9 (nf_tables)\n", 0)
	stub.Register(q+`/usr/bin/runc --version`, "garbage without a number\n", 0)
	stub.Register(q+`/usr/local/bin/containerd-stargz-grpc -version`, "containerd-stargz-grpc github.com/containerd/stargz-snapshotter v0.15.1 d3b1f9a4\n", 0)

	got := binRun(t, context.Background(), binTestEnv(t, root, stub))

	for _, tc := range []struct {
		name, path, version string
		features            map[string]bool
	}{
		{"containerd", "/home/u/.local/bin/containerd", "2.4.2", nil},
		{"slirp4netns", "/usr/bin/slirp4netns", "1.2.0", map[string]bool{FeatureNetnsType: true}},
		{"rootlesskit", "/usr/local/bin/rootlesskit", "1.1.0", map[string]bool{FeatureDetachNetns: false, FeaturePasta: false, FeatureGvisorTapVsock: false}},
		{"fuse-overlayfs", "/usr/bin/fuse-overlayfs", "1.10", nil},
		{"iptables", "/usr/sbin/iptables", "1.8.9", map[string]bool{FeatureNft: true}},
		{"containerd-stargz-grpc", "/usr/local/bin/containerd-stargz-grpc", "0.15.1", nil},
		{"containerd-rootless.sh", "/usr/local/bin/containerd-rootless.sh", "", map[string]bool{FeatureDetachNetns: true, FeatureGvisorFallback: false}},
		{"containerd-rootless-setuptool.sh", "/usr/local/bin/containerd-rootless-setuptool.sh", "", nil},
		{"containerd-fuse-overlayfs-grpc", "/usr/local/bin/containerd-fuse-overlayfs-grpc", "", nil},
		{"lxc-user-nic", "/usr/lib/x86_64-linux-gnu/lxc/lxc-user-nic", "", nil},
	} {
		f := got[tc.name]
		if !f.Known || !f.Value.Found || f.Value.Path != tc.path || f.Value.Version != tc.version || f.Value.Name != tc.name {
			t.Errorf("%s = %+v (error %q), want found at %s version %q", tc.name, f.Value, f.Error, tc.path, tc.version)
		}
		if f.Error != "" {
			t.Errorf("%s: unexpected error %q", tc.name, f.Error)
		}
		if len(f.Value.Features) != len(tc.features) {
			t.Errorf("%s features = %v, want %v", tc.name, f.Value.Features, tc.features)
		}
		for k, v := range tc.features {
			if have, ok := f.Value.Features[k]; !ok || have != v {
				t.Errorf("%s feature %s = %v (set %v), want %v", tc.name, k, have, ok, v)
			}
		}
	}

	// A version that cannot be parsed: presence is still known, the error says why.
	if f := got["runc"]; !f.Known || !f.Value.Found || f.Value.Version != "" || !strings.Contains(f.Error, "parse version of runc") {
		t.Errorf("runc = %+v, error %q; want found, no version, a parse error", f.Value, f.Error)
	}
	// Evidence of a command names the host path, not the fake root.
	ev := got["slirp4netns"].Evidence
	if len(ev) < 3 || ev[1].Kind != "command" || ev[1].Source != "/usr/bin/slirp4netns --version" || !strings.HasPrefix(ev[1].Excerpt, "slirp4netns version 1.2.0") {
		t.Errorf("slirp4netns evidence = %+v", ev)
	}
	for _, name := range []string{"nerdctl", "vpnkit", "bypass4netns", "pasta"} {
		f := got[name]
		if !f.Known || f.Value.Found || f.Value.Path != "" || f.Error != "" {
			t.Errorf("%s = %+v, want known and not found", name, f)
		}
		if len(f.Evidence) != 1 || !strings.Contains(f.Evidence[0].Source, "/home/u/.local/bin") || !strings.Contains(f.Evidence[0].Source, "/usr/sbin") {
			t.Errorf("%s evidence = %+v, want the directories searched", name, f.Evidence)
		}
	}
	if ev := got["lxc-user-nic"].Evidence; len(ev) != 1 || ev[0].Source != "/usr/lib/x86_64-linux-gnu/lxc/lxc-user-nic" {
		t.Errorf("lxc-user-nic evidence = %+v", ev)
	}
}

// TestProbeBinariesScripts runs fake programs for real: the environment they get, programs that
// fail, hang, or print their version on stderr and exit non-zero.
func TestProbeBinariesScripts(t *testing.T) {
	root := t.TempDir()
	binRootFile(t, root, "/usr/bin/nerdctl", "#!/bin/sh\nif [ \"$LC_ALL\" = C ]; then echo \"nerdctl version 2.0.5\"; else echo \"locale $LC_ALL\"; fi\n", 0o755)
	// bypass4netns v0.4.2 dies before parsing flags when $XDG_RUNTIME_DIR is unset.
	binRootFile(t, root, "/usr/local/bin/bypass4netns", "#!/bin/sh\n[ -n \"$XDG_RUNTIME_DIR\" ] || { echo 'panic: $XDG_RUNTIME_DIR needs to be set' >&2; exit 2; }\necho \"bypass4netns version 0.4.2\"\necho \"libseccomp: 2.5.4\"\n", 0o755)
	binRootFile(t, root, "/usr/bin/crun", "#!/bin/sh\nexec sleep 5\n", 0o755)
	binRootFile(t, root, "/usr/bin/rootlesskit", "#!/bin/sh\ncase \"$1\" in\n--version) echo 'rootlesskit version 2.3.6' >&2; exit 0;;\n*) echo 'Incorrect Usage. --detach-netns  detach network namespaces; --net value [slirp4netns, vpnkit, pasta, lxc-user-nic]' >&2; exit 1;;\nesac\n", 0o755)
	binRootFile(t, root, "/usr/sbin/iptables", "#!/bin/sh\necho 'iptables v1.6.1'\n", 0o755)
	binRootFile(t, root, "/usr/bin/vpnkit", "#!/bin/sh\nexit 1\n", 0o755)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	got := binRun(t, ctx, binTestEnv(t, root, sys.Exec{}, "PATH=/usr/bin:/bin"))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("probe took %v; a hanging program must not hold it past the deadline", d)
	}

	if f := got["nerdctl"]; f.Value.Version != "2.0.5" {
		t.Errorf("nerdctl = %+v, error %q; want 2.0.5 (run with LC_ALL=C)", f.Value, f.Error)
	}
	if f := got["bypass4netns"]; f.Value.Version != "0.4.2" {
		t.Errorf("bypass4netns = %+v, error %q; want 0.4.2 (libseccomp's version must not be taken)", f.Value, f.Error)
	}
	if f := got["crun"]; !f.Known || !f.Value.Found || f.Value.Version != "" || f.Error == "" {
		t.Errorf("crun (hangs) = %+v, error %q; want found, no version, an error", f.Value, f.Error)
	}
	f := got["rootlesskit"]
	if f.Value.Version != "2.3.6" || !f.Value.Features[FeatureDetachNetns] || !f.Value.Features[FeaturePasta] || f.Value.Features[FeatureGvisorTapVsock] {
		t.Errorf("rootlesskit = %+v, error %q; want 2.3.6 with detach-netns and pasta, no gvisor-tap-vsock", f.Value, f.Error)
	}
	if f := got["iptables"]; !f.Value.Features[FeatureLegacy] || f.Value.Features[FeatureNft] {
		t.Errorf("iptables 1.6.1 = %+v; want legacy (before 1.8 there was no nf_tables backend)", f.Value)
	}
	if f := got["vpnkit"]; !f.Known || !f.Value.Found || f.Value.Version != "" || !strings.Contains(f.Error, "exit status 1") {
		t.Errorf("vpnkit (fails silently) = %+v, error %q; want found with the exit error", f.Value, f.Error)
	}
}

// binCountingRunner answers every command after a delay and records the most commands that ran at
// once.
type binCountingRunner struct {
	delay       time.Duration
	out         string
	running     atomic.Int32
	mu          sync.Mutex
	maxParallel int32
	calls       int
}

func (r *binCountingRunner) Run(ctx context.Context, c sys.Command) (sys.Result, error) {
	n := r.running.Add(1)
	defer r.running.Add(-1)
	r.mu.Lock()
	r.calls++
	if n > r.maxParallel {
		r.maxParallel = n
	}
	r.mu.Unlock()
	select {
	case <-time.After(r.delay):
	case <-ctx.Done():
		return sys.Result{ExitCode: -1}, ctx.Err()
	}
	return sys.Result{Stdout: []byte(r.out)}, nil
}

// TestProbeBinariesPool: programs run side by side, but never more than the pool allows.
func TestProbeBinariesPool(t *testing.T) {
	root := t.TempDir()
	runnable := 0
	for _, s := range binaryCatalog {
		binRootFile(t, root, "/usr/bin/"+s.Name, "#!/bin/sh\n", 0o755)
		if s.Runs() {
			runnable++
			if len(s.HelpFeatures) > 0 {
				runnable++
			}
		}
	}
	r := &binCountingRunner{delay: 50 * time.Millisecond, out: "x version 1.2.3\n"}
	start := time.Now()
	got := binRun(t, context.Background(), binTestEnv(t, root, r))
	took := time.Since(start)
	if r.calls != runnable {
		t.Errorf("%d commands run, want %d (one --version per runnable program, one --help per help feature)", r.calls, runnable)
	}
	if r.maxParallel > binaryPool || r.maxParallel < 2 {
		t.Errorf("at most %d commands ran at once, want 2..%d", r.maxParallel, binaryPool)
	}
	if serial := time.Duration(runnable) * r.delay; took > serial/2 {
		t.Errorf("took %v; serially it would take %v", took, serial)
	}
	for _, s := range binaryCatalog {
		if s.Runs() && got[s.Name].Value.Version != "1.2.3" {
			t.Errorf("%s version %q, error %q", s.Name, got[s.Name].Value.Version, got[s.Name].Error)
		}
	}
}

func TestBinaryCatalog(t *testing.T) {
	cat := BinaryCatalog()
	seen := map[string]bool{}
	for _, s := range cat {
		if seen[s.Name] {
			t.Errorf("%s listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Runs() == (len(s.VersionArgs) == 0) {
			t.Errorf("%s: a program is either run with version arguments or never run (NeverRun %q, args %v)", s.Name, s.NeverRun, s.VersionArgs)
		}
	}
	for _, name := range []string{"containerd-rootless.sh", "containerd-rootless-setuptool.sh", "containerd-fuse-overlayfs-grpc", "lxc-user-nic"} {
		s, ok := LookupBinarySpec(name)
		if !ok || s.Runs() {
			t.Errorf("%s must be in the catalog and never run (got %+v, %v)", name, s, ok)
		}
	}
	if len(BinaryNames()) != len(cat) {
		t.Errorf("BinaryNames has %d names, catalog %d", len(BinaryNames()), len(cat))
	}
	// The copy is the caller's to change.
	cat[0].VersionArgs[0] = "--changed"
	if binaryCatalog[0].VersionArgs[0] == "--changed" {
		t.Error("BinaryCatalog returned the package's own slices")
	}
}

func TestVersionText(t *testing.T) {
	if got := versionText("bypass4netns version <unknown>\nlibseccomp: 2.5.4\n", []string{"bypass4netns version"}); got != "bypass4netns version <unknown>" {
		t.Errorf("versionText = %q; the library line after it must not be taken", got)
	}
	out := "unknown argument ignored: lazytime\nfusermount3 version: 3.14.0\nfuse-overlayfs: version 1.10\n"
	if got := versionText(out, []string{"fuse-overlayfs"}); got != "fuse-overlayfs: version 1.10" {
		t.Errorf("versionText = %q", got)
	}
	if got := versionText(out, []string{"nomatch"}); got != out {
		t.Errorf("versionText without a matching line = %q, want all of the output", got)
	}
}

// binFuncRunner answers every command with the same output.
type binFuncRunner func(sys.Command) (sys.Result, error)

func (f binFuncRunner) Run(_ context.Context, c sys.Command) (sys.Result, error) { return f(c) }

// FuzzProbeBinaryOutput feeds arbitrary program output to the binary probe: it must never panic,
// and presence must stay known whatever the output.
func FuzzProbeBinaryOutput(f *testing.F) {
	for _, tc := range versionOutputs {
		f.Add(tc.out)
	}
	f.Add("iptables v1.8.9 (legacy)\n")
	f.Add("\x00\xff--netns-type")
	root := f.TempDir()
	for _, name := range []string{"iptables", "rootlesskit", "fuse-overlayfs", "containerd-rootless.sh"} {
		binRootFile(f, root, "/usr/bin/"+name, "#!/bin/sh\n", 0o755)
	}
	f.Fuzz(func(t *testing.T, out string) {
		e := binTestEnv(t, root, binFuncRunner(func(sys.Command) (sys.Result, error) {
			return sys.Result{Stdout: []byte(out)}, nil
		}))
		got := binRun(t, context.Background(), e)
		for _, name := range []string{"iptables", "rootlesskit", "fuse-overlayfs"} {
			b := got[name]
			if !b.Known || !b.Value.Found {
				t.Fatalf("%s = %+v", name, b)
			}
			if b.Value.Version == "" && b.Error == "" {
				t.Fatalf("%s: no version and no error for output %q", name, out)
			}
			for _, ev := range b.Evidence {
				if len(ev.Excerpt) > 310 {
					t.Fatalf("%s: excerpt of %d bytes", name, len(ev.Excerpt))
				}
			}
		}
	})
}
