package broker

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/topic"
)

// Regression tests of issue 20 (security and correctness review), each
// named after its item.

// ruleAuth lets everybody in and decides each access with a function
// that can be swapped, as a reload swaps an ACL file.
type ruleAuth struct {
	mu   sync.Mutex
	rule func(ci *ClientInfo, topic string, acc Access) bool
}

func (a *ruleAuth) Authenticate(*ClientInfo, []byte, bool) packet.ReasonCode { return packet.Success }

func (a *ruleAuth) Authorize(ci *ClientInfo, t string, acc Access) bool {
	a.mu.Lock()
	rule := a.rule
	a.mu.Unlock()
	return rule(ci, t, acc)
}

func (a *ruleAuth) set(rule func(ci *ClientInfo, topic string, acc Access) bool) {
	a.mu.Lock()
	a.rule = rule
	a.mu.Unlock()
}

// aliceReads is the ACL: alice may read a/public/# only (and
// subscribe to anything, as Mosquitto lets her subscribe to "#"); everyone
// else may do anything. extra topics are readable by alice too.
func aliceReads(extra ...string) func(ci *ClientInfo, t string, acc Access) bool {
	return func(ci *ClientInfo, t string, acc Access) bool {
		if ci.Username != "alice" || acc != AccessRead {
			return true
		}
		for _, p := range append([]string{"a/public/"}, extra...) {
			if strings.HasPrefix(t, p) {
				return true
			}
		}
		return false
	}
}

// aliceSession connects alice's persistent MQTT 5 session "al".
func aliceSession(t *testing.T, addr string) (*rawClient, *packet.Connack) {
	t.Helper()
	return v5Session(t, addr, "al", 300, func(p *packet.Connect) {
		p.UsernameFlag, p.Username = true, []byte("alice")
	})
}

func publishQoS1(t *testing.T, pub *rawClient, id uint16, topicName, payload string) {
	t.Helper()
	pub.send(&packet.Publish{QoS: 1, PacketID: id, Topic: []byte(topicName), Payload: []byte(payload)})
	if a, ok := pub.recv().(*packet.Ack); !ok || a.Kind != packet.PUBACK || a.Code.IsError() {
		t.Fatalf("publish %s not acknowledged", topicName)
	}
}

// TestOfflineQueueReadACL (item 1): a message alice may not read is not
// queued for her offline session, and is not sent when she returns.
func TestOfflineQueueReadACL(t *testing.T) {
	a := &ruleAuth{rule: aliceReads()}
	b, addr := startBroker(t, func(o *Options) { o.Auth = a })
	al, _ := aliceSession(t, addr)
	al.subscribe(1, "#", 1)
	al.send(&packet.Disconnect{})
	al.expectClosed()

	pub := connectOK(t, addr, packet.V5, "pub")
	publishQoS1(t, pub, 1, "secret", "not for alice")
	publishQoS1(t, pub, 2, "a/public/news", "for alice")
	b.mu.Lock()
	s := b.sessions["al"]
	b.mu.Unlock()
	s.mu.Lock()
	queued := s.queue.len()
	s.mu.Unlock()
	if queued != 1 {
		t.Errorf("%d messages queued for alice's offline session, want 1 (the one she may read)", queued)
	}

	al2, ack := aliceSession(t, addr)
	if !ack.SessionPresent {
		t.Fatal("session not resumed")
	}
	if m := al2.recvPublish(); string(m.Topic) != "a/public/news" {
		t.Fatalf("alice got %s (%q) after reconnecting", m.Topic, m.Payload)
	}
	al2.sync() // nothing else was queued before the PINGRESP
}

// TestOfflineQueueReadACLAfterReload (item 1, SIGHUP variant): alice may
// read secret/# when a message is queued for her; then the rules change.
// Whether Recheck ran (SIGHUP) or not, she does not get it on her return.
func TestOfflineQueueReadACLAfterReload(t *testing.T) {
	for _, recheck := range []bool{true, false} {
		name := "sent-check"
		if recheck {
			name = "recheck"
		}
		t.Run(name, func(t *testing.T) {
			a := &ruleAuth{rule: aliceReads("secret/")}
			b, addr := startBroker(t, func(o *Options) { o.Auth = a })
			al, _ := aliceSession(t, addr)
			al.subscribe(1, "#", 1)
			al.send(&packet.Disconnect{})
			al.expectClosed()
			pub := connectOK(t, addr, packet.V5, "pub")
			publishQoS1(t, pub, 1, "secret/plan", "queued while allowed")

			a.set(aliceReads())
			if recheck {
				b.Recheck()
				b.mu.Lock()
				s := b.sessions["al"]
				b.mu.Unlock()
				s.mu.Lock()
				n := s.queue.len()
				s.mu.Unlock()
				if n != 0 {
					t.Errorf("Recheck left %d unreadable messages in the offline queue", n)
				}
			}
			publishQoS1(t, pub, 2, "a/public/marker", "marker")
			al2, _ := aliceSession(t, addr)
			if m := al2.recvPublish(); string(m.Topic) != "a/public/marker" {
				t.Fatalf("alice got %s (%q) after the rules changed", m.Topic, m.Payload)
			}
			al2.sync()
		})
	}
}

// TestUseUsernameAsClientIDFromIdentity (item 2): on a listener that takes
// the user name from the certificate, use_username_as_clientid takes the
// certificate's name, not the one the client sends; a client without a
// user name is refused on such a listener.
func TestUseUsernameAsClientIDFromIdentity(t *testing.T) {
	b, ln := newBroker(t, nil)
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert := &Listener{Name: "cert", UseUsernameAsClientID: true,
		Identity: func(net.Conn) (string, bool, error) { return "dev1", true, nil }}
	plain := &Listener{Name: "plain", UseUsernameAsClientID: true}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = b.Serve(ln, cert) }()
	go func() { defer wg.Done(); _ = b.Serve(ln2, plain) }()
	t.Cleanup(func() { b.Close(); wg.Wait() })

	c := dialRaw(t, ln.Addr().String(), packet.V311)
	if ack := c.connect(&packet.Connect{ClientID: []byte("x"), CleanStart: true, UsernameFlag: true,
		Username: []byte("dev2")}); ack.Code != 0 {
		t.Fatalf("refused: %v", ack.Code)
	}
	c.sync()
	b.mu.Lock()
	_, dev1 := b.sessions["dev1"]
	_, dev2 := b.sessions["dev2"]
	b.mu.Unlock()
	if !dev1 || dev2 {
		t.Fatalf("sessions dev1 %v, dev2 %v: the client id must be the certificate's name", dev1, dev2)
	}

	for _, v := range versions {
		c := dialRaw(t, ln2.Addr().String(), v)
		ack := c.connect(&packet.Connect{ClientID: []byte("anon"), CleanStart: true})
		want := packet.ErrNotAuthorized
		if v != packet.V5 {
			want = packet.ReasonCode(packet.ConnackV3(want))
		}
		if ack.Code != want {
			t.Errorf("%v client without a user name: CONNACK %v, want %v", v, ack.Code, want)
		}
	}
}

// TestWillToSysRefused (item 8): a will to $SYS is accepted at CONNECT,
// as Mosquitto does, but never published, retained or not.
func TestWillToSysRefused(t *testing.T) {
	b, addr := startBroker(t, nil)
	watch := connectOK(t, addr, packet.V5, "watch")
	watch.subscribe(1, "$SYS/#", 1)
	c := dialRaw(t, addr, packet.V5)
	if ack := c.connect(&packet.Connect{ClientID: []byte("w"), CleanStart: true, WillFlag: true, WillQoS: 1,
		WillRetain: true, WillTopic: []byte("$SYS/broker/version"), WillPayload: []byte("forged")}); ack.Code != 0 {
		t.Fatalf("CONNECT refused: %v", ack.Code)
	}
	c.nc.Close() // no DISCONNECT: the will is due
	waitSessionGone(t, b, "w", 5*time.Second)
	if _, ok := b.retained.Get("$SYS/broker/version"); ok {
		t.Fatal("the will was retained on $SYS")
	}
	b.Publish("$SYS/marker", []byte("marker"))
	if m := watch.recvPublish(); string(m.Topic) != "$SYS/marker" {
		t.Fatalf("watcher got %s (%q): the will reached $SYS", m.Topic, m.Payload)
	}
}

// TestWillExpiryFromPublication (item 10): a will's Message Expiry
// Interval counts from when the will is published, not from CONNECT.
func TestWillExpiryFromPublication(t *testing.T) {
	b, addr := startBroker(t, nil)
	watch := connectOK(t, addr, packet.V5, "watch")
	watch.subscribe(1, "w/#", 1)
	start := time.Now()
	c, _ := v5Session(t, addr, "w", 30, func(p *packet.Connect) {
		p.CleanStart = true
		p.WillFlag, p.WillQoS, p.WillRetain = true, 1, true
		p.WillTopic, p.WillPayload = []byte("w/gone"), []byte("gone")
		p.WillProps.Set(packet.PropWillDelay)
		p.WillProps.WillDelay = 2 // longer than the expiry interval
		p.WillProps.Set(packet.PropMessageExpiry)
		p.WillProps.MessageExpiry = 1
	})
	c.nc.Close()
	p, err := watch.recvErr(15 * time.Second)
	if err != nil {
		t.Fatalf("no will: %v", err)
	}
	m, ok := p.(*packet.Publish)
	if !ok || string(m.Topic) != "w/gone" {
		t.Fatalf("got %T %+v", p, p)
	}
	if !m.Props.Present(packet.PropMessageExpiry) || m.Props.MessageExpiry != 1 {
		t.Fatalf("will forwarded with message expiry %d (present %v), want 1: it expired before it was published",
			m.Props.MessageExpiry, m.Props.Present(packet.PropMessageExpiry))
	}
	// Published 2 s (the delay) after the connection ended, it expires
	// 1 s after that: later than 2 s after the CONNECT in any case.
	if r, ok := b.retained.Get("w/gone"); !ok || !r.Expiry.After(start.Add(2*time.Second)) {
		t.Fatal("the retained will is missing or its expiry was counted from CONNECT")
	}
}

// TestQoS2BurstMQTT311 (item 9): an MQTT 3.1.1 client may leave more
// unreleased QoS 2 messages than max_inflight_messages (3.1.1 has no
// Receive Maximum); only an MQTT 5 client over the Receive Maximum it was
// given is disconnected with 0x93.
func TestQoS2BurstMQTT311(t *testing.T) {
	_, addr := startBroker(t, func(o *Options) { o.MaxInflightMessages = 20 })
	sub := connectOK(t, addr, packet.V311, "sub")
	sub.subscribe(1, "burst", 0)
	pub := connectOK(t, addr, packet.V311, "pub")
	const n = 40
	var burst []byte
	for i := range n {
		burst = (&packet.Publish{QoS: 2, PacketID: uint16(i + 1), Topic: []byte("burst"), Payload: []byte{byte(i)}}).Append(burst, packet.V311)
	}
	pub.sendRaw(burst)
	for range n {
		if a, ok := pub.recv().(*packet.Ack); !ok || a.Kind != packet.PUBREC {
			t.Fatal("expected PUBREC")
		}
	}
	var rel []byte
	for i := range n {
		rel = packet.AppendAck(rel, packet.PUBREL, uint16(i+1))
	}
	pub.sendRaw(rel)
	for range n {
		if a, ok := pub.recv().(*packet.Ack); !ok || a.Kind != packet.PUBCOMP {
			t.Fatal("expected PUBCOMP")
		}
	}
	for i := range n {
		if m := sub.recvPublish(); m.Payload[0] != byte(i) {
			t.Fatalf("message %d arrived as %d", i, m.Payload[0])
		}
	}

	v5 := connectOK(t, addr, packet.V5, "pub5")
	burst = burst[:0]
	for i := range 21 {
		burst = (&packet.Publish{QoS: 2, PacketID: uint16(i + 1), Topic: []byte("burst"), Payload: []byte{byte(i)}}).Append(burst, packet.V5)
	}
	v5.sendRaw(burst)
	for range 20 {
		if a, ok := v5.recv().(*packet.Ack); !ok || a.Kind != packet.PUBREC {
			t.Fatal("expected PUBREC")
		}
	}
	if d := v5.expectClosed(); d == nil || d.Code != packet.ErrReceiveMaximumExceeded {
		t.Fatalf("MQTT 5 client over its Receive Maximum: DISCONNECT %+v, want 0x93", d)
	}
}

// TestStalledSubscriberDoesNotHoldPublisher (item 7): a subscriber that
// never acknowledges costs its publisher nothing beyond its bounded queue:
// every PUBLISH is acknowledged promptly and what does not fit is dropped
// and counted. (The old code held the publisher 5 s per message.)
func TestStalledSubscriberDoesNotHoldPublisher(t *testing.T) {
	b, addr := startBroker(t, func(o *Options) { o.MaxQueuedMessages = 5; o.MaxInflightMessages = 2 })
	stalled := connectOK(t, addr, packet.V311, "stalled")
	stalled.subscribe(1, "st", 1)
	pub := connectOK(t, addr, packet.V311, "pub")
	const n = 30
	for i := range n {
		pub.send(&packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("st"), Payload: []byte{byte(i)}})
		// recv's 3 s bound per PUBACK: the old code's 5 s hold overran it.
		if a, ok := pub.recv().(*packet.Ack); !ok || a.Kind != packet.PUBACK {
			t.Fatalf("message %d not acknowledged", i)
		}
	}
	// The subscriber gets what fits its window and queue, nothing more:
	// it acknowledges each batch with a PINGREQ after it, and the batch
	// that the acknowledgements release arrives before the PINGRESP.
	got := 0
	var acks []byte
	for {
		stalled.sendRaw(append(acks, packet.Pingreq{}.Append(nil, packet.V311)...))
		acks = acks[:0]
		for {
			p := stalled.recv()
			if m, ok := p.(*packet.Publish); ok {
				got++
				acks = packet.AppendAck(acks, packet.PUBACK, m.PacketID)
				continue
			}
			if p.Type() != packet.PINGRESP {
				t.Fatalf("unexpected %T", p)
			}
			break
		}
		if len(acks) == 0 {
			break
		}
	}
	dropped := int(b.Stats().MessagesDropped.Load())
	if got+dropped != n || got > 2+2*5 || dropped == 0 {
		t.Fatalf("delivered %d, dropped %d of %d (window 2, queue 5)", got, dropped, n)
	}
}

// TestMutualPublishersDoNotStall (item 7): two clients that publish to
// each other, each busy writing before it reads, do not hold each other
// back message after message.
func TestMutualPublishersDoNotStall(t *testing.T) {
	_, addr := startBroker(t, func(o *Options) { o.MaxQueuedMessages = 5; o.MaxInflightMessages = 2 })
	x := connectOK(t, addr, packet.V311, "x")
	x.subscribe(1, "to/x", 1)
	y := connectOK(t, addr, packet.V311, "y")
	y.subscribe(1, "to/y", 1)
	const n = 40
	burst := func(to string) []byte {
		var out []byte
		for i := range n {
			out = (&packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte(to), Payload: []byte{byte(i)}}).Append(out, packet.V311)
		}
		return out
	}
	x.sendRaw(burst("to/y"))
	y.sendRaw(burst("to/x"))
	for _, c := range []*rawClient{x, y} {
		acks := 0
		for acks < n {
			p := c.recv() // 3 s each: the old code held each publish 5 s
			if a, ok := p.(*packet.Ack); ok && a.Kind == packet.PUBACK {
				acks++
			}
		}
	}
}

// TestResumeRespectsReceiveMaximum (low): a resumed session resends no
// more than the new connection's Receive Maximum at once [MQTT-3.3.4-7],
// the rest as acknowledgements make room, with their packet identifiers.
func TestResumeRespectsReceiveMaximum(t *testing.T) {
	_, addr := startBroker(t, nil)
	c, _ := v5Session(t, addr, "rm", 300, nil)
	c.subscribe(1, "rm", 1)
	pub := connectOK(t, addr, packet.V5, "pub")
	for i := range 6 {
		publishQoS1(t, pub, uint16(i+1), "rm", string(rune('a'+i)))
	}
	first := map[uint16]byte{}
	for range 6 {
		m := c.recvPublish() // none acknowledged
		first[m.PacketID] = m.Payload[0]
	}
	c.nc.Close()
	c2, ack := v5Session(t, addr, "rm", 300, func(p *packet.Connect) {
		p.Props.Set(packet.PropReceiveMaximum)
		p.Props.ReceiveMaximum = 2
	})
	if !ack.SessionPresent {
		t.Fatal("session not resumed")
	}
	var got []byte
	// take receives k resent messages and checks that nothing else came
	// (a further PUBLISH would arrive before the PINGRESP), then
	// acknowledges them, which makes room for as many more.
	take := func(k int) {
		var ids []uint16
		for range k {
			m := c2.recvPublish()
			if !m.Dup || first[m.PacketID] != m.Payload[0] {
				t.Fatalf("resent %q as id %d dup %v; first sent as id with %q", m.Payload, m.PacketID, m.Dup, first[m.PacketID])
			}
			got = append(got, m.Payload[0])
			ids = append(ids, m.PacketID)
		}
		c2.sync()
		for _, id := range ids {
			c2.send(&packet.Ack{Kind: packet.PUBACK, PacketID: id})
		}
	}
	take(2)
	take(2)
	take(2)
	if string(got) != "abcdef" {
		t.Fatalf("resent in order %q, want abcdef", got)
	}
}

// TestSessionEndRaceKeepsNewSubscriptions (low): a session with the same
// client id that starts and subscribes while the old one is being removed
// keeps its subscriptions.
func TestSessionEndRaceKeepsNewSubscriptions(t *testing.T) {
	b, addr := startBroker(t, nil)
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := func() {
		once.Do(func() {
			close(reached)
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		})
	}
	b.hookSessionEnded.Store(&hook)
	old := connectOK(t, addr, packet.V311, "same")
	old.subscribe(1, "race/t", 1)
	old.send(&packet.Disconnect{})
	select {
	case <-reached:
	case <-time.After(5 * time.Second):
		t.Fatal("the old session did not end")
	}
	fresh := connectOK(t, addr, packet.V311, "same")
	fresh.subscribe(1, "race/t", 1)
	close(release)
	waitSessionEndHook(t, b)
	pub := connectOK(t, addr, packet.V311, "pub")
	publishQoS1V3(t, pub, "race/t")
	if m := fresh.recvPublish(); string(m.Topic) != "race/t" {
		t.Fatalf("got %s", m.Topic)
	}
}

// waitSessionEndHook returns once no endSession is inside the hook: one
// that ran after it published nothing and removed nothing more.
func waitSessionEndHook(t *testing.T, b *Broker) {
	t.Helper()
	done := func() {}
	b.hookSessionEnded.Store(&done)
	// The old connection's cleanup finishes endSession after the hook;
	// its goroutine is counted in the broker's connections until then.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.conns)
		b.mu.Unlock()
		if n <= 1 { // the fresh client
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still registered", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func publishQoS1V3(t *testing.T, pub *rawClient, topicName string) {
	t.Helper()
	pub.send(&packet.Publish{QoS: 1, PacketID: 1, Topic: []byte(topicName), Payload: []byte("x")})
	if a, ok := pub.recv().(*packet.Ack); !ok || a.Kind != packet.PUBACK {
		t.Fatal("expected PUBACK")
	}
}

// blockingAuth holds every CONNECT in Authenticate until released.
type blockingAuth struct{ entered, release chan struct{} }

func (a *blockingAuth) Authenticate(*ClientInfo, []byte, bool) packet.ReasonCode {
	close(a.entered)
	<-a.release
	return packet.Success
}

func (a *blockingAuth) Authorize(*ClientInfo, string, Access) bool { return true }

// TestCloseDuringConnectRace (low): Close must not read version and
// session of a connection still in CONNECT (a data race the race detector
// reports: the connection sets its session while Close disconnects it).
func TestCloseDuringConnectRace(t *testing.T) {
	a := &blockingAuth{entered: make(chan struct{}), release: make(chan struct{})}
	b, ln := newBroker(t, func(o *Options) { o.Auth = a })
	served := make(chan struct{})
	go func() { defer close(served); _ = b.Serve(ln, nil) }()
	c := dialRaw(t, ln.Addr().String(), packet.V5)
	c.send(&packet.Connect{Version: packet.V5, ClientID: []byte("slow"), CleanStart: true})
	select {
	case <-a.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("CONNECT not handled")
	}
	closed := make(chan struct{})
	go func() { defer close(closed); b.Close() }()
	// Close closes the socket once it has dealt with the connection; only
	// then does the connection finish its CONNECT (and set its session),
	// with nothing ordering the two for the race detector but the fix.
	if _, err := c.recvErr(5 * time.Second); err == nil {
		t.Fatal("a packet before the close")
	}
	close(a.release)
	<-closed
	<-served
}

// topicPanicAuth panics when asked about the topic "boom".
type topicPanicAuth struct{}

func (topicPanicAuth) Authenticate(*ClientInfo, []byte, bool) packet.ReasonCode {
	return packet.Success
}

func (topicPanicAuth) Authorize(_ *ClientInfo, t string, _ Access) bool {
	if t == "boom" {
		panic("test: authorize boom")
	}
	return true
}

// TestPanicMidBatchStillFlushes (low): a read loop that panics in the
// middle of a batch hands the connections it had delivered to over to
// their writers: their output is not stranded.
func TestPanicMidBatchStillFlushes(t *testing.T) {
	b, addr := startBroker(t, func(o *Options) { o.Auth = topicPanicAuth{} })
	sub := connectOK(t, addr, packet.V311, "sub")
	sub.subscribe(1, "t/#", 0)
	bad := connectOK(t, addr, packet.V311, "bad")
	var batch []byte
	batch = (&packet.Publish{Topic: []byte("t/first"), Payload: []byte("1")}).Append(batch, packet.V311)
	batch = (&packet.Publish{Topic: []byte("boom"), Payload: []byte("!")}).Append(batch, packet.V311)
	bad.sendRaw(batch)
	bad.expectClosed()
	if b.Stats().Panics.Load() != 1 {
		t.Fatalf("%d panics recovered, want 1", b.Stats().Panics.Load())
	}
	good := connectOK(t, addr, packet.V311, "good")
	good.send(&packet.Publish{Topic: []byte("t/second"), Payload: []byte("2")})
	for _, want := range []string{"t/first", "t/second"} {
		if m := sub.recvPublish(); string(m.Topic) != want {
			t.Fatalf("got %s, want %s", m.Topic, want)
		}
	}
}

// startListeners serves b on one listener per l and returns their
// addresses.
func startListeners(t *testing.T, mod func(*Options), ls ...*Listener) (*Broker, []string) {
	t.Helper()
	b, ln := newBroker(t, mod)
	lns := []net.Listener{ln}
	for range ls[1:] {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, l)
	}
	var wg sync.WaitGroup
	var addrs []string
	for i, l := range ls {
		wg.Add(1)
		go func() { defer wg.Done(); _ = b.Serve(lns[i], l) }()
		addrs = append(addrs, lns[i].Addr().String())
	}
	t.Cleanup(func() { b.Close(); wg.Wait() })
	return b, addrs
}

// TestMountPointACL (item 11): PUBLISH, wills, SUBSCRIBE and deliveries
// are all checked with the topic as the mount point makes it (Mosquitto's
// form), so one ACL on "mp/..." covers a client of the listener.
func TestMountPointACL(t *testing.T) {
	a := &ruleAuth{rule: func(ci *ClientInfo, t string, acc Access) bool {
		return ci.Username != "dev" || strings.HasPrefix(t, "mp/dev/")
	}}
	_, addrs := startListeners(t, func(o *Options) { o.Auth = a },
		&Listener{Name: "plain"}, &Listener{Name: "mounted", MountPoint: "mp/"})
	watch := connectOK(t, addrs[0], packet.V5, "watch")
	watch.subscribe(1, "mp/#", 1)
	dev := dialRaw(t, addrs[1], packet.V5)
	if ack := dev.connect(&packet.Connect{ClientID: []byte("dev"), CleanStart: true, UsernameFlag: true,
		Username: []byte("dev"), WillFlag: true, WillQoS: 1, WillTopic: []byte("dev/status"),
		WillPayload: []byte("offline")}); ack.Code != 0 {
		t.Fatalf("refused: %v", ack.Code)
	}
	if sa := dev.subscribe(1, "dev/in", 1); sa.Codes[0] != 1 {
		t.Fatalf("SUBSCRIBE dev/in: %v", sa.Codes)
	}
	dev.send(&packet.Publish{QoS: 1, PacketID: 1, Topic: []byte("dev/out"), Payload: []byte("up")})
	if a, ok := dev.recv().(*packet.Ack); !ok || a.Code != packet.Success {
		t.Fatalf("PUBLISH dev/out (mp/dev/out in the ACL) refused: %+v", a)
	}
	if m := watch.recvPublish(); string(m.Topic) != "mp/dev/out" {
		t.Fatalf("watcher got %s", m.Topic)
	}
	pub := connectOK(t, addrs[0], packet.V5, "pub")
	publishQoS1(t, pub, 1, "mp/dev/in", "down")
	if m := dev.recvPublish(); string(m.Topic) != "dev/in" || string(m.Payload) != "down" {
		t.Fatalf("dev got %s %q", m.Topic, m.Payload)
	}
	watch.recvPublish() // mp/dev/in
	dev.nc.Close()      // the will, to mp/dev/status, is allowed too
	if m := watch.recvPublish(); string(m.Topic) != "mp/dev/status" {
		t.Fatalf("watcher got %s, want the will", m.Topic)
	}
}

// TestMountPointLongTopicRefused (low): a topic that the mount point makes
// longer than 65,535 bytes is refused, instead of reaching subscribers as
// a PUBLISH whose 16-bit length has wrapped.
func TestMountPointLongTopicRefused(t *testing.T) {
	_, addrs := startListeners(t, nil, &Listener{Name: "plain"}, &Listener{Name: "mounted", MountPoint: "mp/"})
	watch := connectOK(t, addrs[0], packet.V5, "watch")
	watch.subscribe(1, "#", 0)
	long := bytes.Repeat([]byte("x"), topic.MaxLen-1)
	c := connectOK(t, addrs[1], packet.V5, "long")
	c.send(&packet.Publish{QoS: 1, PacketID: 1, Topic: long, Payload: []byte("wrapped")})
	if a, ok := c.recv().(*packet.Ack); !ok || a.Code != packet.ErrTopicNameInvalid {
		t.Fatalf("want PUBACK 0x90, got %+v", a)
	}
	if sa := c.subscribe(2, string(long), 0); sa.Codes[0] != packet.ErrTopicFilterInvalid {
		t.Fatalf("SUBSCRIBE with a too long mounted filter: %v", sa.Codes)
	}
	c.send(&packet.Publish{Topic: []byte("marker"), Payload: []byte("m")})
	if m := watch.recvPublish(); string(m.Topic) != "mp/marker" {
		t.Fatalf("watcher got %d bytes of topic first", len(m.Topic))
	}
}

// TestMatchCacheBoundedBySize (low): a publisher's match cache holds at
// most maxCacheBytes, however many subscriptions its topics match.
func TestMatchCacheBoundedBySize(t *testing.T) {
	var mc matchCache
	subs := make([]subscription, 500)
	for i := range 256 {
		mc.put(1, "t/"+strings.Repeat("x", i), subs)
		size := 0
		for k, v := range mc.m {
			size += len(k) + len(v)*int(cacheCost("", 1))
		}
		if size > maxCacheBytes || size != mc.bytes {
			t.Fatalf("after %d topics the cache holds %d bytes (counted %d), bound %d", i+1, size, mc.bytes, maxCacheBytes)
		}
	}
	mc.put(1, "huge", make([]subscription, 10000))
	if mc.get(1, "huge") != nil {
		t.Fatal("a match larger than the bound was cached")
	}
}

// TestPublishToShareRefused (nearby, same class as item 8): "$share/..."
// names shared subscriptions, not a topic; Mosquitto refuses a PUBLISH or
// will there, as it does for $SYS.
func TestPublishToShareRefused(t *testing.T) {
	b, addr := startBroker(t, nil)
	c := connectOK(t, addr, packet.V5, "sharer")
	c.send(&packet.Publish{QoS: 1, PacketID: 1, Retain: true, Topic: []byte("$share/g/t"), Payload: []byte("x")})
	if a, ok := c.recv().(*packet.Ack); !ok || a.Code != packet.ErrNotAuthorized {
		t.Fatalf("PUBLISH to $share/g/t: %+v, want PUBACK 0x87", a)
	}
	w := dialRaw(t, addr, packet.V311)
	if ack := w.connect(&packet.Connect{ClientID: []byte("w"), CleanStart: true, WillFlag: true, WillRetain: true,
		WillTopic: []byte("$share/g/w"), WillPayload: []byte("x")}); ack.Code != 0 {
		t.Fatalf("CONNECT refused: %v", ack.Code)
	}
	w.nc.Close()
	waitSessionGone(t, b, "w", 5*time.Second)
	if n := b.retained.Len(); n != 0 {
		t.Fatalf("%d retained messages on $share topics", n)
	}
}

// TestOversizePublishNotFramed (nearby, same class as the mount point
// wrap): a message received at MQTT 3's largest packet grows past what
// MQTT can frame for an MQTT 5 receiver (its property length); it is
// dropped for that receiver instead of being sent with a remaining length
// that does not fit the variable byte integer.
func TestOversizePublishNotFramed(t *testing.T) {
	b, _ := newBroker(t, nil)
	t.Cleanup(func() { b.Close() })
	nc, peer := net.Pipe()
	t.Cleanup(func() { nc.Close(); peer.Close() })
	c := newConn(b, nc, &Listener{Name: "pipe"})
	c.version = packet.V5
	// Allocated, never written: the pages stay untouched unless copied.
	payload := make([]byte, packet.MaxRemaining-3) // MQTT 3: 2+1+len = MaxRemaining
	if res := c.sendPublish("t", payload, &noProps, 0, 0, false, false, 0, 0, false); res != sendTooLarge {
		t.Fatalf("sendPublish: %v, want sendTooLarge", res)
	}
	if len(c.out) != 0 {
		t.Fatalf("%d bytes framed for the MQTT 5 receiver", len(c.out))
	}
	c.version = packet.V311
	p := packet.Publish{Topic: []byte("t"), Payload: payload}
	if p.Size(packet.V311) > maxEncodable {
		t.Fatal("the MQTT 3 form should fit")
	}
}

// TestLongIdleSubscriberStillHoldsPublisherBack (item 7): a subscriber
// that has been idle for long is not "stalled" — only one that owes
// acknowledgements for maxHold is — so a burst to it still holds its
// publisher back rather than losing acknowledged messages.
func TestLongIdleSubscriberStillHoldsPublisherBack(t *testing.T) {
	b, addr := startBroker(t, func(o *Options) { o.MaxQueuedMessages = 5; o.MaxInflightMessages = 2 })
	sub := connectOK(t, addr, packet.V311, "idle")
	sub.subscribe(1, "bp", 1)
	b.mu.Lock()
	s := b.sessions["idle"]
	b.mu.Unlock()
	s.mu.Lock()
	s.lastAck = 0 // connected, and last acknowledged, long ago
	s.mu.Unlock()
	pub := connectOK(t, addr, packet.V311, "fast")
	const n = 40
	var burst []byte
	for i := range n {
		burst = (&packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("bp"), Payload: []byte{byte(i)}}).Append(burst, packet.V311)
	}
	pub.sendRaw(burst)
	for i := range n {
		m := sub.recvPublish()
		if int(m.Payload[0]) != i {
			t.Fatalf("message %d arrived as %d", i, m.Payload[0])
		}
		sub.send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
	}
	if d := b.Stats().MessagesDropped.Load(); d != 0 {
		t.Fatalf("%d acknowledged messages were dropped", d)
	}
}

// TestWillPanicContained (nearby, same class as the panicking read loop):
// a will is published outside the read loop's recovery — in the
// connection's cleanup, or by a timer after its delay. A panic there (in
// an Auth) is recovered and counted; the broker goes on serving, and the
// session still ends.
func TestWillPanicContained(t *testing.T) {
	b, addr := startBroker(t, func(o *Options) { o.Auth = topicPanicAuth{} })
	now := dialRaw(t, addr, packet.V311)
	if ack := now.connect(&packet.Connect{ClientID: []byte("now"), CleanStart: true, WillFlag: true,
		WillTopic: []byte("boom"), WillPayload: []byte("x")}); ack.Code != 0 {
		t.Fatalf("refused: %v", ack.Code)
	}
	now.nc.Close()
	waitSessionGone(t, b, "now", 5*time.Second)
	later, _ := v5Session(t, addr, "later", 10, func(p *packet.Connect) {
		p.CleanStart = true
		p.WillFlag, p.WillTopic, p.WillPayload = true, []byte("boom"), []byte("x")
		p.WillProps.Set(packet.PropWillDelay)
		p.WillProps.WillDelay = 1
	})
	later.nc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().Panics.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d panics recovered, want 2", b.Stats().Panics.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	connectOK(t, addr, packet.V311, "after").sync()
}

// readPanicAuth panics when asked whether a client may read t/boom.
type readPanicAuth struct{}

func (readPanicAuth) Authenticate(*ClientInfo, []byte, bool) packet.ReasonCode { return packet.Success }

func (readPanicAuth) Authorize(_ *ClientInfo, t string, acc Access) bool {
	if t == "t/boom" && acc == AccessRead {
		panic("test: read check boom")
	}
	return true
}

// TestReadACLPanicFailsClosed (nearby, same class as the panicking read
// loop): the read check of a delivery runs under the subscriber's session
// lock; a panic there once unwound past the lock and left it held, so the
// subscriber — and the next CONNECT with its client id, under the broker's
// lock — hung. Now the access is denied and everything goes on.
func TestReadACLPanicFailsClosed(t *testing.T) {
	b, addr := startBroker(t, func(o *Options) { o.Auth = readPanicAuth{} })
	sub := connectOK(t, addr, packet.V311, "sub")
	sub.subscribe(1, "t/#", 0)
	pub := connectOK(t, addr, packet.V311, "pub")
	pub.send(&packet.Publish{Topic: []byte("t/boom"), Payload: []byte("!")})
	pub.send(&packet.Publish{Topic: []byte("t/ok"), Payload: []byte("ok")})
	if m := sub.recvPublish(); string(m.Topic) != "t/ok" {
		t.Fatalf("got %s", m.Topic)
	}
	if n := b.Stats().Panics.Load(); n != 1 {
		t.Fatalf("%d panics counted, want 1", n)
	}
	again := connectOK(t, addr, packet.V311, "sub") // takes the session over
	again.sync()
}
