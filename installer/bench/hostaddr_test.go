package bench

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func iface(name string, up, loop bool, addrs ...string) Interface {
	i := Interface{Name: name, Up: up, Loop: loop}
	for _, a := range addrs {
		i.Addrs = append(i.Addrs, netip.MustParsePrefix(a))
	}
	return i
}

func TestPickHostAddress(t *testing.T) {
	lo := iface("lo", true, true, "127.0.0.1/8", "::1/128")
	tests := []struct {
		name string
		ifs  []Interface
		want string
	}{
		{"this VM", []Interface{lo, iface("ifb0", false, false), iface("eth0", true, false, "192.0.2.2/24", "fd00::2/64", "fe80::fc:ff:fe00:1/64")}, "192.0.2.2"},
		{"IPv4 before IPv6 across interfaces", []Interface{lo, iface("wg0", true, false, "fd00::5/64"), iface("eth1", true, false, "10.1.2.3/16")}, "10.1.2.3"},
		{"interface that is down", []Interface{iface("eth0", false, false, "192.0.2.9/24"), iface("wlan0", true, false, "198.51.100.7/24")}, "198.51.100.7"},
		{"IPv6 only, link-local left out", []Interface{lo, iface("eth0", true, false, "fe80::1/64", "2001:db8::7/64")}, "2001:db8::7"},
		{"link-local IPv4 left out", []Interface{iface("eth0", true, false, "169.254.3.4/16", "192.0.2.4/24")}, "192.0.2.4"},
		{"IPv4-mapped", []Interface{iface("eth0", true, false, "::ffff:192.0.2.5/120")}, "192.0.2.5"},
	}
	for _, tt := range tests {
		got, err := PickHostAddress(tt.ifs)
		if err != nil || got.String() != tt.want {
			t.Errorf("%s: %v, %v; want %s", tt.name, got, err, tt.want)
		}
	}
	_, err := PickHostAddress([]Interface{lo, iface("eth0", true, false, "fe80::1/64")})
	if !errors.Is(err, ErrNoHostAddress) || !strings.Contains(FixFor(err), "--disable-host-loopback") {
		t.Errorf("loopback only: %v (fix %q)", err, FixFor(err))
	}
}

func TestCheckHostAddress(t *testing.T) {
	ifs := []Interface{iface("lo", true, true, "127.0.0.1/8"), iface("eth0", true, false, "192.0.2.2/24"), iface("eth1", false, false, "10.9.9.9/8")}
	if a, err := CheckHostAddress(ifs, "192.0.2.2"); err != nil || a.String() != "192.0.2.2" {
		t.Errorf("own address: %v %v", a, err)
	}
	for in, want := range map[string]string{
		"8.8.8.8":   "not an address of this host", // never anywhere else
		"10.9.9.9":  "not an address of this host", // interface down
		"127.0.0.1": "loopback",
		"eth0":      "ParseAddr",
	} {
		if _, err := CheckHostAddress(ifs, in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", in, err, want)
		}
	}
}
