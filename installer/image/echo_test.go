package image

import (
	"context"
	"strings"
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
	var b strings.Builder
	if _, err := WriteOCIArchive(&b, spec); err != nil {
		t.Fatal(err)
	}
}
