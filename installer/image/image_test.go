package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/platforms"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/virt-setup/virt-setup/internal/testenv"
)

// testSpec is a small image made from files in a temp dir.
func testSpec(t *testing.T) (Spec, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	contents := map[string][]byte{
		"/bin/tool":          []byte("#!/bin/sh\necho tool\n"),
		"/usr/lib/x/libz.so": bytes.Repeat([]byte("library bytes "), 1000),
	}
	var files []File
	for dst, b := range contents {
		src := filepath.Join(dir, filepath.Base(dst))
		if err := os.WriteFile(src, b, 0o640); err != nil {
			t.Fatal(err)
		}
		f := File{Src: src, Dst: dst}
		if dst == "/bin/tool" {
			f.Mode = 0o755 // the spec overrides the source's mode; libz.so keeps its 0640
		}
		files = append(files, f)
	}
	// Map order is random: sort, so the spec (and so the archive's digest) is the same every run.
	sort.Slice(files, func(i, j int) bool { return files[i].Dst < files[j].Dst })
	return Spec{
		Ref:        "localhost/virt-setup/test:1",
		Files:      files,
		Symlinks:   map[string]string{"/bin/sh": "tool", "/bin/a": "tool", "/bin/z": "/bin/tool", "/lib": "usr/lib"},
		Entrypoint: []string{"/bin/tool"},
		Cmd:        []string{"arg"},
	}, contents
}

// archiveFiles reads an archive's regular files by name, failing on anything unexpected.
func archiveFiles(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read archive: %v", err)
		}
		names = append(names, hdr.Name)
		if !hdr.ModTime.Equal(Epoch) || hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d; want the epoch and root", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = data
	}
	want := []string{"blobs/", "blobs/sha256/"}
	if len(names) < 2 || names[0] != want[0] || names[1] != want[1] {
		t.Errorf("archive starts with %v, want %v", names, want)
	}
	return out
}

func buildArchive(t *testing.T, spec Spec) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	d, err := WriteOCIArchive(&buf, spec)
	if err != nil {
		t.Fatalf("WriteOCIArchive: %v", err)
	}
	return buf.Bytes(), d
}

func TestWriteOCIArchiveIsDeterministic(t *testing.T) {
	spec, _ := testSpec(t)
	first, d1 := buildArchive(t, spec)
	// Symlinks is a map: several builds make Go iterate it in different orders.
	for range 5 {
		again, d2 := buildArchive(t, spec)
		if d1 != d2 || !bytes.Equal(first, again) {
			t.Fatalf("rebuild differs: digest %s then %s, bytes equal %v", d1, d2, bytes.Equal(first, again))
		}
	}
	if d, err := Digest(spec); err != nil || d != d1 {
		t.Errorf("Digest = %s, %v; want %s", d, err, d1)
	}
	// The source files' own times and owners must not leak into the image.
	past := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, f := range spec.Files {
		if err := os.Chtimes(f.Src, past, past); err != nil {
			t.Fatal(err)
		}
	}
	if _, d3 := buildArchive(t, spec); d3 != d1 {
		t.Errorf("touching the sources changed the digest: %s, was %s", d3, d1)
	}
	// A change of content must change the digest.
	if err := os.WriteFile(spec.Files[0].Src, []byte("other\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, d4 := buildArchive(t, spec); d4 == d1 {
		t.Error("changing a file kept the digest")
	}
}

func TestWriteOCIArchiveLayout(t *testing.T) {
	spec, _ := testSpec(t)
	b, manifestDigest := buildArchive(t, spec)
	files := archiveFiles(t, b)

	var layout ocispec.ImageLayout
	if err := json.Unmarshal(files["oci-layout"], &layout); err != nil || layout.Version != ocispec.ImageLayoutVersion {
		t.Fatalf("oci-layout = %s, %v", files["oci-layout"], err)
	}
	for name, data := range files {
		if hexd, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			sum := sha256.Sum256(data)
			if hex.EncodeToString(sum[:]) != hexd {
				t.Errorf("blob %s holds content with digest %x", name, sum)
			}
		}
	}
	blob := func(d ocispec.Descriptor) []byte {
		t.Helper()
		data, ok := files["blobs/sha256/"+d.Digest.Encoded()]
		if !ok {
			t.Fatalf("blob %s is missing", d.Digest)
		}
		if int64(len(data)) != d.Size {
			t.Fatalf("blob %s has %d bytes, descriptor says %d", d.Digest, len(data), d.Size)
		}
		return data
	}

	var index ocispec.Index
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if index.SchemaVersion != 2 || index.MediaType != ocispec.MediaTypeImageIndex || len(index.Manifests) != 1 {
		t.Fatalf("index.json = %s", files["index.json"])
	}
	md := index.Manifests[0]
	if md.Digest.String() != manifestDigest || md.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("index names %s %s; WriteOCIArchive returned %s", md.MediaType, md.Digest, manifestDigest)
	}
	for _, key := range []string{ocispec.AnnotationRefName, images.AnnotationImageName} {
		if got := md.Annotations[key]; got != "localhost/virt-setup/test:1" {
			t.Errorf("annotation %s = %q", key, got)
		}
	}
	wantPlatform := platforms.Normalize(ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if md.Platform == nil || platforms.Format(*md.Platform) != platforms.Format(wantPlatform) {
		t.Errorf("index platform = %v, want %v", md.Platform, wantPlatform)
	}

	var manifest ocispec.Manifest
	if err := json.Unmarshal(blob(md), &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest.Config.MediaType != ocispec.MediaTypeImageConfig || len(manifest.Layers) != 1 ||
		manifest.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Fatalf("manifest = %s", blob(md))
	}
	var config ocispec.Image
	if err := json.Unmarshal(blob(manifest.Config), &config); err != nil {
		t.Fatal(err)
	}
	if config.OS != "linux" || config.Architecture != wantPlatform.Architecture {
		t.Errorf("config platform = %s/%s", config.OS, config.Architecture)
	}
	if strings.Join(config.Config.Entrypoint, " ") != "/bin/tool" || strings.Join(config.Config.Cmd, " ") != "arg" ||
		strings.Join(config.Config.Env, " ") != DefaultPath {
		t.Errorf("config = %+v", config.Config)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(manifest.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != digest.FromBytes(layer) {
		t.Errorf("diff IDs %v, uncompressed layer is %s", config.RootFS.DiffIDs, digest.FromBytes(layer))
	}
}

// layerEntry is one entry of a layer as the test reads it back.
type layerEntry struct {
	kind   byte
	mode   int64
	target string
	data   []byte
}

func readLayer(t *testing.T, archiveBytes []byte) ([]string, map[string]layerEntry) {
	t.Helper()
	files := archiveFiles(t, archiveBytes)
	var index ocispec.Index
	var manifest ocispec.Manifest
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(files["blobs/sha256/"+index.Manifests[0].Digest.Encoded()], &manifest); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(files["blobs/sha256/"+manifest.Layers[0].Digest.Encoded()]))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var order []string
	out := map[string]layerEntry{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(Epoch) || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" {
			t.Errorf("layer entry %s: mtime %v owner %d:%d %q", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, hdr.Uname)
		}
		data, _ := io.ReadAll(tr)
		order = append(order, hdr.Name)
		out[hdr.Name] = layerEntry{kind: hdr.Typeflag, mode: hdr.Mode, target: hdr.Linkname, data: data}
	}
	return order, out
}

func TestLayerListsTheFiles(t *testing.T) {
	spec, contents := testSpec(t)
	b, _ := buildArchive(t, spec)
	order, entries := readLayer(t, b)
	want := []string{"bin/", "bin/a", "bin/sh", "bin/tool", "bin/z", "lib", "usr/", "usr/lib/", "usr/lib/x/", "usr/lib/x/libz.so"}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("layer entries:\n got %v\nwant %v", order, want)
	}
	for dst, content := range contents {
		e := entries[strings.TrimPrefix(dst, "/")]
		if e.kind != tar.TypeReg || !bytes.Equal(e.data, content) {
			t.Errorf("%s: type %c, %d bytes; want a regular file with %d bytes", dst, e.kind, len(e.data), len(content))
		}
	}
	if m := entries["bin/tool"].mode; m != 0o755 {
		t.Errorf("bin/tool mode %o, want the spec's 0755", m)
	}
	if m := entries["usr/lib/x/libz.so"].mode; m != 0o640 {
		t.Errorf("libz.so mode %o, want the source's 0640", m)
	}
	for link, target := range spec.Symlinks {
		e := entries[strings.TrimPrefix(link, "/")]
		if e.kind != tar.TypeSymlink || e.target != target {
			t.Errorf("%s: type %c target %q; want a symlink to %q", link, e.kind, e.target, target)
		}
	}
	if e := entries["usr/lib/"]; e.kind != tar.TypeDir || e.mode != 0o755 {
		t.Errorf("parent directory usr/lib/: type %c mode %o", e.kind, e.mode)
	}
}

func TestWriteOCIArchiveRejects(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		spec    Spec
		wantErr string
	}{
		{"relative destination", Spec{Ref: "a:1", Files: []File{{Src: src, Dst: "bin/x"}}}, "not an absolute path"},
		{"the root", Spec{Ref: "a:1", Files: []File{{Src: src, Dst: "/"}}}, "names the image's root"},
		{"twice", Spec{Ref: "a:1", Files: []File{{Src: src, Dst: "/x"}, {Src: src, Dst: "/./x"}}}, "given twice"},
		{"file and link", Spec{Ref: "a:1", Files: []File{{Src: src, Dst: "/x"}}, Symlinks: map[string]string{"/x": "y"}}, "given twice"},
		{"inside a file", Spec{Ref: "a:1", Files: []File{{Src: src, Dst: "/x"}, {Src: src, Dst: "/x/y"}}}, "inside it"},
		{"inside a link", Spec{Ref: "a:1", Files: []File{{Src: src, Dst: "/bin/x"}}, Symlinks: map[string]string{"/bin": "usr/bin"}}, "inside it"},
		{"missing source", Spec{Ref: "a:1", Files: []File{{Src: filepath.Join(dir, "nope"), Dst: "/x"}}}, "no such file"},
		{"directory source", Spec{Ref: "a:1", Files: []File{{Src: dir, Dst: "/x"}}}, "not a regular file"},
		{"empty link", Spec{Ref: "a:1", Symlinks: map[string]string{"/x": ""}}, "no target"},
		{"no files", Spec{Ref: "a:1"}, "no files"},
		{"bad reference", Spec{Ref: "a/UPPER:1", Files: []File{{Src: src, Dst: "/x"}}}, "image reference"},
		{"digest reference", Spec{Ref: "a@sha256:" + strings.Repeat("0", 64), Files: []File{{Src: src, Dst: "/x"}}}, "not a digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := WriteOCIArchive(&buf, tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestNormalizedRef(t *testing.T) {
	tests := map[string]string{
		"localhost/virt-setup/busybox:1": "localhost/virt-setup/busybox:1",
		"busybox":                        "docker.io/library/busybox:latest",
		"example.com:5000/a/b":           "example.com:5000/a/b:latest",
	}
	for in, want := range tests {
		if got, err := (Spec{Ref: in}).NormalizedRef(); err != nil || got != want {
			t.Errorf("NormalizedRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestPlatformNormalisesArch(t *testing.T) {
	tests := map[string]string{"x86_64": "linux/amd64", "aarch64": "linux/arm64", "arm": "linux/arm/v7", "amd64": "linux/amd64"}
	for arch, want := range tests {
		if got := platforms.Format(Spec{Arch: arch}.Platform()); got != want {
			t.Errorf("Platform(%q) = %s, want %s", arch, got, want)
		}
	}
}

// TestContainerdImportsArchive feeds the archive to containerd's own importer (the code behind
// client.Import and `nerdctl load`) with a local content store, no daemon needed.
func TestContainerdImportsArchive(t *testing.T) {
	spec, _ := testSpec(t)
	b, manifestDigest := buildArchive(t, spec)
	ctx := context.Background()
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	desc, err := archive.ImportIndex(ctx, store, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("ImportIndex: %v", err)
	}
	indexBytes, err := content.ReadBlob(ctx, store, desc)
	if err != nil {
		t.Fatal(err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(indexBytes, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Digest.String() != manifestDigest ||
		index.Manifests[0].Annotations[images.AnnotationImageName] != "localhost/virt-setup/test:1" {
		t.Fatalf("imported index = %s", indexBytes)
	}
	// Everything the image needs made it into the store, and containerd reads its config.
	cfg, err := images.Config(ctx, store, index.Manifests[0], platforms.Default())
	if err != nil {
		t.Fatalf("read the image config back: %v", err)
	}
	diffIDs, err := images.RootFS(ctx, store, cfg)
	if err != nil || len(diffIDs) != 1 {
		t.Fatalf("RootFS = %v, %v", diffIDs, err)
	}
	layers, err := images.Manifest(ctx, store, index.Manifests[0], platforms.Default())
	if err != nil || len(layers.Layers) != 1 {
		t.Fatalf("Manifest = %+v, %v", layers, err)
	}
	if _, err := store.Info(ctx, layers.Layers[0].Digest); err != nil {
		t.Errorf("layer blob not in the store: %v", err)
	}
}

func TestBusyboxSpecLayer(t *testing.T) {
	src := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(src, []byte("not really busybox"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := buildArchive(t, BusyboxSpec(src))
	_, entries := readLayer(t, b)
	if e := entries["bin/busybox"]; e.kind != tar.TypeReg || e.mode != 0o755 || string(e.data) != "not really busybox" {
		t.Errorf("bin/busybox = %+v", e)
	}
	for _, a := range append([]string{"sh"}, BusyboxApplets...) {
		if e := entries["bin/"+a]; e.kind != tar.TypeSymlink || e.target != "busybox" {
			t.Errorf("bin/%s = %+v, want a link to busybox", a, e)
		}
	}
}

func TestIsStatic(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "script")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := IsStatic(text); err == nil || !strings.Contains(err.Error(), "not an ELF program") {
		t.Errorf("IsStatic(script) error = %v", err)
	}
	if _, err := IsStatic(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("IsStatic(missing) error = %v", err)
	}
	// /bin/ls is dynamically linked on every distribution the tests run on (Debian).
	if static, err := IsStatic("/bin/ls"); err != nil || static {
		t.Errorf("IsStatic(/bin/ls) = %v, %v; want dynamic", static, err)
	}
	_, err := os.Stat("/bin/busybox")
	testenv.Require(t, err == nil, "/bin/busybox (busybox-static) is missing: run scripts/setup-test-host.sh as root")
	if static, err := IsStatic("/bin/busybox"); err != nil || !static {
		t.Errorf("IsStatic(/bin/busybox) = %v, %v; Debian's busybox-static is static", static, err)
	}
	if bb, err := FindBusybox(); err != nil || bb != "/bin/busybox" {
		t.Errorf("FindBusybox() = %q, %v", bb, err)
	}
}
