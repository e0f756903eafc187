package tlspsk

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

var testKey, _ = hex.DecodeString("0102030405060708090a0b0c0d0e0f10")

func keyLookup(keys map[string][]byte) func(string) ([]byte, bool) {
	return func(id string) ([]byte, bool) { k, ok := keys[id]; return k, ok }
}

// echoServer serves one connection per accept with cfg, echoing data
// back; handshake results go to the returned channel.
func echoServer(t *testing.T, cfg *Config) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 16)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sc := Server(c, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = sc.HandshakeContext(ctx)
			cancel()
			results <- err
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(sc, sc); sc.Close() }()
		}
	}()
	return ln.Addr().String(), results
}

func dialPSK(t *testing.T, addr string, cfg *Config) (*Conn, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cc := Client(c, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cc, cc.HandshakeContext(ctx)
}

func TestPairs(t *testing.T) {
	server := func(mod func(*Config)) *Config {
		c := &Config{GetKey: keyLookup(map[string][]byte{"dev1": testKey}), Hint: "mamori"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	client := func(mod func(*Config)) *Config {
		c := &Config{Identity: "dev1", Key: testKey}
		if mod != nil {
			mod(c)
		}
		return c
	}
	tests := []struct {
		name           string
		srv, cli       func(*Config)
		version, suite uint16
		hint           string
	}{
		{"tls13 default", nil, nil, VersionTLS13, TLS_AES_128_GCM_SHA256, ""},
		{"tls13 chacha", nil, func(c *Config) { c.CipherSuites = []uint16{TLS_CHACHA20_POLY1305_SHA256} }, VersionTLS13, TLS_CHACHA20_POLY1305_SHA256, ""},
		{"tls13 p256", nil, func(c *Config) { c.CurvePreferences = []CurveID{P256} }, VersionTLS13, TLS_AES_128_GCM_SHA256, ""},
		{"tls13 hello retry", func(c *Config) { c.CurvePreferences = []CurveID{P256} }, nil, VersionTLS13, TLS_AES_128_GCM_SHA256, ""},
		{"tls12 ecdhe-psk chacha", nil, func(c *Config) { c.MaxVersion = VersionTLS12 }, VersionTLS12, TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256, "mamori"},
		{"tls12 psk aes128", nil, func(c *Config) {
			c.MaxVersion = VersionTLS12
			c.CipherSuites = []uint16{TLS_PSK_WITH_AES_128_GCM_SHA256}
		}, VersionTLS12, TLS_PSK_WITH_AES_128_GCM_SHA256, "mamori"},
		{"tls12 psk aes256", nil, func(c *Config) {
			c.MaxVersion = VersionTLS12
			c.CipherSuites = []uint16{TLS_PSK_WITH_AES_256_GCM_SHA384}
		}, VersionTLS12, TLS_PSK_WITH_AES_256_GCM_SHA384, "mamori"},
		{"tls12 psk chacha", nil, func(c *Config) {
			c.MaxVersion = VersionTLS12
			c.CipherSuites = []uint16{TLS_PSK_WITH_CHACHA20_POLY1305_SHA256}
		}, VersionTLS12, TLS_PSK_WITH_CHACHA20_POLY1305_SHA256, "mamori"},
		{"server only tls12", func(c *Config) { c.MaxVersion = VersionTLS12 }, nil, VersionTLS12, TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256, "mamori"},
		{"server without tls13 suites", func(c *Config) { c.CipherSuites = []uint16{TLS_PSK_WITH_AES_128_GCM_SHA256} }, nil, VersionTLS12, TLS_PSK_WITH_AES_128_GCM_SHA256, "mamori"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, results := echoServer(t, server(tc.srv))
			cc, err := dialPSK(t, addr, client(tc.cli))
			if err != nil {
				t.Fatalf("client handshake: %v (server: %v)", err, <-results)
			}
			if err := <-results; err != nil {
				t.Fatalf("server handshake: %v", err)
			}
			st := cc.State()
			if st.Version != tc.version || st.CipherSuite != tc.suite || st.IdentityHint != tc.hint {
				t.Fatalf("state %+v, want version %x suite %s hint %q", st, tc.version, CipherSuiteName(tc.suite), tc.hint)
			}
			msg := bytes.Repeat([]byte("0123456789abcdef"), 3000) // several records
			go cc.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(cc, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("echo differs")
			}
			if tc.version == VersionTLS13 {
				if err := cc.KeyUpdate(true); err != nil {
					t.Fatal(err)
				}
				cc.Write([]byte("after update"))
				got := make([]byte, 12)
				if _, err := io.ReadFull(cc, got); err != nil || string(got) != "after update" {
					t.Fatalf("after KeyUpdate: %q %v", got, err)
				}
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name        string
		cli         *Config
		serverAlert Alert
	}{
		{"tls13 unknown identity", &Config{Identity: "nobody", Key: testKey}, AlertUnknownPSKIdentity},
		{"tls13 wrong key", &Config{Identity: "dev1", Key: []byte("wrong")}, AlertDecryptError},
		{"tls12 unknown identity", &Config{Identity: "nobody", Key: testKey, MaxVersion: VersionTLS12}, AlertUnknownPSKIdentity},
		{"tls12 wrong key", &Config{Identity: "dev1", Key: []byte("wrong"), MaxVersion: VersionTLS12}, AlertBadRecordMAC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, results := echoServer(t, &Config{GetKey: keyLookup(map[string][]byte{"dev1": testKey})})
			_, cerr := dialPSK(t, addr, tc.cli)
			serr := <-results
			var e *Error
			if !errors.As(serr, &e) || e.Remote || e.Alert != tc.serverAlert {
				t.Fatalf("server: %v, want alert %v", serr, tc.serverAlert)
			}
			if !errors.As(cerr, &e) || !e.Remote || e.Alert != tc.serverAlert {
				t.Fatalf("client: %v, want remote alert %v", cerr, tc.serverAlert)
			}
			t.Logf("server: %v\nclient: %v", serr, cerr)
		})
	}
}

// TestEarlyDataSkipped: a client that sends 0-RTT data gets a normal
// 1-RTT handshake; the server skips the data it cannot decrypt (RFC 8446
// §4.2.10), also after a HelloRetryRequest, and never delivers it.
func TestEarlyDataSkipped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		curves []CurveID
	}{{"1-RTT", nil}, {"after HelloRetryRequest", []CurveID{P256}}} {
		t.Run(tc.name, func(t *testing.T) {
			addr, results := echoServer(t, &Config{GetKey: keyLookup(map[string][]byte{"dev1": testKey}), CurvePreferences: tc.curves})
			cc, err := dialPSK(t, addr, &Config{Identity: "dev1", Key: testKey, earlyData: bytes.Repeat([]byte("0-RTT!"), 1000)})
			if err != nil {
				t.Fatalf("client: %v (server: %v)", err, <-results)
			}
			if err := <-results; err != nil {
				t.Fatalf("server: %v", err)
			}
			cc.Write([]byte("1-RTT"))
			got := make([]byte, 5)
			if _, err := io.ReadFull(cc, got); err != nil || string(got) != "1-RTT" {
				t.Fatalf("echo %q, %v (early data must not be delivered)", got, err)
			}
		})
	}
}
