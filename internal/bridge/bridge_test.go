package bridge

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/broker"
	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// wait bounds every wait for an event in these tests; never reached by a
// passing test.
const wait = 20 * time.Second

// localBroker runs an in-process broker for the bridge's local side and
// returns it with the address its clients dial.
func localBroker(t testing.TB) (*broker.Broker, string) {
	t.Helper()
	o := broker.DefaultOptions()
	o.SysInterval, o.ConnectionMessages, o.TrimMemory = 0, false, false
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Serve(ln, &broker.Listener{Name: "test"})
	}()
	t.Cleanup(func() {
		b.Close()
		<-done
	})
	return b, ln.Addr().String()
}

// fakeRemote is a listener playing the remote broker packet by packet.
type fakeRemote struct {
	t  testing.TB
	ln *net.TCPListener
}

func newFakeRemote(t testing.TB) *fakeRemote {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeRemote{t: t, ln: ln}
}

func (f *fakeRemote) address() config.BridgeAddress {
	a := f.ln.Addr().(*net.TCPAddr)
	return config.BridgeAddress{Host: "127.0.0.1", Port: a.Port}
}

// accept takes the bridge's next connection and returns its CONNECT.
func (f *fakeRemote) accept(v packet.Version) (*client.Raw, *packet.Connect) {
	f.t.Helper()
	_ = f.ln.SetDeadline(time.Now().Add(wait))
	conn, err := f.ln.Accept()
	if err != nil {
		f.t.Fatalf("no connection from the bridge: %v", err)
	}
	f.t.Cleanup(func() { conn.Close() })
	r := client.NewRaw(conn, v)
	return r, expect[*packet.Connect](f.t, r)
}

// pending reports whether a connection is waiting to be accepted now.
func (f *fakeRemote) pending() bool {
	_ = f.ln.SetDeadline(time.Now())
	conn, err := f.ln.Accept()
	if err == nil {
		conn.Close()
		return true
	}
	return false
}

// expect reads the next packet, which must be a T.
func expect[T packet.Packet](t testing.TB, r *client.Raw) T {
	t.Helper()
	p, err := r.Next(wait)
	if err != nil {
		t.Fatalf("reading from the bridge: %v", err)
	}
	v, ok := p.(T)
	if !ok {
		var zero T
		t.Fatalf("got %T %+v, want %T", p, p, zero)
	}
	return v
}

// newBridge starts a bridge from cfg, its defaults filled as the parser
// would, to remote, on the local broker lb.
func newBridge(t testing.TB, lb *broker.Broker, cfg config.Bridge, o Options) *Bridge {
	t.Helper()
	if cfg.ProtocolVersion == 0 {
		cfg.ProtocolVersion = 4
	}
	if cfg.Keepalive == 0 {
		cfg.Keepalive = 60 * time.Second
	}
	if cfg.RestartBase == 0 {
		cfg.RestartBase = 10 * time.Millisecond
	}
	if cfg.StartType == "" {
		cfg.StartType = config.StartAutomatic
	}
	cfg.RemoteClientID, cfg.LocalClientID = "edge", "local.edge"
	cfg.NotificationTopic = "$SYS/broker/connection/edge/state"
	o.Config, o.Broker = &cfg, lb
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// publisher connects a client to the local broker.
func publisher(t *testing.T, addr string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := client.Dial(ctx, client.Options{Address: addr, ClientID: "pub", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func publish(t *testing.T, c *client.Client, topic string, payload string, qos byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Publish(ctx, &client.Message{Topic: topic, Payload: []byte(payload), QoS: qos}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond, for counters the bridge changes on its goroutines.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConnectPacket checks the CONNECT Mosquitto's bridges send, which
// remote brokers (and Mosquitto's tests) rely on: try_private sets the
// protocol level's high bit for MQTT 3.1.1 (0x84) and 3.1 (0x83, MQIsdp),
// never for MQTT 5; notifications put a retained "0" will on the state
// topic; MQTT 5 announces a receive maximum.
func TestConnectPacket(t *testing.T) {
	lb, _ := localBroker(t)
	user, pass := "site1", "s3cret"
	tests := []struct {
		name   string
		cfg    config.Bridge
		bridge bool
		v      packet.Version
		will   bool
	}{
		{"3.1.1 try_private", config.Bridge{ProtocolVersion: 4, TryPrivate: true}, true, packet.V311, false},
		{"3.1 try_private", config.Bridge{ProtocolVersion: 3, TryPrivate: true}, true, packet.V31, false},
		{"3.1.1 plain", config.Bridge{ProtocolVersion: 4}, false, packet.V311, false},
		{"5 ignores try_private", config.Bridge{ProtocolVersion: 5, TryPrivate: true}, false, packet.V5, false},
		{"notifications", config.Bridge{ProtocolVersion: 4, Notifications: true, RemoteUsername: &user, RemotePassword: &pass}, false, packet.V311, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rem := newFakeRemote(t)
			cfg := tt.cfg
			cfg.Name, cfg.Addresses, cfg.Keepalive = "edge", []config.BridgeAddress{rem.address()}, 30*time.Second
			cfg.Topics = []config.BridgeTopic{{Pattern: "a/#", Direction: config.BridgeOut}}
			newBridge(t, lb, cfg, Options{})
			_, c := rem.accept(tt.v)
			if c.Bridge != tt.bridge || c.Version != tt.v || c.CleanStart || c.KeepAlive != 30 || string(c.ClientID) != "edge" {
				t.Errorf("CONNECT %+v", c)
			}
			if tt.v == packet.V31 && string(c.ProtocolName) != "MQIsdp" {
				t.Errorf("protocol name %q", c.ProtocolName)
			}
			if tt.v == packet.V5 && (!c.Props.Present(packet.PropReceiveMaximum) || c.Props.ReceiveMaximum != 20 || c.Props.Present(packet.PropSessionExpiry)) {
				t.Errorf("MQTT 5 properties %+v", c.Props)
			}
			if tt.will != c.WillFlag || tt.will && (string(c.WillTopic) != "$SYS/broker/connection/edge/state" || string(c.WillPayload) != "0" || !c.WillRetain || c.WillQoS != 1) {
				t.Errorf("will: %+v", c)
			}
			if tt.cfg.RemoteUsername != nil && (string(c.Username) != user || string(c.Password) != pass) {
				t.Errorf("credentials %q %q", c.Username, c.Password)
			}
		})
	}
}

// TestQueueBoundAndResend: while the remote does not answer, messages
// queue up to max_queued_messages and the rest are dropped and counted;
// messages in flight when the connection drops are sent again with DUP and
// their packet identifiers on the next connection, in order.
func TestQueueBoundAndResend(t *testing.T) {
	lb, addr := localBroker(t)
	rem := newFakeRemote(t)
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{rem.address()}, CleanSession: false,
		Topics: []config.BridgeTopic{{Pattern: "q/#", Direction: config.BridgeOut, QoS: 1}}}
	b := newBridge(t, lb, cfg, Options{MaxQueued: 5})
	p := publisher(t, addr)
	for i := 1; i <= 8; i++ {
		publish(t, p, "q/"+strconv.Itoa(i), "m", 1)
	}
	waitFor(t, "5 queued and 3 dropped", func() bool { return b.Stats().Queued.Load() == 5 && b.Stats().Dropped.Load() == 3 })

	r, _ := rem.accept(packet.V311)
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	var ids []uint16
	for i := 1; i <= 5; i++ {
		pub := expect[*packet.Publish](t, r)
		if string(pub.Topic) != "q/"+strconv.Itoa(i) || pub.QoS != 1 || pub.Dup {
			t.Fatalf("publish %d: %+v", i, pub)
		}
		ids = append(ids, pub.PacketID)
	}
	r.Close() // nothing acknowledged

	r, _ = rem.accept(packet.V311)
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		pub := expect[*packet.Publish](t, r)
		if string(pub.Topic) != "q/"+strconv.Itoa(i+1) || !pub.Dup || pub.PacketID != id {
			t.Fatalf("resend %d: %+v, want DUP with id %d", i+1, pub, id)
		}
		if err := r.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: id}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "an empty queue", func() bool { return b.Stats().Queued.Load() == 0 })
	if got := b.Stats().Reconnects(); got != 1 {
		t.Errorf("reconnects %d, want 1", got)
	}
}

// TestLazyStart: a lazy bridge connects only once threshold messages are
// queued, and disconnects after idle_timeout with nothing to send.
func TestLazyStart(t *testing.T) {
	lb, addr := localBroker(t)
	rem := newFakeRemote(t)
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{rem.address()}, StartType: config.StartLazy,
		Threshold: 3, IdleTimeout: 100 * time.Millisecond,
		Topics: []config.BridgeTopic{{Pattern: "l/#", Direction: config.BridgeOut, QoS: 1}}}
	b := newBridge(t, lb, cfg, Options{})
	p := publisher(t, addr)
	publish(t, p, "l/1", "m", 1)
	publish(t, p, "l/2", "m", 1)
	waitFor(t, "2 queued", func() bool { return b.Stats().Queued.Load() == 2 })
	if rem.pending() {
		t.Fatal("the lazy bridge connected below its threshold")
	}
	publish(t, p, "l/3", "m", 1)
	r, _ := rem.accept(packet.V311)
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		pub := expect[*packet.Publish](t, r)
		if err := r.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: pub.PacketID}); err != nil {
			t.Fatal(err)
		}
	}
	expect[*packet.Disconnect](t, r)
}

// TestIncomingQoS2 publishes a remote QoS 2 message locally once, even
// when the remote sends it again before PUBREL, and answers PUBREL with
// PUBCOMP; the topic loses the remote prefix and gains the local one.
func TestIncomingQoS2(t *testing.T) {
	lb, addr := localBroker(t)
	rem := newFakeRemote(t)
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{rem.address()},
		Topics: []config.BridgeTopic{{Pattern: "cmd/#", Direction: config.BridgeIn, QoS: 2, LocalPrefix: "site/", RemotePrefix: "cloud/"}}}
	newBridge(t, lb, cfg, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, _, err := client.Dial(ctx, client.Options{Address: addr, ClientID: "sub", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Subscribe(ctx, nil, packet.Subscription{Filter: []byte("site/#"), QoS: 2}); err != nil {
		t.Fatal(err)
	}
	r, _ := rem.accept(packet.V311)
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	sub := expect[*packet.Subscribe](t, r)
	if string(sub.Subs[0].Filter) != "cloud/cmd/#" || sub.Subs[0].QoS != 2 {
		t.Fatalf("subscribe %+v", sub.Subs)
	}
	msg := &packet.Publish{Topic: []byte("cloud/cmd/go"), Payload: []byte("x"), QoS: 2, PacketID: 7}
	if err := r.Send(msg); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Ack](t, r) // PUBREC
	msg.Dup = true
	if err := r.Send(msg, &packet.Ack{Kind: packet.PUBREL, PacketID: 7}); err != nil {
		t.Fatal(err)
	}
	if a := expect[*packet.Ack](t, r); a.Kind != packet.PUBREC {
		t.Fatalf("got %v, want PUBREC for the resend", a.Kind)
	}
	if a := expect[*packet.Ack](t, r); a.Kind != packet.PUBCOMP || a.PacketID != 7 {
		t.Fatalf("got %+v, want PUBCOMP 7", a)
	}
	select {
	case m := <-s.Messages():
		if m.Topic != "site/cmd/go" || string(m.Payload) != "x" {
			t.Fatalf("local message %+v", m)
		}
	case <-time.After(wait):
		t.Fatal("nothing published locally")
	}
	// A second copy would have come before this marker, published by the
	// same bridge session after it.
	if err := r.Send(&packet.Publish{Topic: []byte("cloud/cmd/marker"), QoS: 0}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-s.Messages():
		if m.Topic != "site/cmd/marker" {
			t.Fatalf("got %q again, want it once", m.Topic)
		}
	case <-time.After(wait):
		t.Fatal("marker not published locally")
	}
}

// TestFailover: when the first address refuses, the bridge tries the next
// one (Mosquitto's behaviour for several addresses).
func TestFailover(t *testing.T) {
	lb, _ := localBroker(t)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := config.BridgeAddress{Host: "127.0.0.1", Port: dead.Addr().(*net.TCPAddr).Port}
	dead.Close() // connections to it are refused from now on
	rem := newFakeRemote(t)
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{deadAddr, rem.address()},
		Topics: []config.BridgeTopic{{Pattern: "f/#", Direction: config.BridgeOut}}}
	b := newBridge(t, lb, cfg, Options{})
	r, _ := rem.accept(packet.V311)
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a connection", func() bool { return b.Stats().Connected.Load() })
}

// TestRetainedNotSentBack: on each connection the local broker's retained
// messages for the out topics go to the remote once, except those the
// remote itself sent through a both topic (which could overwrite a newer
// value there).
func TestRetainedNotSentBack(t *testing.T) {
	lb, addr := localBroker(t)
	rem := newFakeRemote(t)
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{rem.address()}, OutgoingRetain: true,
		Topics: []config.BridgeTopic{{Pattern: "r/#", Direction: config.BridgeBoth, QoS: 1}}}
	b := newBridge(t, lb, cfg, Options{})
	p := publisher(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := p.Publish(ctx, &client.Message{Topic: "r/local", Payload: []byte("L"), QoS: 1, Retain: true}); err != nil {
		t.Fatal(err)
	}

	r, _ := rem.accept(packet.V311)
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Subscribe](t, r)
	pub := expect[*packet.Publish](t, r)
	if string(pub.Topic) != "r/local" || !pub.Retain {
		t.Fatalf("first connection: %+v, want the local retained message", pub)
	}
	if err := r.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: pub.PacketID},
		&packet.Publish{Topic: []byte("r/remote"), Payload: []byte("R"), QoS: 1, PacketID: 1, Retain: true}); err != nil {
		t.Fatal(err)
	}
	if a := expect[*packet.Ack](t, r); a.Kind != packet.PUBACK || a.PacketID != 1 {
		t.Fatalf("got %+v, want PUBACK 1", a)
	}
	r.Close()

	r, _ = rem.accept(packet.V311)
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Subscribe](t, r)
	pub = expect[*packet.Publish](t, r)
	if string(pub.Topic) != "r/local" {
		t.Fatalf("second connection: %+v, want only r/local", pub)
	}
	if err := r.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: pub.PacketID}); err != nil {
		t.Fatal(err)
	}
	// The refresh is complete once the bridge has nothing queued; a
	// PINGREQ is then answered before anything else would be sent.
	waitFor(t, "an empty queue", func() bool { return b.Stats().Queued.Load() == 0 })
	if err := r.Send(packet.Pingreq{}); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Next(wait); err != nil {
		t.Fatal(err)
	} else if _, ok := got.(packet.Pingresp); !ok {
		t.Fatalf("got %T %+v, want PINGRESP (r/remote sent back?)", got, got)
	}
}

// TestRetainedOnceAfterStart is 06-bridge-b2br-late-connection-retain
// without the restart: a retained message that exists when the bridge
// starts reaches the remote exactly once (Mosquitto 2.0.11 sends it twice).
func TestRetainedOnceAfterStart(t *testing.T) {
	lb, addr := localBroker(t)
	p := publisher(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := p.Publish(ctx, &client.Message{Topic: "bridge/test", Payload: []byte("message"), QoS: 1, Retain: true}); err != nil {
		t.Fatal(err)
	}
	rem := newFakeRemote(t)
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{rem.address()}, OutgoingRetain: true,
		Topics: []config.BridgeTopic{{Pattern: "bridge/#", Direction: config.BridgeOut, QoS: 1}}}
	b := newBridge(t, lb, cfg, Options{})
	r, _ := rem.accept(packet.V311)
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	pub := expect[*packet.Publish](t, r)
	if string(pub.Topic) != "bridge/test" || !pub.Retain || pub.QoS != 1 || pub.PacketID != 1 {
		t.Fatalf("got %+v, want the retained message with id 1", pub)
	}
	if err := r.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an empty queue", func() bool { return b.Stats().Queued.Load() == 0 })
	if err := r.Send(packet.Pingreq{}); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Next(wait); err != nil {
		t.Fatal(err)
	} else if _, ok := got.(packet.Pingresp); !ok {
		t.Fatalf("got %T %+v, want PINGRESP (the retained message twice?)", got, got)
	}
}

// TestMaxPacketSize: a message larger than bridge_max_packet_size is
// dropped and counted, the next one goes through.
func TestMaxPacketSize(t *testing.T) {
	lb, addr := localBroker(t)
	rem := newFakeRemote(t)
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{rem.address()}, MaxPacketSize: 64,
		Topics: []config.BridgeTopic{{Pattern: "s/#", Direction: config.BridgeOut, QoS: 1}}}
	b := newBridge(t, lb, cfg, Options{})
	r, _ := rem.accept(packet.V311)
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a connection", func() bool { return b.Stats().Connected.Load() })
	p := publisher(t, addr)
	publish(t, p, "s/big", string(make([]byte, 100)), 1)
	publish(t, p, "s/small", "ok", 1)
	pub := expect[*packet.Publish](t, r)
	if string(pub.Topic) != "s/small" {
		t.Fatalf("got %q, want s/small (s/big is over the limit)", pub.Topic)
	}
	if got := b.Stats().Dropped.Load(); got != 1 {
		t.Errorf("dropped %d, want 1", got)
	}
}

// TestPrimaryReturn: without round_robin, a bridge on a secondary address
// goes back to the first one as soon as it accepts connections again.
func TestPrimaryReturn(t *testing.T) {
	lb, _ := localBroker(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	primaryAddr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	secondary := newFakeRemote(t)
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{{Host: "127.0.0.1", Port: port}, secondary.address()},
		Topics: []config.BridgeTopic{{Pattern: "p/#", Direction: config.BridgeOut}}}
	newBridge(t, lb, cfg, Options{primaryRetry: 20 * time.Millisecond})
	r, _ := secondary.accept(packet.V311)
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	pl, err := net.Listen("tcp", primaryAddr)
	if err != nil {
		t.Skipf("the primary's port was taken meanwhile: %v", err)
	}
	primary := &fakeRemote{t: t, ln: pl.(*net.TCPListener)}
	t.Cleanup(func() { pl.Close() })
	// The probe's own connection comes first and is closed at once; then
	// the bridge leaves the secondary and connects.
	expect[*packet.Disconnect](t, r)
	for {
		_ = primary.ln.SetDeadline(time.Now().Add(wait))
		conn, err := primary.ln.Accept()
		if err != nil {
			t.Fatalf("the bridge did not come back to the main address: %v", err)
		}
		raw := client.NewRaw(conn, packet.V311)
		p, err := raw.Next(wait)
		if err != nil { // the probe
			conn.Close()
			continue
		}
		if _, ok := p.(*packet.Connect); !ok {
			t.Fatalf("got %T on the main address, want CONNECT", p)
		}
		conn.Close()
		return
	}
}

// TestLocalCleanSession: with local_cleansession true, as in Mosquitto,
// messages published while the remote is not connected are not kept
// (06-bridge-clean-session's "not queued A->B" cases).
func TestLocalCleanSession(t *testing.T) {
	lb, addr := localBroker(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	remoteAddr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // the remote is down: connections are refused
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{{Host: "127.0.0.1", Port: port}},
		CleanSession: true, LocalCleanSession: true,
		Topics: []config.BridgeTopic{{Pattern: "c/#", Direction: config.BridgeOut, QoS: 1}}}
	b := newBridge(t, lb, cfg, Options{})
	p := publisher(t, addr)
	publish(t, p, "c/while-down", "m", 1)
	waitFor(t, "a dropped message", func() bool { return b.Stats().Dropped.Load() == 1 })
	l2, err := net.Listen("tcp", remoteAddr)
	if err != nil {
		t.Skipf("the remote's port was taken meanwhile: %v", err)
	}
	rem := &fakeRemote{t: t, ln: l2.(*net.TCPListener)}
	t.Cleanup(func() { l2.Close() })
	r, _ := rem.accept(packet.V311)
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a connection", func() bool { return b.Stats().Connected.Load() })
	publish(t, p, "c/after", "m", 1)
	pub := expect[*packet.Publish](t, r)
	if string(pub.Topic) != "c/after" {
		t.Fatalf("got %q, want only c/after", pub.Topic)
	}
}

// TestKeepAlive: the bridge pings a quiet remote after keepalive_interval
// and, with no answer within 1.5 times that, drops the connection and
// connects again.
func TestKeepAlive(t *testing.T) {
	lb, _ := localBroker(t)
	rem := newFakeRemote(t)
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{rem.address()}, Keepalive: time.Second,
		Topics: []config.BridgeTopic{{Pattern: "k/#", Direction: config.BridgeOut}}}
	newBridge(t, lb, cfg, Options{})
	r, c := rem.accept(packet.V311)
	if c.KeepAlive != 1 {
		t.Fatalf("keep alive %d, want 1", c.KeepAlive)
	}
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	expect[packet.Pingreq](t, r) // not answered
	if p, err := r.Next(wait); err == nil {
		t.Fatalf("got %T, want the connection closed", p)
	}
	rem.accept(packet.V311)
}

// TestNewNamesTheBadFile: a bridge CA that cannot be read stops the start
// with the option's file:line, in bridge option names.
func TestNewNamesTheBadFile(t *testing.T) {
	lb, _ := localBroker(t)
	cfg := &config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{{Host: "127.0.0.1", Port: 1}},
		TLS: config.BridgeTLS{CAFile: config.File{Path: "/nonexistent/ca.crt", Pos: config.Pos{File: "m.conf", Line: 7, Col: 1}}}}
	_, err := New(Options{Config: cfg, Broker: lb})
	if err == nil || !strings.HasPrefix(err.Error(), "m.conf:7: bridge edge: bridge_cafile /nonexistent/ca.crt") {
		t.Fatalf("error %v", err)
	}
}

// TestQoS0DuringHandshake: a QoS 0 message that arrives while the bridge
// waits for CONNACK is sent after it, as Mosquitto does
// (06-bridge-br2b-remapping publishes right after its CONNACK).
func TestQoS0DuringHandshake(t *testing.T) {
	lb, addr := localBroker(t)
	rem := newFakeRemote(t)
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{rem.address()},
		Topics: []config.BridgeTopic{{Pattern: "z/#", Direction: config.BridgeOut}}}
	b := newBridge(t, lb, cfg, Options{})
	r, _ := rem.accept(packet.V311)
	p := publisher(t, addr)
	publish(t, p, "z/early", "m", 0)
	waitFor(t, "the message queued", func() bool { return b.Stats().Queued.Load() == 1 })
	if err := r.Send(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	if pub := expect[*packet.Publish](t, r); string(pub.Topic) != "z/early" {
		t.Fatalf("got %q, want z/early", pub.Topic)
	}
}
