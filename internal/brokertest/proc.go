package brokertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// ProcLifetime bounds a process unless Lifetime says otherwise: whatever
	// goes wrong, it is killed after this long and the test goes on to
	// report why instead of hanging until `go test` gives up.
	ProcLifetime = 60 * time.Second
	// AwaitTimeout bounds each wait for one line or event. It is generous
	// because the broker may run under the race detector on a busy
	// machine; a passing test never waits this long.
	AwaitTimeout = 20 * time.Second
	// StopGrace is how long a process stopped gently has to exit after
	// SIGTERM before it is killed: a broker that needs longer to shut down
	// has a bug the test should report.
	StopGrace = 10 * time.Second

	// waitDelay is how long Wait may take once the process has exited: a
	// grandchild holding the pipes open must not stall it.
	waitDelay = 2 * time.Second
)

// Proc is a child process whose output, stdout and stderr, the test reads
// line by line. The test goroutine waits for lines with deadlines, and
// the output is kept so that a failing test can show it.
type Proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	ctx  context.Context // ends at the lifetime, if any, or once the process has exited
	opts procOptions

	mu      sync.Mutex
	lines   []string      // stdout and stderr, as they came
	stdout  []string      // stdout alone, for output that stderr must not split
	changed chan struct{} // closed and replaced whenever lines grow or the process ends
	err     error         // cmd.Wait's result, once done is closed
	done    chan struct{}
}

type procOptions struct {
	env      []string
	lifetime time.Duration
	gentle   bool
	onLine   func(line string, stdout bool)
	stdin    io.Reader
}

// Option changes how Start runs a process.
type Option func(*procOptions)

// Env adds variables to the environment the process inherits from the
// test, so that one process can be pointed elsewhere without changing the
// test's own environment.
func Env(vars ...string) Option {
	return func(o *procOptions) { o.env = append(o.env, vars...) }
}

// Lifetime replaces ProcLifetime: clients, which a test expects to finish
// soon, may get less. Zero means no deadline, for a process that the
// test's cleanup stops in any case.
func Lifetime(d time.Duration) Option {
	return func(o *procOptions) { o.lifetime = d }
}

// Gentle makes the cleanup stop the process with SIGTERM first, as an
// operator stops a broker, instead of SIGKILL, so that its shutdown is
// exercised (and checked, see StopGrace) too.
func Gentle() Option {
	return func(o *procOptions) { o.gentle = true }
}

// OnLine has fn called with each output line, stdout telling where it came
// from, before waiters are woken, so that a suite can turn lines into
// events of its own and wait for them with WaitFor. fn runs on the
// goroutines that copy stdout and stderr, concurrently, and must not call
// the Proc's methods.
func OnLine(fn func(line string, stdout bool)) Option {
	return func(o *procOptions) { o.onLine = fn }
}

// Stdin gives the process r as its standard input instead of /dev/null:
// a server such as openssl s_server, which stops at the end of its input,
// keeps running while r blocks. Pass an *os.File (the read end of
// os.Pipe): the child gets it directly, so Wait has no copying goroutine to
// wait for.
func Stdin(r io.Reader) Option {
	return func(o *procOptions) { o.stdin = r }
}

// Start starts argv and registers its cleanup, which stops it (see Gentle)
// and, if the test failed, logs its exit status and output. name labels
// messages.
func Start(t testing.TB, name string, argv []string, opts ...Option) *Proc {
	t.Helper()
	o := procOptions{lifetime: ProcLifetime}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if o.lifetime > 0 {
		ctx, cancel = context.WithTimeout(ctx, o.lifetime)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Stdin = o.stdin
	p := &Proc{t: t, name: name, cmd: cmd, ctx: ctx, opts: o, changed: make(chan struct{}), done: make(chan struct{})}
	stdout, stderr := &lineWriter{p: p, stdout: true}, &lineWriter{p: p}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := cmd.Wait()
		stdout.flush()
		stderr.flush()
		p.mu.Lock()
		p.err = err
		p.notifyLocked()
		p.mu.Unlock()
		close(p.done)
		cancel()
	}()
	t.Cleanup(func() {
		p.Stop(o.gentle)
		if t.Failed() {
			out := "(no output)"
			if lines := p.Lines(); len(lines) > 0 {
				out = "\n  " + strings.Join(lines, "\n  ")
			}
			t.Logf("%s exited with %v; output: %s", name, p.ExitErr(), out)
		}
	})
	return p
}

// Name is the label Start was given, for the suites' own messages.
func (p *Proc) Name() string { return p.name }

// Pid is the process id, for tests that look the process up in /proc or
// compare it with a pid_file.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stop ends the process if it is still running and waits for it. gentle
// sends SIGTERM first and fails the test if the process has not exited
// StopGrace later; then, or at once without gentle, it sends SIGKILL.
func (p *Proc) Stop(gentle bool) {
	if p.Exited() {
		return
	}
	if gentle {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(StopGrace):
			p.t.Errorf("%s did not exit within %v of SIGTERM; killing it", p.name, StopGrace)
		}
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process by its PID, as an operator's kill(1)
// would: SIGHUP to reload, SIGTERM to test shutdown.
func (p *Proc) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// Wait waits for the process to exit and returns its error, saying so when
// the lifetime killed it. It fails the test if the process still runs a
// lifetime (ProcLifetime when it has none) later; the margin of waitDelay
// lets a process the lifetime killed be reported as such, even when Wait
// was called right after Start.
func (p *Proc) Wait() error {
	p.t.Helper()
	bound := p.opts.lifetime
	if bound <= 0 {
		bound = ProcLifetime
	}
	bound += waitDelay
	select {
	case <-p.done:
	case <-time.After(bound):
		p.t.Fatalf("%s still running after %v", p.name, bound)
	}
	err := p.ExitErr()
	if err != nil && errors.Is(p.ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("killed after %v: %w", p.opts.lifetime, err)
	}
	return err
}

// Done is closed once the process has exited and all its output is in,
// for a test that waits for the exit along with other things.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited; its output is then
// complete.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr is cmd.Wait's result once the process has exited, and nil
// before; a test that must know which uses Exited or Wait.
func (p *Proc) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Changed is closed the next time output arrives or the process exits. A
// waiter takes it before looking at the output, so that nothing arriving
// in between is missed.
func (p *Proc) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// Lines returns a copy of the output lines so far, which the caller may
// keep while more arrive.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Output is the output so far as one text, each line ending in a newline,
// for a test that searches it or shows it like a command's output.
func (p *Proc) Output() string { return joinLines(p.Lines()) }

// joinLines makes one text of lines, each ending in a newline.
func joinLines(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// Stdout is the standard output so far without the error stream, each
// line ending in a newline: a multi-line block on stdout (a PEM
// certificate from openssl s_client) can have stderr lines between its
// lines in Output.
func (p *Proc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return joinLines(p.stdout)
}

// Count is the number of output lines so far containing s, for a test that
// expects a line a given number of times.
func (p *Proc) Count(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// HasLine reports whether some output line so far contains s.
func (p *Proc) HasLine(s string) bool { return p.Count(s) > 0 }

// WaitFor calls check each time the output grows, until it returns true.
// It fails the test, naming what it waited for, when AwaitTimeout passes
// or the process exits first. check runs on the test goroutine without
// the Proc's lock, so it may call the Proc's methods.
func (p *Proc) WaitFor(what string, check func() bool) {
	p.t.Helper()
	deadline := time.NewTimer(AwaitTimeout)
	defer deadline.Stop()
	for {
		ch := p.Changed()
		// Looked at before check: once the process has exited all its
		// output is in, so a check that fails then will never pass.
		exited := p.Exited()
		if check() {
			return
		}
		if exited {
			p.t.Fatalf("%s exited (%v) before %s", p.name, p.ExitErr(), what)
		}
		select {
		case <-ch:
		case <-deadline.C:
			p.t.Fatalf("%s: no %s within %v", p.name, what, AwaitTimeout)
		}
	}
}

// WaitLines waits until n output lines contain s (see WaitFor).
func (p *Proc) WaitLines(s string, n int) {
	p.t.Helper()
	what := fmt.Sprintf("line containing %q", s)
	if n != 1 {
		what = fmt.Sprintf("%d lines containing %q", n, s)
	}
	p.WaitFor(what, func() bool { return p.Count(s) >= n })
}

// WaitLine waits until some output line contains s (see WaitFor).
func (p *Proc) WaitLine(s string) {
	p.t.Helper()
	p.WaitLines(s, 1)
}

func (p *Proc) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Proc) addLine(line string, stdout bool) {
	if p.opts.onLine != nil {
		p.opts.onLine(line, stdout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
	if stdout {
		p.stdout = append(p.stdout, line)
	}
	p.notifyLocked()
}

// lineWriter splits one of a process's output streams into lines.
type lineWriter struct {
	p      *Proc
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

// flush hands on a last line that had no newline; it runs once the
// process has exited, when no Write can come.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.p.addLine(string(w.buf), w.stdout)
		w.buf = nil
	}
}
