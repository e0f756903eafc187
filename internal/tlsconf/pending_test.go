package tlsconf

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/tlsprobe/probetest"
)

// TestPendingHandshakeLimits (issue 20, item 3): a new handshake is never
// refused; it replaces the oldest pending one of its own address (an IPv6
// /64 counting as one address) or, when the listener is full, the
// listener's oldest.
func TestPendingHandshakeLimits(t *testing.T) {
	p := newPending(6, 3)
	addr := func(s string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: 1234} }
	type entry struct {
		pc  *pendingConn
		ctx context.Context
	}
	add := func(a string) (entry, []eviction) {
		ctx, cancel := context.WithCancel(context.Background())
		pc, ev := p.add(addr(a), cancel)
		return entry{pc, ctx}, ev
	}
	var flood []entry
	for i := range 5 {
		e, ev := add("192.0.2.1")
		flood = append(flood, e)
		if want := max(0, i-2); len(ev) != min(want, 1) {
			t.Fatalf("connection %d from one address: %d evictions", i, len(ev))
		}
	}
	if flood[0].ctx.Err() == nil || flood[1].ctx.Err() == nil || flood[2].ctx.Err() != nil {
		t.Fatal("the oldest handshakes of the flooding address were not the ones closed")
	}
	if total, mine := p.count(addr("192.0.2.1")); total != 3 || mine != 3 {
		t.Fatalf("pending %d, from the address %d; want 3 and 3", total, mine)
	}
	// Two addresses of one IPv6 /64 share a limit; another /64 does not.
	v6a, _ := add("2001:db8::1")
	add("2001:db8::2")
	_, ev := add("2001:db8::3")
	if len(ev) != 0 {
		t.Fatalf("the listener is not full yet, but %d were evicted", len(ev))
	}
	_, ev = add("2001:db8:0:1::1")
	if len(ev) != 1 || ev[0].key != addrKey(addr("192.0.2.1")) || flood[2].ctx.Err() == nil {
		t.Fatalf("a full listener did not close its oldest handshake: %+v", ev)
	}
	_, ev = add("2001:db8::4")
	if len(ev) != 1 || v6a.ctx.Err() == nil {
		t.Fatalf("the /64 over its limit did not lose its oldest: %+v", ev)
	}
	if !p.done(v6a.pc) || p.done(flood[3].pc) {
		t.Fatal("done does not tell evicted handshakes from finished ones")
	}
	if total, _ := p.count(addr("192.0.2.1")); total != 5 {
		t.Fatalf("pending %d, want 5", total)
	}
}

// TestHandshakeFailureLogBounded (issue 20, same class as item 3): a
// client that connects in a loop and sends garbage gets its failures
// counted, every one, but logged only failLogPerMinute times a minute, with
// one line saying the rest is not logged; another address is still logged.
func TestHandshakeFailureLogBounded(t *testing.T) {
	p := probetest.NewPKI(t)
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key")), nil)
	send := func(from string) {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, c) // until the server closes it
	}
	const n = 3 * failLogPerMinute
	for range n {
		send("127.0.0.1")
	}
	send("127.0.0.2")
	deadline := time.Now().Add(10 * time.Second)
	for ts.Stats().Failures[ReasonNotTLS].Load() < n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d failures counted, want %d", ts.Stats().Failures[ReasonNotTLS].Load(), n+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.log.waitLog(t, "client 127.0.0.2:")
	logText := ts.log.String()
	if got := strings.Count(logText, "TLS handshake failed: client 127.0.0.1:"); got != failLogPerMinute {
		t.Errorf("%d failures from 127.0.0.1 logged, want %d", got, failLogPerMinute)
	}
	if got := strings.Count(logText, "TLS handshakes from 127.0.0.1 keep failing"); got != 1 {
		t.Errorf("the flood was announced %d times, want once", got)
	}
}
