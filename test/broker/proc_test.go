package brokercmd

import (
	"bytes"
	"context"
	"fmt"
	"net"
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
	// procLifetime bounds every process a test starts.
	procLifetime = 60 * time.Second
	// awaitTimeout bounds each wait for one event; generous for -race on a
	// busy machine, never reached by a passing test.
	awaitTimeout = 20 * time.Second
	// stopGrace is how long a broker has to exit after SIGTERM.
	stopGrace = 10 * time.Second
)

// proc is a child process whose output (stdout and stderr) the test reads
// line by line.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced whenever lines grow or the process ends
	err     error         // cmd.Wait's result, once done is closed
	done    chan struct{}
}

// startProc starts argv under a deadline and registers its cleanup: SIGTERM
// (so a broker shuts down as an operator would stop it), then SIGKILL after
// stopGrace. On failure the output is printed.
func startProc(t *testing.T, name string, argv []string, env ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procLifetime)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{t: t, name: name, cmd: cmd, changed: make(chan struct{}), done: make(chan struct{})}
	cmd.Stdout = &lineWriter{p: p}
	cmd.Stderr = &lineWriter{p: p}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := cmd.Wait()
		cmd.Stdout.(*lineWriter).flush()
		cmd.Stderr.(*lineWriter).flush()
		p.mu.Lock()
		p.err = err
		p.notifyLocked()
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s exited with %v; output:\n  %s", name, p.exitErr(), strings.Join(p.snapshot(), "\n  "))
		}
	})
	return p
}

// stop sends SIGTERM and waits; SIGKILL if the process lingers.
func (p *proc) stop() {
	if p.isDone() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(stopGrace):
		p.t.Errorf("%s did not exit within %v of SIGTERM; killing it", p.name, stopGrace)
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// signal sends sig to the process by its PID.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// wait waits for the process to exit and returns its error.
func (p *proc) wait() error {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(procLifetime):
		p.t.Fatalf("%s still running after %v", p.name, procLifetime)
	}
	return p.exitErr()
}

func (p *proc) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *proc) addLine(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
	p.notifyLocked()
}

func (p *proc) snapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

func (p *proc) isDone() bool {
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

// count is the number of output lines containing s.
func (p *proc) count(s string) int {
	n := 0
	for _, l := range p.snapshot() {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// hasLine reports whether some output line contains s.
func (p *proc) hasLine(s string) bool { return p.count(s) > 0 }

// waitLines waits until n output lines contain s, failing the test when the
// deadline passes or the process exits first.
func (p *proc) waitLines(s string, n int) {
	p.t.Helper()
	deadline := time.NewTimer(awaitTimeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if p.count(s) >= n {
			return
		}
		if p.isDone() {
			p.t.Fatalf("%s exited (%v) before printing %q", p.name, p.exitErr(), s)
		}
		select {
		case <-ch:
		case <-deadline.C:
			p.t.Fatalf("%s: no line containing %q within %v", p.name, s, awaitTimeout)
		}
	}
}

// waitLine waits until some output line contains s.
func (p *proc) waitLine(s string) { p.t.Helper(); p.waitLines(s, 1) }

type lineWriter struct {
	p   *proc
	buf []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.p.addLine(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.p.addLine(string(w.buf))
		w.buf = nil
	}
}

// brokerProc is a running mamori broker.
type brokerProc struct {
	*proc
	dir  string // the test's directory: config, password files, logs
	conf string // the configuration file
	port int    // the first listener's port
}

// brokerEnv keeps the broker's own files in the test directory and makes a
// race-enabled binary exit without its default one-second sleep.
func brokerEnv(dir string) []string {
	return []string{"MAMORI_DATA_DIR=" + filepath.Join(dir, "data"),
		strings.TrimSpace("GORACE=" + os.Getenv("GORACE") + " atexit_sleep_ms=0")}
}

// startBroker writes the configuration conf(port) — with port a free TCP
// port on the loopback interface — and runs `mamori broker -c` on it until
// it logs that it is running. Unless the configuration has a `user` line,
// `user root` is added: the tests run as root, and by default the broker
// would drop privileges to the mosquitto user, who cannot read the test's
// private directory on SIGHUP. A port taken in the meantime is retried.
func startBroker(t *testing.T, conf func(port int) string, args ...string) *brokerProc {
	t.Helper()
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		port := freePort(t, "127.0.0.1")
		text := conf(port)
		if !strings.Contains(text, "\nuser ") && !strings.HasPrefix(text, "user ") {
			text = "user root\n" + text
		}
		path := filepath.Join(dir, "mamori.conf")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		argv := append([]string{mamoriBin, "broker", "-c", path}, args...)
		p := startProc(t, fmt.Sprintf("mamori broker (port %d)", port), argv, brokerEnv(dir)...)
		if waitRunning(t, p, port) {
			b := &brokerProc{proc: p, dir: dir, conf: path, port: port}
			t.Cleanup(func() { checkBrokerLog(t, p) })
			return b
		}
		if attempt == 5 {
			t.Fatalf("could not bind a free port in %d attempts", attempt)
		}
	}
}

// waitRunning waits until the broker logs that it is running, or, for a
// broker that logs elsewhere than stderr (log_dest file), until its port
// accepts connections. It returns false if the broker exited because a
// port was taken.
func waitRunning(t *testing.T, p *proc, port int) bool {
	t.Helper()
	deadline := time.Now().Add(awaitTimeout)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if p.hasLine(" running") {
			return true
		}
		if p.isDone() {
			if p.hasLine("address already in use") {
				return false
			}
			t.Fatalf("%s exited at start: %v\n  %s", p.name, p.exitErr(), strings.Join(p.snapshot(), "\n  "))
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return true
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not running after %v", p.name, awaitTimeout)
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkBrokerLog stops the broker and fails the test on a race report, a
// recovered panic or an unclean exit.
func checkBrokerLog(t *testing.T, p *proc) {
	p.stop()
	for _, bad := range []string{"WARNING: DATA RACE", "panic"} {
		if p.hasLine(bad) {
			t.Errorf("%s logged %q", p.name, bad)
		}
	}
	if err := p.exitErr(); err != nil {
		t.Errorf("%s exited with %v after SIGTERM", p.name, err)
	}
}

// addr is host:port of the broker's first listener on 127.0.0.1.
func (b *brokerProc) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// freePort returns a TCP port on host that was free a moment ago.
func freePort(t *testing.T, host string) int { return brokertest.FreePort(t, host) }

// requireTools skips the test when a program it drives is not installed.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed", n)
		}
	}
}
