package bench

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/virt-setup/virt-setup/installer/image"
	"github.com/virt-setup/virt-setup/internal/sys"
)

// LocalImageRepo is the repository of the iperf3 image built from this host's files. "localhost/"
// keeps it from ever being looked up on a registry.
const LocalImageRepo = "localhost/virt-setup/iperf3"

// imageIperf3 is where iperf3 goes in the built image.
const imageIperf3 = "/usr/bin/iperf3"

// LocalImageSpec is the iperf3 image made from this host's own files, so the benchmark runs
// offline: iperf3 with every library ldd lists (the container runs the very iperf3 the host side
// runs, so both ends speak the same protocol version), plus a static busybox when the host has
// one, for a shell to look around with. It is tagged with the iperf3 version and the image's
// digest, so a changed iperf3 or library gives a new tag and the same files never load twice.
func LocalImageSpec(ctx context.Context, r sys.Runner, iperf3Path, version string) (image.Spec, error) {
	files, err := image.BinaryWithLibraries(ctx, r, iperf3Path, imageIperf3)
	if err != nil {
		return image.Spec{}, fmt.Errorf("build the iperf3 image: %w", err)
	}
	spec := image.Spec{
		Files:      files,
		Entrypoint: []string{imageIperf3},
		// iperf3 keeps its send buffer in a temporary file (mkstemp in $TMPDIR, else /tmp) and
		// fails with "unable to create a new stream" without one; the image has no /tmp
		// directory, but every container gets a tmpfs on /dev/shm.
		Env: []string{image.DefaultPath, "TMPDIR=/dev/shm"},
	}
	if bb, err := image.FindBusybox(); err == nil {
		bbSpec := image.BusyboxSpec(bb)
		spec.Files = append(spec.Files, bbSpec.Files...)
		spec.Symlinks = bbSpec.Symlinks
	}
	spec.Ref = LocalImageRepo + ":placeholder"
	d, err := image.Digest(spec)
	if err != nil {
		return image.Spec{}, fmt.Errorf("build the iperf3 image: %w", err)
	}
	spec.Ref = fmt.Sprintf("%s:%s-%s", LocalImageRepo, tagSafe(version), strings.TrimPrefix(d, "sha256:")[:12])
	return spec, nil
}

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// tagSafe makes a version usable in an image tag (letters, digits, "_", "." and "-", not first).
func tagSafe(v string) string {
	v = strings.Trim(tagUnsafe.ReplaceAllString(v, "-"), ".-")
	if v == "" {
		v = "unknown"
	}
	if len(v) > 64 {
		v = v[:64]
	}
	return v
}

// prepareImage makes sure the image the container side runs is present, and returns its ref. A
// ref the user named is used as it is, pulled only when they asked for a pull; otherwise the image
// is built from this host's iperf3 and loaded, unless the same build is already there.
func (b *bench) prepareImage(ctx context.Context) (string, error) {
	if ref := b.opts.Image; ref != "" {
		if ok, err := b.imagePresent(ctx, ref); ok || err != nil {
			return ref, err
		}
		if !b.opts.Pull {
			return "", &Error{Err: fmt.Errorf("%w: %s is not in rootless containerd's image store", ErrImageMissing, ref),
				Fix: fmt.Sprintf("pull it with --pull (or `nerdctl pull %s`), or leave out --image and the benchmark builds its image from this host's iperf3, offline", ref)}
		}
		b.output("pulling " + ref)
		res, err := b.nerdctl(ctx, 0, "pull", ref)
		if err != nil {
			err = nerdctlError(err, res.Combined())
			if FixFor(err) == "" {
				err = &Error{Err: fmt.Errorf("%w: pull %s: %w", ErrImageMissing, ref, err),
					Fix: "check the image name and that a registry is reachable, or leave out --image and the benchmark builds its image from this host's iperf3, offline"}
			}
			return "", err
		}
		return ref, nil
	}

	spec, err := LocalImageSpec(ctx, b.opts.Runner, b.iperf3Path, b.iperf3Version)
	if err != nil {
		return "", &Error{Err: fmt.Errorf("%w: %w", ErrImageMissing, err),
			Fix: "the image is built from the host's iperf3 and the libraries `ldd " + b.iperf3Path + "` lists; reinstall iperf3, or name a pulled image with --image"}
	}
	if ok, err := b.imagePresent(ctx, spec.Ref); ok || err != nil {
		return spec.Ref, err
	}
	b.output(fmt.Sprintf("building %s from %s and its libraries", spec.Ref, b.iperf3Path))
	f, err := os.CreateTemp("", "virt-setup-iperf3-*.tar")
	if err != nil {
		return "", fmt.Errorf("build the iperf3 image: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := image.WriteOCIArchive(f, spec); err != nil {
		f.Close()
		return "", fmt.Errorf("build the iperf3 image: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("build the iperf3 image: %w", err)
	}
	res, err := b.nerdctl(ctx, 0, "load", "-i", f.Name())
	if err != nil {
		return "", fmt.Errorf("load the iperf3 image: %w", nerdctlError(err, res.Combined()))
	}
	return spec.Ref, nil
}

// imagePresent tells whether rootless containerd has the image. The error is for a nerdctl that
// cannot ask at all (not installed, containerd not running), which loading would not cure.
func (b *bench) imagePresent(ctx context.Context, ref string) (bool, error) {
	res, err := b.nerdctl(ctx, 0, "image", "inspect", "--format", "{{.ID}}", ref)
	if err == nil {
		return true, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if e := nerdctlError(err, res.Combined()); FixFor(e) != "" {
		return false, e
	}
	return false, nil
}
