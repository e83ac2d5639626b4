package image

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// EchoRef names the image of this host's own echo, which verify builds when the host has no
// static busybox. Like BusyboxRef it can never be looked up on a registry.
const EchoRef = "localhost/virt-setup/echo:1"

// EchoPath is where a test image keeps its echo: the busybox image has it as a link to busybox,
// the echo image as the host's program.
const EchoPath = "/bin/echo"

// echoPaths are where distributions install coreutils' echo: /usr/bin with a merged /usr (Fedora,
// Debian 12, Ubuntu), /bin on older layouts.
var echoPaths = []string{"/usr/bin/echo", "/bin/echo"}

// ErrNoEcho says that this host has no echo program to build an image from.
var ErrNoEcho = errors.New("no echo program in /usr/bin or /bin")

// EchoSpec is the smallest image that proves a container runs on a host without a static
// busybox (most desktops): this host's echo at EchoPath with the shared libraries it needs, at
// the paths ldd shows, so the dynamic loader finds them as it does here.
func EchoSpec(ctx context.Context, r sys.Runner) (Spec, error) {
	for _, p := range echoPaths {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		files, err := BinaryWithLibraries(ctx, r, p, EchoPath)
		if err != nil {
			return Spec{}, fmt.Errorf("an image of %s: %w", p, err)
		}
		return Spec{Ref: EchoRef, Files: files}, nil
	}
	return Spec{}, ErrNoEcho
}
