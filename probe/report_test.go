package probe

import (
	"encoding/json"
	"testing"
)

func TestNewReport(t *testing.T) {
	f := healthyFacts()
	f.Systemd.Linger = Known(false)
	r := NewReport(f)
	if r.Facts != f || len(r.Checks) != len(Catalog()) || r.Recommendation.Snapshotter == "" {
		t.Fatalf("report = %+v", r)
	}
	if ExitCode(r.Checks) != ExitWarnings {
		t.Errorf("one warning: exit code %d", ExitCode(r.Checks))
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"facts", "checks", "recommendation"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report JSON lacks %q", k)
		}
	}
	if r := NewReport(nil); r.Facts == nil || len(r.Checks) != len(Catalog()) {
		t.Errorf("NewReport(nil) = %+v", r)
	}
}
