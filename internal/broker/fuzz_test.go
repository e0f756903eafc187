package broker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// FuzzSession plays a hostile client against a running broker: after a
// well-formed CONNECT (or, in raw mode, instead of one) it writes arbitrary
// bytes, then ends its stream. The broker must survive every input:
//   - no panic reaches the per-connection recovery,
//   - everything it sends back is a well-formed packet of the session's
//     version,
//   - the connection ends once the client's stream has ended,
//   - the next client is served (each input starts with a CONNECT that must
//     be accepted),
//   - what reaches a bystander subscribed to "#" is well formed too, and
//     nothing reaches it on $SYS (no client, and no will, writes there),
//   - a client connecting as user "reader" never receives a message on
//     fz/secret/..., which its ACL does not let it read — queued for its
//     offline session or not (issue 20, item 1).
//
// mode picks the session: bits 0–1 the version (3.1, 3.1.1, 5, 5), bit 2
// clean start, bits 3–4 one of four client identifiers (so sessions,
// takeovers and queued messages carry over between inputs), bit 7 raw
// mode (the stream is written as is, from its first byte).
func FuzzSession(f *testing.F) {
	b, addr := startBroker(f, func(o *Options) {
		o.PersistentClientExpiration = time.Minute // raw inputs invent client identifiers
		o.ConnectTimeout = 2 * time.Second
		o.MaxQueuedMessages = 10 // reached by the seeds: queues fill, overflow and stall
		o.Auth = fuzzAuth{}
	})
	watch := startBystander(f, addr)
	for _, s := range sessionSeeds() {
		f.Add(s.mode, s.stream)
	}
	f.Fuzz(func(t *testing.T, mode byte, stream []byte) {
		v := [...]packet.Version{packet.V31, packet.V311, packet.V5, packet.V5}[mode&3]
		raw := mode&0x80 != 0
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		r := packet.NewReader(nc, 0)
		reader := false // the session is user "reader"'s
		if raw {
			var user string
			v, user = streamVersion(stream)
			reader = user == "reader"
		} else {
			c := &packet.Connect{Version: v, CleanStart: mode&4 != 0, KeepAlive: 60,
				ClientID: []byte{'f', 'u', 'z', 'z', '0' + (mode>>3)&3}}
			if v == packet.V5 && !c.CleanStart {
				c.Props.Set(packet.PropSessionExpiry)
				c.Props.SessionExpiry = 60
			}
			if _, err := nc.Write(c.Append(nil, v)); err != nil {
				t.Fatal(err)
			}
			h, body, err := r.ReadPacket()
			if err != nil {
				t.Fatalf("no CONNACK: %v", err)
			}
			p, err := packet.Decode(h, body, v)
			if ack, ok := p.(*packet.Connack); err != nil || !ok || ack.Code != packet.Success {
				t.Fatalf("CONNECT not accepted: %#v %v", p, err)
			}
		}
		// The broker may close the connection halfway through the stream;
		// the write then fails, which is its right.
		_, _ = nc.Write(stream)
		_ = nc.(*net.TCPConn).CloseWrite()
		for {
			h, body, err := r.ReadPacket()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the broker kept the connection open after the client's stream ended")
			}
			if errors.Is(err, io.EOF) || isReset(err) {
				break
			}
			if err != nil {
				t.Fatalf("reading what the broker sent: %v", err)
			}
			if v == 0 {
				continue // the stream's CONNECT did not decode: framing is all there is to check
			}
			p, err := packet.Decode(h, body, v)
			if err != nil {
				t.Fatalf("broker sent a malformed %v to a %v client: %v (% x)", h.Type, v, err, body)
			}
			if pub, ok := p.(*packet.Publish); ok && reader && bytes.HasPrefix(pub.Topic, []byte("fz/secret/")) {
				t.Fatalf("reader was sent %s, which it may not read", pub.Topic)
			}
		}
		if n := b.stats.Panics.Load(); n != 0 {
			t.Fatalf("%d panics recovered in connections", n)
		}
		if err := watch.err(); err != nil {
			t.Fatal(err)
		}
	})
}

// streamVersion is the version and user name of the CONNECT a raw stream
// starts with, or 0 when it does not start with one that decodes.
func streamVersion(stream []byte) (packet.Version, string) {
	h, ok, err := packet.ParseHeader(stream, 0)
	if err != nil || !ok || h.Type != packet.CONNECT || len(stream) < h.Size() {
		return 0, ""
	}
	var c packet.Connect
	if c.Decode(stream[h.Len:h.Size()]) != nil {
		return 0, ""
	}
	return c.Version, string(c.Username)
}

// fuzzAuth lets every client in and everything through, except that user
// "reader" may not read fz/secret/....
type fuzzAuth struct{}

func (fuzzAuth) Authenticate(*ClientInfo, []byte, bool) packet.ReasonCode { return packet.Success }

func (fuzzAuth) Authorize(ci *ClientInfo, t string, acc Access) bool {
	return ci.Username != "reader" || acc != AccessRead || !strings.HasPrefix(t, "fz/secret/")
}

// bystander is a well-behaved MQTT 5 subscriber to "#" that decodes every
// message the fuzzed clients' publishes and wills bring it.
type bystander struct {
	mu    sync.Mutex
	first error
}

func (w *bystander) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first == nil {
		w.first = err
	}
}

func (w *bystander) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}

func startBystander(tb testing.TB, addr string) *bystander {
	tb.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	var out []byte
	out = (&packet.Connect{Version: packet.V5, CleanStart: true, ClientID: []byte("bystander")}).Append(out, packet.V5)
	out = (&packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte("#")}, {Filter: []byte("$SYS/#")}}}).Append(out, packet.V5)
	if _, err := nc.Write(out); err != nil {
		tb.Fatal(err)
	}
	w := new(bystander)
	r := packet.NewReader(nc, 0)
	go func() {
		for {
			h, body, err := r.ReadPacket()
			if err != nil {
				return // the broker closing at the end of the test
			}
			p, err := packet.Decode(h, body, packet.V5)
			if err != nil {
				w.fail(errors.New("bystander got a malformed " + h.Type.String() + ": " + err.Error()))
			}
			if pub, ok := p.(*packet.Publish); ok && bytes.HasPrefix(pub.Topic, []byte("$SYS")) {
				// The broker publishes no $SYS here (SysInterval 0): a client wrote it.
				w.fail(errors.New("bystander got a message on " + string(pub.Topic)))
			}
		}
	}()
	return w
}

type sessionSeed struct {
	mode   byte
	stream []byte
}

// sessionSeeds are streams that reach the broker's deeper states — QoS 2
// handshakes, topic aliases, shared subscriptions, retained messages,
// wills — for the fuzzer to mutate, and a few broken ones.
func sessionSeeds() []sessionSeed {
	const (
		v31, v311, v5 = 0, 1, 2
		clean         = 4
		raw           = 0x80
	)
	seq := func(v packet.Version, ps ...packet.Packet) []byte {
		var b []byte
		for _, p := range ps {
			b = p.Append(b, v)
		}
		return b
	}
	sub := func(id uint16, filter string, qos byte) *packet.Subscribe {
		return &packet.Subscribe{PacketID: id, Subs: []packet.Subscription{{Filter: []byte(filter), QoS: qos}}}
	}
	pub := func(topic string, qos byte, id uint16, retain bool) *packet.Publish {
		return &packet.Publish{Topic: []byte(topic), QoS: qos, PacketID: id, Retain: retain, Payload: []byte("payload")}
	}
	ack := func(t packet.Type, id uint16) *packet.Ack { return &packet.Ack{Kind: t, PacketID: id} }

	qos := func(v packet.Version) []byte {
		return seq(v, sub(1, "fz/#", 2), pub("fz/a", 0, 0, false), pub("fz/b", 1, 2, true), pub("fz/c", 2, 3, false),
			ack(packet.PUBREL, 3), ack(packet.PUBACK, 1), ack(packet.PUBREC, 2), ack(packet.PUBCOMP, 2),
			&packet.Unsubscribe{PacketID: 4, Filters: [][]byte{[]byte("fz/#")}}, packet.Pingreq{}, &packet.Disconnect{})
	}

	alias := pub("fz/alias", 1, 5, false)
	alias.Props.Set(packet.PropTopicAlias)
	alias.Props.TopicAlias = 1
	alias.Props.AddUser("k", "v")
	alias.Props.Set(packet.PropMessageExpiry)
	alias.Props.MessageExpiry = 30
	byAlias := pub("", 0, 0, false)
	byAlias.Props.Set(packet.PropTopicAlias)
	byAlias.Props.TopicAlias = 1
	subID := &packet.Subscribe{PacketID: 6, Subs: []packet.Subscription{
		{Filter: []byte("$share/g/fz/+"), QoS: 1},
		{Filter: []byte("fz/alias"), QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 1},
	}}
	subID.Props.Set(packet.PropSubscriptionID)
	subID.Props.SubscriptionIDs = []uint32{7}
	bye := &packet.Disconnect{Code: 0x04}
	bye.Props.Set(packet.PropSessionExpiry)
	bye.Props.SessionExpiry = 10
	props := seq(packet.V5, subID, alias, byAlias, ack(packet.PUBACK, 1), bye)

	will := &packet.Connect{Version: packet.V5, CleanStart: true, ClientID: []byte("fz-will"), KeepAlive: 5,
		WillFlag: true, WillQoS: 1, WillRetain: true, WillTopic: []byte("fz/will"), WillPayload: []byte("gone")}
	will.WillProps.Set(packet.PropWillDelay)
	will.WillProps.WillDelay = 1
	withWill := seq(packet.V5, will, sub(1, "fz/#", 1), pub("fz/x", 1, 1, false))

	// Issue 20. Item 1: "reader" subscribes to everything with a session
	// that outlives it; a message it may not read is published while it
	// is away, and while it is back.
	readerConnect := func(clean bool) *packet.Connect {
		c := &packet.Connect{Version: packet.V5, CleanStart: clean, ClientID: []byte("fz-reader"), KeepAlive: 30,
			UsernameFlag: true, Username: []byte("reader")}
		c.Props.Set(packet.PropSessionExpiry)
		c.Props.SessionExpiry = 60
		return c
	}
	readerAway := seq(packet.V5, readerConnect(true), sub(1, "#", 1), &packet.Disconnect{})
	readerBack := seq(packet.V5, readerConnect(false), sub(2, "fz/#", 2), pub("fz/secret/x", 1, 1, false),
		ack(packet.PUBACK, 1), ack(packet.PUBACK, 2), packet.Pingreq{})
	secrets := seq(packet.V311, pub("fz/secret/a", 1, 1, false), pub("fz/public/a", 1, 2, false),
		pub("fz/secret/b", 2, 3, true), ack(packet.PUBREL, 3))
	// Item 7: a subscriber that never acknowledges, and more messages
	// than its window and queue hold.
	var flood []packet.Packet
	flood = append(flood, sub(1, "fz/flood", 1))
	for i := range 40 {
		flood = append(flood, pub("fz/flood", 1, uint16(i+2), false))
	}
	// Item 8: a will to $SYS. Item 10: a will that expires sooner than
	// its delay.
	sysWill := &packet.Connect{Version: packet.V311, CleanStart: true, ClientID: []byte("fz-syswill"),
		WillFlag: true, WillQoS: 1, WillRetain: true, WillTopic: []byte("$SYS/broker/version"), WillPayload: []byte("forged")}
	expWill := &packet.Connect{Version: packet.V5, CleanStart: true, ClientID: []byte("fz-expwill"),
		WillFlag: true, WillQoS: 1, WillRetain: true, WillTopic: []byte("fz/expwill"), WillPayload: []byte("bye")}
	expWill.Props.Set(packet.PropSessionExpiry)
	expWill.Props.SessionExpiry = 5
	expWill.WillProps.Set(packet.PropWillDelay)
	expWill.WillProps.WillDelay = 2
	expWill.WillProps.Set(packet.PropMessageExpiry)
	expWill.WillProps.MessageExpiry = 1
	// Item 9: 30 unreleased QoS 2 messages from an MQTT 3.1.1 client, then
	// their releases.
	var burst []packet.Packet
	for i := range 30 {
		burst = append(burst, pub("fz/burst", 2, uint16(i+1), false))
	}
	for i := range 30 {
		burst = append(burst, ack(packet.PUBREL, uint16(i+1)))
	}

	return []sessionSeed{
		{raw, readerAway},
		{v311 | clean, secrets},
		{raw, readerBack},
		{v311 | clean, seq(packet.V311, flood...)},
		{v5 | clean, seq(packet.V5, flood...)},
		{raw, seq(packet.V311, sysWill, sub(1, "fz/#", 0))},
		{raw, seq(packet.V5, expWill, sub(1, "fz/#", 1))},
		{v311 | clean, seq(packet.V311, burst...)},
		{v311 | clean, qos(packet.V311)},
		{v311 | 1<<3, qos(packet.V311)},
		{v31 | clean, qos(packet.V31)},
		{v5 | clean, qos(packet.V5)},
		{v5 | 2<<3, props},
		{raw, withWill},
		{raw, seq(packet.V311, &packet.Connect{Version: packet.V311, ClientID: []byte("fz-raw")}, packet.Pingreq{})},
		// Broken after a good start: a reserved packet type, a second
		// CONNECT, PUBLISH at QoS 3, an unfinished remaining length, a
		// header announcing 256 MiB that never comes.
		{v311 | clean, append(seq(packet.V311, sub(1, "fz/#", 0)), 0xF0, 0x00)},
		{v5 | clean, seq(packet.V5, will)},
		{v311 | clean, []byte{0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}},
		{v5 | clean, []byte{0x30, 0xFF, 0xFF, 0xFF}},
		{v311 | clean, packet.AppendHeader(nil, packet.PUBLISH, 0, 256<<20-1)},
		{raw, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
	}
}
