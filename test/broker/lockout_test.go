package brokercmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/pki"
)

// silentConns opens n TCP connections to addr from the loopback address
// from, sends nothing on them, and closes them when the test ends.
func silentConns(t *testing.T, addr, from string, n int) []net.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("silent connection %d from %s: %v", len(conns), from, err)
		}
		conns = append(conns, c)
	}
	return conns
}

// stillOpen reports whether the server has not closed c: a read finds
// neither data nor end of stream. A close by the server is already queued
// when this runs, so the short read deadline only bounds the probe.
func stillOpen(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// TestHandshakeLockout (issue 20, item 3): silent connections that never
// start a TLS handshake — more from one address than the old listener-wide
// limit of 256 — must not keep a real client out of a TLS, WSS or TLS-PSK
// listener.
// Eight "witness" connections from 127.0.0.2 are opened first: under the
// old limit they held the first slots, so a real client could only get in
// once they had timed out. Here the real client must complete its
// handshake and CONNECT while the witnesses are still pending, and the
// flood from 127.0.0.1 (the real client's own address) and from 127.0.0.3
// costs only those addresses.
func TestHandshakeLockout(t *testing.T) {
	loc, _, err := pki.EnsureLocal(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	pskFile := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(pskFile, []byte("dev1:00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tls", "wss", "psk"} {
		wss, psk := name == "wss", name == "psk"
		t.Run(name, func(t *testing.T) {
			b := startBroker(t, func(port int) string {
				switch {
				case psk:
					return fmt.Sprintf("listener %d 127.0.0.1\npsk_hint h\npsk_file %s\nallow_anonymous true\n", port, pskFile)
				case wss:
					return fmt.Sprintf("listener %d 127.0.0.1\nprotocol websockets\ncertfile %s\nkeyfile %s\nallow_anonymous true\n",
						port, loc.CertFile, loc.KeyFile)
				}
				return fmt.Sprintf("listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\nallow_anonymous true\n",
					port, loc.CertFile, loc.KeyFile)
			})
			witnesses := silentConns(t, b.Addr(), "127.0.0.2", 8)
			silentConns(t, b.Addr(), "127.0.0.1", 300)
			silentConns(t, b.Addr(), "127.0.0.3", 50)

			switch {
			case psk:
				mosquittoPub(t, "-h", "127.0.0.1", "-p", b.PortString(), "--psk", "00112233445566778899aabbccddeeff",
					"--psk-identity", "dev1", "-i", "real", "-q", "1", "-t", "lockout/1", "-m", "in")
			case wss:
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(mustRead(t, loc.CAFile)) {
					t.Fatal("no CA certificate")
				}
				tc := &tls.Config{RootCAs: pool, ServerName: "localhost"}
				c := dial(t, client.Options{ClientID: "real", ConnectTimeout: awaitTimeout, Dial: func(ctx context.Context) (net.Conn, error) {
					return client.DialWebSocket(ctx, "wss://"+b.Addr()+"/mqtt", tc, nil)
				}})
				c.subscribe("lockout/#")
				c.publish("lockout/1", "in")
				c.expect("lockout/1", "in")
			default:
				mosquittoPub(t, "-h", "127.0.0.1", "-p", b.PortString(), "--cafile", loc.CAFile,
					"-i", "real", "-q", "1", "-t", "lockout/1", "-m", "in")
			}
			for i, c := range witnesses {
				if !stillOpen(c) {
					t.Fatalf("witness connection %d was closed before the real client got in: the listener was locked out until the silent connections timed out", i)
				}
			}
			b.WaitLine("too many TLS handshakes in progress from 127.0.0.1 ")
			b.WaitLine("too many TLS handshakes in progress from 127.0.0.3 ")
			if n := b.Count("too many TLS handshakes in progress from 127.0.0.1 "); n != 1 {
				t.Errorf("the flood from 127.0.0.1 was logged %d times, want once", n)
			}
			if b.HasLine("from 127.0.0.2 ") {
				t.Error("the witnesses from 127.0.0.2, within the limit, were treated as a flood")
			}
		})
	}
}
