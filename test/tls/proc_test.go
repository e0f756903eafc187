package tls

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

const (
	// lifetime bounds every process a test starts.
	lifetime = 60 * time.Second
	// awaitTimeout bounds each wait for one line of output.
	awaitTimeout = 20 * time.Second
	// stopGrace is how long a broker has to exit after SIGTERM.
	stopGrace = 10 * time.Second
)

// proc is a process whose combined output the test watches.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd

	mu      sync.Mutex
	out     bytes.Buffer
	changed chan struct{}
	done    chan struct{}
	err     error
}

type procWriter struct{ p *proc }

func (w procWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.p.out.Write(b)
	close(w.p.changed)
	w.p.changed = make(chan struct{})
	return len(b), nil
}

// start runs argv with the given extra environment. The process is killed
// (by its PID) when the test ends, or after lifetime.
func start(t *testing.T, env []string, argv ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lifetime)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{t: t, name: filepath.Base(argv[0]), cmd: cmd, changed: make(chan struct{}), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = procWriter{p}, procWriter{p}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %v: %v", argv, err)
	}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		close(p.done)
		cancel()
	}()
	t.Cleanup(func() {
		p.stop(false)
		if t.Failed() {
			t.Logf("%s %s (exit %v):\n%s", p.name, strings.Join(argv[1:], " "), p.exitErr(), p.output())
		}
	})
	return p
}

// stop ends the process if it still runs: SIGTERM first when gentle.
func (p *proc) stop(gentle bool) {
	if p.exited() {
		return
	}
	if gentle {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(stopGrace):
			p.t.Errorf("%s did not exit within %v of SIGTERM", p.name, stopGrace)
		}
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitOutput waits until the output contains s.
func (p *proc) waitOutput(s string) {
	p.t.Helper()
	p.waitOutputCount(s, 1)
}

// waitOutputCount waits until the output contains s at least n times.
func (p *proc) waitOutputCount(s string, n int) {
	p.t.Helper()
	deadline := time.NewTimer(awaitTimeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		ok := strings.Count(p.out.String(), s) >= n
		ch := p.changed
		p.mu.Unlock()
		if ok {
			return
		}
		if p.exited() {
			p.t.Fatalf("%s exited (%v) without printing %q:\n%s", p.name, p.exitErr(), s, p.output())
		}
		select {
		case <-ch:
		case <-deadline.C:
			p.t.Fatalf("%s: no %q within %v:\n%s", p.name, s, awaitTimeout, p.output())
		}
	}
}

// waitExit waits for the process to end and returns its error.
func (p *proc) waitExit() error {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(lifetime):
		p.t.Fatalf("%s still running after %v", p.name, lifetime)
	}
	return p.exitErr()
}

// run runs a command to its end and returns its combined output.
func run(t *testing.T, argv ...string) (string, error) {
	t.Helper()
	p := start(t, nil, argv...)
	err := p.waitExit()
	return p.output(), err
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

// need skips the test when a program is missing.
func need(t *testing.T, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed", p)
		}
	}
}

// broker is a mamori process serving a generated mosquitto.conf.
type broker struct {
	*proc
	port int
	conf string // the configuration file's path
}

// portString is the port for command lines.
func (b *broker) portString() string { return strconv.Itoa(b.port) }

// addr is 127.0.0.1:port.
func (b *broker) addr() string { return "127.0.0.1:" + b.portString() }

// startBroker writes conf(port) to dir/mamori.conf and runs the broker
// until it logs that it runs. A port taken meanwhile is retried.
func startBroker(t *testing.T, dir string, conf func(port int) string) *broker {
	t.Helper()
	need(t, "openssl")
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		path := filepath.Join(dir, "mamori.conf")
		text := conf(port)
		if os.Geteuid() == 0 {
			// As root the broker drops to the mosquitto user, like
			// Mosquitto, and could then not re-read the test's private
			// files when they change.
			text += "user root\n"
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		p := start(t, []string{"MAMORI_DATA_DIR=" + filepath.Join(dir, "data"), "GORACE=atexit_sleep_ms=0"},
			mamoriBin, "broker", "-c", path, "-v")
		b := &broker{proc: p, port: port, conf: path}
		deadline := time.NewTimer(awaitTimeout)
		for !strings.Contains(p.output(), " running") {
			if p.exited() {
				if strings.Contains(p.output(), "address already in use") && attempt < 5 {
					break
				}
				t.Fatalf("broker exited at start (%v):\n%s", p.exitErr(), p.output())
			}
			select {
			case <-deadline.C:
				t.Fatalf("broker not running after %v:\n%s", awaitTimeout, p.output())
			case <-time.After(20 * time.Millisecond):
			}
		}
		deadline.Stop()
		if p.exited() {
			continue
		}
		t.Cleanup(func() {
			p.stop(true)
			for _, bad := range []string{"WARNING: DATA RACE", "panic:"} {
				if strings.Contains(p.output(), bad) {
					t.Errorf("broker output has %q:\n%s", bad, p.output())
				}
			}
		})
		return b
	}
}

// brokerFails runs the broker on conf and returns its output, failing the
// test unless it exits non-zero without running.
func brokerFails(t *testing.T, dir, conf string) string {
	t.Helper()
	path := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, []string{"MAMORI_DATA_DIR=" + filepath.Join(dir, "data")}, mamoriBin, "broker", "-c", path)
	err := p.waitExit()
	if err == nil || strings.Contains(p.output(), " running") {
		t.Fatalf("broker started (%v):\n%s", err, p.output())
	}
	return p.output()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int { return brokertest.FreePort(t, "127.0.0.1") }

// tlsListener is the first lines of a broker configuration: a listener on
// 127.0.0.1 and the given options, one per line.
func tlsListener(port int, lines ...string) string {
	return fmt.Sprintf("listener %d 127.0.0.1\n%s\n", port, strings.Join(lines, "\n"))
}
