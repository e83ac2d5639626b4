package sys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// MaxFileSize bounds what is read of any host file. Every file the probe reads is small on a sane
// host; an enormous or endless file (a fake host, /dev/zero behind a symlink) must not exhaust memory.
const MaxFileSize = 1 << 20

// ErrTooLarge is returned by Root.ReadFile for a file over MaxFileSize.
var ErrTooLarge = errors.New("file is larger than 1 MiB")

// Root is a directory laid out like "/": the live host ("/") or a fake host in a test or --root.
type Root struct {
	// Dir is the directory that stands for "/".
	Dir string
}

// Path maps an absolute host path to the real path below the root.
func (r Root) Path(p string) string {
	if r.Dir == "" || r.Dir == "/" {
		return filepath.Clean("/" + p)
	}
	return filepath.Join(r.Dir, filepath.Clean("/"+p))
}

// IsHost reports whether the root is the live host's "/".
func (r Root) IsHost() bool { return r.Dir == "" || r.Dir == "/" }

// ReadFile reads at most MaxFileSize bytes of a file below the root. Special files (FIFOs, devices)
// are refused so a garbled fake host cannot make the probe block.
func (r Root) ReadFile(p string) ([]byte, error) {
	full := r.Path(p)
	f, err := os.Open(full)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", full, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("read %s: is a directory", full)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file (%s)", full, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", full, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("read %s: %w", full, ErrTooLarge)
	}
	return b, nil
}

// Stat follows symlinks below the root.
func (r Root) Stat(p string) (fs.FileInfo, error) { return os.Stat(r.Path(p)) }

// Lstat does not follow a final symlink.
func (r Root) Lstat(p string) (fs.FileInfo, error) { return os.Lstat(r.Path(p)) }

// ReadDir lists a directory below the root.
func (r Root) ReadDir(p string) ([]fs.DirEntry, error) { return os.ReadDir(r.Path(p)) }

// Exists reports whether p exists below the root (following symlinks).
func (r Root) Exists(p string) bool {
	_, err := os.Stat(r.Path(p))
	return err == nil
}
