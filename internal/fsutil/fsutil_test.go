package fsutil

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virt-setup/virt-setup/internal/testenv"
)

// listDir returns the names in dir, to prove no temporary file is left behind.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func modeOf(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriteFileAtomicCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.toml")

	if err := WriteFileAtomic(p, []byte("one\n"), 0); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, p); string(got) != "one\n" {
		t.Fatalf("content = %q", got)
	}
	if m := modeOf(t, p); m != DefaultMode {
		t.Errorf("new file mode = %v, want %v", m, DefaultMode)
	}

	// An explicit mode is applied exactly, whatever the umask.
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	if err := WriteFileAtomic(p, []byte("two\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if m := modeOf(t, p); m != 0o640 {
		t.Errorf("mode = %v, want 0640", m)
	}
	// Mode 0 keeps the mode the file has.
	if err := WriteFileAtomic(p, []byte("three\n"), 0); err != nil {
		t.Fatal(err)
	}
	if m := modeOf(t, p); m != 0o640 {
		t.Errorf("mode after a mode-0 write = %v, want the kept 0640", m)
	}
	if got := mustRead(t, p); string(got) != "three\n" {
		t.Fatalf("content = %q", got)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only config.toml", names)
	}
}

func TestWriteFileAtomicFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "nerdctl.toml")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.toml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link, []byte("new\n"), 0); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", fi, err)
	}
	if got := mustRead(t, real); string(got) != "new\n" {
		t.Errorf("link target = %q, want the new content", got)
	}
	if m := modeOf(t, real); m != 0o600 {
		t.Errorf("target mode = %v, want 0600 kept", m)
	}

	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere", "x"), dangling); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(dangling, []byte("x"), 0); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("write through a dangling link: err = %v, want a symlink error", err)
	}
}

func TestWriteFileAtomicFailureLeavesOriginal(t *testing.T) {
	errDiskFull := errors.New("no space left on device (injected)")
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"write fails half-way", func(t *testing.T, dir string) {
			hooks.write = func(f *os.File, data []byte) (int, error) {
				n, _ := f.Write(data[:len(data)/2])
				return n, errDiskFull
			}
			t.Cleanup(func() { hooks.write = nil })
		}},
		{"crash before rename", func(t *testing.T, dir string) {
			hooks.beforeRename = func(tmp string) error {
				if _, err := os.Stat(tmp); err != nil {
					t.Errorf("temporary file missing before the rename: %v", err)
				}
				return errDiskFull
			}
			t.Cleanup(func() { hooks.beforeRename = nil })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "override.conf")
			original := []byte("[Service]\nEnvironment=\"A=1\"\n")
			if err := os.WriteFile(p, original, 0o600); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			err := WriteFileAtomic(p, bytes.Repeat([]byte("new content\n"), 100), 0o644)
			if err == nil {
				t.Fatal("WriteFileAtomic succeeded despite the failure")
			}
			if got := mustRead(t, p); !bytes.Equal(got, original) {
				t.Errorf("original changed to %q", got)
			}
			if m := modeOf(t, p); m != 0o600 {
				t.Errorf("original mode changed to %v", m)
			}
			if names := listDir(t, dir); len(names) != 1 || names[0] != "override.conf" {
				t.Errorf("directory holds %v after the failure, want only override.conf", names)
			}
		})
	}
}

// TestWriteFileAtomicReadOnlyDirectory makes the temporary file impossible to create. Root ignores
// permission bits, so as root the directory is a tmpfs remounted read-only, in a mount namespace of
// the test's own thread so that nothing outlives the test.
func TestWriteFileAtomicReadOnlyDirectory(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "nerdctl.toml")
	original := []byte("snapshotter = \"native\"\n")
	done := make(chan struct{})
	var unshareErr error
	go func() {
		defer close(done)
		if os.Geteuid() == 0 {
			// The thread is never unlocked: Go ends it with the goroutine, and its namespace with it.
			runtime.LockOSThread()
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				unshareErr = err
				return
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				t.Errorf("make mounts private: %v", err)
				return
			}
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0755"); err != nil {
				t.Errorf("mount tmpfs: %v", err)
				return
			}
			if err := os.WriteFile(p, original, 0o600); err != nil {
				t.Error(err)
				return
			}
			if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				t.Errorf("remount read-only: %v", err)
				return
			}
		} else {
			if err := os.WriteFile(p, original, 0o600); err != nil {
				t.Error(err)
				return
			}
			if err := os.Chmod(dir, 0o555); err != nil {
				t.Error(err)
				return
			}
			defer os.Chmod(dir, 0o755)
		}
		err := WriteFileAtomic(p, []byte("snapshotter = \"overlayfs\"\n"), 0)
		if err == nil {
			t.Error("WriteFileAtomic succeeded in a read-only directory")
		}
		t.Logf("error: %v", err)
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, original) {
			t.Errorf("original is now %q, %v", got, err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) != 1 {
			t.Errorf("directory holds %v, %v; want only the original", entries, err)
		}
	}()
	<-done
	testenv.Require(t, unshareErr == nil, fmt.Sprintf("unshare a mount namespace (needs CAP_SYS_ADMIN): %v", unshareErr))
}

func TestWriteFileAtomicRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "fifo"), []byte("x"), 0); err == nil {
		t.Error("replaced a FIFO")
	}
	if err := WriteFileAtomic(dir, []byte("x"), 0); err == nil {
		t.Error("replaced a directory")
	}
}

func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	backups := filepath.Join(dir, "state", "backups")
	p := filepath.Join(dir, "config.toml")
	// Every byte value, no trailing newline: the copy must be exact.
	var original []byte
	for i := 0; i < 256; i++ {
		original = append(original, byte(i))
	}
	if err := os.WriteFile(p, original, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o751); err != nil {
		t.Fatal(err)
	}

	bp, existed, mode, err := Backup(p, backups)
	if err != nil || !existed {
		t.Fatalf("Backup = %q, %v, %v", bp, existed, err)
	}
	if mode != 0o751 {
		t.Errorf("mode = %v, want 0751", mode)
	}
	if !strings.HasPrefix(filepath.Base(bp), "config.toml.") || filepath.Dir(bp) != backups {
		t.Errorf("backup path %s is not a config.toml backup in %s", bp, backups)
	}
	if got := mustRead(t, bp); !bytes.Equal(got, original) {
		t.Error("backup differs from the original")
	}
	if fi, err := os.Stat(backups); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("backup directory: %v %v, want mode 0700", fi, err)
	}

	// A second backup of the same file, and one of another file with the same name, never collide.
	bp2, _, _, err := Backup(p, backups)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "sub", "config.toml")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	bp3, _, _, err := Backup(other, backups)
	if err != nil {
		t.Fatal(err)
	}
	if bp == bp2 || bp == bp3 || bp2 == bp3 {
		t.Fatalf("backup names collide: %s %s %s", bp, bp2, bp3)
	}
	if got := mustRead(t, bp3); string(got) != "other" {
		t.Errorf("second file's backup = %q", got)
	}

	// Clobber the file, then restore: content and mode come back.
	if err := os.WriteFile(p, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Restore(bp, p, mode); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, p); !bytes.Equal(got, original) {
		t.Error("restored content differs from the original")
	}
	if m := modeOf(t, p); m != 0o751 {
		t.Errorf("restored mode = %v, want 0751", m)
	}
}

func TestBackupMissingAndNonRegular(t *testing.T) {
	dir := t.TempDir()
	bp, existed, _, err := Backup(filepath.Join(dir, "missing"), filepath.Join(dir, "b"))
	if err != nil || existed || bp != "" {
		t.Errorf("Backup(missing) = %q, %v, %v; want nothing", bp, existed, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("backup directory created for a missing file")
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Backup(fifo, filepath.Join(dir, "b")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Backup(fifo) err = %v", err)
	}
}

func TestRestoreMissingBackupKeepsFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Restore(filepath.Join(dir, "gone.bak"), p, 0); err == nil {
		t.Fatal("Restore from a missing backup succeeded")
	}
	if got := mustRead(t, p); string(got) != "keep" {
		t.Errorf("file changed to %q", got)
	}
}

func TestMkdirAllRecord(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "a", "b", "c")
	created, err := MkdirAllRecord(target, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a"), filepath.Join(dir, "a", "b"), target}
	if strings.Join(created, "|") != strings.Join(want, "|") {
		t.Fatalf("created = %v, want %v", created, want)
	}
	again, err := MkdirAllRecord(target, 0o755)
	if err != nil || len(again) != 0 {
		t.Errorf("second MkdirAllRecord = %v, %v; want nothing created", again, err)
	}

	// The user puts a file in a/b: undo removes c but keeps a/b and a.
	if err := os.WriteFile(filepath.Join(dir, "a", "b", "mine"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RemoveEmptyDirs(created); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Error("empty created directory was kept")
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "b", "mine")); err != nil {
		t.Error("a directory holding the user's file was removed")
	}
	os.Remove(filepath.Join(dir, "a", "b", "mine"))
	if err := RemoveEmptyDirs(created); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("created directories remain after they became empty")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Error("removed a directory it did not create")
	}

	// A file in the way is an error and nothing is created.
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	created, err = MkdirAllRecord(filepath.Join(dir, "file", "x"), 0o755)
	if err == nil || len(created) != 0 {
		t.Errorf("MkdirAllRecord through a file = %v, %v", created, err)
	}
}

// TestWriteFileAtomicKeepsOwner replaces a file owned by another user, as root does when an
// administrator runs the installer for someone: the file must stay theirs.
func TestWriteFileAtomicKeepsOwner(t *testing.T) {
	testenv.Require(t, os.Geteuid() == 0, "giving a file to another owner needs root")
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 4242 || st.Gid != 4343 || fi.Mode().Perm() != 0o640 {
		t.Errorf("owner %d:%d mode %v, want 4242:4343 0640", st.Uid, st.Gid, fi.Mode().Perm())
	}
}
