package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// TestEchoSpec builds the fallback image of verify from this host's echo with the real ldd: echo
// at /bin/echo, its libraries and the loader beside it, and an archive that can be written.
func TestEchoSpec(t *testing.T) {
	spec, err := EchoSpec(context.Background(), sys.Exec{})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Ref != EchoRef || len(spec.Files) < 2 || spec.Files[0].Dst != EchoPath {
		t.Fatalf("spec %+v: want %s with %s and its libraries", spec, EchoRef, EchoPath)
	}
	var libc, loader bool
	for _, f := range spec.Files[1:] {
		libc = libc || strings.Contains(f.Dst, "/libc.so")
		loader = loader || strings.Contains(f.Dst, "/ld-linux")
	}
	if !libc || !loader {
		t.Errorf("the echo image lacks libc (%v) or the loader (%v): %+v", libc, loader, spec.Files)
	}
	// The archive file another user loads: readable by everyone, whatever the umask.
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	p := filepath.Join(t.TempDir(), "echo.tar")
	d, err := WriteOCIArchiveFile(p, spec)
	if err != nil || !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("WriteOCIArchiveFile = %q, %v", d, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 || fi.Size() == 0 {
		t.Errorf("archive file: %v, %v; want mode 0644 and content", fi, err)
	}
}
