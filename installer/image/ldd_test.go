package image

import (
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/internal/sys"
)

const glibcLdd = `	linux-vdso.so.1 (0x00007f56d9e4a000)
	libiperf.so.0 => /lib/x86_64-linux-gnu/libiperf.so.0 (0x00007f56d9e03000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f56d9c21000)
	libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f56d9b3b000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f56d9e4c000)
`

func TestParseLdd(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    []string
		wantErr string
	}{
		{"glibc", glibcLdd, []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libiperf.so.0",
			"/lib/x86_64-linux-gnu/libm.so.6", "/lib64/ld-linux-x86-64.so.2"}, ""},
		{"musl", "\t/lib/ld-musl-x86_64.so.1 (0x7f0c1c5a6000)\n\tlibc.musl-x86_64.so.1 => /lib/ld-musl-x86_64.so.1 (0x7f0c1c5a6000)\n",
			[]string{"/lib/ld-musl-x86_64.so.1"}, ""},
		{"old glibc vdso", "\tlinux-vdso.so.1 =>  (0x00007ffc)\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n", []string{"/lib/libc.so.6"}, ""},
		{"no address", "\tlibc.so.6 => /lib/libc.so.6\n", []string{"/lib/libc.so.6"}, ""},
		{"missing", "\tlibfoo.so.1 => not found\n\tlibbar.so.2 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n", nil, "libfoo.so.1, libbar.so.2"},
		{"static", "\tnot a dynamic executable\n", nil, "no libraries"},
		{"empty", "", nil, "no libraries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLdd(tt.out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseLdd(f *testing.F) {
	f.Add(glibcLdd)
	f.Add("\tlibfoo.so.1 => not found\n")
	f.Add("(\n=> (\n")
	f.Fuzz(func(t *testing.T, out string) {
		libs, err := ParseLdd(out)
		if err != nil {
			return
		}
		for _, l := range libs {
			if !strings.HasPrefix(l, "/") {
				t.Fatalf("ParseLdd returned a relative path %q", l)
			}
		}
	})
}

func TestBinaryWithLibraries(t *testing.T) {
	// /bin/ls is dynamically linked; the stub stands in for ldd so the files are known.
	stub := sys.NewStub(t)
	stub.Register(`ldd /bin/ls`, glibcLdd, 0)
	files, err := BinaryWithLibraries(context.Background(), stub, "/bin/ls", "/usr/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Src+"->"+f.Dst)
	}
	want := "/bin/ls->/usr/bin/ls /lib/x86_64-linux-gnu/libc.so.6->/lib/x86_64-linux-gnu/libc.so.6 " +
		"/lib/x86_64-linux-gnu/libiperf.so.0->/lib/x86_64-linux-gnu/libiperf.so.0 " +
		"/lib/x86_64-linux-gnu/libm.so.6->/lib/x86_64-linux-gnu/libm.so.6 /lib64/ld-linux-x86-64.so.2->/lib64/ld-linux-x86-64.so.2"
	if strings.Join(got, " ") != want {
		t.Errorf("files:\n got %s\nwant %s", strings.Join(got, " "), want)
	}

	// A static program needs no ldd run: the strict stub fails on any command.
	if _, err := os.Stat("/bin/busybox"); err == nil {
		files, err := BinaryWithLibraries(context.Background(), sys.NewStub(t), "/bin/busybox", "/bin/busybox")
		if err != nil || len(files) != 1 {
			t.Errorf("static busybox: %v, %v", files, err)
		}
	}
}

// TestBinaryWithLibrariesRealLdd runs the host's ldd on a real program and builds an image from
// the result: every library must exist and the loader must be among them.
func TestBinaryWithLibrariesRealLdd(t *testing.T) {
	files, err := BinaryWithLibraries(context.Background(), sys.Exec{}, "/bin/ls", "/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	loader := regexp.MustCompile(`/ld-linux[^/]*\.so\.\d+$|/ld-musl[^/]*\.so\.\d+$`)
	var sawLoader, sawLibc bool
	for _, f := range files[1:] {
		if _, err := os.Stat(f.Src); err != nil {
			t.Errorf("ldd listed %s, which does not exist: %v", f.Src, err)
		}
		sawLoader = sawLoader || loader.MatchString(f.Dst)
		sawLibc = sawLibc || strings.Contains(f.Dst, "libc.")
	}
	if !sawLoader || !sawLibc {
		t.Errorf("files %v lack the loader (%v) or libc (%v)", files, sawLoader, sawLibc)
	}
	if _, err := WriteOCIArchive(io.Discard, Spec{Ref: "localhost/virt-setup/ls:1", Files: files}); err != nil {
		t.Errorf("build an image from them: %v", err)
	}
}
