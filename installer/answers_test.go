package installer

import (
	"errors"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/probe"
)

func validAnswers() Answers {
	return Answers{
		SchemaVersion: AnswersSchemaVersion, Snapshotter: "overlayfs", ServiceMode: "direct",
		AddOns: AddOnAnswers{Bypass4netns: true},
		RootlessKit: RootlessKitAnswers{NetworkDriver: "slirp4netns", MTU: 65520, PortDriver: "builtin",
			Slirp4netnsSandbox: "auto", Slirp4netnsSeccomp: "auto", DetachNetns: "true"},
	}
}

func TestAnswersRoundTrip(t *testing.T) {
	a := validAnswers()
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "# overlayfs, fuse-overlayfs or native") {
		t.Errorf("answers file lacks its comments:\n%s", b)
	}
	got, err := ParseAnswers(b, "answers.toml")
	if err != nil {
		t.Fatalf("parse what Marshal wrote: %v\n%s", err, b)
	}
	if got != a {
		t.Errorf("round trip changed the answers:\n got %+v\nwant %+v", got, a)
	}
}

func TestParseAnswersErrors(t *testing.T) {
	base, _ := validAnswers().Marshal()
	tests := []struct {
		name string
		edit func(string) string
		want []string
	}{
		{"bad snapshotter", func(s string) string {
			return strings.Replace(s, `snapshotter = 'overlayfs'`, `snapshotter = 'zfs'`, 1)
		}, []string{`snapshotter = "zfs" is not allowed`, "overlayfs, fuse-overlayfs, native"}},
		{"unknown key", func(s string) string { return strings.Replace(s, "[addons]", "[addons]\nbuildkitd = true", 1) },
			[]string{"unknown key addons.buildkitd"}},
		{"MTU out of range", func(s string) string { return strings.Replace(s, "mtu = 65520", "mtu = 99999", 1) },
			[]string{"rootlesskit.mtu = 99999", "between 1280 and 65520"}},
		{"port driver needs its network driver", func(s string) string {
			return strings.Replace(s, `port_driver = 'builtin'`, `port_driver = 'implicit'`, 1)
		}, []string{`needs network_driver = "pasta"`}},
		{"schema version", func(s string) string { return strings.Replace(s, "schema_version = 1", "schema_version = 7", 1) },
			[]string{"schema_version = 7", "reads version 1"}},
		{"not TOML", func(string) string { return "snapshotter = [" }, []string{"answers.toml:1:"}},
		{"hostile value", func(s string) string {
			return strings.Replace(s, `network_driver = 'slirp4netns'`, `network_driver = 'slirp4netns; $(touch /tmp/pwned)'`, 1)
		}, []string{`rootlesskit.network_driver = "slirp4netns; $(touch /tmp/pwned)" is not allowed`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.edit(string(base))
			if in == string(base) {
				t.Fatal("the edit did not apply; the test is stale")
			}
			_, err := ParseAnswers([]byte(in), "answers.toml")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	a := validAnswers()
	a.Snapshotter, a.ServiceMode, a.RootlessKit.DetachNetns = "", "launchd", "maybe"
	err := a.Validate()
	var invalid []*InvalidError
	for _, e := range unwrapAll(err) {
		var ie *InvalidError
		if errors.As(e, &ie) {
			invalid = append(invalid, ie)
		}
	}
	if len(invalid) != 3 {
		t.Fatalf("got %d problems (%v), want 3", len(invalid), err)
	}
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestDefaultAnswersFollowTheRecommendation(t *testing.T) {
	f := &probe.Facts{}
	rec := probe.Recommendation{Snapshotter: "fuse-overlayfs"}
	rec.RootlessKit = probe.RootlessKitAdvice{NetworkDriver: "pasta", MTU: 65520, PortDriver: "implicit", DetachNetns: true}
	rec.AddOns.Bypass4netns.Available = true
	a := DefaultAnswers(f, rec)
	if err := a.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if a.Snapshotter != "fuse-overlayfs" || a.ServiceMode != "direct" || !a.AddOns.Bypass4netns || a.AddOns.BuildKit ||
		a.RootlessKit.NetworkDriver != "pasta" || a.RootlessKit.DetachNetns != "true" {
		t.Errorf("defaults = %+v", a)
	}
	f.Systemd.UserManager = probe.Known(true)
	if a := DefaultAnswers(f, probe.Recommendation{}); a.ServiceMode != "systemd" || a.Validate() != nil || a.Snapshotter != "native" {
		t.Errorf("defaults with a user manager and no recommendation = %+v (%v)", a, a.Validate())
	}
}

func FuzzParseAnswers(f *testing.F) {
	b, _ := validAnswers().Marshal()
	f.Add(b)
	f.Add([]byte("schema_version = 1\n[rootlesskit]\nmtu = -1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := ParseAnswers(in, "fuzz.toml")
		if err == nil && a.Validate() != nil {
			t.Fatalf("ParseAnswers accepted answers that do not validate: %+v", a)
		}
	})
}
