package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/virt-setup/virt-setup/probe"
)

// run calls Main in-process and returns its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHostFlagsUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"user without root", []string{"probe", "--user", "alice"}, "--user works only with --root"},
		{"profile with root", []string{"probe", "--host-profile", "x.json", "--root", "/tmp"}, "cannot be combined"},
		{"unknown flag", []string{"probe", "--bogus"}, "unknown flag"},
		{"doctor unknown flag", []string{"doctor", "--bogus"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := run(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d (usage)", code, exitUsage)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr = %q, want it to mention %q", errOut, tt.want)
			}
		})
	}
}

func TestProbeRootMissingDirectory(t *testing.T) {
	code, _, errOut := run(t, "probe", "--root", filepath.Join(t.TempDir(), "nope"))
	if code != exitError || !strings.Contains(errOut, "nope") {
		t.Errorf("exit %d, stderr %q: want exit %d naming the directory", code, errOut, exitError)
	}
}

// hostileRoot lays out a host where every source the probe reads is garbage, enormous, of the
// wrong type, a loop, or hangs.
func hostileRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write := func(p string, b []byte, mode os.FileMode) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	enormous := func(p string) {
		write(p, nil, 0o644)
		// Sparse: 3 GiB on paper, nothing on disk.
		if err := os.Truncate(filepath.Join(root, p), 3<<30); err != nil {
			t.Fatal(err)
		}
	}
	garbage := make([]byte, 4096)
	if _, err := rand.Read(garbage); err != nil {
		t.Fatal(err)
	}
	write("etc/os-release", garbage, 0o644)
	write("etc/passwd", []byte("alice:x:1000:1000::/home/alice:/bin/bash\n::::\nbob:x:notanumber\n"+string(garbage)), 0o644)
	enormous("etc/subuid")
	if err := os.MkdirAll(filepath.Join(root, "etc/subgid"), 0o755); err != nil { // a directory where a file belongs
		t.Fatal(err)
	}
	write("proc/sys/user/max_user_namespaces", []byte("-99999999999999999999999\n"), 0o644)
	write("proc/sys/kernel/unprivileged_userns_clone", nil, 0o644) // empty
	write("proc/sys/kernel/apparmor_restrict_unprivileged_userns", []byte("yes please"), 0o000)
	if err := os.MkdirAll(filepath.Join(root, "proc/sys/kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "proc/sys/kernel/osrelease"), 0o644); err != nil { // would block a naive reader
		t.Fatal(err)
	}
	write("proc/self/environ", append([]byte("XDG_RUNTIME_DIR=/run/user/1000\x00HOME=\x00=\x00garbage"), garbage...), 0o644)
	if err := os.MkdirAll(filepath.Join(root, "sys/fs/selinux"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(root, "sys/fs/selinux/enforce")); err != nil { // endless
		t.Fatal(err)
	}
	enormous("sys/fs/cgroup/cgroup.controllers")
	if err := os.MkdirAll(filepath.Join(root, "var/lib/systemd/linger"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop", filepath.Join(root, "var/lib/systemd/linger/loop")); err != nil {
		t.Fatal(err)
	}
	write("dev/fuse", garbage, 0o000)
	// Binaries that misbehave when asked for their version: hang, flood, print nothing, crash.
	write("usr/bin/nerdctl", []byte("#!/bin/sh\nsleep 30\n"), 0o755)
	write("usr/bin/containerd", []byte("#!/bin/sh\nhead -c 5000000 /dev/urandom\n"), 0o755)
	write("usr/bin/rootlesskit", []byte("#!/bin/sh\nexit 0\n"), 0o755)
	write("usr/bin/slirp4netns", []byte("#!/bin/sh\nkill -SEGV $$\n"), 0o755)
	write("usr/bin/runc", garbage, 0o755) // not a valid executable at all
	write("home/alice/.config/containerd/config.toml", garbage, 0o644)
	enormous("home/alice/.config/nerdctl/nerdctl.toml")
	return root
}

func TestProbeHostileRootNeverCrashes(t *testing.T) {
	root := hostileRoot(t)
	code, out, errOut := run(t, "probe", "--root", root, "--json")
	if code != exitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, errOut)
	}
	var rep probe.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	f := rep.Facts
	if f.Identity.User.Value != "alice" {
		t.Errorf("user = %+v, want alice (the one well-formed passwd line)", f.Identity.User)
	}
	for name, known := range map[string]bool{
		"os.distro":                 f.OS.Distro.Known && f.OS.Distro.Value.ID != "",
		"os.kernel (a FIFO)":        f.OS.Kernel.Known,
		"selinux (endless)":         f.Security.SELinux.Known && f.Security.SELinux.Value.Enabled,
		"subuid (3 GiB)":            f.UserNS.SubUID.Known && len(f.UserNS.SubUID.Value) > 0,
		"subgid (a directory)":      f.UserNS.SubGID.Known && len(f.UserNS.SubGID.Value) > 0,
		"max_user_namespaces (bad)": f.UserNS.MaxUserNamespaces.Known,
		"nerdctl.toml (3 GiB)":      f.State.NerdctlConfig.Known && f.State.NerdctlConfig.Value.Valid,
	} {
		if known {
			t.Errorf("%s: reported as a known, usable value from a garbled source", name)
		}
	}
	if f.Live.OverlayUserns.Value.Status != probe.LiveSkipped {
		t.Errorf("live overlay under --root = %+v, want skipped", f.Live.OverlayUserns)
	}
	if cfg := f.State.ContainerdConfig.Value; cfg.Exists && cfg.Valid {
		t.Errorf("random bytes accepted as a valid containerd config: %+v", cfg)
	}
	// Human output too.
	code, text, errOut := run(t, "probe", "--root", root)
	if code != exitOK || !strings.Contains(text, "unknown") || !strings.Contains(text, "live tests skipped") {
		t.Errorf("human output: exit %d, stderr %q, output:\n%s", code, errOut, text)
	}
}

func TestProbeReplayRoundTrip(t *testing.T) {
	root := hostileRoot(t)
	_, out, _ := run(t, "probe", "--root", root, "--json")
	file := filepath.Join(t.TempDir(), "host.json")
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	code, replay, errOut := run(t, "probe", "--host-profile", file, "--json")
	if code != exitOK {
		t.Fatalf("replay exit %d: %s", code, errOut)
	}
	var a, b probe.Report
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(replay), &b); err != nil {
		t.Fatal(err)
	}
	a.Facts.Meta, b.Facts.Meta = probe.Meta{}, probe.Meta{}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("replaying a recorded host changed its report:\nrecorded %s\nreplayed %s", ja, jb)
	}
}

func TestProbeProfileGarbled(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(file, []byte(`{"facts": {"meta": {"schema_version": 1}, "os": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "probe", "--host-profile", file)
	if code == exitOK || !strings.Contains(errOut, "bad.json") {
		t.Errorf("exit %d, stderr %q: want an error naming the file", code, errOut)
	}
}
