package bench

import (
	"fmt"
	"slices"
	"strings"
)

// ScenarioID names one measurement; the IDs are stable (baselines and --scenario use them).
type ScenarioID string

// The scenarios, in the order they run and are shown.
const (
	// ContainerToHost: the iperf3 client in a container sends to a server on the host's
	// non-loopback address, out through RootlessKit's network driver (slirp4netns here).
	ContainerToHost ScenarioID = "container-to-host"
	// ContainerToHostBypass4netns: the same with bypass4netns, whose sockets live on the host.
	ContainerToHostBypass4netns ScenarioID = "container-to-host-bypass4netns"
	// HostToContainer: a client on the host sends to a server in a container through a published
	// port (RootlessKit's port driver).
	HostToContainer ScenarioID = "host-to-container"
	// HostToContainerBypass4netns: the same with bypass4netns, which binds the published port on
	// the host itself.
	HostToContainerBypass4netns ScenarioID = "host-to-container-bypass4netns"
	// HostLoopback: client and server on the host's loopback, the most this machine can move.
	HostLoopback ScenarioID = "host-loopback"
)

// Direction is which way the data flows.
type Direction string

// Directions.
const (
	DirContainerToHost Direction = "container-to-host"
	DirHostToContainer Direction = "host-to-container"
	DirLoopback        Direction = "loopback"
)

// Scenario is one measurement the benchmark can run.
type Scenario struct {
	ID           ScenarioID `json:"id"`
	Title        string     `json:"title"`
	Direction    Direction  `json:"direction"`
	Bypass4netns bool       `json:"bypass4netns,omitempty"`
}

// Scenarios are all the measurements, in the order they run.
var Scenarios = []Scenario{
	{ContainerToHost, "container → host", DirContainerToHost, false},
	{ContainerToHostBypass4netns, "container → host, bypass4netns", DirContainerToHost, true},
	{HostToContainer, "host → container", DirHostToContainer, false},
	{HostToContainerBypass4netns, "host → container, bypass4netns", DirHostToContainer, true},
	{HostLoopback, "host loopback", DirLoopback, false},
}

// ScenarioByID returns the scenario with the ID.
func ScenarioByID(id ScenarioID) (Scenario, bool) {
	for _, s := range Scenarios {
		if s.ID == id {
			return s, true
		}
	}
	return Scenario{}, false
}

// ParseScenarios turns --scenario values (each a comma-separated list of IDs, or "all") into
// scenarios in run order, without duplicates. No values means all.
func ParseScenarios(values []string) ([]Scenario, error) {
	want := map[ScenarioID]bool{}
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			switch {
			case name == "":
			case name == "all":
				for _, s := range Scenarios {
					want[s.ID] = true
				}
			default:
				if _, ok := ScenarioByID(ScenarioID(name)); !ok {
					return nil, fmt.Errorf("unknown scenario %q; use one of: %s, all", name, strings.Join(ScenarioIDs(), ", "))
				}
				want[ScenarioID(name)] = true
			}
		}
	}
	if len(want) == 0 {
		return slices.Clone(Scenarios), nil
	}
	var out []Scenario
	for _, s := range Scenarios {
		if want[s.ID] {
			out = append(out, s)
		}
	}
	return out, nil
}

// ScenarioIDs lists every scenario ID in run order.
func ScenarioIDs() []string {
	out := make([]string, 0, len(Scenarios))
	for _, s := range Scenarios {
		out = append(out, string(s.ID))
	}
	return out
}
