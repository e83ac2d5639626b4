package sys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxFileSize bounds what is read of any host file. Every file the probe reads is small on a sane
// host; an enormous or endless file (a fake host, /dev/zero behind a symlink) must not exhaust memory.
const MaxFileSize = 1 << 20

// ErrTooLarge is returned by Root.ReadFile for a file over MaxFileSize.
var ErrTooLarge = errors.New("file is larger than 1 MiB")

// Root is a directory laid out like "/": the live host ("/") or a fake or mounted host in a test or
// under --root.
//
// Below a directory other than "/", paths are resolved as if that directory were "/": an absolute
// symlink such as etc/os-release -> /usr/lib/os-release stays inside it, and ".." cannot climb out
// (openat2 with RESOLVE_IN_ROOT, Linux 5.6). Otherwise probing a mounted disk would read this host's
// files through the disk's symlinks.
type Root struct {
	// Dir is the directory that stands for "/".
	Dir string
}

// Path maps an absolute host path to the real path below the root, without resolving symlinks. Use
// it to run a program or name a file in a message; read files with the methods, which resolve
// symlinks inside the root.
func (r Root) Path(p string) string {
	if r.IsHost() {
		return filepath.Clean("/" + p)
	}
	return filepath.Join(r.Dir, filepath.Clean("/"+p))
}

// IsHost reports whether the root is the live host's "/".
func (r Root) IsHost() bool { return r.Dir == "" || r.Dir == "/" }

// open opens p below the root with flags, resolving symlinks inside the root.
func (r Root) open(p string, flags int) (*os.File, error) {
	if r.IsHost() {
		fd, err := unix.Open(r.Path(p), flags|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: r.Path(p), Err: err}
		}
		return os.NewFile(uintptr(fd), r.Path(p)), nil
	}
	dir, err := unix.Open(r.Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: r.Dir, Err: err}
	}
	defer unix.Close(dir)
	rel := strings.TrimLeft(filepath.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(dir, rel, &how)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: r.Path(p), Err: err}
	}
	return os.NewFile(uintptr(fd), r.Path(p)), nil
}

// ReadFile reads at most MaxFileSize bytes of a regular file below the root. Anything else (a FIFO,
// a device, a socket, a directory) is refused without reading, so a garbled host cannot make the
// probe block or read an endless stream.
func (r Root) ReadFile(p string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
	f, err := r.open(p, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("read %s: is a directory", f.Name())
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file (%s)", f.Name(), fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("read %s: %w", f.Name(), ErrTooLarge)
	}
	return b, nil
}

// Stat follows symlinks (inside the root).
func (r Root) Stat(p string) (fs.FileInfo, error) {
	if r.IsHost() {
		return os.Stat(r.Path(p))
	}
	f, err := r.open(p, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// Lstat does not follow a final symlink.
func (r Root) Lstat(p string) (fs.FileInfo, error) {
	if r.IsHost() {
		return os.Lstat(r.Path(p))
	}
	f, err := r.open(p, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// ReadDir lists a directory below the root.
func (r Root) ReadDir(p string) ([]fs.DirEntry, error) {
	if r.IsHost() {
		return os.ReadDir(r.Path(p))
	}
	f, err := r.open(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", f.Name(), err)
	}
	return entries, nil
}

// Exists reports whether p exists below the root (following symlinks).
func (r Root) Exists(p string) bool {
	_, err := r.Stat(p)
	return err == nil
}
