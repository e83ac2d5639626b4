package bench

import (
	"strings"
	"testing"
)

func TestParseScenarios(t *testing.T) {
	ids := func(ss []Scenario) string {
		var out []string
		for _, s := range ss {
			out = append(out, string(s.ID))
		}
		return strings.Join(out, ",")
	}
	all := strings.Join(ScenarioIDs(), ",")
	tests := []struct {
		in   []string
		want string
		err  string
	}{
		{nil, all, ""},
		{[]string{"all"}, all, ""},
		{[]string{"host-loopback,container-to-host"}, "container-to-host,host-loopback", ""}, // run order, not given order
		{[]string{"host-loopback", "host-loopback", " container-to-host-bypass4netns "}, "container-to-host-bypass4netns,host-loopback", ""},
		{[]string{"container-to-hots"}, "", `unknown scenario "container-to-hots"; use one of: container-to-host, `},
	}
	for _, tt := range tests {
		got, err := ParseScenarios(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || ids(got) != tt.want {
			t.Errorf("%q = %s, %v; want %s", tt.in, ids(got), err, tt.want)
		}
	}
	got, _ := ParseScenarios(nil)
	got[0].Title = "changed"
	if Scenarios[0].Title == "changed" {
		t.Error("ParseScenarios returned the package's own slice")
	}
}
