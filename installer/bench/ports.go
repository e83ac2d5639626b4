package bench

import (
	"fmt"
	"net"
	"strconv"
)

// Ports are taken on every address at once ("tcp" on ":port" is a dual-stack wildcard socket):
// the servers bind one address (the host's, or 127.0.0.1 for RootlessKit's port driver), but
// bypass4netns binds a published port on the wildcard address the container asked for, which any
// other listener on that port, on any address, would make fail.

// freePort asks the kernel for a TCP port that is free on every address. The listener is closed
// at once: the port stays free for the moment the server needs to take it, and a server that loses
// the race says "Address already in use", which the scenario reports with its fix.
func freePort() (int, error) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkPortFree confirms that a port the user chose is free on every address.
func checkPortFree(port int) error {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return &Error{Err: fmt.Errorf("%w: port %d: %w", ErrPortInUse, port, err), Fix: fixPortInUse}
	}
	return l.Close()
}

// pickPort is the port a scenario uses: the user's, when free, or a free one.
func (b *bench) pickPort() (int, error) {
	if b.opts.Port != 0 {
		return b.opts.Port, checkPortFree(b.opts.Port)
	}
	return freePort()
}
