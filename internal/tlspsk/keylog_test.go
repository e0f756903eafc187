package tlspsk

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestKeyLog: client and server write the same NSS key log lines (the
// labels Wireshark reads) for TLS 1.3 and TLS 1.2.
func TestKeyLog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    uint16
		labels []string
	}{
		{"tls13", VersionTLS13, []string{"CLIENT_HANDSHAKE_TRAFFIC_SECRET ", "SERVER_HANDSHAKE_TRAFFIC_SECRET ", "CLIENT_TRAFFIC_SECRET_0 ", "SERVER_TRAFFIC_SECRET_0 "}},
		{"tls12", VersionTLS12, []string{"CLIENT_RANDOM "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srvLog, cliLog lockedBuffer
			addr, results := echoServer(t, &Config{GetKey: keyLookup(map[string][]byte{"dev1": testKey}), KeyLogWriter: &srvLog})
			if _, err := dialPSK(t, addr, &Config{Identity: "dev1", Key: testKey, MaxVersion: tc.max, KeyLogWriter: &cliLog}); err != nil {
				t.Fatal(err)
			}
			if err := <-results; err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(cliLog.String()), "\n")
			if cliLog.String() != srvLog.String() || len(lines) != len(tc.labels) {
				t.Fatalf("client log:\n%s\nserver log:\n%s", cliLog.String(), srvLog.String())
			}
			for i, l := range lines {
				f := strings.Fields(l)
				if !strings.HasPrefix(l, tc.labels[i]) || len(f) != 3 || len(f[1]) != 64 {
					t.Errorf("line %d: %q", i, l)
				}
			}
		})
	}
}

// TestNoKeyInErrors: refusals never carry the key, in any form.
func TestNoKeyInErrors(t *testing.T) {
	wrong := []byte("a-wrong-key-of-the-client")
	for _, max := range []uint16{VersionTLS13, VersionTLS12} {
		addr, results := echoServer(t, &Config{GetKey: keyLookup(map[string][]byte{"dev1": testKey})})
		_, cerr := dialPSK(t, addr, &Config{Identity: "dev1", Key: wrong, MaxVersion: max})
		serr := <-results
		for _, err := range []error{cerr, serr} {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not a refusal: %v", err)
			}
			for _, k := range [][]byte{testKey, wrong} {
				if strings.Contains(err.Error(), hex.EncodeToString(k)) || strings.Contains(err.Error(), string(k)) {
					t.Errorf("error shows a key: %v", err)
				}
			}
		}
	}
}
