package broker

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

func TestPubSubQoS(t *testing.T) {
	for _, v := range versions {
		for _, qos := range []byte{0, 1, 2} {
			t.Run(fmt.Sprintf("v%v/qos%d", v, qos), func(t *testing.T) {
				_, addr := startBroker(t, nil)
				sub := connectOK(t, addr, v, "sub")
				if sa := sub.subscribe(1, "a/+", 2); sa.Codes[0] != 2 {
					t.Fatalf("granted %v", sa.Codes)
				}
				pub := connectOK(t, addr, v, "pub")
				pub.send(&packet.Publish{QoS: qos, PacketID: 7, Topic: []byte("a/b"), Payload: []byte("hello")})
				switch qos {
				case 1:
					if a, ok := pub.recv().(*packet.Ack); !ok || a.Kind != packet.PUBACK || a.PacketID != 7 {
						t.Fatalf("want PUBACK 7, got %+v", a)
					}
				case 2:
					if a, ok := pub.recv().(*packet.Ack); !ok || a.Kind != packet.PUBREC {
						t.Fatalf("want PUBREC, got %+v", a)
					}
					pub.send(&packet.Ack{Kind: packet.PUBREL, PacketID: 7})
					if a, ok := pub.recv().(*packet.Ack); !ok || a.Kind != packet.PUBCOMP {
						t.Fatalf("want PUBCOMP, got %+v", a)
					}
				}
				m := sub.recvPublish()
				if string(m.Topic) != "a/b" || string(m.Payload) != "hello" || m.QoS != qos || m.Retain {
					t.Fatalf("got %+v", m)
				}
				if qos == 1 {
					sub.send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
				}
				if qos == 2 {
					sub.send(&packet.Ack{Kind: packet.PUBREC, PacketID: m.PacketID})
					if a, ok := sub.recv().(*packet.Ack); !ok || a.Kind != packet.PUBREL || a.PacketID != m.PacketID {
						t.Fatalf("want PUBREL, got %+v", a)
					}
					sub.send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: m.PacketID})
				}
				sub.send(packet.Pingreq{})
				if _, ok := sub.recv().(packet.Pingresp); !ok {
					t.Fatal("want PINGRESP") // [MQTT-3.12.4-1]
				}
			})
		}
	}
}

func TestFirstPacketMustBeConnect(t *testing.T) {
	// [MQTT-3.1.0-1]
	_, addr := startBroker(t, nil)
	c := dialRaw(t, addr, packet.V311)
	c.send(packet.Pingreq{})
	c.expectClosed()
}

func TestSecondConnectIsProtocolError(t *testing.T) {
	// [MQTT-3.1.0-2]; like Mosquitto, the connection is closed without a
	// DISCONNECT (only PUBLISH, SUBSCRIBE and UNSUBSCRIBE errors get one).
	for _, v := range versions {
		_, addr := startBroker(t, nil)
		c := connectOK(t, addr, v, "x")
		c.send(&packet.Connect{Version: v, ClientID: []byte("x"), CleanStart: true})
		if d := c.expectClosed(); d != nil {
			t.Fatalf("v%v: want the connection closed without DISCONNECT, got %+v", v, d)
		}
	}
}

func TestConnectTimeout(t *testing.T) {
	_, addr := startBroker(t, func(o *Options) { o.ConnectTimeout = 200 * time.Millisecond })
	c := dialRaw(t, addr, packet.V311)
	c.expectClosed()
}

func TestUnsupportedProtocolLevel(t *testing.T) {
	// [MQTT-3.1.2-2]: CONNACK 0x01 then close.
	_, addr := startBroker(t, nil)
	c := dialRaw(t, addr, packet.V311)
	c.sendRaw([]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 9, 0x02, 0, 60, 0, 1, 'c'})
	ack, ok := c.recv().(*packet.Connack)
	if !ok || ack.Code != 1 {
		t.Fatalf("want CONNACK 1, got %+v", ack)
	}
	c.expectClosed()
}

func TestMalformedPacketClosesOnlyThatClient(t *testing.T) {
	for _, f := range packet.Fixtures() {
		if f.Err == 0 || f.Raw[0]>>4 == byte(packet.CONNECT) {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			_, addr := startBroker(t, nil)
			good := connectOK(t, addr, f.Version, "good")
			good.subscribe(1, "t", 0)
			bad := connectOK(t, addr, f.Version, "bad")
			bad.sendRaw(f.Raw)
			d := bad.expectClosed()
			if f.Version == packet.V5 && d != nil && !d.Code.IsError() {
				t.Fatalf("DISCONNECT with success code %v", d.Code)
			}
			// The other client is unaffected.
			other := connectOK(t, addr, f.Version, "other")
			other.send(&packet.Publish{Topic: []byte("t"), Payload: []byte("still here")})
			if m := good.recvPublish(); string(m.Payload) != "still here" {
				t.Fatalf("got %q", m.Payload)
			}
		})
	}
}

func TestRetained(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			_, addr := startBroker(t, nil)
			pub := connectOK(t, addr, v, "pub")
			pub.send(&packet.Publish{QoS: 1, PacketID: 1, Retain: true, Topic: []byte("r/1"), Payload: []byte("keep")})
			pub.recv()
			// A subscriber that arrives later gets it with RETAIN set [MQTT-3.3.1-8].
			sub := connectOK(t, addr, v, "sub")
			sub.subscribe(1, "r/#", 1)
			m := sub.recvPublish()
			if !m.Retain || string(m.Payload) != "keep" || m.QoS != 1 {
				t.Fatalf("got %+v", m)
			}
			sub.send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
			// Live delivery to an existing subscriber has RETAIN cleared [MQTT-3.3.1-9].
			pub.send(&packet.Publish{Retain: true, Topic: []byte("r/1"), Payload: []byte("new")})
			if m := sub.recvPublish(); m.Retain || string(m.Payload) != "new" {
				t.Fatalf("live: %+v", m)
			}
			// Empty payload clears it [MQTT-3.3.1-6].
			pub.send(&packet.Publish{Retain: true, Topic: []byte("r/1")})
			sub.recvPublish()
			late := connectOK(t, addr, v, "late")
			late.subscribe(1, "r/#", 0)
			late.expectNothing(200 * time.Millisecond)
		})
	}
}

func TestRetainHandlingV5(t *testing.T) {
	_, addr := startBroker(t, nil)
	pub := connectOK(t, addr, packet.V5, "pub")
	pub.send(&packet.Publish{Retain: true, Topic: []byte("rh"), Payload: []byte("x")})
	// QoS 0 has no acknowledgement: without this the message could still be
	// in flight when the subscription below is made and arrive live.
	pub.sync()
	sub := connectOK(t, addr, packet.V5, "sub")
	sublist := func(rh byte, rap bool) {
		sub.send(&packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte("rh"), RetainHandling: rh, RetainAsPublished: rap}}})
		if _, ok := sub.recv().(*packet.Suback); !ok {
			t.Fatal("want SUBACK")
		}
	}
	sublist(2, false) // never
	sub.expectNothing(150 * time.Millisecond)
	sublist(1, false) // only if new: it exists now
	sub.expectNothing(150 * time.Millisecond)
	sublist(0, true) // always
	if m := sub.recvPublish(); !m.Retain {
		t.Fatal("retained message without RETAIN")
	}
	// Retain as published keeps the flag on live delivery.
	pub.send(&packet.Publish{Retain: true, Topic: []byte("rh"), Payload: []byte("y")})
	if m := sub.recvPublish(); !m.Retain {
		t.Fatal("retain-as-published lost the flag")
	}
}

func TestWillOnAbruptDisconnect(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			addr, sub := brokerWithSubscriber(t, v, "will/#", 1)
			c := dialRaw(t, addr, v)
			c.connect(&packet.Connect{ClientID: []byte("dying"), CleanStart: true, WillFlag: true, WillQoS: 1,
				WillTopic: []byte("will/dying"), WillPayload: []byte("gone")})
			c.nc.Close()
			m := sub.recvPublish()
			if string(m.Topic) != "will/dying" || string(m.Payload) != "gone" {
				t.Fatalf("got %+v", m)
			}
		})
	}
}

func TestNoWillOnNormalDisconnect(t *testing.T) {
	// [MQTT-3.14.4-3]
	for _, v := range versions {
		_, addr := startBroker(t, nil)
		sub := connectOK(t, addr, v, "watcher")
		sub.subscribe(1, "will/#", 0)
		c := dialRaw(t, addr, v)
		c.connect(&packet.Connect{ClientID: []byte("polite"), CleanStart: true, WillFlag: true,
			WillTopic: []byte("will/polite"), WillPayload: []byte("gone")})
		c.send(&packet.Disconnect{})
		sub.expectNothing(200 * time.Millisecond)
	}
}

func TestWillDelayCancelledByReconnect(t *testing.T) {
	_, addr := startBroker(t, nil)
	sub := connectOK(t, addr, packet.V5, "watcher")
	sub.subscribe(1, "will/#", 0)
	conn := func() *rawClient {
		c := dialRaw(t, addr, packet.V5)
		p := &packet.Connect{ClientID: []byte("flaky"), WillFlag: true, WillTopic: []byte("will/flaky"), WillPayload: []byte("x")}
		p.Props.Set(packet.PropSessionExpiry)
		p.Props.SessionExpiry = 60
		p.WillProps.Set(packet.PropWillDelay)
		p.WillProps.WillDelay = 1
		c.connect(p)
		return c
	}
	c := conn()
	c.nc.Close()
	time.Sleep(100 * time.Millisecond)
	conn() // back before the delay: no will [MQTT-3.1.3-9]
	sub.expectNothing(1500 * time.Millisecond)
}

func TestPersistentSessionQueues(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			_, addr := startBroker(t, nil)
			mk := func(clean bool) (*rawClient, *packet.Connack) {
				c := dialRaw(t, addr, v)
				p := &packet.Connect{ClientID: []byte("durable"), CleanStart: clean, KeepAlive: 60}
				if v == packet.V5 {
					p.Props.Set(packet.PropSessionExpiry)
					p.Props.SessionExpiry = 300
				}
				return c, c.connect(p)
			}
			c, ack := mk(v == packet.V5)
			if ack.SessionPresent {
				t.Fatal("session present on clean start") // [MQTT-3.2.2-2]
			}
			c.subscribe(1, "q/#", 1)
			c.send(&packet.Disconnect{})
			c.expectClosed()
			pub := connectOK(t, addr, v, "pub")
			for i := range 3 {
				pub.send(&packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("q/x"), Payload: []byte{byte('0' + i)}})
				pub.recv()
			}
			c2, ack := mk(false)
			if !ack.SessionPresent {
				t.Fatal("session not present") // [MQTT-3.2.2-3]
			}
			for i := range 3 {
				m := c2.recvPublish()
				if m.Payload[0] != byte('0'+i) {
					t.Fatalf("message %d out of order: %q", i, m.Payload) // [MQTT-4.6.0-6]
				}
				c2.send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
			}
		})
	}
}

func TestRedeliveryWithDupOnReconnect(t *testing.T) {
	// [MQTT-4.4.0-1] unacknowledged PUBLISH is resent with DUP [MQTT-3.3.1-1].
	_, addr := startBroker(t, nil)
	mk := func() *rawClient {
		c := dialRaw(t, addr, packet.V311)
		c.connect(&packet.Connect{ClientID: []byte("redo"), KeepAlive: 60})
		return c
	}
	c := mk()
	c.subscribe(1, "d", 1)
	pub := connectOK(t, addr, packet.V311, "pub")
	pub.send(&packet.Publish{QoS: 1, PacketID: 1, Topic: []byte("d"), Payload: []byte("once")})
	m := c.recvPublish()
	if m.Dup {
		t.Fatal("first delivery has DUP")
	}
	c.nc.Close() // no PUBACK
	c2 := mk()
	m2 := c2.recvPublish()
	if !m2.Dup || m2.PacketID != m.PacketID || string(m2.Payload) != "once" {
		t.Fatalf("redelivery %+v", m2)
	}
}

func TestTakeover(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			_, addr := startBroker(t, nil)
			old := connectOK(t, addr, v, "same")
			connectOK(t, addr, v, "same")
			d := old.expectClosed()
			if v == packet.V5 && (d == nil || d.Code != packet.ErrSessionTakenOver) {
				t.Fatalf("want DISCONNECT 0x8E, got %+v", d) // [MQTT-3.1.4-3]
			}
		})
	}
}

func TestDollarTopicsNotMatchedByWildcards(t *testing.T) {
	// [MQTT-4.7.2-1]
	b, addr := startBroker(t, nil)
	sub := connectOK(t, addr, packet.V311, "sub")
	sub.subscribe(1, "#", 0)
	b.publishSys()
	sub.expectNothing(200 * time.Millisecond)
	sys := connectOK(t, addr, packet.V311, "sys")
	sys.subscribe(1, "$SYS/broker/uptime", 0)
	if m := sys.recvPublish(); string(m.Topic) != "$SYS/broker/uptime" {
		t.Fatalf("got %s", m.Topic)
	}
}

func TestSharedSubscriptionRoundRobin(t *testing.T) {
	_, addr := startBroker(t, nil)
	a := connectOK(t, addr, packet.V5, "a")
	b := connectOK(t, addr, packet.V5, "b")
	a.subscribe(1, "$share/g/job/#", 0)
	b.subscribe(1, "$share/g/job/#", 0)
	pub := connectOK(t, addr, packet.V5, "pub")
	for i := range 4 {
		pub.send(&packet.Publish{Topic: []byte("job/x"), Payload: []byte{byte(i)}})
	}
	got := 0
	for _, c := range []*rawClient{a, b} {
		for range 2 {
			c.recvPublish()
			got++
		}
		c.expectNothing(100 * time.Millisecond)
	}
	if got != 4 {
		t.Fatalf("got %d", got)
	}
}

func TestNoLocal(t *testing.T) {
	_, addr := startBroker(t, nil)
	c := connectOK(t, addr, packet.V5, "self")
	c.send(&packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte("n"), NoLocal: true}}})
	c.recv()
	c.send(&packet.Publish{Topic: []byte("n"), Payload: []byte("x")})
	c.expectNothing(200 * time.Millisecond) // [MQTT-3.8.3-3]
}

func TestSubscriptionIdentifierAndUserProperties(t *testing.T) {
	_, addr := startBroker(t, nil)
	sub := connectOK(t, addr, packet.V5, "sub")
	s := &packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte("p/#")}}}
	s.Props.Set(packet.PropSubscriptionID)
	s.Props.SubscriptionIDs = []uint32{42}
	sub.send(s)
	sub.recv()
	pub := connectOK(t, addr, packet.V5, "pub")
	p := &packet.Publish{Topic: []byte("p/1"), Payload: []byte("{}")}
	p.Props.AddUser("k", "v")
	p.Props.Set(packet.PropContentType)
	p.Props.ContentType = []byte("application/json")
	p.Props.Set(packet.PropResponseTopic)
	p.Props.ResponseTopic = []byte("reply/here")
	p.Props.Set(packet.PropCorrelationData)
	p.Props.CorrelationData = []byte{1, 2}
	pub.send(p)
	m := sub.recvPublish()
	if len(m.Props.SubscriptionIDs) != 1 || m.Props.SubscriptionIDs[0] != 42 {
		t.Fatalf("subscription ids %v", m.Props.SubscriptionIDs)
	}
	if u := m.Props.UserPairs(); len(u) != 1 || u[0] != [2]string{"k", "v"} {
		t.Fatalf("user props %v", u) // [MQTT-3.3.2-17]
	}
	if string(m.Props.ContentType) != "application/json" || string(m.Props.ResponseTopic) != "reply/here" ||
		len(m.Props.CorrelationData) != 2 {
		t.Fatalf("props not forwarded: %+v", m.Props)
	}
}

func TestTopicAliasInbound(t *testing.T) {
	_, addr := startBroker(t, nil)
	sub := connectOK(t, addr, packet.V5, "sub")
	sub.subscribe(1, "alias/t", 0)
	pub := connectOK(t, addr, packet.V5, "pub")
	p := &packet.Publish{Topic: []byte("alias/t"), Payload: []byte("1")}
	p.Props.Set(packet.PropTopicAlias)
	p.Props.TopicAlias = 3
	pub.send(p)
	p2 := &packet.Publish{Payload: []byte("2")}
	p2.Props.Set(packet.PropTopicAlias)
	p2.Props.TopicAlias = 3
	pub.send(p2)
	for _, want := range []string{"1", "2"} {
		if m := sub.recvPublish(); string(m.Topic) != "alias/t" || string(m.Payload) != want {
			t.Fatalf("got %s %s", m.Topic, m.Payload)
		}
	}
	// Unknown alias is a protocol error [MQTT-3.3.2-7]... alias above max: 0x94.
	p3 := &packet.Publish{Payload: []byte("3")}
	p3.Props.Set(packet.PropTopicAlias)
	p3.Props.TopicAlias = 1000
	pub.send(p3)
	if d := pub.expectClosed(); d == nil || d.Code != packet.ErrTopicAliasInvalid {
		t.Fatalf("want DISCONNECT 0x94, got %+v", d)
	}
}

func TestMaximumPacketSizeToClient(t *testing.T) {
	// A message larger than the client's Maximum Packet Size is not sent [MQTT-3.1.2-24].
	_, addr := startBroker(t, nil)
	sub := dialRaw(t, addr, packet.V5)
	cp := &packet.Connect{ClientID: []byte("small"), CleanStart: true}
	cp.Props.Set(packet.PropMaximumPacketSize)
	cp.Props.MaximumPacketSize = 64
	sub.connect(cp)
	sub.subscribe(1, "big", 0)
	pub := connectOK(t, addr, packet.V5, "pub")
	pub.send(&packet.Publish{Topic: []byte("big"), Payload: make([]byte, 100)})
	pub.send(&packet.Publish{Topic: []byte("big"), Payload: []byte("ok")})
	if m := sub.recvPublish(); string(m.Payload) != "ok" {
		t.Fatalf("got %d bytes", len(m.Payload))
	}
}

func TestPacketTooLargeFromClient(t *testing.T) {
	_, addr := startBroker(t, func(o *Options) { o.MaxPacketSize = 1024 })
	c := connectOK(t, addr, packet.V5, "big")
	c.send(&packet.Publish{Topic: []byte("x"), Payload: make([]byte, 2000)})
	if d := c.expectClosed(); d == nil || d.Code != packet.ErrPacketTooLarge {
		t.Fatalf("want DISCONNECT 0x95, got %+v", d)
	}
}

func TestAssignedClientID(t *testing.T) {
	_, addr := startBroker(t, nil)
	c := dialRaw(t, addr, packet.V5)
	ack := c.connect(&packet.Connect{CleanStart: true})
	if ack.Code != 0 || len(ack.Props.AssignedClientID) == 0 {
		t.Fatalf("no assigned id: %+v", ack) // [MQTT-3.2.2-16]
	}
	// MQTT 3.1.1: empty id with clean session 0 is rejected [MQTT-3.1.3-8].
	c3 := dialRaw(t, addr, packet.V311)
	if ack := c3.connect(&packet.Connect{}); ack.Code != 2 {
		t.Fatalf("want identifier rejected, got %v", ack.Code)
	}
}

func TestKeepAliveTimeout(t *testing.T) {
	_, addr := startBroker(t, nil)
	c := dialRaw(t, addr, packet.V5)
	c.connect(&packet.Connect{ClientID: []byte("ka"), CleanStart: true, KeepAlive: 1})
	start := time.Now()
	d := c.expectClosed()
	if d == nil || d.Code != packet.ErrKeepAliveTimeout {
		t.Fatalf("want DISCONNECT 0x8D, got %+v", d)
	}
	if time.Since(start) < time.Second {
		t.Fatal("closed before 1.5 x keep alive")
	}
}

func TestServerKeepAlive(t *testing.T) {
	_, addr := startBroker(t, func(o *Options) { o.MaxKeepAlive = 30 })
	c := dialRaw(t, addr, packet.V5)
	ack := c.connect(&packet.Connect{ClientID: []byte("ska"), CleanStart: true, KeepAlive: 600})
	if !ack.Props.Present(packet.PropServerKeepAlive) || ack.Props.ServerKeepAlive != 30 {
		t.Fatalf("server keep alive %+v", ack.Props) // [MQTT-3.2.2-21]
	}
}

func TestAnonymousRefused(t *testing.T) {
	_, addr := startBroker(t, func(o *Options) { o.AllowAnonymous = false })
	c := dialRaw(t, addr, packet.V311)
	if ack := c.connect(&packet.Connect{ClientID: []byte("anon"), CleanStart: true}); ack.Code != 5 {
		t.Fatalf("want 5 not authorised, got %v", ack.Code)
	}
	c5 := dialRaw(t, addr, packet.V5)
	if ack := c5.connect(&packet.Connect{ClientID: []byte("anon"), CleanStart: true}); ack.Code != packet.ErrNotAuthorized {
		t.Fatalf("want 0x87, got %v", ack.Code)
	}
}

func TestSlowSubscriberQueueIsBounded(t *testing.T) {
	b, addr := startBroker(t, func(o *Options) { o.MaxOutBytes = 64 << 10 })
	slow := connectOK(t, addr, packet.V311, "slow")
	slow.subscribe(1, "flood", 0)
	// The slow client never reads again; the publisher floods.
	pub := connectOK(t, addr, packet.V311, "pub")
	payload := make([]byte, 1024)
	for range 20000 {
		pub.send(&packet.Publish{Topic: []byte("flood"), Payload: payload})
	}
	pub.send(packet.Pingreq{})
	pub.recv()
	if b.Stats().MessagesDropped.Load() == 0 {
		t.Fatal("no QoS 0 message was dropped for the stalled subscriber")
	}
}

func TestPublisherMatchCacheFollowsSubscriptionChanges(t *testing.T) {
	_, addr := startBroker(t, nil)
	pub := connectOK(t, addr, packet.V311, "pub")
	a := connectOK(t, addr, packet.V311, "a")
	a.subscribe(1, "mc/t", 0)
	send := func(p string) {
		pub.send(&packet.Publish{Topic: []byte("mc/t"), Payload: []byte(p)})
		pub.send(packet.Pingreq{})
		pub.recv()
	}
	send("1")
	if m := a.recvPublish(); string(m.Payload) != "1" {
		t.Fatal("a missed 1")
	}
	b := connectOK(t, addr, packet.V311, "b")
	b.subscribe(1, "mc/#", 0)
	send("2") // the cached match for mc/t must not hide b
	for _, c := range []*rawClient{a, b} {
		if m := c.recvPublish(); string(m.Payload) != "2" {
			t.Fatalf("got %q", m.Payload)
		}
	}
	a.send(&packet.Unsubscribe{PacketID: 2, Filters: [][]byte{[]byte("mc/t")}})
	a.recv()
	send("3")
	if m := b.recvPublish(); string(m.Payload) != "3" {
		t.Fatal("b missed 3")
	}
	a.expectNothing(150 * time.Millisecond)
}

func TestMountPoint(t *testing.T) {
	// A listener's mount_point prefixes its clients' topics in the broker
	// and is removed again in what they receive.
	b, addr := startBroker(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(ln, &Listener{Name: "mounted", MountPoint: "site1/"})
	mounted := ln.Addr().String()
	for _, v := range versions {
		in := connectOK(t, mounted, v, "in"+v.String())
		in.subscribe(1, "data/#", 1)
		outside := connectOK(t, addr, v, "out"+v.String())
		outside.subscribe(1, "site1/#", 0)
		pub := connectOK(t, mounted, v, "pub"+v.String())
		pub.send(&packet.Publish{QoS: 1, PacketID: 1, Topic: []byte("data/x"), Payload: []byte("m"), Retain: true})
		pub.recv()
		if m := in.recvPublish(); string(m.Topic) != "data/x" {
			t.Fatalf("v%v mounted subscriber got %q", v, m.Topic)
		}
		if m := outside.recvPublish(); string(m.Topic) != "site1/data/x" {
			t.Fatalf("v%v outside subscriber got %q", v, m.Topic)
		}
		late := connectOK(t, mounted, v, "late"+v.String())
		late.subscribe(1, "data/x", 0)
		if m := late.recvPublish(); string(m.Topic) != "data/x" || !m.Retain {
			t.Fatalf("v%v retained to mounted client: %q", v, m.Topic)
		}
	}
}

// A batch that ends in a protocol error still delivers what came before
// the error: only the offending connection is closed.
func TestDeliveryBeforeProtocolError(t *testing.T) {
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			addr, sub := brokerWithSubscriber(t, v, "x", 0)
			pub := connectOK(t, addr, v, "bad-pub")
			batch := (&packet.Publish{Topic: []byte("x"), Payload: []byte("before")}).Append(nil, v)
			// A remaining length of five bytes: malformed [MQTT-1.5.5-1], found
			// while the frame is read, before any packet handling.
			batch = append(batch, 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F)
			pub.sendRaw(batch)
			pub.expectClosed()
			if m := sub.recvPublish(); string(m.Payload) != "before" {
				t.Fatalf("got %q", m.Payload)
			}
		})
	}
}

// Close may come before a Serve started alongside it has begun (a SIGTERM
// during start-up): Serve then returns at once, and the race detector sees
// no Add on the wait group that Close is waiting on.
func TestCloseWhileServeStarts(t *testing.T) {
	for range 50 {
		b, ln := newBroker(t, nil)
		done := make(chan error, 1)
		go func() { done <- b.Serve(ln, nil) }()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after Close")
		}
	}
}
