package probe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePasswd(t *testing.T) {
	in := "root:x:0:0:root:/root:/bin/bash\n" +
		"# comment:x:1:1::/:/bin/sh\n" +
		"+nis::::::\n" +
		"alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\r\n" +
		"short:x:1\n" +
		"neg:x:-1:5::/h:/bin/sh\n" +
		"bob:x:1001:notanumber::/home/bob:/bin/sh\n" +
		":x:5:5::/:/bin/sh\n"
	got := ParsePasswd([]byte(in))
	if len(got) != 2 || got[0].Name != "root" || got[1] != (PasswdEntry{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice", Shell: "/bin/bash"}) {
		t.Errorf("ParsePasswd = %+v", got)
	}
}

func FuzzParsePasswd(f *testing.F) {
	f.Add([]byte("alice:x:1000:1000::/home/alice:/bin/bash\n"))
	f.Add([]byte("::::::\n\n\r\n+:::"))
	f.Add([]byte("a:x:99999999999999999999:0::/:/\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, e := range ParsePasswd(b) {
			if e.Name == "" || e.UID < 0 || e.GID < 0 || strings.Contains(e.Name, ":") {
				t.Fatalf("ParsePasswd accepted a malformed entry %+v", e)
			}
		}
	})
}

func TestIdentityUnderRoot(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/passwd", "root:x:0:0::/root:/bin/bash\nsvc:x:999:999::/var/svc:/bin/false\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\n")
	write("home/alice/.keep", "")
	write("run/user/1000/.keep", "")
	write("proc/self/environ", "XDG_RUNTIME_DIR=/run/user/1000\x00SUDO_USER=carol\x00")

	tests := []struct {
		user     string
		wantName string
		wantUID  int
		wantErr  string
	}{
		{"", "alice", 1000, ""}, // the first ordinary account
		{"bob", "bob", 1001, ""},
		{"root", "root", 0, ""},
		{"nobody", "", 0, `no user "nobody"`},
	}
	for _, tt := range tests {
		t.Run("user="+tt.user, func(t *testing.T) {
			e, err := NewEnv(Options{Root: dir, User: tt.user})
			if err != nil {
				t.Fatal(err)
			}
			f := &Facts{}
			resolveIdentity(e, tt.user)(f)
			if tt.wantErr != "" {
				if f.Identity.User.Known || !strings.Contains(f.Identity.User.Error, tt.wantErr) {
					t.Fatalf("user = %+v, want unknown with %q", f.Identity.User, tt.wantErr)
				}
				return
			}
			if f.Identity.User.Value != tt.wantName || f.Identity.UID.Value != tt.wantUID || f.Identity.Root.Value != (tt.wantUID == 0) {
				t.Errorf("identity = %+v %+v %+v", f.Identity.User, f.Identity.UID, f.Identity.Root)
			}
			if f.Identity.SudoUser.Value != "carol" {
				t.Errorf("SUDO_USER from ROOT/proc/self/environ = %+v", f.Identity.SudoUser)
			}
			rd := f.Identity.XDGRuntimeDir.Value
			if !rd.Set || !rd.Exists || rd.Path != "/run/user/1000" {
				t.Errorf("xdg runtime dir = %+v", rd)
			}
		})
	}
}

func TestUserFlagNeedsRoot(t *testing.T) {
	if _, err := NewEnv(Options{User: "alice"}); err == nil || !strings.Contains(err.Error(), "--user works only with --root") {
		t.Errorf("NewEnv(--user on the live host) = %v", err)
	}
}
