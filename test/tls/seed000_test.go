package tls

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// paho runs testdata/paho_tls.py with the given session and returns its
// output and exit error.
func paho(t *testing.T, b *brokertest.Broker, spec map[string]any) (string, error) {
	t.Helper()
	brokertest.RequireTools(t, "/usr/bin/python3")
	if _, err := run(t, "/usr/bin/python3", "-c", "import paho.mqtt.client"); err != nil {
		t.Skip("python3-paho-mqtt not installed")
	}
	spec["port"] = b.Port
	spec["topic"] = "seed/000"
	spec["resolve"] = map[string]string{"mqtt.example.com": "127.0.0.1", "mqtt.local": "127.0.0.1"}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return run(t, "/usr/bin/python3", filepath.Join(testdataDir, "paho_tls.py"), string(js))
}

// subjectOf runs "openssl s_client -servername" and returns the
// "subject=" and "issuer=" lines of the certificate the broker presented.
func subjectOf(t *testing.T, b *brokertest.Broker, sni string) string {
	t.Helper()
	args := []string{"openssl", "s_client", "-connect", b.Addr()}
	if sni != "" {
		args = append(args, "-servername", sni)
	} else {
		args = append(args, "-noservername")
	}
	out, _ := run(t, args...)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "subject=") || strings.HasPrefix(l, "issuer=") {
			lines = append(lines, strings.ReplaceAll(strings.TrimSpace(l), " ", ""))
		}
	}
	return strings.Join(lines, ";")
}

// TestSeed000 follows seed 000: a server certificate from CA1 with
// CN=mqtt.local and no SAN; a Paho Python client that connects to
// mqtt.example.com (stage 1 verification only, then with hostname checking,
// then with the wrong CA); and, where the seed needed nginx in front of
// Mosquitto, one mamori port choosing between CA1's and CA2's certificates
// by SNI.
func TestSeed000(t *testing.T) {
	brokertest.RequireTools(t, "openssl")
	dir := t.TempDir()
	seedCA(t, dir, "ca1", "/CN=CA1")
	seedCA(t, dir, "ca2", "/CN=CA2")
	seedLeaf(t, dir, "server1", "/CN=mqtt.local", "ca1")
	seedLeaf(t, dir, "server2", "/CN=mqtt.example.com", "ca2")
	ca1, ca2 := filepath.Join(dir, "ca1.crt"), filepath.Join(dir, "ca2.crt")

	t.Run("verification 1: one certificate", func(t *testing.T) {
		b := startBroker(t, t.TempDir(), func(port int) string {
			return tlsListener(port, "cafile "+ca1, "certfile "+filepath.Join(dir, "server1.crt"),
				"keyfile "+filepath.Join(dir, "server1.key"), "tls_version tlsv1.2", "allow_anonymous true")
		})
		for _, tc := range []struct {
			name      string
			cafile    string
			checkHost bool
			ok        bool
			why       string
		}{
			{"check_hostname=False, CERT_REQUIRED: stage 1 only", ca1, false, true, ""},
			{"check_hostname=True: the CN differs", ca1, true, false, "mqtt.example.com"},
			{"the wrong CA", ca2, false, false, "CERTIFICATE_VERIFY_FAILED"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, err := paho(t, b, map[string]any{"host": "mqtt.example.com", "cafile": tc.cafile, "check_hostname": tc.checkHost})
				switch {
				case tc.ok && err != nil:
					t.Fatalf("Paho failed: %v\n%s", err, out)
				case tc.ok && !strings.Contains(out, "message hello from paho"):
					t.Fatalf("no message back:\n%s", out)
				case !tc.ok && err == nil:
					t.Fatalf("Paho connected:\n%s", out)
				case !tc.ok && !strings.Contains(out, tc.why):
					t.Errorf("Paho's error does not mention %q:\n%s", tc.why, out)
				}
			})
		}
	})

	t.Run("verification 2: SNI on one port", func(t *testing.T) {
		b := startBroker(t, t.TempDir(), func(port int) string {
			return tlsListener(port,
				"certfile "+filepath.Join(dir, "server1.crt"), "keyfile "+filepath.Join(dir, "server1.key"),
				"certfile "+filepath.Join(dir, "server2.crt"), "keyfile "+filepath.Join(dir, "server2.key"),
				"allow_anonymous true")
		})
		for _, tc := range []struct{ sni, want string }{
			{"mqtt.local", "subject=CN=mqtt.local;issuer=CN=CA1"},
			{"mqtt.example.com", "subject=CN=mqtt.example.com;issuer=CN=CA2"},
			{"", "subject=CN=mqtt.local;issuer=CN=CA1"}, // no SNI: the first pair
		} {
			if got := subjectOf(t, b, tc.sni); !strings.Contains(got, tc.want) {
				t.Errorf("s_client -servername %q: got %q, want %q", tc.sni, got, tc.want)
			}
		}
		// Connecting to mqtt.example.com while sending SNI mqtt.local, with
		// CA1 and hostname checking on, succeeds...
		out, err := paho(t, b, map[string]any{"host": "mqtt.example.com", "sni": "mqtt.local", "cafile": ca1, "check_hostname": true})
		if err != nil || !strings.Contains(out, "message hello from paho") {
			t.Fatalf("Paho with SNI mqtt.local: %v\n%s", err, out)
		}
		// ...without the override, the broker presents CA2's certificate,
		// which CA1 does not verify (stage 1)...
		out, err = paho(t, b, map[string]any{"host": "mqtt.example.com", "cafile": ca1, "check_hostname": true})
		if err == nil || !strings.Contains(out, "CERTIFICATE_VERIFY_FAILED") {
			t.Fatalf("Paho without SNI override: %v\n%s", err, out)
		}
		// ...and with CA2 it is verified by name too.
		out, err = paho(t, b, map[string]any{"host": "mqtt.example.com", "cafile": ca2, "check_hostname": true})
		if err != nil {
			t.Fatalf("Paho to mqtt.example.com with CA2: %v\n%s", err, out)
		}
	})
}
