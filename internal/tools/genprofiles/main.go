// Command genprofiles writes the host profiles shipped in assets/hosts. For each fake host of
// probe/probetest it builds the host in a temporary directory, runs the probe on it as --root would,
// and stores the facts with everything that names the build (temporary paths, timings) taken out, so
// the output is the same on every run and every machine.
//
// Run it with `go generate ./assets` (or `go run ./internal/tools/genprofiles -out assets/hosts`), as
// root: the hosts need root-owned setuid files, file capabilities, device nodes and files owned by
// the user, which only root can make. assets/hosts_test.go regenerates the profiles and fails when
// they differ from the shipped ones.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/probe"
	"github.com/virt-setup/virt-setup/probe/probetest"
)

// probedAt is the time every profile says it was probed: a fixed clock keeps the output stable.
var probedAt = time.Date(2025, time.June, 1, 12, 0, 0, 0, time.UTC)

// probeTimeout is generous: a probe that times out on a loaded machine would record the timeout and
// make the output differ from run to run.
const probeTimeout = 60 * time.Second

// maxAttempts bounds the runs of one host that load disturbed (see generate).
const maxAttempts = 5

func main() {
	out := flag.String("out", "assets/hosts", "directory to write NAME.json into; other .json files there are removed")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: genprofiles [-out DIR]")
		os.Exit(2)
	}
	if err := run(context.Background(), *out); err != nil {
		fmt.Fprintln(os.Stderr, "genprofiles:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out string) error {
	if !probetest.CanSetOwners() {
		return errors.New("must run as root: the fake hosts need root-owned setuid programs, file capabilities, device nodes and files owned by their user; run `sudo go generate ./assets`")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	tmp, err := os.MkdirTemp("", "genprofiles-")
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	hosts := probetest.Profiles()
	keep := map[string]bool{}
	for _, name := range probetest.ProfileNames() {
		b, err := generate(ctx, name, hosts[name], filepath.Join(tmp, name))
		if err != nil {
			return err
		}
		file := name + ".json"
		keep[file] = true
		if err := writeFileAtomic(filepath.Join(out, file), b); err != nil {
			return err
		}
	}
	return removeStale(out, keep)
}

// generate builds one host and returns its profile.
func generate(ctx context.Context, name string, h probetest.Host, dir string) ([]byte, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := h.Build(dir); err != nil {
		return nil, fmt.Errorf("build host %s: %w", name, err)
	}
	var f *probe.Facts
	for attempt := 1; ; attempt++ {
		var err error
		f, err = probe.Run(ctx, probe.Options{
			Root:    dir,
			Now:     func() time.Time { return probedAt },
			Tool:    "profile",
			Runner:  sys.Exec{},
			Timeout: probeTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("probe host %s: %w", name, err)
		}
		for _, r := range f.Meta.Probes {
			if r.Error != "" {
				return nil, fmt.Errorf("probe host %s: %s probe: %s", name, r.Name, r.Error)
			}
		}
		// On a loaded machine a fake binary's pipes can outlive sys.Exec's WaitDelay (a sibling
		// fork holds them until it execs), which records an error the host itself does not cause.
		// The profile must not depend on the load, so such a run is repeated.
		b, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("probe host %s: encode facts: %w", name, err)
		}
		if !bytes.Contains(b, []byte(exec.ErrWaitDelay.Error())) {
			break
		}
		if attempt == maxAttempts {
			return nil, fmt.Errorf("probe host %s: %d runs in a row hit %q; try again on a less loaded machine", name, maxAttempts, exec.ErrWaitDelay)
		}
	}
	p, err := probe.ProfileFromRoot(f, name, dir)
	if err != nil {
		return nil, err
	}
	if err := addRecorded(p, h); err != nil {
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	if b, err := probe.MarshalProfile(p); err != nil {
		return nil, err
	} else if strings.Contains(string(b), dir) {
		return nil, fmt.Errorf("host %s: the profile still names the build directory %s", name, dir)
	} else {
		return b, nil
	}
}

// addRecorded adds what a probe of the real host learns that a --root probe cannot: the live test
// results the spec records, and the machine, which kernels before 6.1 only tell through uname(2).
// Which live results are recorded, and why, is explained in probe/probetest/profiles.go.
func addRecorded(f *probe.Facts, h probetest.Host) error {
	set := func(dst *probe.Fact[probe.LiveTest], test string, r *probetest.LiveResult) error {
		if r == nil {
			return nil
		}
		t, err := probe.RecordedLiveTest(test, r.Status, r.Detail, r.Note)
		if err != nil {
			return err
		}
		*dst = t
		return nil
	}
	if err := set(&f.Live.OverlayUserns, "overlay", h.Recorded.OverlayUserns); err != nil {
		return err
	}
	if err := set(&f.Live.FuseOverlayfs, "fuse-overlayfs", h.Recorded.FuseOverlayfs); err != nil {
		return err
	}
	if !f.OS.Arch.Known && h.Arch != "" {
		ev := append(f.OS.Arch.Evidence, probe.Evidence{Kind: "syscall", Source: "uname()",
			Excerpt: h.Arch + " (recorded on the real host: kernels before 6.1 have no kernel.arch sysctl for --root to read)"})
		f.OS.Arch = probe.Known(h.Arch, ev...)
	}
	return nil
}

// writeFileAtomic replaces path with b through a temporary file in the same directory, so an
// interrupted run never leaves a half-written profile behind.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// removeStale deletes profiles of hosts that no longer exist, so a renamed spec does not leave its
// old profile shipping.
func removeStale(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || keep[e.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove stale profile: %w", err)
		}
	}
	return nil
}
