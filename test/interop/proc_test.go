package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// clientLifetime bounds every client process: whatever goes wrong, it
	// is killed after this long and the test goes on to report why.
	clientLifetime = 45 * time.Second
	// awaitTimeout bounds each wait for one event (a line, a message). It
	// is generous because the broker may run under the race detector on a
	// busy machine; a passing test never waits this long.
	awaitTimeout = 20 * time.Second
	// stopGrace is how long a broker has to exit after SIGTERM before it
	// is killed.
	stopGrace = 10 * time.Second
)

// event is one thing a client reported: a JSON line from the Paho and
// MQTT.js helper scripts, or a line of mosquitto_sub output translated by
// its parser.
type event struct {
	Event          string      `json:"event"` // connected, subscribed, published, message, done, error
	SessionPresent *bool       `json:"session_present,omitempty"`
	RC             int         `json:"rc,omitempty"`
	Granted        []int       `json:"granted,omitempty"`
	Topic          string      `json:"topic,omitempty"`
	Payload        string      `json:"payload"`
	QoS            int         `json:"qos"`
	Retain         bool        `json:"retain"`
	UserProperties [][2]string `json:"user_properties,omitempty"`
	Error          string      `json:"error,omitempty"`
}

func (e event) String() string {
	switch e.Event {
	case "message":
		return fmt.Sprintf("message{topic=%q qos=%d retain=%v payload=%q props=%v}", e.Topic, e.QoS, e.Retain, e.Payload, e.UserProperties)
	case "error":
		return "error: " + e.Error
	}
	return e.Event
}

// proc is a child process whose output the test reads line by line. A
// parser turns stdout lines into events; the test goroutine waits for
// them with deadlines. Output is kept so a failing test can show it.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	parse func(string) (event, bool)
	ctx   context.Context // a client's lifetime; nil for a broker

	mu      sync.Mutex
	lines   []string // stdout and stderr, as they came
	events  []event
	changed chan struct{} // closed and replaced whenever lines or events grow
	err     error         // cmd.Wait's result, once done is closed
	done    chan struct{}

	// seen counts the events of each kind the test has consumed; only the
	// test goroutine touches it.
	seen map[string]int
}

// startProc starts cmd and registers its cleanup. Client processes run
// under a context with clientLifetime, so none outlives a test; they are
// killed at cleanup if still running. A broker (gentle) gets SIGTERM first,
// so it shuts down the way an operator would stop it.
func startProc(t *testing.T, name string, cmd *exec.Cmd, parse func(string) (event, bool), gentle bool) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: cmd, parse: parse,
		changed: make(chan struct{}), done: make(chan struct{}), seen: map[string]int{}}
	cmd.Stdout = &lineWriter{p: p, stdout: true}
	cmd.Stderr = &lineWriter{p: p}
	// A grandchild holding the pipes open must not stall Wait.
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
		p.stop(gentle)
		if t.Failed() {
			p.mu.Lock()
			out := "(no output)"
			if len(p.lines) > 0 {
				out = "\n  " + strings.Join(p.lines, "\n  ")
			}
			t.Logf("%s exited with %v; output: %s", name, p.err, out)
			p.mu.Unlock()
		}
	})
	return p
}

// stop ends the process if it is still running and waits for it.
func (p *proc) stop(gentle bool) {
	select {
	case <-p.done:
		return
	default:
	}
	if gentle {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(stopGrace):
			p.t.Errorf("%s did not exit within %v of SIGTERM; killing it", p.name, stopGrace)
		}
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// kill ends the process with SIGKILL, so it cannot say goodbye: its TCP
// connection is closed by the kernel without an MQTT DISCONNECT.
func (p *proc) kill() {
	p.t.Helper()
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(awaitTimeout):
		p.t.Fatalf("%s: not gone after SIGKILL", p.name)
	}
}

func (p *proc) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *proc) addLine(line string, stdout bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
	if stdout && p.parse != nil {
		if ev, ok := p.parse(line); ok {
			p.events = append(p.events, ev)
		}
	}
	p.notifyLocked()
}

// waitFor calls check under the lock each time the output grows, until it
// returns true; it fails the test when the deadline passes or the process
// ends first.
func (p *proc) waitFor(what string, check func() bool) {
	p.t.Helper()
	deadline := time.NewTimer(awaitTimeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		ok := check()
		ch := p.changed
		exited := p.isDone()
		p.mu.Unlock()
		if ok {
			return
		}
		if exited {
			p.t.Fatalf("%s exited (%v) before %s", p.name, p.exitErr(), what)
		}
		select {
		case <-ch:
		case <-deadline.C:
			p.t.Fatalf("%s: no %s within %v", p.name, what, awaitTimeout)
		}
	}
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

// await returns the next event of the given kind the test has not seen
// yet. An "error" event from a helper script fails the test at once.
func (p *proc) await(kind string) event {
	p.t.Helper()
	var got event
	var failed *event
	p.waitFor(kind+" event", func() bool {
		n := 0
		for i := range p.events {
			ev := p.events[i]
			if ev.Event == "error" {
				failed = &ev
				return true
			}
			if ev.Event != kind {
				continue
			}
			if n == p.seen[kind] {
				got = ev
				return true
			}
			n++
		}
		return false
	})
	if failed != nil {
		p.t.Fatalf("%s reported %v", p.name, *failed)
	}
	p.seen[kind]++
	return got
}

// messages waits for the next n messages.
func (p *proc) messages(n int) []event {
	p.t.Helper()
	out := make([]event, 0, n)
	for range n {
		out = append(out, p.await("message"))
	}
	return out
}

// waitLine waits until some output line contains s.
func (p *proc) waitLine(s string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("line containing %q", s), func() bool {
		for _, l := range p.lines {
			if strings.Contains(l, s) {
				return true
			}
		}
		return false
	})
}

// hasLine reports whether some output line so far contains s.
func (p *proc) hasLine(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// wait waits for the process to exit and fails the test unless it exited
// with status 0.
func (p *proc) wait() {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(clientLifetime):
		p.t.Fatalf("%s still running after %v", p.name, clientLifetime)
	}
	if err := p.exitErr(); err != nil {
		if p.ctx != nil && errors.Is(p.ctx.Err(), context.DeadlineExceeded) {
			p.t.Fatalf("%s: killed after %v", p.name, clientLifetime)
		}
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// lineWriter splits a process's output into lines for its proc.
type lineWriter struct {
	p      *proc
	stdout bool
	buf    []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.p.addLine(strings.TrimRight(string(w.buf[:i]), "\r"), w.stdout)
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.p.addLine(string(w.buf), w.stdout)
		w.buf = nil
	}
}

// startClient starts a client process that cannot outlive clientLifetime.
func startClient(t *testing.T, name string, parse func(string) (event, bool), argv []string, env ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientLifetime)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	p := startProc(t, name, cmd, parse, false)
	p.ctx = ctx
	return p
}
