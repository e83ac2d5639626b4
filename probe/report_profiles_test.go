package probe

import (
	"testing"

	"github.com/virt-setup/virt-setup/assets"
)

// TestReportOnShippedProfiles runs the doctor on the facts the real probes recorded for the shipped
// host profiles: the checks must read those facts (not only hand-built ones) without crashing, and
// never fail for lack of data.
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
				t.Logf("%-16s %-4s %s", c.ID, c.Status, c.Title)
			}
			t.Logf("snapshotter %s: %s", r.Recommendation.Snapshotter, reasonsText(r.Recommendation.Reasons))
			t.Logf("network %q MTU %d", r.Recommendation.RootlessKit.NetworkDriver, r.Recommendation.RootlessKit.MTU)
		})
	}
}
