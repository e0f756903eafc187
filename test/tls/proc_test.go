package tls

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// awaitTimeout bounds each wait for one line of output.
const awaitTimeout = brokertest.AwaitTimeout

// start runs argv. The process is killed (by its PID) when the test ends,
// or after brokertest.ProcLifetime.
func start(t *testing.T, argv ...string) *brokertest.Proc {
	t.Helper()
	return brokertest.Start(t, strings.Join(append([]string{filepath.Base(argv[0])}, argv[1:]...), " "), argv)
}

// run runs a command to its end and returns its combined output.
func run(t *testing.T, argv ...string) (string, error) {
	t.Helper()
	p := start(t, argv...)
	err := p.Wait()
	return p.Output(), err
}

// mustRun is run that fails the test on a non-zero exit.
func mustRun(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := run(t, argv...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

// startBroker writes conf(port) to dir/mamori.conf and runs the broker
// with -v until it logs that it runs.
func startBroker(t *testing.T, dir string, conf func(port int) string) *brokertest.Broker {
	t.Helper()
	brokertest.RequireTools(t, "openssl")
	return brokertest.StartBroker(t, brokertest.BrokerConfig{Bin: mamoriBin, Dir: dir, Args: []string{"-v"},
		Conf: func(port int) string {
			text := conf(port)
			if os.Geteuid() == 0 {
				// As root the broker drops to the mosquitto user, like
				// Mosquitto, and could then not re-read the test's
				// private files when they change.
				text += "user root\n"
			}
			return text
		}})
}

// brokerFails runs the broker on conf and returns its output, failing the
// test unless it exits non-zero without running.
func brokerFails(t *testing.T, dir, conf string) string {
	t.Helper()
	path := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := brokertest.Start(t, "mamori broker -c "+path, []string{mamoriBin, "broker", "-c", path},
		brokertest.Env(brokertest.BrokerEnv(dir)...))
	err := p.Wait()
	if err == nil || p.HasLine(" running") {
		t.Fatalf("broker started (%v):\n%s", err, p.Output())
	}
	return p.Output()
}

// tlsListener is the first lines of a broker configuration: a listener on
// 127.0.0.1 and the given options, one per line.
func tlsListener(port int, lines ...string) string {
	return fmt.Sprintf("listener %d 127.0.0.1\n%s\n", port, strings.Join(lines, "\n"))
}
