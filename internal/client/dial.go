package client

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/coder/websocket"
)

// ContextDialer opens a network connection; *net.Dialer and *SOCKS5 are
// ContextDialers.
type ContextDialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// TCPDialer returns a dialer bound to the local address bind (an IP or host
// name, as mosquitto's -A; empty for any) that disables Nagle's algorithm
// when noDelay is set.
func TCPDialer(bind string, noDelay bool) (ContextDialer, error) {
	d := &net.Dialer{}
	if bind != "" {
		ip := net.ParseIP(bind)
		if ip == nil {
			addrs, err := net.LookupIP(bind)
			if err != nil || len(addrs) == 0 {
				return nil, fmt.Errorf("bind address %s: cannot resolve", bind)
			}
			ip = addrs[0]
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	if noDelay {
		return d, nil // Go sets TCP_NODELAY on every TCP connection already
	}
	return &nagleDialer{d}, nil
}

// nagleDialer keeps Nagle's algorithm on, as libmosquitto does unless
// --nodelay is given, so small packets may be coalesced.
type nagleDialer struct{ d *net.Dialer }

func (n *nagleDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := n.d.DialContext(ctx, network, address)
	if err == nil {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(false)
		}
	}
	return c, err
}

// DialWebSocket opens an MQTT-over-WebSocket connection to url ("ws://" or
// "wss://host:port/path") with the subprotocol "mqtt". tlsConfig is used for
// wss; forward, when non-nil, opens the underlying TCP connection (for a
// proxy or a bind address). The returned net.Conn carries binary frames.
func DialWebSocket(ctx context.Context, url string, tlsConfig *tls.Config, forward ContextDialer) (net.Conn, error) {
	tr := &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: false}
	if forward != nil {
		tr.DialContext = forward.DialContext
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		Subprotocols: []string{"mqtt"},
	})
	if err != nil {
		var cv *tls.CertificateVerificationError
		var re tls.RecordHeaderError
		var ae tls.AlertError
		if errors.As(err, &cv) || errors.As(err, &re) || errors.As(err, &ae) {
			return nil, &HandshakeError{Err: err}
		}
		return nil, err
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	ws.SetReadLimit(-1)
	// The context given to NetConn governs the connection's lifetime, not
	// the dial, so it must outlive ctx.
	return websocket.NetConn(context.WithoutCancel(ctx), ws, websocket.MessageBinary), nil
}

// SOCKS5 is a dialer that connects through a SOCKS5 proxy (RFC 1928) with
// no authentication or username/password authentication (RFC 1929), the
// two methods mosquitto supports. Host names are resolved by the proxy
// ("socks5h").
type SOCKS5 struct {
	Proxy    string // host:port of the proxy
	Username string
	Password string
	Forward  ContextDialer // reaches the proxy; nil for a plain net.Dialer
}

// DialContext connects to address through the proxy.
func (s *SOCKS5) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	fwd := s.Forward
	if fwd == nil {
		fwd = &net.Dialer{}
	}
	conn, err := fwd.DialContext(ctx, "tcp", s.Proxy)
	if err != nil {
		return nil, fmt.Errorf("socks5 proxy %s: %w", s.Proxy, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err = s.handshake(conn, address)
	stop()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("socks5 proxy %s: %w", s.Proxy, err)
	}
	conn.SetDeadline(noDeadline)
	return conn, nil
}

func (s *SOCKS5) handshake(conn net.Conn, address string) error {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("bad port in %q", address)
	}
	auth := s.Username != "" || s.Password != ""
	greet := []byte{5, 1, 0}
	if auth {
		greet = []byte{5, 2, 0, 2}
	}
	if _, err := conn.Write(greet); err != nil {
		return err
	}
	var rep [2]byte
	if _, err := io.ReadFull(conn, rep[:]); err != nil {
		return err
	}
	if rep[0] != 5 {
		return errors.New("not a SOCKS5 proxy")
	}
	switch rep[1] {
	case 0:
	case 2:
		if !auth {
			return errors.New("proxy requires a user name and password")
		}
		if len(s.Username) > 255 || len(s.Password) > 255 {
			return errors.New("user name or password longer than 255 bytes")
		}
		req := []byte{1, byte(len(s.Username))}
		req = append(req, s.Username...)
		req = append(req, byte(len(s.Password)))
		req = append(req, s.Password...)
		if _, err := conn.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, rep[:]); err != nil {
			return err
		}
		if rep[1] != 0 {
			return errors.New("proxy rejected the user name or password")
		}
	default:
		return errors.New("proxy accepts none of our authentication methods")
	}
	req := []byte{5, 1, 0}
	if ip := net.ParseIP(host); ip != nil {
		if ip4 := ip.To4(); ip4 != nil {
			req = append(append(req, 1), ip4...)
		} else {
			req = append(append(req, 4), ip.To16()...)
		}
	} else {
		if len(host) > 255 {
			return errors.New("host name too long")
		}
		req = append(append(req, 3, byte(len(host))), host...)
	}
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := conn.Write(req); err != nil {
		return err
	}
	var head [4]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return err
	}
	if head[1] != 0 {
		return fmt.Errorf("connect to %s refused: %s", address, socksReply(head[1]))
	}
	var skip int
	switch head[3] {
	case 1:
		skip = 4
	case 4:
		skip = 16
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return err
		}
		skip = int(l[0])
	default:
		return errors.New("bad address type in reply")
	}
	_, err = io.ReadFull(conn, make([]byte, skip+2))
	return err
}

func socksReply(code byte) string {
	switch code {
	case 1:
		return "general failure"
	case 2:
		return "not allowed by ruleset"
	case 3:
		return "network unreachable"
	case 4:
		return "host unreachable"
	case 5:
		return "connection refused"
	case 6:
		return "TTL expired"
	case 7:
		return "command not supported"
	case 8:
		return "address type not supported"
	}
	return "reply code " + strconv.Itoa(int(code))
}
