package broker

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// testAuth allows users in a set, and topics by prefix per user.
type testAuth struct {
	mu    sync.Mutex
	users map[string]bool
	allow map[string]string // user -> topic prefix allowed
}

func (a *testAuth) Authenticate(ci *ClientInfo, _ []byte, _ bool) packet.ReasonCode {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.users[ci.Username] {
		return packet.ErrNotAuthorized
	}
	return packet.Success
}

func (a *testAuth) Authorize(ci *ClientInfo, t string, _ Access) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.HasPrefix(t, a.allow[ci.Username])
}

func (a *testAuth) Revalidate(ci *ClientInfo) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.users[ci.Username]
}

func connectUser(t *testing.T, addr string, v packet.Version, id, user string) (*rawClient, *packet.Connack) {
	t.Helper()
	c := dialRaw(t, addr, v)
	return c, c.connect(&packet.Connect{ClientID: []byte(id), CleanStart: true, UsernameFlag: true, Username: []byte(user)})
}

func TestRecheckAfterAuthChange(t *testing.T) {
	a := &testAuth{users: map[string]bool{"alice": true, "bob": true}, allow: map[string]string{"alice": "a/", "bob": "b/"}}
	b, addr := startBroker(t, func(o *Options) { o.Auth = a })
	alice, _ := connectUser(t, addr, packet.V5, "alice", "alice")
	if sa := alice.subscribe(1, "a/x", 0); sa.Codes[0] != 0 {
		t.Fatalf("alice refused: %v", sa.Codes)
	}
	bob, _ := connectUser(t, addr, packet.V5, "bob", "bob")
	bob.subscribe(1, "b/#", 0)
	// Reload: bob is deleted, alice may no longer read a/.
	a2 := &testAuth{users: map[string]bool{"alice": true}, allow: map[string]string{"alice": "c/"}}
	b.SetAuth(a2)
	disc, unsub := b.Recheck()
	if disc != 1 || unsub != 1 {
		t.Fatalf("Recheck: %d disconnected, %d unsubscribed; want 1, 1", disc, unsub)
	}
	if d := bob.expectClosed(); d == nil || d.Code != packet.ErrNotAuthorized {
		t.Fatalf("bob: want DISCONNECT 0x87, got %+v", d)
	}
	// Alice stays connected but no longer receives a/x.
	alice.send(packet.Pingreq{})
	if _, ok := alice.recv().(packet.Pingresp); !ok {
		t.Fatal("alice was disconnected")
	}
}

func TestDeniedPublishAndSubscribe(t *testing.T) {
	a := &testAuth{users: map[string]bool{"u": true}, allow: map[string]string{"u": "ok/"}}
	_, addr := startBroker(t, func(o *Options) { o.Auth = a })
	for _, v := range versions {
		c, ack := connectUser(t, addr, v, "c"+v.String(), "u")
		if ack.Code != 0 {
			t.Fatal("refused")
		}
		sa := c.subscribe(1, "no/#", 1)
		want := packet.ReasonCode(0x80)
		if v == packet.V5 {
			want = packet.ErrNotAuthorized
		}
		if sa.Codes[0] != want {
			t.Fatalf("v%v subscribe code %v, want %v", v, sa.Codes[0], want)
		}
		c.send(&packet.Publish{QoS: 1, PacketID: 5, Topic: []byte("no/x"), Payload: []byte("x")})
		ack1, _ := c.recv().(*packet.Ack)
		wantAck := packet.Success // MQTT 3: flow completes, message dropped
		if v == packet.V5 {
			wantAck = packet.ErrNotAuthorized
		}
		if ack1 == nil || ack1.Code != wantAck {
			t.Fatalf("v%v PUBACK %+v, want %v", v, ack1, wantAck)
		}
	}
	_, ack := connectUser(t, addr, packet.V311, "x", "mallory")
	if ack.Code != 5 {
		t.Fatalf("unknown user: CONNACK %v, want 5", ack.Code)
	}
}

func TestWillCheckedAgainstACLWhenPublished(t *testing.T) {
	a := &testAuth{users: map[string]bool{"u": true, "w": true}, allow: map[string]string{"u": "", "w": "mine/"}}
	_, addr := startBroker(t, func(o *Options) { o.Auth = a })
	watch, _ := connectUser(t, addr, packet.V311, "watch", "u")
	watch.subscribe(1, "#", 0)
	for _, wt := range []string{"theirs/x", "mine/x"} {
		c := dialRaw(t, addr, packet.V311)
		ack := c.connect(&packet.Connect{ClientID: []byte("w-" + wt), CleanStart: true, UsernameFlag: true,
			Username: []byte("w"), WillFlag: true, WillTopic: []byte(wt), WillPayload: []byte("bye")})
		if ack.Code != 0 {
			t.Fatalf("CONNECT with will %s refused (%v); Mosquitto accepts it", wt, ack.Code)
		}
		c.nc.Close()
	}
	m := watch.recvPublish()
	if string(m.Topic) != "mine/x" {
		t.Fatalf("will to a denied topic was published: %s", m.Topic)
	}
	watch.expectNothing(200 * time.Millisecond)
}

func TestDisconnectWhere(t *testing.T) {
	b, addr := startBroker(t, nil)
	keep := connectOK(t, addr, packet.V5, "keep")
	drop := connectOK(t, addr, packet.V5, "drop")
	n := b.DisconnectWhere(func(ci *ClientInfo, _ net.Conn) bool { return ci.ClientID == "drop" },
		packet.ErrAdministrativeAction, "revoked")
	if n != 1 {
		t.Fatalf("disconnected %d", n)
	}
	if d := drop.expectClosed(); d == nil || d.Code != packet.ErrAdministrativeAction {
		t.Fatalf("got %+v", d)
	}
	keep.send(packet.Pingreq{})
	keep.recv()
}

func TestPerListenerMaxQoS(t *testing.T) {
	b, _ := startBroker(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	one := byte(1)
	go b.Serve(ln, &Listener{Name: "q1", MaxQoS: &one})
	c := dialRaw(t, ln.Addr().String(), packet.V5)
	ack := c.connect(&packet.Connect{ClientID: []byte("q"), CleanStart: true})
	if !ack.Props.Present(packet.PropMaximumQoS) || ack.Props.MaximumQoS != 1 {
		t.Fatalf("CONNACK maximum QoS %+v", ack.Props) // [MQTT-3.2.2-9]
	}
	if sa := c.subscribe(1, "t", 2); sa.Codes[0] != 1 {
		t.Fatalf("granted %v, want 1", sa.Codes)
	}
	c.send(&packet.Publish{QoS: 2, PacketID: 1, Topic: []byte("t"), Payload: []byte("x")})
	if d := c.expectClosed(); d == nil || d.Code != packet.ErrQoSNotSupported {
		t.Fatalf("want DISCONNECT 0x9B, got %+v", d) // [MQTT-3.2.2-11]
	}
}

type panicAuth struct{ testAuth }

func (*panicAuth) Authenticate(ci *ClientInfo, _ []byte, _ bool) packet.ReasonCode {
	if ci.Username == "boom" {
		panic("injected failure")
	}
	return packet.Success
}

func TestPanicInOneConnectionIsContained(t *testing.T) {
	b, addr := startBroker(t, func(o *Options) { o.Auth = &panicAuth{} })
	other, _ := connectUser(t, addr, packet.V311, "other", "fine")
	bad := dialRaw(t, addr, packet.V311)
	bad.send(&packet.Connect{Version: packet.V311, ClientID: []byte("bad"), CleanStart: true, UsernameFlag: true, Username: []byte("boom")})
	bad.expectClosed()
	if got := b.Stats().Panics.Load(); got != 1 {
		t.Fatalf("panics counted: %d", got)
	}
	other.send(packet.Pingreq{})
	if _, ok := other.recv().(packet.Pingresp); !ok {
		t.Fatal("other client affected")
	}
}
