//go:build linux

package broker

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

func (b *Broker) parkedCount() int {
	if b.park == nil {
		return 0
	}
	b.park.mu.Lock()
	defer b.park.mu.Unlock()
	return len(b.park.byID)
}

func waitParked(t *testing.T, b *Broker, n int) {
	t.Helper()
	waitCount(t, "parked", b.parkedCount, n)
}

// waitCount waits until count() is n.
func waitCount(t *testing.T, what string, count func() int, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for count() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections %s, want %d", count(), what, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParkedConnectionsStillWork(t *testing.T) {
	b, addr := startBroker(t, nil)
	sub := connectOK(t, addr, packet.V5, "idle-sub")
	sub.subscribe(1, "park/#", 1)
	pub := connectOK(t, addr, packet.V311, "idle-pub")
	waitParked(t, b, 2) // both went quiet: no goroutine holds them

	// A parked subscriber still receives (the writer does not need the
	// read loop), and acknowledges, which wakes it.
	pub.send(&packet.Publish{QoS: 1, PacketID: 1, Topic: []byte("park/a"), Payload: []byte("to a parked subscriber")})
	if a, ok := pub.recv().(*packet.Ack); !ok || a.PacketID != 1 {
		t.Fatalf("publisher woken from parking got %+v", a)
	}
	m := sub.recvPublish()
	if string(m.Payload) != "to a parked subscriber" {
		t.Fatalf("got %q", m.Payload)
	}
	sub.send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
	sub.send(packet.Pingreq{})
	if _, ok := sub.recv().(packet.Pingresp); !ok {
		t.Fatal("no PINGRESP after waking")
	}
	waitParked(t, b, 2) // and they park again
}

func TestParkedConnectionKeepAliveAndTakeover(t *testing.T) {
	b, addr := startBroker(t, nil)
	ka := dialRaw(t, addr, packet.V5)
	ka.connect(&packet.Connect{ClientID: []byte("ka"), CleanStart: true, KeepAlive: 2})
	old := connectOK(t, addr, packet.V5, "same")
	waitParked(t, b, 2)
	// Takeover of a parked connection: the old one gets 0x8E and its
	// session moves to the new connection.
	connectOK(t, addr, packet.V5, "same")
	if d := old.expectClosed(); d == nil || d.Code != packet.ErrSessionTakenOver {
		t.Fatalf("parked connection taken over: %+v", d)
	}
	// Keep-alive still applies while parked [MQTT-3.1.2-24].
	if d := ka.expectClosedWithin(6 * time.Second); d == nil || d.Code != packet.ErrKeepAliveTimeout {
		t.Fatalf("parked connection past its keep-alive: %+v", d)
	}
}

func TestCloseWithParkedConnections(t *testing.T) {
	b, addr := startBroker(t, nil)
	var cs []*rawClient
	for _, id := range []string{"p1", "p2", "p3"} {
		cs = append(cs, connectOK(t, addr, packet.V5, id))
	}
	waitParked(t, b, 3)
	done := make(chan struct{})
	go func() {
		b.Close()
		close(done)
	}()
	for _, c := range cs {
		if d := c.expectClosed(); d == nil || d.Code != packet.ErrServerShuttingDown {
			t.Fatalf("got %+v, want DISCONNECT 0x8B", d)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with parked connections")
	}
}

// releasedCount is the number of connections without a net.Conn.
func (b *Broker) releasedCount() int {
	b.mu.Lock()
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	n := 0
	for _, c := range conns {
		c.parkMu.Lock()
		if c.released {
			if c.netConn() != nil {
				panic("released connection still has its net.Conn")
			}
			n++
		}
		c.parkMu.Unlock()
	}
	return n
}

func waitReleased(t *testing.T, b *Broker, n int) {
	t.Helper()
	waitCount(t, "released", b.releasedCount, n)
}

// idlePair connects a QoS 1 subscriber of filter (MQTT version v) and an
// MQTT 3.1.1 publisher, and waits until both are released and have been
// parked long enough to count as idle. It returns the restore count then.
func idlePair(t *testing.T, b *Broker, addr string, v packet.Version, filter string) (sub, pub *rawClient, restores uint64) {
	t.Helper()
	sub = connectOK(t, addr, v, "idle-sub")
	sub.subscribe(1, filter, 1)
	pub = connectOK(t, addr, packet.V311, "idle-pub")
	waitReleased(t, b, 2)
	time.Sleep(parkAfter + 100*time.Millisecond)
	return sub, pub, b.restores.Load()
}

// An idle device's traffic — a publish, its acknowledgement, a delivery,
// PINGREQ — is served by a released connection without giving it a
// net.Conn back.
func TestReleasedConnectionsServeIdleTraffic(t *testing.T) {
	b, addr := startBroker(t, nil)
	sub, pub, restores := idlePair(t, b, addr, packet.V5, "rel/#")

	pub.send(&packet.Publish{QoS: 1, PacketID: 7, Topic: []byte("rel/a"), Payload: []byte("raw")})
	if a, ok := pub.recv().(*packet.Ack); !ok || a.PacketID != 7 {
		t.Fatalf("publisher got %+v", a)
	}
	m := sub.recvPublish()
	if string(m.Payload) != "raw" || m.QoS != 1 {
		t.Fatalf("subscriber got %+v", m)
	}
	// PUBACK and PINGREQ in one write, so they arrive in one read: a
	// connection woken again right after it parked counts as busy.
	ack := (&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID}).Append(nil, packet.V5)
	sub.sendRaw(packet.Pingreq{}.Append(ack, packet.V5))
	if p := sub.recv(); p.Type() != packet.PINGRESP {
		t.Fatalf("expected PINGRESP, got %T %+v", p, p)
	}
	// Both parked again as they were, without a net.Conn.
	waitParked(t, b, 2)
	if n := b.releasedCount(); n != 2 {
		t.Fatalf("%d connections released after idle traffic, want 2", n)
	}
	if n := b.restores.Load() - restores; n != 0 {
		t.Fatalf("idle traffic gave %d connections their net.Conn back", n)
	}
}

// A connection that wakes soon after parking is busy again: it gets its
// net.Conn back and keeps working through it.
func TestReleasedConnectionTurningBusy(t *testing.T) {
	b, addr := startBroker(t, nil)
	c := connectOK(t, addr, packet.V311, "busy")
	waitReleased(t, b, 1)
	restores := b.restores.Load()
	for i := range 20 {
		c.send(&packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("busy/x"), Payload: []byte{byte(i)}})
		if a, ok := c.recv().(*packet.Ack); !ok || a.PacketID != uint16(i+1) {
			t.Fatalf("PUBACK %d: got %+v", i+1, a)
		}
	}
	// The read loop decides after it has sent an acknowledgement, when a
	// read finds nothing more, so the last PUBACK can come first.
	restored := func() int {
		if b.restores.Load() > restores {
			return 1
		}
		return 0
	}
	waitCount(t, "given a net.Conn again after the burst", restored, 1)
	// Quiet again: released again.
	waitReleased(t, b, 1)
}

// A write larger than the socket can take makes a released connection wait
// for its reader through a net.Conn; nothing is lost or reordered.
func TestReleasedConnectionLargeDelivery(t *testing.T) {
	b, addr := startBroker(t, func(o *Options) { o.MaxPacketSize = 0 })
	sub, pub, restores := idlePair(t, b, addr, packet.V311, "big")
	payload := make([]byte, 16<<20) // far more than loopback socket buffers hold
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	pub.send(&packet.Publish{Topic: []byte("big"), Payload: payload})
	// QoS 1: a QoS 0 message meeting the full output would be dropped.
	pub.send(&packet.Publish{QoS: 1, PacketID: 1, Topic: []byte("big"), Payload: []byte("after")})
	// Let the broker fill the subscriber's socket before reading.
	time.Sleep(300 * time.Millisecond)
	// 16 MiB within recv's usual 3 s is too tight for a loaded machine
	// running the race detector: wait up to 20 s for this one.
	p, err := sub.recvErr(20 * time.Second)
	if err != nil {
		t.Fatalf("large message: %v", err)
	}
	m, ok := p.(*packet.Publish)
	if !ok {
		t.Fatalf("expected PUBLISH, got %T", p)
	}
	if !bytes.Equal(m.Payload, payload) {
		t.Fatalf("large payload damaged (%d bytes)", len(m.Payload))
	}
	if m := sub.recvPublish(); string(m.Payload) != "after" {
		t.Fatalf("then got %q", m.Payload)
	}
	// The publisher (woken after a long park, 16 MiB to read) and the
	// subscriber (a socket that could not take it all) both needed one.
	if n := b.restores.Load() - restores; n < 1 {
		t.Fatalf("%d net.Conns made again; the full socket needs one", n)
	}
}

// A device that goes away while released: its will is published.
func TestReleasedConnectionAbruptClose(t *testing.T) {
	b, addr := startBroker(t, nil)
	watch := connectOK(t, addr, packet.V311, "watch")
	watch.subscribe(1, "will/#", 0)
	c := dialRaw(t, addr, packet.V311)
	c.connect(&packet.Connect{ClientID: []byte("vanishing"), CleanStart: true, WillFlag: true,
		WillTopic: []byte("will/vanishing"), WillPayload: []byte("gone")})
	waitReleased(t, b, 2)
	c.nc.Close()
	if m := watch.recvPublish(); string(m.Payload) != "gone" {
		t.Fatalf("got %+v", m)
	}
}

func TestCompactAddr(t *testing.T) {
	for _, tc := range []struct {
		in   *net.TCPAddr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1).To4(), Port: 1883}, "192.0.2.1:1883"},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1883}, "192.0.2.1:1883"}, // a dual-stack listener's IPv4 client
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 8883}, "[2001:db8::1]:8883"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 8883, Zone: "eth0"}, "[fe80::1%eth0]:8883"},
	} {
		got := compactAddr(tc.in)
		if got.String() != tc.want || got.String() != tc.in.String() || got.Network() != "tcp" {
			t.Errorf("compactAddr(%v) = %v (%s), want %s", tc.in, got, got.Network(), tc.want)
		}
	}
	u := &net.UnixAddr{Name: "/run/mqtt.sock", Net: "unix"}
	if compactAddr(u) != net.Addr(u) {
		t.Error("a unix address was changed")
	}
}

// A subscriber whose small window holds a backlog back: its read loop
// polls for the acknowledgements, and every message still arrives once, in
// order.
func TestWindowRefillPollsForAcks(t *testing.T) {
	b, addr := startBroker(t, func(o *Options) { o.MaxInflightMessages = 2 })
	sub := connectOK(t, addr, packet.V311, "windowed")
	sub.subscribe(1, "w", 1)
	pub := connectOK(t, addr, packet.V311, "feeder")
	const n = 50
	for i := range n {
		pub.send(&packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("w"), Payload: []byte{byte(i)}})
	}
	for i := range n {
		if a, ok := pub.recv().(*packet.Ack); !ok || a.PacketID != uint16(i+1) {
			t.Fatalf("publisher: PUBACK %d got %+v", i+1, a)
		}
	}
	for i := range n {
		m := sub.recvPublish()
		if len(m.Payload) != 1 || m.Payload[0] != byte(i) || m.Dup {
			t.Fatalf("message %d: got %+v", i, m)
		}
		sub.send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
	}
	sub.expectNothing(100 * time.Millisecond)
	if b.ackPolls.Load() == 0 {
		t.Fatal("the backlogged subscriber never polled for its acknowledgements")
	}
}

// The parker never sleeps in epoll_wait without a bound: work the kernel
// defers to that thread (closeSocket) must not wait for an event that may
// never come.
func TestParkerWaitIsBounded(t *testing.T) {
	b, _ := startBroker(t, nil)
	if b.park == nil {
		t.Skip("no epoll parker on this system")
	}
	if ms := b.park.waitMillis(); ms <= 0 || ms > int(maxEpollWait/time.Millisecond) {
		t.Fatalf("with no timers epoll_wait sleeps %d ms, want (0, %d]", ms, maxEpollWait/time.Millisecond)
	}
}
