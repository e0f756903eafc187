package broker

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/auth"
	"github.com/mamori-mqtt/mamori/internal/broker"
	"github.com/mamori-mqtt/mamori/internal/config"
)

// -p means exactly the ports given, like Mosquitto's: the built-in TLS
// listener of the no-argument start is not opened, so brokers started
// with different -p ports never collide on 8883.
func TestPortFlagOpensOnlyThosePorts(t *testing.T) {
	cfg := config.Default()
	applyPorts(cfg, []int{1901, 1902})
	var ports []int
	for _, l := range cfg.Listeners {
		if l.AutoCert || l.TLS.Enabled() {
			t.Fatalf("-p left a TLS listener: %s", l)
		}
		ports = append(ports, l.Port)
	}
	if len(ports) != 2 || ports[0] != 1901 || ports[1] != 1902 {
		t.Fatalf("listeners on %v, want [1901 1902]", ports)
	}
}

// syncBuffer collects log output written from the code under test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// In the no-argument start a busy TLS port is a warning: the broker still
// serves plain MQTT.
func TestBusyBuiltInTLSPortIsAWarning(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freePort := free.Addr().(*net.TCPAddr).Port
	free.Close()

	cfg := config.Default()
	cfg.Listeners[0].Port = freePort
	cfg.Listeners[1].Port = busy.Addr().(*net.TCPAddr).Port
	t.Setenv("MAMORI_DATA_DIR", t.TempDir())
	var logs syncBuffer
	s := &server{cfg: cfg, stdout: io.Discard, stderr: io.Discard,
		log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	b, err := broker.New(broker.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	s.b = b
	defer s.closeAll()
	auths, err := s.buildAuth(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.openListeners(auths); err != nil {
		t.Fatalf("a busy built-in TLS port stopped the start: %v", err)
	}
	if !strings.Contains(logs.String(), "not serving TLS") {
		t.Fatalf("no warning about the busy TLS port; log:\n%s", logs.String())
	}
	if len(s.listeners[0].lns) != 1 || len(s.listeners[1].lns) != 0 {
		t.Fatalf("listening sockets: plain %d, TLS %d; want 1 and 0", len(s.listeners[0].lns), len(s.listeners[1].lns))
	}
}

// A malformed password file line does not stop the broker (as in
// Mosquitto): the user on it cannot log in, and the log names file and line.
func TestPasswordFileBadLineIsAWarning(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("bad:$6$\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := loadConf(t, "listener 1883 127.0.0.1\npassword_file "+pw+"\n")
	var logs syncBuffer
	s := &server{cfg: cfg, ver: auth.NewVerifier(auth.DefaultVerifierEntries), thr: auth.NewThrottle(),
		log: slog.New(slog.NewTextHandler(&logs, nil))}
	set, err := s.buildAuth(cfg)
	if err != nil {
		t.Fatalf("a bad line failed the load: %v", err)
	}
	if !strings.Contains(logs.String(), pw+":1") || !strings.Contains(logs.String(), "cannot log in") {
		t.Fatalf("no warning naming %s:1; log:\n%s", pw, logs.String())
	}
	ci := &broker.ClientInfo{ClientID: "c", Username: "bad"}
	if code := set.global.Authenticate(ci, []byte("x"), true); !code.IsError() {
		t.Fatal("the user on the bad line was let in")
	}
}
