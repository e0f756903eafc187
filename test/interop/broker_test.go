package interop

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// broker is where clients connect: one mamori process serving plain MQTT
// on 127.0.0.1, or (with p nil) another listener of it under another name.
type broker struct {
	host string
	port int
	p    *brokertest.Proc
}

// portString is the port as client command lines want it.
func (b *broker) portString() string { return strconv.Itoa(b.port) }

// startBroker runs the mamori binary with a generated mosquitto.conf
// (`listener PORT 127.0.0.1`, `allow_anonymous true`, then extra lines) and
// returns once it accepts connections. It is stopped with SIGTERM at the
// end of the test, and a data race or panic it reports fails the test.
// Unlike the clients it has no lifetime of its own: it serves the whole
// test, however long the clients take.
func startBroker(t *testing.T, extra ...string) *broker {
	t.Helper()
	b := brokertest.StartBroker(t, brokertest.BrokerConfig{Bin: mamoriBin, Dir: t.TempDir(),
		Conf: func(port int) string {
			conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", port)
			hasUser := false
			for _, l := range extra {
				conf += l + "\n"
				hasUser = hasUser || strings.HasPrefix(l, "user ")
			}
			if !hasUser {
				// As root the broker would drop to the mosquitto user, who
				// cannot read the test's private files, and refuse to start.
				conf += "user root\n"
			}
			return conf
		}}, brokertest.Lifetime(0))
	mustAccept(t, b.Proc, b.Port)
	return &broker{host: "127.0.0.1", port: b.Port, p: b.Proc}
}

// waitListening waits until the broker p logs that it runs and then
// accepts a TCP connection on port. It returns false if the broker exited
// because the port was taken, and fails the test for any other early exit.
func waitListening(t *testing.T, p *brokertest.Proc, port int) bool {
	t.Helper()
	if !brokertest.WaitRunning(t, p, "") {
		return false
	}
	mustAccept(t, p, port)
	return true
}

// mustAccept connects to port once the broker p has logged that it runs.
// The log line comes after every listener is bound, so a connection that
// succeeds then reaches this broker and not a stranger that grabbed the
// port.
func mustAccept(t *testing.T, p *brokertest.Proc, port int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), awaitTimeout)
	if err != nil {
		t.Fatalf("%s: %v", p.Name(), err)
	}
	c.Close()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int { return brokertest.FreePort(t, "127.0.0.1") }
