package installer

import "testing"

func TestParseSetuptoolLine(t *testing.T) {
	tests := []struct {
		in   string
		want SetuptoolLine
	}{
		{"\x1b[104m\x1b[97m[INFO]\x1b[49m\x1b[39m Checking RootlessKit functionality", SetuptoolLine{"INFO", "Checking RootlessKit functionality"}},
		{"\x1b[101m\x1b[97m[WARNING]\x1b[49m\x1b[39m Overlayfs is not enabled, consider installing fuse-overlayfs snapshotter (`x install-fuse-overlayfs`),  or see …", SetuptoolLine{"WARNING", "Overlayfs is not enabled, consider installing fuse-overlayfs snapshotter (`x install-fuse-overlayfs`),  or see …"}},
		{"\x1b[101m\x1b[97m[ERROR]\x1b[49m\x1b[39m Needs systemd (systemctl --user)", SetuptoolLine{"ERROR", "Needs systemd (systemctl --user)"}},
		{"[INFO] plain, without colours\r", SetuptoolLine{"INFO", "plain, without colours"}},
		{"+ systemctl --user start containerd.service", SetuptoolLine{"TRACE", "systemctl --user start containerd.service"}},
		{"● containerd.service - containerd (Rootless)", SetuptoolLine{"", "● containerd.service - containerd (Rootless)"}},
		{"[DEBUG] not a level it uses", SetuptoolLine{"", "[DEBUG] not a level it uses"}},
		{"", SetuptoolLine{}},
	}
	for _, tt := range tests {
		if got := ParseSetuptoolLine(tt.in); got != tt.want {
			t.Errorf("ParseSetuptoolLine(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseSetuptoolLine(f *testing.F) {
	f.Add("\x1b[104m\x1b[97m[INFO]\x1b[49m\x1b[39m Installed \"containerd.service\" successfully.")
	f.Add("+ set -x")
	f.Add("\x1b[")
	f.Fuzz(func(t *testing.T, s string) {
		l := ParseSetuptoolLine(s)
		switch l.Level {
		case "", "INFO", "WARNING", "ERROR", "TRACE":
		default:
			t.Fatalf("level %q", l.Level)
		}
	})
}
