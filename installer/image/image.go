// Package image builds small container images from files on this host, as OCI image layout
// archives that `nerdctl load` and the containerd client's Import accept. virt-setup needs images
// it can run without a registry: the verification runs busybox, the benchmark runs iperf3.
//
// The archives are deterministic: the same files give the same bytes and the same digest on every
// run (fixed modification times and owners, sorted entries, gzip without a timestamp), so
// importing an image a second time changes nothing.
package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"runtime"
	"slices"
	"time"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AnnotationContainerdImageName is the index.json annotation containerd and nerdctl name an
// imported image by (containerd's images.AnnotationImageName). The OCI ref.name annotation alone
// is not enough: `nerdctl load` only reads this one and otherwise names the image by its digest.
const AnnotationContainerdImageName = "io.containerd.image.name"

// Epoch is the modification time of every entry and the creation time of every image, so that
// rebuilding from the same files gives the same digest.
var Epoch = time.Unix(0, 0).UTC()

// DefaultPath is the PATH of an image that sets no Env.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// File is one file copied from this host into an image.
type File struct {
	// Src is the file on this host; a symlink is followed and its target's content copied.
	Src string `json:"src"`
	// Dst is the absolute path in the image.
	Dst string `json:"dst"`
	// Mode holds the permission bits in the image; zero keeps those of Src.
	Mode fs.FileMode `json:"mode,omitempty"`
}

// Spec describes an image made of one layer.
type Spec struct {
	// Ref names the image, e.g. "localhost/virt-setup/busybox:1"; it is normalised the way
	// nerdctl does ("busybox" becomes "docker.io/library/busybox:latest").
	Ref   string `json:"ref"`
	Files []File `json:"files"`
	// Symlinks maps a link's absolute path in the image to its target.
	Symlinks map[string]string `json:"symlinks,omitempty"`
	// Entrypoint, Cmd and Env go into the image config; a nil Env means DefaultPath alone.
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	// Arch is a Go architecture (runtime.GOARCH, the default) or an OCI one ("amd64", "arm64").
	Arch string `json:"arch,omitempty"`
}

// Platform is the OCI platform the image is for.
func (s Spec) Platform() ocispec.Platform {
	arch := s.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	// Normalize maps Go and uname names alike ("x86_64", "aarch64") to OCI ones and adds the
	// variant containerd's platform matcher expects for arm.
	return platforms.Normalize(ocispec.Platform{OS: "linux", Architecture: arch})
}

// NormalizedRef is Ref the way containerd stores it: domain, path and tag in full.
func (s Spec) NormalizedRef() (string, error) {
	named, err := reference.ParseNormalizedNamed(s.Ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", s.Ref, err)
	}
	if _, isDigested := named.(reference.Digested); isDigested {
		return "", fmt.Errorf("image reference %q: a built image is named by a tag, not a digest", s.Ref)
	}
	return reference.TagNameOnly(named).String(), nil
}

// WriteOCIArchiveFile writes the image's archive (see WriteOCIArchive) to a new file at path with
// mode 0644, so that another user can `nerdctl load` it, and returns the manifest's digest.
func WriteOCIArchiveFile(path string, spec Spec) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", err
	}
	d, err := WriteOCIArchive(f, spec)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(path, 0o644) // whatever the umask took away
	}
	return d, err
}

// WriteOCIArchive writes the image as an OCI image layout tar (oci-layout, index.json and
// blobs/sha256/ with the config, the manifest and one gzip layer) and returns the manifest's digest
// ("sha256:…"), which is the image ID nerdctl shows.
func WriteOCIArchive(w io.Writer, spec Spec) (string, error) {
	blobs, manifest, err := build(spec)
	if err != nil {
		return "", err
	}
	ref, _ := spec.NormalizedRef() // build checked it
	platform := spec.Platform()
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{
			MediaType: manifest.MediaType,
			Digest:    manifest.Digest,
			Size:      manifest.Size,
			Platform:  &platform,
			Annotations: map[string]string{
				ocispec.AnnotationRefName:     ref,
				AnnotationContainerdImageName: ref,
			},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return "", fmt.Errorf("encode index.json: %w", err)
	}
	layoutJSON, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return "", fmt.Errorf("encode oci-layout: %w", err)
	}

	tw := tar.NewWriter(w)
	dirs := []string{ocispec.ImageBlobsDir + "/", ocispec.ImageBlobsDir + "/sha256/"}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: Epoch}); err != nil {
			return "", fmt.Errorf("write archive: %w", err)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(blobs)) {
		if err := writeTarFile(tw, blobPath(d), 0o644, blobs[d]); err != nil {
			return "", err
		}
	}
	if err := writeTarFile(tw, ocispec.ImageIndexFile, 0o644, indexJSON); err != nil {
		return "", err
	}
	if err := writeTarFile(tw, ocispec.ImageLayoutFile, 0o644, layoutJSON); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("write archive: %w", err)
	}
	return manifest.Digest.String(), nil
}

// blobPath is where a blob lives in an OCI image layout.
func blobPath(d digest.Digest) string {
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

func writeTarFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: Epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// build makes the layer, the config and the manifest, and returns every blob by digest with the
// manifest's descriptor.
func build(spec Spec) (map[digest.Digest][]byte, ocispec.Descriptor, error) {
	if _, err := spec.NormalizedRef(); err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	if len(spec.Files) == 0 && len(spec.Symlinks) == 0 {
		return nil, ocispec.Descriptor{}, errors.New("build image: no files")
	}
	layer, diffID, err := buildLayer(spec)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	env := spec.Env
	if env == nil {
		env = []string{DefaultPath}
	}
	created := Epoch
	config := ocispec.Image{
		Created:  &created,
		Platform: spec.Platform(),
		Config: ocispec.ImageConfig{
			Entrypoint: spec.Entrypoint,
			Cmd:        spec.Cmd,
			Env:        env,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History: []ocispec.History{{
			Created:   &created,
			CreatedBy: "virt-setup: files copied from the host",
		}},
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("encode image config: %w", err)
	}
	blobs := map[digest.Digest][]byte{}
	put := func(mediaType string, b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		blobs[d] = b
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    put(ocispec.MediaTypeImageConfig, configJSON),
		Layers:    []ocispec.Descriptor{put(ocispec.MediaTypeImageLayerGzip, layer)},
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("encode image manifest: %w", err)
	}
	return blobs, put(ocispec.MediaTypeImageManifest, manifestJSON), nil
}

// Digest returns the manifest digest WriteOCIArchive would return, without writing the archive.
func Digest(spec Spec) (string, error) {
	_, manifest, err := build(spec)
	if err != nil {
		return "", err
	}
	return manifest.Digest.String(), nil
}
