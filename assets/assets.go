// Package assets holds the files virt-setup ships inside its binary: the host profiles replayed with
// --host-profile, and later the templates the installer writes.
//
// It imports nothing of this module, so every other package (probe included) can import it.
package assets

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// The host profiles are generated from the fake hosts of probe/probetest by running the probe on
// each; assets/hosts_test.go fails when they drift from what the probe now records.
//
//go:generate go run ../internal/tools/genprofiles -out hosts

// Hosts holds the shipped host profiles as hosts/NAME.json: facts documents of the schema in
// probe/facts.go, read by probe.LoadProfile.
//
//go:embed hosts/*.json
var Hosts embed.FS

// HostProfileNames lists the shipped host profiles by name (the file name without ".json"), sorted.
func HostProfileNames() []string {
	// The directory is embedded at build time (the go:embed pattern fails the build when it matches
	// nothing), so reading it cannot fail.
	return ProfileNames(Hosts)
}

// ProfileNames lists the profiles (hosts/NAME.json) in fsys, sorted.
func ProfileNames(fsys fs.FS) []string {
	entries, _ := fs.ReadDir(fsys, "hosts")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// HostProfile returns the JSON of the shipped profile name.
func HostProfile(name string) ([]byte, error) {
	if name == "" || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("host profile %q: not a profile name", name)
	}
	b, err := fs.ReadFile(Hosts, "hosts/"+name+".json")
	if err != nil {
		return nil, fmt.Errorf("host profile %q: %w (shipped: %s)", name, err, strings.Join(HostProfileNames(), ", "))
	}
	return b, nil
}
