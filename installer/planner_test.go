package installer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/internal/testenv"
	"github.com/virt-setup/virt-setup/probe"
)

// profileFacts loads a shipped host profile.
func profileFacts(t *testing.T, name string) *probe.Facts {
	t.Helper()
	f, err := probe.LoadProfile(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// withBinary adds a found binary to the facts.
func withBinary(f *probe.Facts, name, path string) {
	f.Binaries[name] = probe.Known(probe.Binary{Name: name, Found: true, Path: path})
}

func planRuntime(t *testing.T) *Runtime {
	t.Helper()
	home := t.TempDir()
	p := PathsFromEnv(func(k string) string {
		if k == "XDG_RUNTIME_DIR" {
			return "/run/user/1000"
		}
		return ""
	}, home)
	return &Runtime{Runner: sys.NewStub(t), Paths: p}
}

func stepIDs(p *Plan) []string {
	var ids []string
	for _, in := range p.Infos() {
		ids = append(ids, in.ID)
	}
	return ids
}

func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		h.Write([]byte(p))
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

// TestPlanEverythingMergesIntoUserConfig is the plan for fuse-overlayfs with stargz, bypass4netns
// and BuildKit on a Fedora host: it shows a config.toml diff against the user's commented config,
// and the real containerd accepts the merged file.
func TestPlanEverythingMergesIntoUserConfig(t *testing.T) {
	containerd, err := exec.LookPath("containerd")
	testenv.Require(t, err == nil, "containerd is not installed: run scripts/install-components.sh")

	f := profileFacts(t, "fedora-41")
	withBinary(f, "containerd-stargz-grpc", "/usr/bin/containerd-stargz-grpc")
	rt := planRuntime(t)
	user := "# my settings, keep them\nversion = 2\nroot = \"/home/alice/.local/share/containerd\" # where images live\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  # my snapshotter comment\n  snapshotter = \"overlayfs\"\n"
	cfg := filepath.Join(rt.Paths.ConfigHome, "containerd/config.toml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(user), 0o644); err != nil {
		t.Fatal(err)
	}
	a := DefaultAnswers(f, probe.Recommend(f))
	a.Snapshotter, a.ServiceMode = "fuse-overlayfs", "systemd"
	a.AddOns = AddOnAnswers{BuildKit: true, Stargz: true, Bypass4netns: true}

	before := treeHash(t, rt.Paths.Home)
	plan, err := BuildPlan(PlanInput{Facts: f, Answers: a, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	infos := plan.Infos()
	if got := treeHash(t, rt.Paths.Home); got != before {
		t.Fatal("building and describing the plan changed the home")
	}
	want := []string{"file:nerdctl.toml", "file:containerd-config", "setuptool:install", "file:containerd-override", "restart:containerd.service",
		"setuptool:install-fuse-overlayfs", "setuptool:install-stargz", "setuptool:install-bypass4netnsd", "setuptool:install-buildkit", "verify:containerd"}
	if got := stepIDs(plan); strings.Join(got[len(got)-len(want):], " ") != strings.Join(want, " ") {
		t.Errorf("steps = %v, want them to end with %v", got, want)
	}
	var diff string
	var step Step
	for i, in := range infos {
		if in.ID == "file:containerd-config" {
			diff, step = in.Files[0].Diff, plan.Steps[i]
		}
	}
	for _, w := range []string{` # my snapshotter comment`, `+[proxy_plugins."fuse-overlayfs"]`, `+[proxy_plugins."stargz"]`, "+    root = \"" + rt.Paths.DataHome + "/containerd-stargz-grpc/\""} {
		if !strings.Contains(diff, w) {
			t.Errorf("config.toml diff lacks %q:\n%s", w, diff)
		}
	}
	if strings.Count(diff, "\n+[proxy_plugins]") != 0 {
		t.Errorf("the diff defines a bare [proxy_plugins] table:\n%s", diff)
	}

	// Apply only this step, then let the real containerd read the result.
	if err := step.Apply(context.Background(), rt, &Record{}); err != nil {
		t.Fatal(err)
	}
	merged, _ := os.ReadFile(cfg)
	if !strings.HasPrefix(string(merged), user) {
		t.Errorf("the user's content did not survive byte for byte:\n%s", merged)
	}
	out, err := exec.Command(containerd, "--config", cfg, "config", "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("containerd rejects the merged config: %v\n%s", err, out)
	}
	for _, w := range []string{`[proxy_plugins.fuse-overlayfs]`, `[proxy_plugins.stargz]`, `address = '/run/user/1000/containerd-fuse-overlayfs.sock'`, `snapshotter = 'fuse-overlayfs'`} {
		if !strings.Contains(string(out), w) {
			t.Errorf("containerd config dump lacks %q:\n%s", w, out)
		}
	}
}

func TestPlanDirectMode(t *testing.T) {
	f := profileFacts(t, "old-kernel-no-fuse-userns") // no systemd user manager, bypass4netnsd installed
	rt := planRuntime(t)
	a := DefaultAnswers(f, probe.Recommend(f))
	a.Snapshotter, a.AddOns = "native", AddOnAnswers{Bypass4netns: true}
	plan, err := BuildPlan(PlanInput{Facts: f, Answers: a, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(stepIDs(plan), " ")
	for _, w := range []string{"privileged", "file:nerdctl.toml", "service:containerd", "service:bypass4netnsd", "verify:containerd"} {
		if !strings.Contains(got, w) {
			t.Errorf("direct plan %q lacks %s", got, w)
		}
	}
	if strings.Contains(got, "containerd-config") || strings.Contains(got, "setuptool:") {
		t.Errorf("direct native plan has steps it does not need: %s", got)
	}
	// max_user_namespaces=0 on that host: the root script raises it.
	if infos := plan.Infos(); !infos[0].Privileged || !strings.Contains(strings.Join(infos[0].Commands, "\n"), "user.max_user_namespaces") {
		t.Errorf("privileged step = %+v", infos[0])
	}
}

func TestPlanRefusesWhatTheHostCannotDo(t *testing.T) {
	tests := []struct {
		profile string
		edit    func(*Answers)
		want    string
	}{
		{"no-systemd", func(a *Answers) { a.ServiceMode = "systemd" }, "needs a reachable systemd user manager"},
		{"debian-12", func(a *Answers) { a.AddOns.BuildKit = true }, "buildkitd is not installed"},
		{"debian-12", func(a *Answers) { a.AddOns.Stargz = true }, "containerd-stargz-grpc is not installed"},
	}
	t.Run("root", func(t *testing.T) {
		f := profileFacts(t, "debian-12")
		f.Identity.Root = probe.Known(true)
		_, err := BuildPlan(PlanInput{Facts: f, Answers: DefaultAnswers(f, probe.Recommend(f)), Runtime: planRuntime(t)})
		var pe *PlanError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "not as root") {
			t.Errorf("err = %v, want a PlanError refusing root", err)
		}
	})
	t.Run("user manager unknown", func(t *testing.T) {
		// A busy machine where `systemctl --user` timed out is not a host without a user manager.
		f := profileFacts(t, "debian-12")
		f.Systemd.UserManager = probe.Unknown[bool](errors.New("run systemctl --user show-environment: context deadline exceeded"))
		a := DefaultAnswers(f, probe.Recommend(f))
		a.ServiceMode = "systemd"
		_, err := BuildPlan(PlanInput{Facts: f, Answers: a, Runtime: planRuntime(t)})
		if err == nil || !strings.Contains(err.Error(), "could not tell whether your systemd user manager answers (run systemctl") ||
			strings.Contains(err.Error(), `use service_mode = "direct"`) {
			t.Errorf("err = %v, want the unknown said as unknown, with the reason", err)
		}
	})
	for _, tt := range tests {
		t.Run(tt.profile+"/"+tt.want, func(t *testing.T) {
			f := profileFacts(t, tt.profile)
			a := DefaultAnswers(f, probe.Recommend(f))
			tt.edit(&a)
			_, err := BuildPlan(PlanInput{Facts: f, Answers: a, Runtime: planRuntime(t)})
			var pe *PlanError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want a PlanError saying %q", err, tt.want)
			}
		})
	}
}

func TestGatherPrivilegedDeduplicates(t *testing.T) {
	a := validAnswers()
	results := []probe.Result{
		{ID: "VS-TUN-001", Status: probe.StatusFail, Title: "tun", Fix: probe.Fix{Root: []string{"apt-get update", "chmod 0666 /dev/net/tun"}}},
		{ID: "VS-IPTABLES-001", Status: probe.StatusFail, Title: "iptables", Fix: probe.Fix{Root: []string{"apt-get update", "apt-get install -y iptables"}}},
		{ID: "VS-FUSE-001", Status: probe.StatusWarn, Title: "fuse", Fix: probe.Fix{Root: []string{"chmod 0666 /dev/fuse"}}}, // overlayfs: not needed
		{ID: "VS-PORTS-001", Status: probe.StatusWarn, Title: "ports", Fix: probe.Fix{Root: []string{"sysctl"}}},             // never gathered
		{ID: "VS-SUBID-001", Status: probe.StatusOK, Fix: probe.Fix{Root: []string{"usermod"}}},
	}
	lines, reasons := GatherPrivileged(a, results)
	if strings.Join(lines, "|") != "apt-get update|chmod 0666 /dev/net/tun|apt-get install -y iptables" || len(reasons) != 2 {
		t.Errorf("lines %q, reasons %q", lines, reasons)
	}
	a.Snapshotter = "fuse-overlayfs"
	if lines, _ := GatherPrivileged(a, results); !strings.Contains(strings.Join(lines, "\n"), "/dev/fuse") {
		t.Errorf("fuse-overlayfs answers do not gather the /dev/fuse fix: %q", lines)
	}
}

func TestGatherPrivilegedSystemdDelegation(t *testing.T) {
	a := validAnswers()
	results := []probe.Result{{ID: "VS-CGROUP-002", Status: probe.StatusWarn, Title: "cpu not delegated",
		Fix: probe.Fix{Root: []string{"mkdir -p /etc/systemd/system/user@.service.d"}}}}
	if lines, _ := GatherPrivileged(a, results); len(lines) != 0 {
		t.Errorf("direct mode gathered delegation: %q", lines)
	}
	a.ServiceMode = "systemd"
	if lines, _ := GatherPrivileged(a, results); len(lines) != 1 {
		t.Errorf("systemd mode did not gather delegation: %q", lines)
	}
}
