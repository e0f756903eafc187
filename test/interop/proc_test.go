package interop

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

const (
	// clientLifetime bounds every client process: whatever goes wrong, it
	// is killed after this long and the test goes on to report why.
	clientLifetime = 45 * time.Second
	// awaitTimeout bounds each wait for one event (a line, a message); see
	// brokertest.AwaitTimeout.
	awaitTimeout = brokertest.AwaitTimeout
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

// proc is a client process whose stdout lines a parser turns into events;
// the test goroutine waits for them with deadlines.
type proc struct {
	*brokertest.Proc
	t *testing.T

	mu     sync.Mutex
	events []event // appended by the parser before waiters are woken

	// seen counts the events of each kind the test has consumed; only the
	// test goroutine touches it.
	seen map[string]int
}

// startClient starts a client process that cannot outlive clientLifetime
// and is killed at cleanup if still running. parse, if not nil, turns
// stdout lines into events.
func startClient(t *testing.T, name string, parse func(string) (event, bool), argv []string, env ...string) *proc {
	t.Helper()
	p := &proc{t: t, seen: map[string]int{}}
	opts := []brokertest.Option{brokertest.Lifetime(clientLifetime), brokertest.Env(env...)}
	if parse != nil {
		opts = append(opts, brokertest.OnLine(func(line string, stdout bool) {
			if !stdout {
				return
			}
			if ev, ok := parse(line); ok {
				p.mu.Lock()
				p.events = append(p.events, ev)
				p.mu.Unlock()
			}
		}))
	}
	p.Proc = brokertest.Start(t, name, argv, opts...)
	return p
}

// await returns the next event of the given kind the test has not seen
// yet. An "error" event from a helper script fails the test at once.
func (p *proc) await(kind string) event {
	p.t.Helper()
	var got event
	var failed *event
	p.WaitFor(kind+" event", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
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
		p.t.Fatalf("%s reported %v", p.Name(), *failed)
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

// wait waits for the process to exit and fails the test unless it exited
// with status 0.
func (p *proc) wait() {
	p.t.Helper()
	if err := p.Wait(); err != nil {
		p.t.Fatalf("%s: %v", p.Name(), err)
	}
}
