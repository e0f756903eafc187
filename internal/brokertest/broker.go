package brokertest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BrokerEnv keeps the broker's own files (a local CA, persistence) inside
// the test's directory dir, never in $HOME, and makes a race-enabled
// binary exit without its default one-second sleep (atexit_sleep_ms),
// which catches late reports the stopped broker cannot make and, per
// test, adds up.
func BrokerEnv(dir string) []string {
	return []string{"MAMORI_DATA_DIR=" + filepath.Join(dir, "data"),
		strings.TrimSpace("GORACE=" + os.Getenv("GORACE") + " atexit_sleep_ms=0")}
}

// BrokerConfig says how StartBroker runs `mamori broker`.
type BrokerConfig struct {
	// Bin is the mamori binary (see Main).
	Bin string
	// Dir holds mamori.conf and, through BrokerEnv, the broker's data.
	Dir string
	// Conf is the configuration for a free port on 127.0.0.1, written as
	// is: called again with a new port when the first one was taken.
	Conf func(port int) string
	// Args follow `broker -c FILE`.
	Args []string
	// DialReady counts the broker as running once the port accepts a
	// connection, for a broker that logs to a file rather than stderr.
	// The port must then be a TCP listener's.
	DialReady bool
}

// Broker is a running broker that StartBroker started.
type Broker struct {
	*Proc
	// Dir is BrokerConfig.Dir.
	Dir string
	// Conf is the configuration file, which reload tests rewrite.
	Conf string
	// Port is the port Conf was written for.
	Port int
}

// Addr is 127.0.0.1:Port, for clients to dial.
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", b.PortString()) }

// PortString is Port as command lines want it.
func (b *Broker) PortString() string { return strconv.Itoa(b.Port) }

// StartBroker writes cfg.Conf(port), with port a TCP port on 127.0.0.1
// that was free a moment ago, and runs the broker on it until it is
// running (see WaitRunning). Another process may take the port before the
// broker binds it; then the broker exits and a new port is tried.
//
// The broker is stopped with SIGTERM at the end of the test, and a data
// race or panic it reports, or an unclean exit, fails the test. opts go to
// Start after BrokerEnv and Gentle.
func StartBroker(t testing.TB, cfg BrokerConfig, opts ...Option) *Broker {
	t.Helper()
	path := filepath.Join(cfg.Dir, "mamori.conf")
	for attempt := 1; ; attempt++ {
		port := FreePort(t, "127.0.0.1")
		// 0644: a broker that drops to its `user` reads it again on
		// SIGHUP, and must be able to (the test directory stays private
		// unless a test opens it).
		if err := os.WriteFile(path, []byte(cfg.Conf(port)), 0o644); err != nil {
			t.Fatal(err)
		}
		argv := append([]string{cfg.Bin, "broker", "-c", path}, cfg.Args...)
		p := Start(t, fmt.Sprintf("mamori broker on port %d", port), argv,
			append([]Option{Env(BrokerEnv(cfg.Dir)...), Gentle()}, opts...)...)
		addr := ""
		if cfg.DialReady {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
		if WaitRunning(t, p, addr) {
			// Registered after Start's cleanup, so run before it: the
			// output that cleanup shows for a failed test then includes
			// what made this check fail.
			t.Cleanup(func() { checkBrokerLog(t, p) })
			return &Broker{Proc: p, Dir: cfg.Dir, Conf: path, Port: port}
		}
		if attempt == 5 {
			t.Fatalf("could not bind a free port in %d attempts", attempt)
		}
	}
}

// WaitRunning waits until the broker p logs that it is running, which it
// does once every listener is bound, or, when addr is not empty, until
// addr accepts a connection. It returns false if the broker exited because
// a port was taken, so that the caller can retry with another, and fails
// the test for any other early exit.
func WaitRunning(t testing.TB, p *Proc, addr string) bool {
	t.Helper()
	deadline := time.NewTimer(AwaitTimeout)
	defer deadline.Stop()
	for {
		ch := p.Changed()
		exited := p.Exited()
		if p.HasLine(" running") {
			return true
		}
		if exited {
			if p.HasLine("address already in use") {
				return false
			}
			t.Fatalf("%s exited at start: %v", p.Name(), p.ExitErr())
		}
		var poll <-chan time.Time
		if addr != "" {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return true
			}
			// Nothing is printed while the port starts accepting.
			poll = time.After(50 * time.Millisecond)
		}
		select {
		case <-ch:
		case <-poll:
		case <-deadline.C:
			t.Fatalf("%s: not running after %v", p.Name(), AwaitTimeout)
		}
	}
}

// checkBrokerLog stops the broker and fails the test on a race report, a
// recovered panic or an unclean exit, which the test's own checks would
// not notice.
func checkBrokerLog(t testing.TB, p *Proc) {
	p.Stop(true)
	for _, bad := range []string{"WARNING: DATA RACE", "panic"} {
		if p.HasLine(bad) {
			t.Errorf("%s logged %q; see its output below", p.Name(), bad)
		}
	}
	if err := p.ExitErr(); err != nil {
		t.Errorf("%s exited with %v after SIGTERM", p.Name(), err)
	}
}
