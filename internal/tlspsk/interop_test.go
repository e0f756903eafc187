package tlspsk_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
	"github.com/mamori-mqtt/mamori/internal/tlspsk"
)

const (
	interopKeyHex = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	interopID     = "device-7"
)

var interopKey, _ = hex.DecodeString(interopKeyHex)

// greetServer accepts connections with cfg; after a successful handshake
// it writes one line naming the identity, version and suite, and closes
// with close_notify. Each handshake's result goes to the channel.
func greetServer(t *testing.T, cfg *tlspsk.Config) (int, <-chan error) {
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
			sc := tlspsk.Server(c, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err = sc.HandshakeContext(ctx)
			cancel()
			if err == nil {
				st := sc.State()
				_, err = fmt.Fprintf(sc, "hello %s over %x %s\n", sc.Identity(), st.Version, tlspsk.CipherSuiteName(st.CipherSuite))
			}
			results <- err
			sc.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, results
}

func serverConfig() *tlspsk.Config {
	return &tlspsk.Config{Hint: "mamori-hint", GetKey: func(id string) ([]byte, bool) {
		if id == interopID {
			return interopKey, true
		}
		return nil, false
	}}
}

func awaitResult(t *testing.T, results <-chan error) error {
	t.Helper()
	select {
	case err := <-results:
		return err
	case <-time.After(brokertest.AwaitTimeout):
		t.Fatal("no handshake result")
		return nil
	}
}

// TestOpenSSLClient connects openssl s_client to the server with each
// version and suite OpenSSL offers for PSK.
func TestOpenSSLClient(t *testing.T) {
	brokertest.RequireTools(t, "openssl")
	tests := []struct {
		name  string
		args  []string
		want  string
		suite string
	}{
		{"tls13", []string{"-tls1_3"}, "304", "TLS_AES_128_GCM_SHA256"},
		{"tls13 chacha", []string{"-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"}, "304", "TLS_CHACHA20_POLY1305_SHA256"},
		{"tls13 p256", []string{"-tls1_3", "-groups", "P-256"}, "304", "TLS_AES_128_GCM_SHA256"},
		{"tls13 hello retry", []string{"-tls1_3", "-groups", "ffdhe2048:X25519"}, "304", "TLS_AES_128_GCM_SHA256"},
		{"tls12 default", []string{"-tls1_2"}, "303", "ECDHE-PSK-CHACHA20-POLY1305"},
		{"tls12 ecdhe-psk-chacha20", []string{"-tls1_2", "-cipher", "ECDHE-PSK-CHACHA20-POLY1305"}, "303", "ECDHE-PSK-CHACHA20-POLY1305"},
		{"tls12 psk-aes128-gcm", []string{"-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"}, "303", "PSK-AES128-GCM-SHA256"},
		{"tls12 psk-aes256-gcm", []string{"-tls1_2", "-cipher", "PSK-AES256-GCM-SHA384"}, "303", "PSK-AES256-GCM-SHA384"},
		{"tls12 psk-chacha20", []string{"-tls1_2", "-cipher", "PSK-CHACHA20-POLY1305"}, "303", "PSK-CHACHA20-POLY1305"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port, results := greetServer(t, serverConfig())
			argv := append([]string{"openssl", "s_client", "-connect", "127.0.0.1:" + strconv.Itoa(port),
				"-psk", interopKeyHex, "-psk_identity", interopID, "-ign_eof"}, tc.args...)
			p := brokertest.Start(t, "s_client", argv, brokertest.Lifetime(30*time.Second))
			if err := awaitResult(t, results); err != nil {
				t.Fatalf("server: %v", err)
			}
			want := fmt.Sprintf("hello %s over %s %s", interopID, tc.want, tc.suite)
			p.WaitLine(want)
			if err := p.Wait(); err != nil {
				t.Fatalf("s_client: %v", err)
			}
		})
	}
}

// TestOpenSSLClientRefused checks that a wrong key and an unknown
// identity fail on both sides with the alert and words that say so.
func TestOpenSSLClientRefused(t *testing.T) {
	brokertest.RequireTools(t, "openssl")
	tests := []struct {
		name, id, key string
		args          []string
		alert         tlspsk.Alert
		reason        string
		clientSees    string
	}{
		{"tls13 wrong key", interopID, "00ff00ff", []string{"-tls1_3"}, tlspsk.AlertDecryptError, "wrong key for PSK identity", "decrypt error"},
		{"tls13 unknown identity", "intruder", interopKeyHex, []string{"-tls1_3"}, tlspsk.AlertUnknownPSKIdentity, `unknown PSK identity "intruder"`, "unknown psk identity"},
		{"tls12 wrong key", interopID, "00ff00ff", []string{"-tls1_2"}, tlspsk.AlertBadRecordMAC, "wrong key for PSK identity", "bad record mac"},
		{"tls12 unknown identity", "intruder", interopKeyHex, []string{"-tls1_2"}, tlspsk.AlertUnknownPSKIdentity, `unknown PSK identity "intruder"`, "unknown psk identity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port, results := greetServer(t, serverConfig())
			argv := append([]string{"openssl", "s_client", "-connect", "127.0.0.1:" + strconv.Itoa(port),
				"-psk", tc.key, "-psk_identity", tc.id, "-ign_eof"}, tc.args...)
			p := brokertest.Start(t, "s_client", argv, brokertest.Lifetime(30*time.Second))
			err := awaitResult(t, results)
			var e *tlspsk.Error
			if !errors.As(err, &e) || e.Remote || e.Alert != tc.alert || !strings.Contains(e.Reason, tc.reason) {
				t.Fatalf("server: %v; want alert %v and %q", err, tc.alert, tc.reason)
			}
			p.WaitLine(tc.clientSees)
			if p.Wait() == nil {
				t.Fatal("s_client succeeded")
			}
		})
	}
}

// TestOpenSSLServer connects this package's client to openssl s_server
// -nocert, TLS 1.3 and TLS 1.2.
func TestOpenSSLServer(t *testing.T) {
	brokertest.RequireTools(t, "openssl")
	tests := []struct {
		name    string
		args    []string
		version uint16
		hint    string
	}{
		{"tls13", nil, tlspsk.VersionTLS13, ""},
		{"tls12 only", []string{"-tls1_2", "-psk_hint", "broker-hint"}, tlspsk.VersionTLS12, "broker-hint"},
		{"tls12 psk-aes128-gcm", []string{"-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"}, tlspsk.VersionTLS12, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port := brokertest.FreePort(t, "127.0.0.1")
			argv := append([]string{"openssl", "s_server", "-accept", "127.0.0.1:" + strconv.Itoa(port), "-nocert",
				"-psk", interopKeyHex, "-psk_identity", interopID, "-naccept", "1", "-rev", "-ign_eof"}, tc.args...)
			p := brokertest.Start(t, "s_server", argv, brokertest.Lifetime(30*time.Second))
			p.WaitLine("ACCEPT")
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				t.Fatal(err)
			}
			cc := tlspsk.Client(c, &tlspsk.Config{Identity: interopID, Key: interopKey})
			defer cc.Close()
			if err := cc.Handshake(); err != nil {
				t.Fatal(err)
			}
			st := cc.State()
			if st.Version != tc.version || st.IdentityHint != tc.hint {
				t.Fatalf("state %+v", st)
			}
			if _, err := cc.Write([]byte("ping from mamori\n")); err != nil {
				t.Fatal(err)
			}
			// -rev: s_server answers each line reversed.
			got, err := bufio.NewReader(cc).ReadString('\n')
			if err != nil || !strings.Contains(got, "iromam morf gnip") {
				t.Fatalf("s_server answered %q, %v", got, err)
			}
		})
	}
}

// TestGnuTLSClient connects gnutls-cli with a PSK: TLS 1.3, and TLS 1.2
// with plain PSK. (Debian's gnutls-cli 3.7.9 crashes after any TLS 1.2
// ECDHE-PSK handshake, openssl s_server's included, so that case is
// covered by OpenSSL alone.)
func TestGnuTLSClient(t *testing.T) {
	brokertest.RequireTools(t, "gnutls-cli")
	tests := []struct {
		name     string
		priority string
		want     string
	}{
		{"tls13", "NORMAL:+ECDHE-PSK:+PSK", "304 TLS_AES_128_GCM_SHA256"},
		{"tls13 chacha", "NORMAL:-CIPHER-ALL:+CHACHA20-POLY1305:+ECDHE-PSK:+PSK", "304 TLS_CHACHA20_POLY1305_SHA256"},
		{"tls12 psk", "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+PSK", "303 PSK-AES128-GCM-SHA256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port, results := greetServer(t, serverConfig())
			argv := []string{"gnutls-cli", "--pskusername", interopID, "--pskkey", interopKeyHex,
				"--priority", tc.priority, "-p", strconv.Itoa(port), "127.0.0.1"}
			p := brokertest.Start(t, "gnutls-cli", argv, brokertest.Lifetime(30*time.Second))
			if err := awaitResult(t, results); err != nil {
				t.Fatalf("server: %v", err)
			}
			p.WaitLine("hello " + interopID + " over " + tc.want)
		})
	}
}

// TestOpenSSLKeyUpdate: s_client's "K" command sends a KeyUpdate that
// requests ours; data keeps flowing both ways under the new keys.
func TestOpenSSLKeyUpdate(t *testing.T) {
	brokertest.RequireTools(t, "openssl")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	t.Cleanup(func() { ln.Close(); <-served })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		sc := tlspsk.Server(c, serverConfig())
		_, err = io.Copy(sc, sc) // echo until the client leaves
		sc.Close()
		served <- err
	}()
	stdin, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); stdinW.Close() })
	p := brokertest.Start(t, "s_client", []string{"openssl", "s_client", "-connect", ln.Addr().String(), "-tls1_3",
		"-psk", interopKeyHex, "-psk_identity", interopID}, brokertest.Stdin(stdin), brokertest.Lifetime(30*time.Second))
	send := func(s string) {
		if _, err := io.WriteString(stdinW, s); err != nil {
			t.Fatal(err)
		}
	}
	send("before-update\n")
	p.WaitLines("before-update", 1)
	send("K\n") // KeyUpdate, update_requested
	p.WaitLine("KEYUPDATE")
	send("after-update\n")
	p.WaitLines("after-update", 1)
}
