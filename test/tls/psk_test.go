package tls

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// The pre-shared key of these tests, as mosquitto's psk_file and --psk
// write it.
const (
	pskKey = "6d616d6f72692d70736b2d6b6579"
	pskID  = "sensor-12"
)

// startMosquittoPSK runs Debian's mosquitto with a PSK listener; extra
// lines go into the listener.
func startMosquittoPSK(t *testing.T, extra string) int {
	t.Helper()
	brokertest.RequireTools(t, "/usr/sbin/mosquitto")
	dir := t.TempDir()
	pskFile := filepath.Join(dir, "psk")
	if err := os.WriteFile(pskFile, []byte(pskID+":"+pskKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := brokertest.FreePort(t, "127.0.0.1")
	conf := fmt.Sprintf("per_listener_settings true\nlistener %d 127.0.0.1\npsk_hint mosquitto-hint\npsk_file %s\nallow_anonymous true\n%s\n", port, pskFile, extra)
	if os.Geteuid() == 0 {
		conf = "user root\n" + conf
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := brokertest.Start(t, "mosquitto", []string{"/usr/sbin/mosquitto", "-c", path, "-v"})
	p.WaitLine("running")
	return port
}

// TestPSKClientMosquittoBroker: mamori sub and pub with --psk against
// Debian's mosquitto broker, TLS 1.3 and TLS 1.2, and the refusals of a
// wrong key and an unknown identity explained.
func TestPSKClientMosquittoBroker(t *testing.T) {
	for _, tc := range []struct{ name, listener string }{
		{"tls13", ""},
		{"tls12 only broker", "ciphers_tls1.3 TLS_AES_128_GCM_SHA256\ntls_version tlsv1.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := startMosquittoPSK(t, tc.listener)
			common := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "--psk", pskKey, "--psk-identity", pskID, "-t", "psk/test"}
			sub := start(t, append([]string{mamoriBin, "sub", "-d", "-C", "1"}, common...)...)
			sub.WaitLine("SUBACK")
			mustRun(t, append([]string{mamoriBin, "pub", "-m", "over-psk"}, common...)...)
			sub.WaitLine("over-psk")
			if err := sub.Wait(); err != nil {
				t.Fatalf("sub: %v", err)
			}
		})
	}
	port := startMosquittoPSK(t, "")
	for _, tc := range []struct{ name, key, id, want string }{
		{"wrong key", "0badc0ffee", pskID, "has a different key for identity \"" + pskID + "\""},
		{"unknown identity", pskKey, "nobody", "does not know the identity \"nobody\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, mamoriBin, "pub", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "--psk", tc.key, "--psk-identity", tc.id, "-t", "x", "-m", "y")
			if p.Wait() == nil {
				t.Fatal("pub succeeded")
			}
			if !p.HasLine(tc.want) {
				t.Fatalf("output does not say %q:\n%s", tc.want, p.Output())
			}
		})
	}
}

// TestPSKClientOpenSSLServer: mamori pub's TLS-PSK handshake with openssl
// s_server -nocert, TLS 1.3 and TLS 1.2 (s_server limited to it); s_server
// prints the suite and then the MQTT CONNECT it decrypted.
func TestPSKClientOpenSSLServer(t *testing.T) {
	brokertest.RequireTools(t, "openssl")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"tls13", nil, "TLS_AES_128_GCM_SHA256"},
		{"tls12", []string{"-tls1_2"}, "ECDHE-PSK-CHACHA20-POLY1305"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := brokertest.FreePort(t, "127.0.0.1")
			// s_server sends what it reads on stdin and stops at its
			// end: give it a pipe that stays open until the test ends.
			// An *os.File is handed to the child as is (no copying
			// goroutine for Wait to wait for).
			stdin, stdinW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stdin.Close(); stdinW.Close() })
			srv := brokertest.Start(t, "s_server", append([]string{"openssl", "s_server", "-accept", "127.0.0.1:" + strconv.Itoa(port), "-nocert",
				"-psk", pskKey, "-psk_identity", pskID, "-naccept", "1"}, tc.args...), brokertest.Stdin(stdin))
			srv.WaitLine("ACCEPT")
			pub := brokertest.Start(t, "mamori pub", []string{mamoriBin, "pub", "-h", "127.0.0.1", "-p", strconv.Itoa(port),
				"--psk", pskKey, "--psk-identity", pskID, "-t", "x", "-m", "y"}, brokertest.Lifetime(30*time.Second))
			srv.WaitLine("CIPHER is " + tc.want)
			// s_server prints the decrypted CONNECT without a newline; the
			// line ends when the connection does. pub waits for a CONNACK
			// that never comes: stop it.
			pub.Stop(false)
			srv.WaitLine("MQTT")
		})
	}
}
