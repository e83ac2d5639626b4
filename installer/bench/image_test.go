package bench

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/installer/image"
	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/internal/testenv"
)

// staticProgram is a static binary of this host to stand in for iperf3 (busybox-static).
func staticProgram(t *testing.T) string {
	t.Helper()
	p, err := image.FindBusybox()
	testenv.Require(t, err == nil, "a static busybox (apt-get install busybox-static)")
	return p
}

func TestLocalImageSpec(t *testing.T) {
	bin := staticProgram(t)
	ctx := context.Background()
	spec, err := LocalImageSpec(ctx, sys.NewStub(t), bin, "3.12")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^localhost/virt-setup/iperf3:3\.12-[0-9a-f]{12}$`).MatchString(spec.Ref) {
		t.Errorf("ref %q", spec.Ref)
	}
	if spec.Files[0] != (image.File{Src: bin, Dst: "/usr/bin/iperf3"}) || !slices.Equal(spec.Entrypoint, []string{"/usr/bin/iperf3"}) {
		t.Errorf("files %v entrypoint %v", spec.Files, spec.Entrypoint)
	}
	if !slices.Contains(spec.Env, "TMPDIR=/dev/shm") || spec.Symlinks["/bin/sh"] != "busybox" {
		t.Errorf("env %v symlinks %v: want a TMPDIR iperf3 can write to and busybox's shell", spec.Env, spec.Symlinks)
	}
	again, err := LocalImageSpec(ctx, sys.NewStub(t), bin, "3.12")
	if err != nil || again.Ref != spec.Ref {
		t.Errorf("the same files gave %q, then %q", spec.Ref, again.Ref)
	}
	other, err := LocalImageSpec(ctx, sys.NewStub(t), bin, "3.16+git/1")
	if err != nil || !strings.HasPrefix(other.Ref, LocalImageRepo+":3.16-git-1-") || other.Ref[len(other.Ref)-12:] != spec.Ref[len(spec.Ref)-12:] {
		t.Errorf("another version: %q (the digest part must not change, the tag must be valid)", other.Ref)
	}
	d, err := image.Digest(spec)
	if err != nil || !strings.HasSuffix(spec.Ref, strings.TrimPrefix(d, "sha256:")[:12]) {
		t.Errorf("tag %q does not carry the image digest %s (%v)", spec.Ref, d, err)
	}
}

// TestLocalImageSpecDynamic builds the spec from the host's real iperf3, which is dynamically
// linked on every distribution: its libraries come along.
func TestLocalImageSpecDynamic(t *testing.T) {
	p, err := exec.LookPath("iperf3")
	testenv.Require(t, err == nil, "iperf3 (apt-get install iperf3)")
	_, err = exec.LookPath("ldd")
	testenv.Require(t, err == nil, "ldd")
	spec, err := LocalImageSpec(context.Background(), sys.Exec{}, p, "3.12")
	if err != nil {
		t.Fatal(err)
	}
	var dsts []string
	for _, f := range spec.Files {
		dsts = append(dsts, f.Dst)
	}
	joined := strings.Join(dsts, " ")
	for _, want := range []string{"/usr/bin/iperf3", "libc.so", "ld-linux"} {
		if !strings.Contains(joined, want) {
			t.Errorf("files %v lack %s", dsts, want)
		}
	}
}

func TestTagSafe(t *testing.T) {
	for in, want := range map[string]string{
		"3.12": "3.12", "3.17.1": "3.17.1", "3.16+git/abc": "3.16-git-abc", "": "unknown", "..": "unknown",
		"-3.1-": "3.1", strings.Repeat("9", 100): strings.Repeat("9", 64),
	} {
		if got := tagSafe(in); got != want {
			t.Errorf("tagSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// runnerFunc lets a test look at a command before the stub answers it.
type runnerFunc func(context.Context, sys.Command) (sys.Result, error)

func (f runnerFunc) Run(ctx context.Context, c sys.Command) (sys.Result, error) { return f(ctx, c) }

// TestPrepareLocalImage: without the image, the benchmark writes the OCI archive, loads it with
// nerdctl, and removes the archive; with it, nothing is built.
func TestPrepareLocalImage(t *testing.T) {
	bin := staticProgram(t)
	stub := sys.NewStub(t)
	b := regexp.QuoteMeta(bin)
	stub.Register(b+` --version`, versionLine, 0)
	stub.Register(`nerdctl image inspect --format '\{\{\.ID\}\}' localhost/virt-setup/iperf3:3\.12-[0-9a-f]{12}`, "no such image\n", 1)
	stub.Register(`nerdctl load -i .*/virt-setup-iperf3-[0-9]+\.tar`, "Loaded image: ...\n", 0)
	var archive string
	var names []string
	runner := runnerFunc(func(ctx context.Context, c sys.Command) (sys.Result, error) {
		if len(c.Args) > 2 && c.Args[0] == "load" {
			archive = c.Args[2]
			f, err := os.Open(archive)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			tr := tar.NewReader(f)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("read the archive: %v", err)
				}
				names = append(names, h.Name)
			}
			f.Close()
		}
		return stub.Run(ctx, c)
	})
	opts := Options{Runner: runner, Iperf3: bin, Scenarios: []Scenario{Scenarios[0]}}
	bn, err := newBench(opts)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	bn.opts.Emit = func(e Event) { lines = append(lines, e.Line) }
	if err := bn.findIperf3(context.Background()); err != nil {
		t.Fatal(err)
	}
	ref, err := bn.prepareImage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, LocalImageRepo+":3.12-") || !slices.Contains(names, "index.json") {
		t.Errorf("ref %q, archive entries %v", ref, names)
	}
	if _, err := os.Stat(archive); !os.IsNotExist(err) {
		t.Errorf("the archive %s was left behind (%v)", archive, err)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "building "+ref) {
		t.Errorf("progress lines %q", lines)
	}

	// Present: no build, no load (the strict stub has no load registered).
	stub2 := sys.NewStub(t)
	stub2.Register(`nerdctl image inspect --format '\{\{\.ID\}\}' `+regexp.QuoteMeta(ref), "sha256:abc\n", 0)
	bn.opts.Runner = stub2
	if got, err := bn.prepareImage(context.Background()); err != nil || got != ref {
		t.Errorf("present image: %q, %v", got, err)
	}
}
