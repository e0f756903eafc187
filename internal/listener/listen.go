// Package listener opens the sockets that mosquitto.conf listeners describe:
// TCP on IPv4 and IPv6 (socket_domain, bind_address, bind_interface), unix
// domain sockets (`listener 0 /path/to.sock`) and MQTT over WebSockets
// (`protocol websockets`, with optional static files from http_dir).
//
// It only deals with sockets and transports; the MQTT protocol, per-listener
// limits and accept backoff for plain sockets live in package broker, which
// serves the net.Listeners and net.Conns this package produces.
package listener

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/mamori-mqtt/mamori/internal/config"
)

// Open binds the sockets of l. Most listeners have one socket; a listener
// with bind_interface and no socket_domain gets one per address family the
// interface has, as Mosquitto binds each address getaddrinfo returns.
// TLS is not applied here: the caller wraps the sockets.
func Open(l *config.Listener) ([]net.Listener, error) {
	if l.UnixPath != "" {
		ln, err := listenUnix(l.UnixPath)
		if err != nil {
			return nil, err
		}
		return []net.Listener{ln}, nil
	}
	if l.BindInterface == "" {
		ln, err := net.Listen(l.Network(), l.Addr())
		if err != nil {
			return nil, err
		}
		return []net.Listener{ln}, nil
	}
	addrs, err := InterfaceAddrs(l.BindInterface, l.SocketDomain, l.Bind)
	if err != nil {
		return nil, err
	}
	var lns []net.Listener
	for _, a := range addrs {
		network := "tcp4"
		if a.To4() == nil {
			network = "tcp6"
		}
		ln, err := net.Listen(network, net.JoinHostPort(a.String(), strconv.Itoa(l.Port)))
		if err != nil {
			for _, x := range lns {
				x.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// InterfaceAddrs returns the addresses a listener with bind_interface name
// binds: the interface's first address of each wanted family (both when
// domain is empty). Mosquitto 2 binds to the interface's address rather
// than using SO_BINDTODEVICE, which would need root after privileges are
// dropped; the address is looked up when the listener opens, so an address
// that changed later needs a restart, as in Mosquitto. When bind (the
// listener's own address) is one of the interface's addresses it is used,
// so an interface with several addresses can be narrowed to one.
func InterfaceAddrs(name string, domain config.SocketDomain, bind string) ([]net.IP, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("bind_interface %s: %w", name, err)
	}
	ifAddrs, err := ifc.Addrs()
	if err != nil {
		return nil, fmt.Errorf("bind_interface %s: %w", name, err)
	}
	var v4, v6 []net.IP
	for _, a := range ifAddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		// A link-local IPv6 address would need the interface as its zone
		// and is not what a client elsewhere can reach; skip it.
		if ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		if ipn.IP.To4() != nil {
			v4 = append(v4, ipn.IP)
		} else {
			v6 = append(v6, ipn.IP)
		}
	}
	if bindIP := net.ParseIP(bind); bindIP != nil {
		for _, ip := range append(append([]net.IP(nil), v4...), v6...) {
			if ip.Equal(bindIP) {
				return []net.IP{ip}, nil
			}
		}
	}
	var out []net.IP
	if domain != config.SocketDomainIPv6 && len(v4) > 0 {
		out = append(out, v4[0])
	}
	if domain != config.SocketDomainIPv4 && len(v6) > 0 {
		out = append(out, v6[0])
	}
	if len(out) == 0 {
		fam := "an IPv4 or IPv6"
		switch domain {
		case config.SocketDomainIPv4:
			fam = "an IPv4"
		case config.SocketDomainIPv6:
			fam = "a global or loopback IPv6"
		}
		return nil, fmt.Errorf("bind_interface %s: the interface has no %s address", name, fam)
	}
	return out, nil
}

// listenUnix binds a unix domain socket at path. A socket file left behind
// by a broker that did not exit cleanly is removed, as Mosquitto does; but
// unlike Mosquitto's unconditional unlink, a path that is not a socket, or
// a socket that another process still answers on, is left alone and
// reported, so a typo in the path cannot delete a file and two brokers
// cannot steal each other's socket.
//
// The socket file gets the usual permissions of the process umask (0777
// minus umask), as with Mosquitto: on Linux a client needs write permission
// on it to connect, so access is governed by the umask and the directory's
// permissions. The socket is removed when the listener is closed.
func listenUnix(path string) (net.Listener, error) {
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.Mode()&fs.ModeSocket == 0:
		return nil, fmt.Errorf("%s exists and is not a socket; not replacing it", path)
	case err == nil:
		if c, derr := net.DialTimeout("unix", path, time.Second); derr == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another process is listening on this socket", path)
		}
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, rerr)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	return ln, nil
}
