package bench

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// Interface is one network interface and its addresses, as net.Interfaces reports them.
type Interface struct {
	Name  string
	Up    bool
	Loop  bool
	Addrs []netip.Prefix
}

// HostInterfaces lists this host's interfaces.
func HostInterfaces() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list the network interfaces: %w", err)
	}
	var out []Interface
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("list the addresses of %s: %w", ifc.Name, err)
		}
		i := Interface{Name: ifc.Name, Up: ifc.Flags&net.FlagUp != 0, Loop: ifc.Flags&net.FlagLoopback != 0}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				i.Addrs = append(i.Addrs, p)
			}
		}
		out = append(out, i)
	}
	return out, nil
}

// PickHostAddress chooses the address a container sends to when it measures container → host.
// containerd-rootless.sh always passes --disable-host-loopback to RootlessKit, so 127.0.0.1 (and
// slirp4netns's 10.0.2.2) do not reach the host from a container: the address must be one of the
// host's own, on an interface that is up and not loopback. IPv4 comes first (the default CNI
// bridge is IPv4 only), link-local addresses are left out (they need a zone), and the interfaces
// are taken in the kernel's order. It is always an address of this machine: the benchmark never
// sends anything elsewhere.
func PickHostAddress(ifs []Interface) (netip.Addr, error) {
	var v4, v6 []netip.Addr
	for _, ifc := range ifs {
		if !ifc.Up || ifc.Loop {
			continue
		}
		for _, p := range ifc.Addrs {
			a := p.Addr()
			if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
				continue
			}
			if a.Is4() || a.Is4In6() {
				v4 = append(v4, a.Unmap())
			} else {
				v6 = append(v6, a)
			}
		}
	}
	if all := slices.Concat(v4, v6); len(all) > 0 {
		return all[0], nil
	}
	return netip.Addr{}, &Error{Err: ErrNoHostAddress, Fix: fixNoHostAddress}
}

// CheckHostAddress accepts an address given by the user only when it is one of this host's, on an
// interface that is up: the benchmark sends nowhere else.
func CheckHostAddress(ifs []Interface, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("host address %q: %w", s, err)
	}
	a = a.Unmap()
	for _, ifc := range ifs {
		for _, p := range ifc.Addrs {
			if p.Addr().Unmap() == a && ifc.Up {
				if a.IsLoopback() {
					return netip.Addr{}, &Error{Err: fmt.Errorf("host address %s is a loopback address, which containers cannot reach", a), Fix: fixNoHostAddress}
				}
				return a, nil
			}
		}
	}
	return netip.Addr{}, &Error{Err: fmt.Errorf("host address %s is not an address of this host", a),
		Fix: "name an address of one of this host's interfaces (`ip -brief address`), or leave out --host-address"}
}

// hostAddress is the address containers reach the host at, picked once per run.
func (b *bench) hostAddress() (netip.Addr, error) {
	if b.hostAddr.IsValid() {
		return b.hostAddr, nil
	}
	ifs, err := b.opts.Interfaces()
	if err != nil {
		return netip.Addr{}, err
	}
	if b.opts.HostAddress.IsValid() {
		b.hostAddr, err = CheckHostAddress(ifs, b.opts.HostAddress.String())
	} else {
		b.hostAddr, err = PickHostAddress(ifs)
	}
	return b.hostAddr, err
}
