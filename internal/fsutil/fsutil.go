// Package fsutil writes the user's files safely: atomically (a reader sees the old file or the new
// one, never half of either, and a crash leaves one of them on disk), with a byte-for-byte backup of
// what is replaced, and with a record of the directories created so that undo removes exactly those.
package fsutil

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultMode is the mode of a file WriteFileAtomic creates when asked for mode 0.
const DefaultMode os.FileMode = 0o644

// hooks let the package's tests inject failures at the points where a real write can fail (a full
// disk, a crash before the rename). They are nil outside tests.
var hooks struct {
	// write replaces the write of the data into the temporary file.
	write func(f *os.File, data []byte) (int, error)
	// beforeRename runs after the temporary file is complete and before it replaces the target.
	beforeRename func(tmp string) error
}

// WriteFileAtomic replaces path with data: it writes a temporary file in the same directory (a
// rename is only atomic within one file system), fsyncs it, renames it over path and fsyncs the
// directory so that the rename itself survives a crash. With mode 0 the existing file's permission
// bits are kept (DefaultMode for a new file). When path is a symlink the file it points to is
// replaced and the link is kept, since dotfile managers keep config files as links into a
// repository. On any failure the original file is untouched and no temporary file is left behind.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	target, err := resolveTarget(path)
	if err != nil {
		return err
	}
	var owner *syscall.Stat_t
	switch fi, err := os.Stat(target); {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("write %s: not a regular file (%s)", path, fi.Mode().Type())
		}
		if mode == 0 {
			mode = fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		}
		owner, _ = fi.Sys().(*syscall.Stat_t)
	case errors.Is(err, fs.ErrNotExist):
		if mode == 0 {
			mode = DefaultMode
		}
	default:
		return fmt.Errorf("write %s: %w", path, err)
	}

	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".virt-setup-tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: create temporary file: %w", path, err)
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()

	write := func(f *os.File, b []byte) (int, error) { return f.Write(b) }
	if hooks.write != nil {
		write = hooks.write
	}
	if _, err := write(tmp, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Chmod, not the create mode: the umask must not change the mode a file had before.
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: set mode %v: %w", path, mode, err)
	}
	// Only root can give a file away; it does so to keep a user's file the user's when an
	// administrator runs the installer on their behalf.
	if owner != nil && os.Geteuid() == 0 {
		if err := tmp.Chown(int(owner.Uid), int(owner.Gid)); err != nil {
			return fmt.Errorf("write %s: keep owner %d:%d: %w", path, owner.Uid, owner.Gid, err)
		}
		// chown clears the setuid and setgid bits.
		if err := tmp.Chmod(mode); err != nil {
			return fmt.Errorf("write %s: set mode %v: %w", path, mode, err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if hooks.beforeRename != nil {
		if err := hooks.beforeRename(tmpName); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := os.Rename(tmpName, target); err != nil {
		return fmt.Errorf("write %s: rename into place: %w", path, err)
	}
	committed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: fsync directory: %w", path, err)
	}
	return nil
}

// resolveTarget returns the file a write to path must replace: path itself, or the end of its
// symlink chain.
func resolveTarget(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("write %s: it is a symlink that cannot be followed (%w); remove the link or create the file it points to", path, err)
	}
	return target, nil
}

// syncDir makes a rename or a new entry in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some file systems (FUSE, network ones) cannot fsync a directory; the rename happened anyway.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}

// Backup copies path byte for byte into backupDir (created 0700 if needed, since a config file may
// hold credentials) and returns the copy's path and the original's mode. A missing file is not an
// error: existed is false and nothing is copied. The name holds the file's base name, a hash of its
// absolute path, the time and a random part, so backups of different files, or of one file at two
// times, never collide (the random part is created exclusively). Only regular files are backed up:
// a FIFO or device is refused without being opened for a blocking read.
func Backup(path, backupDir string) (backupPath string, existed bool, mode os.FileMode, err error) {
	src, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, 0, nil
	}
	if err != nil {
		return "", false, 0, fmt.Errorf("back up %s: %w", path, err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return "", false, 0, fmt.Errorf("back up %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", false, 0, fmt.Errorf("back up %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	mode = fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)

	if err := os.MkdirAll(backupDir, 0o700); err != nil {
		return "", true, mode, fmt.Errorf("back up %s: create %s: %w", path, backupDir, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", true, mode, fmt.Errorf("back up %s: %w", path, err)
	}
	sum := sha256.Sum256([]byte(abs))
	pattern := fmt.Sprintf("%s.%s.%s.*.bak", sanitizeName(filepath.Base(abs)), hex.EncodeToString(sum[:4]),
		time.Now().UTC().Format("20060102T150405.000000000Z"))
	dst, err := os.CreateTemp(backupDir, pattern)
	if err != nil {
		return "", true, mode, fmt.Errorf("back up %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			dst.Close()
			os.Remove(dst.Name())
		}
	}()
	if _, err := io.Copy(dst, src); err != nil {
		return "", true, mode, fmt.Errorf("back up %s to %s: %w", path, dst.Name(), err)
	}
	if err := dst.Sync(); err != nil {
		return "", true, mode, fmt.Errorf("back up %s to %s: fsync: %w", path, dst.Name(), err)
	}
	if err := dst.Close(); err != nil {
		return "", true, mode, fmt.Errorf("back up %s to %s: %w", path, dst.Name(), err)
	}
	if err := syncDir(backupDir); err != nil {
		return "", true, mode, fmt.Errorf("back up %s: fsync %s: %w", path, backupDir, err)
	}
	ok = true
	return dst.Name(), true, mode, nil
}

// sanitizeName keeps a backup's name readable and free of characters a shell or a terminal would
// trip over.
func sanitizeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
	s = strings.TrimLeft(s, ".")
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" {
		s = "file"
	}
	return s
}

// Restore puts a backup back at path, atomically, with the given mode (0 keeps the current file's).
func Restore(backupPath, path string, mode os.FileMode) error {
	b, err := os.ReadFile(backupPath)
	if err != nil {
		return fmt.Errorf("restore %s: read backup: %w", path, err)
	}
	if err := WriteFileAtomic(path, b, mode); err != nil {
		return fmt.Errorf("restore %s from %s: %w", path, backupPath, err)
	}
	return nil
}

// MkdirAllRecord creates dir and any missing parents with perm (less the umask, like os.MkdirAll)
// and returns the directories it created, shallowest first and deepest last, so that undo can
// remove exactly those, deepest first. On failure the directories created so far are returned
// with the error, so that they can still be recorded.
func MkdirAllRecord(dir string, perm os.FileMode) (created []string, err error) {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("create directory %s: %s is not a directory", dir, d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("create directory %s: %w", dir, err)
		}
		missing = append(missing, d)
		if parent := filepath.Dir(d); parent == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := os.Mkdir(d, perm); err != nil {
			// Someone else created it meanwhile: it is not ours to remove.
			if errors.Is(err, fs.ErrExist) {
				if fi, serr := os.Stat(d); serr == nil && fi.IsDir() {
					continue
				}
			}
			return created, fmt.Errorf("create directory %s: %w", d, err)
		}
		created = append(created, d)
	}
	return created, nil
}

// RemoveEmptyDirs removes the directories MkdirAllRecord created, deepest first, leaving any that
// are no longer empty (the user has put something there since) or already gone.
func RemoveEmptyDirs(created []string) error {
	var errs []error
	for i := len(created) - 1; i >= 0; i-- {
		err := os.Remove(created[i])
		if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			continue
		}
		errs = append(errs, fmt.Errorf("remove directory %s: %w", created[i], err))
	}
	return errors.Join(errs...)
}
