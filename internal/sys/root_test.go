package sys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRootReadFile(t *testing.T) {
	dir := t.TempDir()
	mk := func(p, content string) {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("usr/lib/os-release", "ID=fake\n")
	mk("etc/hostname", "inside\n")
	if err := os.Symlink("/usr/lib/os-release", filepath.Join(dir, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
	// A symlink that would name this host's /etc/hostname if resolved naively.
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "etc/abs-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../etc/hostname", filepath.Join(dir, "etc/climb")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero")); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxFileSize+1); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop", filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	r := Root{Dir: dir}

	tests := []struct {
		path    string
		want    string
		wantErr string
	}{
		{"/etc/os-release", "ID=fake\n", ""},
		{"/etc/abs-link", "inside\n", ""},
		{"/etc/climb", "inside\n", ""},
		{"/fifo", "", "not a regular file"},
		{"/zero", "", "no such file"}, // /dev/zero resolved inside the root, where there is none
		{"/big", "", "larger than 1 MiB"},
		{"/loop", "", "too many levels of symbolic links"},
		{"/etc", "", "is a directory"},
		{"/missing", "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			done := make(chan struct{})
			var got []byte
			var err error
			go func() { got, err = r.ReadFile(tt.path); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("ReadFile blocked")
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	if _, err := r.Stat("/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(/missing) error %v is not fs.ErrNotExist", err)
	}
	if fi, err := r.Lstat("/etc/os-release"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat followed the link: %v %v", fi, err)
	}
	if fi, err := r.Stat("/etc/os-release"); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("Stat did not follow the link inside the root: %v %v", fi, err)
	}
	entries, err := r.ReadDir("/etc")
	if err != nil || len(entries) != 4 {
		t.Errorf("ReadDir(/etc) = %d entries, %v; want 4", len(entries), err)
	}
	if !r.Exists("/usr/lib") || r.Exists("/nope") {
		t.Error("Exists is wrong")
	}
}

func TestHostRootReadsProc(t *testing.T) {
	b, err := Root{Dir: "/"}.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil || len(b) == 0 {
		t.Fatalf("ReadFile(/proc/sys/kernel/osrelease) = %q, %v", b, err)
	}
}
