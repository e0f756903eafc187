//go:build linux

package broker

import (
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
	deadline := time.Now().Add(10 * time.Second)
	for b.parkedCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked, want %d", b.parkedCount(), n)
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
