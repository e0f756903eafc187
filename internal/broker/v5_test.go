package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

func v5Session(t *testing.T, addr, id string, expiry uint32, mod func(*packet.Connect)) (*rawClient, *packet.Connack) {
	t.Helper()
	c := dialRaw(t, addr, packet.V5)
	p := &packet.Connect{ClientID: []byte(id), KeepAlive: 60}
	p.Props.Set(packet.PropSessionExpiry)
	p.Props.SessionExpiry = expiry
	if mod != nil {
		mod(p)
	}
	return c, c.connect(p)
}

func TestMessageExpiryWhileQueued(t *testing.T) {
	// A queued message past its expiry is not delivered, and the remaining
	// interval is forwarded for the others [MQTT-3.3.2-5] [MQTT-3.3.2-6].
	_, addr := startBroker(t, nil)
	c, _ := v5Session(t, addr, "exp", 300, nil)
	c.subscribe(1, "e/#", 1)
	c.send(&packet.Disconnect{})
	c.expectClosed()
	pub := connectOK(t, addr, packet.V5, "pub")
	for i, secs := range []uint32{1, 100} {
		p := &packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("e/x"), Payload: []byte{byte('a' + i)}}
		p.Props.Set(packet.PropMessageExpiry)
		p.Props.MessageExpiry = secs
		pub.send(p)
		pub.recv()
	}
	time.Sleep(2100 * time.Millisecond)
	c2, ack := v5Session(t, addr, "exp", 300, nil)
	if !ack.SessionPresent {
		t.Fatal("session lost")
	}
	m := c2.recvPublish()
	if string(m.Payload) != "b" {
		t.Fatalf("expired message delivered: %q", m.Payload)
	}
	if !m.Props.Present(packet.PropMessageExpiry) || m.Props.MessageExpiry > 98 || m.Props.MessageExpiry < 90 {
		t.Fatalf("remaining expiry %d, want about 98", m.Props.MessageExpiry)
	}
}

// waitSessionGone polls until the broker has dropped the session, so the
// test does not depend on how fast a loaded machine notices a close.
func waitSessionGone(t *testing.T, b *Broker, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b.mu.Lock()
		_, ok := b.sessions[id]
		b.mu.Unlock()
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still present after %v", id, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSessionExpiry(t *testing.T) {
	b, addr := startBroker(t, nil)
	c, _ := v5Session(t, addr, "short", 1, nil)
	c.subscribe(1, "s", 1)
	closed := time.Now()
	c.nc.Close()
	waitSessionGone(t, b, "short", 10*time.Second)
	if time.Since(closed) < time.Second {
		t.Fatal("session ended before its 1 s expiry interval")
	}
	_, ack := v5Session(t, addr, "short", 1, nil)
	if ack.SessionPresent {
		t.Fatal("session survived its expiry interval")
	}
	// With expiry 0, the session ends at disconnect [MQTT-3.1.2-23].
	z, _ := v5Session(t, addr, "zero", 0, nil)
	z.subscribe(1, "s", 1)
	z.send(&packet.Disconnect{})
	z.expectClosed()
	_, ack = v5Session(t, addr, "zero", 0, nil)
	if ack.SessionPresent {
		t.Fatal("session with expiry 0 was kept")
	}
}

func TestSessionExpiryOnDisconnectAfterZeroIsProtocolError(t *testing.T) {
	// [MQTT-3.14.2-2]
	_, addr := startBroker(t, nil)
	c, _ := v5Session(t, addr, "z", 0, nil)
	d := &packet.Disconnect{}
	d.Props.Set(packet.PropSessionExpiry)
	d.Props.SessionExpiry = 60
	c.send(d)
	if got := c.expectClosed(); got == nil || got.Code != packet.ErrProtocol {
		t.Fatalf("want DISCONNECT 0x82, got %+v", got)
	}
}

func TestOutboundTopicAlias(t *testing.T) {
	_, addr := startBroker(t, nil)
	sub, _ := v5Session(t, addr, "aliased", 0, func(p *packet.Connect) {
		p.CleanStart = true
		p.Props.Set(packet.PropTopicAliasMaximum)
		p.Props.TopicAliasMaximum = 5
	})
	sub.subscribe(1, "long/topic/name", 0)
	pub := connectOK(t, addr, packet.V5, "pub")
	for range 2 {
		pub.send(&packet.Publish{Topic: []byte("long/topic/name"), Payload: []byte("x")})
	}
	first := sub.recvPublish()
	if string(first.Topic) != "long/topic/name" || first.Props.TopicAlias == 0 {
		t.Fatalf("first: %s alias %d", first.Topic, first.Props.TopicAlias)
	}
	second := sub.recvPublish()
	if len(second.Topic) != 0 || second.Props.TopicAlias != first.Props.TopicAlias {
		t.Fatalf("second: %q alias %d", second.Topic, second.Props.TopicAlias)
	}
}

func TestReceiveMaximumLimitsInflight(t *testing.T) {
	// The broker sends no more unacknowledged QoS 1 messages than the
	// client's Receive Maximum [MQTT-3.3.4-7].
	_, addr := startBroker(t, nil)
	sub, _ := v5Session(t, addr, "rm", 0, func(p *packet.Connect) {
		p.CleanStart = true
		p.Props.Set(packet.PropReceiveMaximum)
		p.Props.ReceiveMaximum = 2
	})
	sub.subscribe(1, "rm", 1)
	pub := connectOK(t, addr, packet.V5, "pub")
	for i := range 5 {
		pub.send(&packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("rm"), Payload: []byte{byte('0' + i)}})
		pub.recv()
	}
	a, b := sub.recvPublish(), sub.recvPublish()
	sub.expectNothing(200 * time.Millisecond)
	sub.send(&packet.Ack{Kind: packet.PUBACK, PacketID: a.PacketID})
	if c := sub.recvPublish(); c.Payload[0] != '2' {
		t.Fatalf("got %q after ack", c.Payload)
	}
	_ = b
}

func TestPayloadFormatInvalid(t *testing.T) {
	_, addr := startBroker(t, nil)
	pub := connectOK(t, addr, packet.V5, "pub")
	p := &packet.Publish{QoS: 1, PacketID: 1, Topic: []byte("u"), Payload: []byte{0xff, 0xfe}}
	p.Props.Set(packet.PropPayloadFormat)
	p.Props.PayloadFormat = 1
	pub.send(p)
	a, ok := pub.recv().(*packet.Ack)
	if !ok || a.Code != packet.ErrPayloadFormatInvalid {
		t.Fatalf("want PUBACK 0x99, got %+v", a)
	}
}

func TestSubscribeInvalidFilter(t *testing.T) {
	// Mosquitto disconnects (MQTT 5: DISCONNECT 0x81 malformed packet)
	// instead of answering SUBACK; so does mamori. The same for a filter
	// beyond Mosquitto's 200-level limit.
	for _, filter := range []string{"a/#/b", strings.Repeat("/", 201)} {
		for _, v := range versions {
			_, addr := startBroker(t, nil)
			c := connectOK(t, addr, v, "f")
			c.send(&packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte(filter)}}})
			d := c.expectClosed()
			if v == packet.V5 && (d == nil || d.Code != packet.ErrMalformedPacket) {
				t.Fatalf("v5 %.10q: want DISCONNECT 0x81, got %+v", filter, d)
			}
			if v != packet.V5 && d != nil {
				t.Fatalf("v%v: DISCONNECT sent to an MQTT 3 client", v)
			}
		}
	}
}

func TestUnsubscribe(t *testing.T) {
	_, addr := startBroker(t, nil)
	c := connectOK(t, addr, packet.V5, "u")
	c.subscribe(1, "x", 0)
	c.send(&packet.Unsubscribe{PacketID: 2, Filters: [][]byte{[]byte("x"), []byte("never")}})
	ua, ok := c.recv().(*packet.Unsuback)
	if !ok || ua.Codes[0] != packet.Success || ua.Codes[1] != packet.NoSubscriptionExisted {
		t.Fatalf("got %+v", ua)
	}
	c.send(&packet.Publish{Topic: []byte("x"), Payload: []byte("1")})
	c.expectNothing(150 * time.Millisecond)
}

func TestAuthMethodRefused(t *testing.T) {
	_, addr := startBroker(t, nil)
	c := dialRaw(t, addr, packet.V5)
	p := &packet.Connect{ClientID: []byte("a"), CleanStart: true}
	p.Props.Set(packet.PropAuthMethod)
	p.Props.AuthMethod = []byte("SCRAM-SHA-1")
	if ack := c.connect(p); ack.Code != packet.ErrBadAuthMethod {
		t.Fatalf("got %v", ack.Code)
	}
	// AUTH without a negotiated method: protocol error.
	c2 := connectOK(t, addr, packet.V5, "b")
	c2.send(&packet.Auth{Code: packet.ReAuthenticate})
	if d := c2.expectClosed(); d != nil {
		t.Fatalf("want the connection closed without DISCONNECT (as Mosquitto), got %+v", d)
	}
}

func TestSharedEncodingAcrossSubscribers(t *testing.T) {
	// One encoding serves subscribers of the same family; packet ids are
	// per receiver, and a v5 subscriber with a subscription id still gets it.
	_, addr := startBroker(t, nil)
	var subs []*rawClient
	for i, v := range []packet.Version{packet.V311, packet.V311, packet.V5, packet.V5, packet.V31} {
		c := connectOK(t, addr, v, fmt.Sprintf("s%d", i))
		// Different in-flight states, so the ids the broker picks differ.
		for k := 0; k < i; k++ {
			c.subscribe(uint16(10+k), fmt.Sprintf("warm/%d", k), 1)
		}
		subs = append(subs, c)
	}
	s := &packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte("enc/#"), QoS: 1}}}
	s.Props.Set(packet.PropSubscriptionID)
	s.Props.SubscriptionIDs = []uint32{9}
	subs[3].send(s)
	subs[3].recv()
	for i, c := range subs {
		if i != 3 {
			c.subscribe(1, "enc/#", 1)
		}
	}
	pub := connectOK(t, addr, packet.V5, "pub")
	p := &packet.Publish{QoS: 1, PacketID: 1, Topic: []byte("enc/x"), Payload: []byte("same")}
	p.Props.AddUser("a", "b")
	pub.send(p)
	pub.recv()
	for i, c := range subs {
		m := c.recvPublish()
		if string(m.Payload) != "same" || m.QoS != 1 || m.PacketID == 0 {
			t.Fatalf("sub %d: %+v", i, m)
		}
		if c.v == packet.V5 {
			if u := m.Props.UserPairs(); len(u) != 1 {
				t.Fatalf("sub %d: user properties %v", i, u)
			}
			hasID := len(m.Props.SubscriptionIDs) == 1 && m.Props.SubscriptionIDs[0] == 9
			if hasID != (i == 3) {
				t.Fatalf("sub %d: subscription ids %v", i, m.Props.SubscriptionIDs)
			}
		}
		c.send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
		c.send(packet.Pingreq{})
		if _, ok := c.recv().(packet.Pingresp); !ok {
			t.Fatalf("sub %d: PUBACK for id %d not accepted", i, m.PacketID)
		}
	}
}
