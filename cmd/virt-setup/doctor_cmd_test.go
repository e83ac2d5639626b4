package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/assets"
	"github.com/virt-setup/virt-setup/probe"
)

func TestDoctorExitCodeFollowsChecks(t *testing.T) {
	names := assets.HostProfileNames()
	if len(names) < 10 {
		t.Fatalf("only %d shipped profiles: %v", len(names), names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, "doctor", "--host-profile", name, "--json")
			var rep probe.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("doctor --json: %v (stderr %q)", err, errOut)
			}
			if want := probe.ExitCode(rep.Checks); code != want {
				t.Errorf("exit code %d, want %d for these checks", code, want)
			}
			humanCode, text, _ := run(t, "doctor", "--host-profile", name)
			if humanCode != code {
				t.Errorf("human output exits %d, JSON %d", humanCode, code)
			}
			for _, c := range rep.Checks {
				if c.Status == probe.StatusFail && !strings.Contains(text, "✗ fail  "+c.ID) {
					t.Errorf("failing check %s is not shown as '✗ fail'", c.ID)
				}
			}
			if !strings.Contains(text, "Recommended setup") || !strings.Contains(text, "snapshotter   "+rep.Recommendation.Snapshotter) {
				t.Errorf("human output lacks the recommendation %q:\n%s", rep.Recommendation.Snapshotter, text)
			}
		})
	}
}

func TestDoctorUbuntu2404AppArmor(t *testing.T) {
	code, text, _ := run(t, "doctor", "--host-profile", "ubuntu-24.04")
	if code != exitFailures {
		t.Errorf("exit code %d, want %d", code, exitFailures)
	}
	for _, want := range []string{"✗ fail  VS-APPARMOR-001", "as root (review, then run with sudo):", "/etc/apparmor.d/", "replayed from ubuntu-24.04"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestExplain(t *testing.T) {
	code, list, _ := run(t, "explain")
	if code != exitOK {
		t.Fatalf("explain: exit %d", code)
	}
	if got, want := strings.Count(list, "\n"), len(probe.Catalog()); got != want {
		t.Errorf("explain lists %d lines, catalog has %d checks", got, want)
	}

	code, text, _ := run(t, "explain", "vs-idmap-001")
	if code != exitOK {
		t.Fatalf("explain vs-idmap-001: exit %d", code)
	}
	deb, fed, ok := strings.Cut(text, "Fix on Fedora and RHEL:")
	if !ok || !strings.Contains(deb, "Fix on Debian and Ubuntu:") {
		t.Fatalf("explain does not show both distro fixes:\n%s", text)
	}
	if !strings.Contains(deb, "uidmap") || !strings.Contains(fed, "shadow-utils") || strings.Contains(fed, "apt-get") {
		t.Errorf("distro fixes are not distro-specific:\n%s", text)
	}

	code, _, errOut := run(t, "explain", "VS-IDMAP-01")
	if code != exitUsage || !strings.Contains(errOut, "VS-IDMAP-001") {
		t.Errorf("mistyped ID: exit %d, stderr %q; want exit %d suggesting VS-IDMAP-001", code, errOut, exitUsage)
	}
}
