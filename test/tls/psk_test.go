package tls

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
func startMosquittoPSK(t *testing.T, extra string, opts ...brokertest.Option) int {
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
	p := brokertest.Start(t, "mosquitto", []string{"/usr/sbin/mosquitto", "-c", path, "-v"}, opts...)
	p.WaitLine("running")
	return port
}

// TestPSKClientMosquittoBroker: mamori sub and pub with --psk against
// Debian's mosquitto broker, TLS 1.3 and TLS 1.2, and the refusals of a
// wrong key and an unknown identity explained.
func TestPSKClientMosquittoBroker(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tls12 bool
	}{
		{"tls13", false},
		// mosquitto's tls_version is a minimum: OpenSSL's configuration
		// caps this broker at TLS 1.2, so the client must fall back.
		{"tls12 only broker", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := startMosquittoPSK(t, "", tls12Only(t, tc.tls12)...)
			if tc.tls12 {
				out, err := run(t, mamoriBin, "pub", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "--psk", pskKey, "--psk-identity", pskID,
					"--tls-version", "tlsv1.3", "-t", "x", "-m", "y")
				if err == nil || !strings.Contains(out, "no TLS version in common") {
					t.Fatalf("the broker accepted TLS 1.3 (%v):\n%s", err, out)
				}
			}
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
			brokertest.Start(t, "mamori pub", []string{mamoriBin, "pub", "-h", "127.0.0.1", "-p", strconv.Itoa(port),
				"--psk", pskKey, "--psk-identity", pskID, "-t", "x", "-m", "y", "-u", "through-psk\n"}, brokertest.Lifetime(30*time.Second))
			srv.WaitLine("CIPHER is " + tc.want)
			// s_server prints the decrypted CONNECT as it comes; the user
			// name's newline ends the line. pub waits for a CONNACK that
			// never comes and is stopped by the cleanup.
			srv.WaitFor("the decrypted CONNECT", func() bool {
				for _, l := range srv.Lines() {
					if strings.Contains(l, "MQTT") && strings.Contains(l, "through-psk") {
						return true
					}
				}
				return false
			})
		})
	}
}

// pskBroker starts mamori with a TLS-PSK listener: psk_file holds
// pskID's key, use_identity_as_username makes the identity the user name
// the ACL's pattern uses, and nobody may connect without it.
func pskBroker(t *testing.T, extra string) (*brokertest.Broker, string) {
	t.Helper()
	dir := t.TempDir()
	pskFile := filepath.Join(dir, "psk")
	if err := os.WriteFile(pskFile, []byte("# devices\n"+pskID+":"+pskKey+"\nother:0a0b0c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte("pattern readwrite devices/%u/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, dir, func(port int) string {
		return tlsListener(port, "psk_hint mamori-hint", "psk_file "+pskFile, "use_identity_as_username true",
			"acl_file "+acl, "allow_anonymous false", extra)
	})
	return b, pskFile
}

// TestPSKBroker: mosquitto_sub/pub and mamori sub/pub with --psk against
// mamori's TLS-PSK listener, TLS 1.3 and --tls-version tlsv1.2; the PSK
// identity is the user name the ACL pattern expands.
func TestPSKBroker(t *testing.T) {
	b, _ := pskBroker(t, "")
	for _, tc := range []struct{ name, sub, pub string }{
		// stdbuf: mosquitto_sub's -d lines are awaited while it runs.
		{"mosquitto tls13", "stdbuf -oL mosquitto_sub", "mosquitto_pub"},
		{"mamori tls13", mamoriBin + " sub", mamoriBin + " pub"},
		{"mosquitto tls12", "stdbuf -oL mosquitto_sub --tls-version tlsv1.2", "mosquitto_pub --tls-version tlsv1.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sub[0] != '/' {
				brokertest.RequireTools(t, "mosquitto_sub", "stdbuf")
			}
			topic := "devices/" + pskID + "/" + tc.name
			common := []string{"-h", "127.0.0.1", "-p", b.PortString(), "--psk", pskKey, "--psk-identity", pskID, "-t", topic}
			opts := tls12Only(t, strings.HasSuffix(tc.name, "tls12"))
			sub := brokertest.Start(t, "sub", append(append(fieldsOf(tc.sub), "-d", "-C", "1"), common...), opts...)
			sub.WaitLine("SUBACK")
			pub := brokertest.Start(t, "pub", append(append(fieldsOf(tc.pub), "-m", "psk-"+tc.name), common...), opts...)
			if err := pub.Wait(); err != nil {
				t.Fatalf("pub: %v\n%s", err, pub.Output())
			}
			sub.WaitLine("psk-" + tc.name)
			if err := sub.Wait(); err != nil {
				t.Fatalf("sub: %v", err)
			}
		})
	}
	// --tls-keylog writes the NSS key log Wireshark reads.
	t.Run("keylog", func(t *testing.T) {
		keyLog := filepath.Join(t.TempDir(), "keys.log")
		mustRun(t, mamoriBin, "pub", "-h", "127.0.0.1", "-p", b.PortString(), "--psk", pskKey, "--psk-identity", pskID,
			"-t", "devices/"+pskID+"/k", "-m", "x", "--tls-keylog", keyLog)
		data, err := os.ReadFile(keyLog)
		if err != nil {
			t.Fatal(err)
		}
		for _, label := range []string{"CLIENT_HANDSHAKE_TRAFFIC_SECRET ", "SERVER_HANDSHAKE_TRAFFIC_SECRET ", "CLIENT_TRAFFIC_SECRET_0 ", "SERVER_TRAFFIC_SECRET_0 "} {
			if !strings.Contains(string(data), label) {
				t.Errorf("key log lacks %s:\n%s", label, data)
			}
		}
	})
	// The ACL applies to the identity: another device's topic is refused.
	t.Run("acl", func(t *testing.T) {
		p := start(t, mamoriBin, "sub", "-h", "127.0.0.1", "-p", b.PortString(), "--psk", pskKey, "--psk-identity", pskID,
			"-t", "devices/other/x", "-d", "-C", "1", "-W", "10")
		p.WaitLine("SUBACK")
		p.WaitLine("Subscribed (mid: 1): 128")
	})
	// The tls12 clients' connect lines.
	b.WaitLine(`tls="TLS 1.2" cipher="ECDHE-PSK-CHACHA20-POLY1305"`)
}

// TestPSKBrokerRefused: a wrong key and an unknown identity are refused
// with the right alert; the broker logs the reason once per attempt.
func TestPSKBrokerRefused(t *testing.T) {
	brokertest.RequireTools(t, "mosquitto_pub")
	metricsPort := brokertest.FreePort(t, "127.0.0.1")
	b, _ := pskBroker(t, fmt.Sprintf("metrics_listener 127.0.0.1:%d", metricsPort))
	for _, tc := range []struct{ name, key, id, tlsVersion, log string }{
		{"wrong key tls13", "0badc0ffee", pskID, "tlsv1.3", `wrong PSK key: wrong key for PSK identity "` + pskID + `"`},
		{"unknown identity tls13", pskKey, "intruder", "tlsv1.3", `unknown PSK identity: unknown PSK identity "intruder"`},
		{"wrong key tls12", "0badc0ffee", pskID, "tlsv1.2", `wrong PSK key: wrong key for PSK identity "` + pskID + `"`},
		{"unknown identity tls12", pskKey, "intruder12", "tlsv1.2", `unknown PSK identity: unknown PSK identity "intruder12"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Count(tc.log)
			p := brokertest.Start(t, "mosquitto_pub", []string{"mosquitto_pub", "-h", "127.0.0.1", "-p", b.PortString(), "--psk", tc.key, "--psk-identity", tc.id,
				"-t", "x", "-m", "y"}, tls12Only(t, tc.tlsVersion == "tlsv1.2")...)
			if p.Wait() == nil {
				t.Fatal("mosquitto_pub succeeded")
			}
			b.WaitLines(tc.log, before+1)
		})
	}
	// mamori's own client says what is wrong.
	for _, tc := range []struct{ name, key, id, want string }{
		{"mamori wrong key", "0badc0ffee", pskID, `has a different key for identity "` + pskID + `"`},
		{"mamori unknown identity", pskKey, "stranger", `does not know the identity "stranger"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, mamoriBin, "pub", "-h", "127.0.0.1", "-p", b.PortString(), "--psk", tc.key, "--psk-identity", tc.id, "-t", "x", "-m", "y")
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("pub (%v) does not say %q:\n%s", err, tc.want, out)
			}
		})
	}
	// Counted by reason.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`mamori_tls_handshake_failures_total{listener="` + b.PortString() + `",reason="unknown PSK identity"} 3`,
		`mamori_tls_handshake_failures_total{listener="` + b.PortString() + `",reason="wrong PSK key"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestPSKBrokerReload: SIGHUP re-reads psk_file; the old key stops
// working and the new one works, without a restart.
func TestPSKBrokerReload(t *testing.T) {
	b, pskFile := pskBroker(t, "")
	pub := func(key string) error {
		_, err := run(t, mamoriBin, "pub", "-h", "127.0.0.1", "-p", b.PortString(), "--psk", key, "--psk-identity", pskID,
			"-t", "devices/"+pskID+"/r", "-m", "x")
		return err
	}
	if err := pub(pskKey); err != nil {
		t.Fatalf("before reload: %v", err)
	}
	// "other" is connected and leaves psk_file: the reload disconnects it.
	other := start(t, mamoriBin, "sub", "-h", "127.0.0.1", "-p", b.PortString(), "--psk", "0a0b0c", "--psk-identity", "other",
		"-t", "devices/other/#", "-d")
	other.WaitLine("SUBACK")
	const newKey = "c0ffee0123456789"
	if err := os.WriteFile(pskFile, []byte(pskID+":"+newKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Signal(syscall.SIGHUP)
	b.WaitLine("PSK files re-read; 1 client(s) disconnected")
	// It reconnects (as mosquitto_sub does) and is refused.
	b.WaitLine(`unknown PSK identity "other" (not in psk_file)`)
	other.Stop(false)
	if err := pub(pskKey); err == nil {
		t.Fatal("the old key still works after the reload")
	}
	if err := pub(newKey); err != nil {
		t.Fatalf("the new key: %v", err)
	}
}

// TestPSKBrokerConfigErrors: certificates and PSK on one listener, and
// psk_hint without psk_file, are configuration errors that say so.
func TestPSKBrokerConfigErrors(t *testing.T) {
	dir := t.TempDir()
	pskFile := filepath.Join(dir, "psk")
	if err := os.WriteFile(pskFile, []byte(pskID+":"+pskKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, lines, want string }{
		{"certificates and psk", "certfile /nonexistent.crt\nkeyfile /nonexistent.key\npsk_hint h\npsk_file " + pskFile,
			"has both certificates and psk_hint; one listener can use only one of them"},
		{"no psk_file", "psk_hint h\nallow_anonymous true", "has no psk_file, so no client could connect"},
		{"cipher not available", "psk_hint h\npsk_file " + pskFile + "\nciphers DHE-PSK-AES256-GCM-SHA384", `cipher "DHE-PSK-AES256-GCM-SHA384" is not available for TLS-PSK`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := brokerFails(t, t.TempDir(), "listener 1883 127.0.0.1\n"+tc.lines+"\n")
			if !strings.Contains(out, tc.want) {
				t.Errorf("error does not say %q:\n%s", tc.want, out)
			}
		})
	}
}

func fieldsOf(s string) []string { return strings.Fields(s) }

// tls12Only returns the options that make OpenSSL-based clients
// (mosquitto_pub/sub) stop at TLS 1.2 when on is set: their --tls-version
// is a minimum, so an OpenSSL configuration sets the maximum instead.
func tls12Only(t *testing.T, on bool) []brokertest.Option {
	t.Helper()
	if !on {
		return nil
	}
	path := filepath.Join(t.TempDir(), "openssl-tls12.cnf")
	conf := "openssl_conf = default_conf\n[default_conf]\nssl_conf = ssl_sect\n[ssl_sect]\nsystem_default = system_default_sect\n[system_default_sect]\nMaxProtocol = TLSv1.2\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return []brokertest.Option{brokertest.Env("OPENSSL_CONF=" + path)}
}

// TestPSKBrokerFileChange: a psk_file replaced on disk (atomic rename, as
// deployment tools write) is re-read without a signal.
func TestPSKBrokerFileChange(t *testing.T) {
	b, pskFile := pskBroker(t, "")
	pub := func(key string) error {
		_, err := run(t, mamoriBin, "pub", "-h", "127.0.0.1", "-p", b.PortString(), "--psk", key, "--psk-identity", pskID,
			"-t", "devices/"+pskID+"/w", "-m", "x")
		return err
	}
	const newKey = "feedfacefeedface"
	tmp := pskFile + ".new"
	if err := os.WriteFile(tmp, []byte(pskID+":"+newKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, pskFile); err != nil {
		t.Fatal(err)
	}
	b.WaitLine("PSK files re-read")
	if err := pub(newKey); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	if err := pub(pskKey); err == nil {
		t.Fatal("the old key still works")
	}
}

// TestPSKBrokerKeyLog: mamori broker --tls-keylog writes the same
// secrets the client logs, so Wireshark can decrypt a capture.
func TestPSKBrokerKeyLog(t *testing.T) {
	dir := t.TempDir()
	pskFile := filepath.Join(dir, "psk")
	if err := os.WriteFile(pskFile, []byte(pskID+":"+pskKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	brokerLog := filepath.Join(dir, "broker-keys.log")
	b := brokertest.StartBroker(t, brokertest.BrokerConfig{Bin: mamoriBin, Dir: dir, Args: []string{"-v", "--tls-keylog", brokerLog},
		Conf: func(port int) string {
			conf := tlsListener(port, "psk_hint h", "psk_file "+pskFile, "allow_anonymous true")
			if os.Geteuid() == 0 {
				conf += "user root\n" // the test's 0600 files stay readable, as in startBroker
			}
			return conf
		}})
	b.WaitLine("--tls-keylog: the TLS secrets of every connection are written to")
	clientLog := filepath.Join(dir, "client-keys.log")
	mustRun(t, mamoriBin, "pub", "-h", "127.0.0.1", "-p", b.PortString(), "--psk", pskKey, "--psk-identity", pskID,
		"-t", "k", "-m", "x", "--tls-keylog", clientLog)
	want, err := os.ReadFile(clientLog)
	if err != nil {
		t.Fatal(err)
	}
	b.WaitFor("the broker's key log", func() bool {
		got, _ := os.ReadFile(brokerLog)
		return len(got) >= len(want)
	})
	got, _ := os.ReadFile(brokerLog)
	if string(got) != string(want) || strings.Count(string(got), "\n") != 4 {
		t.Fatalf("broker key log:\n%s\nclient key log:\n%s", got, want)
	}
}
