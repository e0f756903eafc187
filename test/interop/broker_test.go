package interop

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// broker is one mamori process serving plain MQTT on 127.0.0.1.
type broker struct {
	host string
	port int
	p    *proc
}

// portString is the port as client command lines want it.
func (b *broker) portString() string { return strconv.Itoa(b.port) }

// startBroker runs the mamori binary with a generated mosquitto.conf
// (`listener PORT 127.0.0.1`, `allow_anonymous true`, then extra lines) and
// returns once it accepts connections. It is stopped with SIGTERM at the
// end of the test, and a data race or panic it reports fails the test.
func startBroker(t *testing.T, extra ...string) *broker {
	t.Helper()
	dir := t.TempDir()
	// The port is picked by binding :0 and closing, so another process may
	// take it before the broker binds; then the broker exits and we retry
	// with a new port.
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", port)
		for _, l := range extra {
			conf += l + "\n"
		}
		path := filepath.Join(dir, "mamori.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(mamoriBin, "broker", "-c", path)
		// The broker's own files (a local CA, if it ever makes one) stay
		// inside the test's directory, never in $HOME.
		// A race-enabled binary sleeps a second at exit by default
		// (atexit_sleep_ms) to catch late reports; the broker has stopped
		// its goroutines by then, and the second per test adds up.
		cmd.Env = append(os.Environ(), "MAMORI_DATA_DIR="+filepath.Join(dir, "data"),
			strings.TrimSpace("GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0"))
		name := fmt.Sprintf("mamori broker on port %d", port)
		p := startProc(t, name, cmd, nil, true)
		if ok := waitListening(t, p, port); ok {
			t.Cleanup(func() { checkBrokerLog(t, p) })
			return &broker{host: "127.0.0.1", port: port, p: p}
		}
		if attempt == 5 {
			t.Fatalf("%s: could not bind a free port in %d attempts", name, attempt)
		}
	}
}

// waitListening waits until the broker logs that it runs and then accepts
// a TCP connection on port. It returns false if the broker exited because
// the port was taken, and fails the test for any other early exit.
func waitListening(t *testing.T, p *proc, port int) bool {
	t.Helper()
	deadline := time.NewTimer(awaitTimeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		// The log line comes after every listener is bound, so a connection
		// that succeeds afterwards reaches this broker and not a stranger
		// that grabbed the port.
		if p.hasLine(" running") {
			break
		}
		if p.isDone() {
			if p.hasLine("address already in use") {
				return false
			}
			t.Fatalf("%s exited at start: %v", p.name, p.exitErr())
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: not running after %v", p.name, awaitTimeout)
		}
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), awaitTimeout)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	c.Close()
	return true
}

// checkBrokerLog stops the broker and fails the test on a race report, a
// recovered panic or an unclean exit. It runs as a cleanup after the
// clients' cleanups (registered later, run earlier) and before the
// process's own, which then shows the output of a failed test.
func checkBrokerLog(t *testing.T, p *proc) {
	p.stop(true)
	for _, bad := range []string{"WARNING: DATA RACE", "panic"} {
		if p.hasLine(bad) {
			t.Errorf("%s logged %q; see its output below", p.name, bad)
		}
	}
	if err := p.exitErr(); err != nil {
		t.Errorf("%s exited with %v after SIGTERM", p.name, err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int { return brokertest.FreePort(t, "127.0.0.1") }
