package probe

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/assets"
)

// profileExpectations are what the doctor must conclude from the facts the real probes recorded on
// the fake hosts of probetest (the shipped host profiles): the failure mode each host was built for.
var profileExpectations = map[string]struct {
	statuses    map[string]Status
	snapshotter string
}{
	"debian-12":                 {map[string]Status{"VS-OVERLAY-001": StatusOK, "VS-APPARMOR-001": StatusSkip}, SnapshotterOverlayfs},
	"debian-11":                 {map[string]Status{"VS-OVERLAY-001": StatusWarn, "VS-CGROUP-002": StatusWarn}, SnapshotterFuseOverlayfs},
	"fedora-34-selinux":         {map[string]Status{"VS-OVERLAY-001": StatusWarn, "VS-USERNS-002": StatusSkip}, SnapshotterFuseOverlayfs},
	"rhel-8":                    {map[string]Status{"VS-OVERLAY-001": StatusWarn, "VS-CGROUP-001": StatusWarn, "VS-KERNEL-002": StatusWarn}, SnapshotterFuseOverlayfs},
	"ubuntu-24.04":              {map[string]Status{"VS-APPARMOR-001": StatusFail}, SnapshotterOverlayfs},
	"no-systemd":                {map[string]Status{"VS-SYSTEMD-001": StatusWarn, "VS-LINGER-001": StatusSkip, "VS-DBUS-001": StatusSkip}, ""},
	"old-kernel-no-fuse-userns": {map[string]Status{"VS-USERNS-001": StatusFail, "VS-KERNEL-001": StatusWarn}, SnapshotterNative},
}

// TestReportOnShippedProfiles runs the doctor on the facts the real probes recorded for the shipped
// host profiles, so the checks are tested against the probes' actual output, not only hand-built facts.
func TestReportOnShippedProfiles(t *testing.T) {
	names := assets.HostProfileNames()
	if len(names) == 0 {
		t.Fatal("no shipped host profiles")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			f, err := LoadProfile(name)
			if err != nil {
				t.Fatal(err)
			}
			r := NewReport(f)
			for _, c := range r.Checks {
				assertResultShape(t, c)
			}
			want, ok := profileExpectations[name]
			if !ok {
				return
			}
			for _, c := range r.Checks {
				if s, ok := want.statuses[c.ID]; ok && c.Status != s {
					t.Errorf("%s: %s %q, want %s", c.ID, c.Status, c.Title, s)
				}
			}
			if want.snapshotter != "" && r.Recommendation.Snapshotter != want.snapshotter {
				t.Errorf("snapshotter %s, want %s: %s", r.Recommendation.Snapshotter, want.snapshotter, reasonsText(r.Recommendation.Reasons))
			}
		})
	}
	for name := range profileExpectations {
		found := false
		for _, n := range names {
			found = found || n == name
		}
		if !found {
			t.Errorf("expectations for profile %s, which is no longer shipped", name)
		}
	}
}

// FuzzReport feeds garbled facts documents (what --host-profile reads from a file) to the doctor and
// the recommendation: whatever the values, they must not panic and must give well-formed results.
func FuzzReport(f *testing.F) {
	for _, name := range assets.HostProfileNames() {
		if b, err := assets.Hosts.ReadFile("hosts/" + name + ".json"); err == nil {
			f.Add(b)
		}
	}
	seed, _ := json.Marshal(healthyFacts())
	f.Add(seed)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"os":{"kernel":{"value":{"major":-1,"minor":99},"known":true}},"binaries":{"rootlesskit":{"value":{"found":true,"version":"v","features":{"gvisor-tap-vsock":true}},"known":true}}}`))
	f.Add([]byte(`{"userns":{"subuid":{"value":[{"start":-5,"count":-70000}],"known":true}},"identity":{"xdg_runtime_dir":{"value":{"path":"/run/user/","set":true,"exists":true},"known":true}}}`))
	f.Add([]byte(`{"security":{"apparmor":{"value":{"restrict_unprivileged_userns":1,"rootlesskit_profiles":[": ",":"]},"known":true}},"binaries":{"rootlesskit":{"value":{"found":true,"path":""},"known":true}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var facts Facts
		if err := json.Unmarshal(b, &facts); err != nil {
			return
		}
		r := NewReport(&facts)
		for _, c := range r.Checks {
			if c.ID == "" || c.Title == "" || strings.Contains(c.Title, "internal error") {
				t.Fatalf("bad result %+v", c)
			}
			switch c.Status {
			case StatusOK, StatusWarn, StatusFail, StatusSkip:
			default:
				t.Fatalf("status %q", c.Status)
			}
		}
		switch r.Recommendation.Snapshotter {
		case SnapshotterOverlayfs, SnapshotterFuseOverlayfs, SnapshotterNative:
		default:
			t.Fatalf("snapshotter %q", r.Recommendation.Snapshotter)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("marshal report: %v", err)
		}
	})
}
