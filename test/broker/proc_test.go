package brokercmd

import (
	"strings"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

const (
	// awaitTimeout bounds each wait for one event; generous for -race on a
	// busy machine, never reached by a passing test.
	awaitTimeout = brokertest.AwaitTimeout
	// stopGrace is how long a broker has to exit after SIGTERM.
	stopGrace = brokertest.StopGrace
)

// startProc starts argv with the extra environment env. Every process of
// this suite, client or broker, is stopped with SIGTERM at cleanup, as an
// operator would stop it, and killed if it lingers.
func startProc(t *testing.T, name string, argv []string, env ...string) *brokertest.Proc {
	t.Helper()
	return brokertest.Start(t, name, argv, brokertest.Gentle(), brokertest.Env(env...))
}

// startBroker writes the configuration conf(port) — with port a free TCP
// port on the loopback interface — and runs `mamori broker -c` on it until
// it logs that it is running or, when it logs to a file, until the port
// accepts connections. Unless the configuration has a `user` line, `user
// root` is added: the tests run as root, and by default the broker would
// drop privileges to the mosquitto user, who cannot read the test's
// private directory on SIGHUP.
func startBroker(t *testing.T, conf func(port int) string, args ...string) *brokertest.Broker {
	t.Helper()
	return brokertest.StartBroker(t, brokertest.BrokerConfig{Bin: mamoriBin, Dir: t.TempDir(), Args: args, DialReady: true,
		Conf: func(port int) string {
			text := conf(port)
			if !strings.Contains(text, "\nuser ") && !strings.HasPrefix(text, "user ") {
				text = "user root\n" + text
			}
			return text
		}})
}

// freePort returns a TCP port on host that was free a moment ago.
func freePort(t *testing.T, host string) int { return brokertest.FreePort(t, host) }
