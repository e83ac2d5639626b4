package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// entry is one tar entry of a layer.
type entry struct {
	name   string // relative, no leading "/", no trailing "/"
	kind   byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode   int64
	src    string // regular files: where the content comes from
	target string // symlinks
}

// buildLayer returns the gzip-compressed layer and the digest of its uncompressed tar (the diff ID
// the image config lists).
func buildLayer(spec Spec) ([]byte, digest.Digest, error) {
	entries, err := layerEntries(spec)
	if err != nil {
		return nil, "", err
	}
	var gz bytes.Buffer
	// The gzip header keeps a zero modification time and no file name, so it is the same on
	// every run. The default level: the best one saves under 1% on busybox and takes twice as long.
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, "", fmt.Errorf("compress layer: %w", err)
	}
	diffID := digest.Canonical.Digester()
	tw := tar.NewWriter(io.MultiWriter(zw, diffID.Hash()))
	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", fmt.Errorf("write layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, "", fmt.Errorf("compress layer: %w", err)
	}
	return gz.Bytes(), diffID.Digest(), nil
}

// layerEntries lists the layer's entries in a fixed order (sorted by path, so every directory
// comes before what it holds), with the parent directories of every file and link.
func layerEntries(spec Spec) ([]entry, error) {
	byName := map[string]entry{}
	add := func(e entry, what string) error {
		if old, ok := byName[e.name]; ok && (old.kind != tar.TypeDir || e.kind != tar.TypeDir) {
			return fmt.Errorf("build image: /%s is given twice (%s)", e.name, what)
		}
		byName[e.name] = e
		return nil
	}
	addParents := func(name string) error {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if old, ok := byName[dir]; ok && old.kind != tar.TypeDir {
				return fmt.Errorf("build image: /%s is a file or link but /%s is inside it", dir, name)
			}
			byName[dir] = entry{name: dir, kind: tar.TypeDir, mode: 0o755}
		}
		return nil
	}
	for _, f := range spec.Files {
		name, err := layerName(f.Dst)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(f.Src)
		if err != nil {
			return nil, fmt.Errorf("build image: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("build image: %s is not a regular file", f.Src)
		}
		mode := f.Mode.Perm()
		if f.Mode == 0 {
			mode = fi.Mode().Perm()
		}
		if err := add(entry{name: name, kind: tar.TypeReg, mode: int64(mode), src: f.Src}, f.Src); err != nil {
			return nil, err
		}
	}
	for link, target := range spec.Symlinks {
		name, err := layerName(link)
		if err != nil {
			return nil, err
		}
		if target == "" {
			return nil, fmt.Errorf("build image: symlink %s has no target", link)
		}
		if err := add(entry{name: name, kind: tar.TypeSymlink, mode: 0o777, target: target}, "symlink to "+target); err != nil {
			return nil, err
		}
	}
	// Parents last, so a file given where another entry needs a directory is an error, whatever
	// the order of the spec.
	for _, name := range slices.Collect(maps.Keys(byName)) {
		if err := addParents(name); err != nil {
			return nil, err
		}
	}
	out := make([]entry, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, byName[name])
	}
	return out, nil
}

// layerName turns an absolute image path into a tar entry name.
func layerName(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("build image: %q is not an absolute path", p)
	}
	name := strings.TrimPrefix(path.Clean(p), "/")
	if name == "" {
		return "", fmt.Errorf("build image: %q names the image's root", p)
	}
	return name, nil
}

func writeEntry(tw *tar.Writer, e entry) error {
	hdr := &tar.Header{Typeflag: e.kind, Name: e.name, Mode: e.mode, ModTime: Epoch}
	switch e.kind {
	case tar.TypeDir:
		hdr.Name += "/"
		return tarHeader(tw, hdr)
	case tar.TypeSymlink:
		hdr.Linkname = e.target
		return tarHeader(tw, hdr)
	}
	f, err := os.Open(e.src)
	if err != nil {
		return fmt.Errorf("build image: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("build image: stat %s: %w", e.src, err)
	}
	hdr.Size = fi.Size()
	if err := tarHeader(tw, hdr); err != nil {
		return err
	}
	// A file that grows while it is copied would otherwise overrun its header's size.
	n, err := io.Copy(tw, io.LimitReader(f, hdr.Size))
	if err != nil {
		return fmt.Errorf("build image: copy %s: %w", e.src, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("build image: %s shrank while it was copied", e.src)
	}
	return nil
}

func tarHeader(tw *tar.Writer, hdr *tar.Header) error {
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("build image: write /%s: %w", strings.TrimSuffix(hdr.Name, "/"), err)
	}
	return nil
}
