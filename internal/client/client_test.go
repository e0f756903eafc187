package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// fakeServer accepts one client over a pipe and lets the test play the
// broker with Raw.
func fakeServer(t *testing.T, v packet.Version, o Options, ack *packet.Connack) (*Client, *Raw, error) {
	t.Helper()
	cs, ss := net.Pipe()
	srv := NewRaw(ss, v)
	t.Cleanup(func() { srv.Close() })
	o.Version = v
	o.Dial = func(context.Context) (net.Conn, error) { return cs, nil }
	go func() {
		p, err := srv.Next(5 * time.Second)
		if err != nil {
			return
		}
		if _, ok := p.(*packet.Connect); !ok {
			return
		}
		srv.Send(ack)
	}()
	c, _, err := Dial(context.Background(), o)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, srv, err
}

func next[T packet.Packet](t *testing.T, r *Raw) T {
	t.Helper()
	p, err := r.Next(5 * time.Second)
	if err != nil {
		t.Fatalf("server read: %v", err)
	}
	v, ok := p.(T)
	if !ok {
		t.Fatalf("server got %T, want %T", p, v)
	}
	return v
}

func TestConnackRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    packet.Version
		code packet.ReasonCode
		text string
	}{
		{"v311 not authorised", packet.V311, 5, "connection refused: Connection Refused: not authorised."},
		{"v5 not authorized", packet.V5, packet.ErrNotAuthorized, "connection refused: not authorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := fakeServer(t, tc.v, Options{}, &packet.Connack{Code: tc.code})
			var ce *ConnackError
			if !errors.As(err, &ce) || ce.Code != tc.code || err.Error() != tc.text {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestPublishQoS(t *testing.T) {
	for _, v := range []packet.Version{packet.V31, packet.V311, packet.V5} {
		for _, qos := range []byte{0, 1, 2} {
			t.Run(v.String()+"/qos"+string('0'+qos), func(t *testing.T) {
				c, srv, err := fakeServer(t, v, Options{ClientID: "c"}, &packet.Connack{})
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() {
					done <- c.Publish(context.Background(), &Message{Topic: "a/b", Payload: []byte("hi"), QoS: qos})
				}()
				p := next[*packet.Publish](t, srv)
				if string(p.Topic) != "a/b" || string(p.Payload) != "hi" || p.QoS != qos {
					t.Fatalf("server got %+v", p)
				}
				switch qos {
				case 1:
					srv.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
				case 2:
					srv.Send(&packet.Ack{Kind: packet.PUBREC, PacketID: p.PacketID})
					rel := next[*packet.Ack](t, srv)
					if rel.Kind != packet.PUBREL || rel.PacketID != p.PacketID {
						t.Fatalf("got %+v, want PUBREL", rel)
					}
					srv.Send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: p.PacketID})
				}
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestPublishRefusedV5(t *testing.T) {
	c, srv, err := fakeServer(t, packet.V5, Options{}, &packet.Connack{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Publish(context.Background(), &Message{Topic: "a", QoS: 1}) }()
	p := next[*packet.Publish](t, srv)
	srv.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID, Code: packet.ErrNotAuthorized})
	var ae *AckError
	if err := <-done; !errors.As(err, &ae) || ae.Code != packet.ErrNotAuthorized {
		t.Fatalf("got %v", err)
	}
}

func TestInflightWindow(t *testing.T) {
	// The server allows two unacknowledged messages [MQTT-3.3.4-7].
	ack := &packet.Connack{}
	ack.Props.Set(packet.PropReceiveMaximum)
	ack.Props.ReceiveMaximum = 2
	c, srv, err := fakeServer(t, packet.V5, Options{}, ack)
	if err != nil {
		t.Fatal(err)
	}
	var tokens []*Token
	for range 2 {
		tok, err := c.PublishAsync(context.Background(), &Message{Topic: "a", QoS: 1})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.PublishAsync(ctx, &Message{Topic: "a", QoS: 1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third publish inside a window of 2: %v", err)
	}
	for range 2 {
		p := next[*packet.Publish](t, srv)
		srv.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
	}
	for _, tok := range tokens {
		if err := tok.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReceiveQoS2AndAlias(t *testing.T) {
	got := make(chan *Message, 4)
	o := Options{OnMessage: func(m *Message) { got <- m }}
	o.Props.Set(packet.PropTopicAliasMaximum)
	o.Props.TopicAliasMaximum = 5
	_, srv, err := fakeServer(t, packet.V5, o, &packet.Connack{})
	if err != nil {
		t.Fatal(err)
	}
	first := &packet.Publish{Topic: []byte("long/topic"), Payload: []byte("1"), QoS: 2, PacketID: 9}
	first.Props.Set(packet.PropTopicAlias)
	first.Props.TopicAlias = 3
	srv.Send(first)
	if rec := next[*packet.Ack](t, srv); rec.Kind != packet.PUBREC || rec.PacketID != 9 {
		t.Fatalf("got %+v, want PUBREC 9", rec)
	}
	// A duplicate before PUBREL must not be delivered twice.
	first.Dup = true
	srv.Send(first)
	next[*packet.Ack](t, srv)
	select {
	case m := <-got:
		t.Fatalf("delivered %q before PUBREL", m.Payload)
	default:
	}
	srv.Send(&packet.Ack{Kind: packet.PUBREL, PacketID: 9})
	if comp := next[*packet.Ack](t, srv); comp.Kind != packet.PUBCOMP {
		t.Fatalf("got %+v, want PUBCOMP", comp)
	}
	second := &packet.Publish{Payload: []byte("2")}
	second.Props.Set(packet.PropTopicAlias)
	second.Props.TopicAlias = 3
	srv.Send(second)
	for _, want := range []string{"1", "2"} {
		select {
		case m := <-got:
			if m.Topic != "long/topic" || string(m.Payload) != want {
				t.Fatalf("got %q %q", m.Topic, m.Payload)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("message not delivered")
		}
	}
}

func TestSubscribeAndDisconnect(t *testing.T) {
	c, srv, err := fakeServer(t, packet.V5, Options{}, &packet.Connack{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *packet.Suback, 1)
	go func() {
		ack, _ := c.Subscribe(context.Background(), nil, packet.Subscription{Filter: []byte("a/#"), QoS: 1, RetainHandling: 2})
		done <- ack
	}()
	s := next[*packet.Subscribe](t, srv)
	if len(s.Subs) != 1 || s.Subs[0].RetainHandling != 2 {
		t.Fatalf("got %+v", s)
	}
	srv.Send(&packet.Suback{PacketID: s.PacketID, Codes: []packet.ReasonCode{1}})
	if ack := <-done; ack == nil || ack.Codes[0] != 1 {
		t.Fatalf("suback %+v", ack)
	}
	go c.Disconnect(packet.DisconnectWithWill, nil)
	if d := next[*packet.Disconnect](t, srv); d.Code != packet.DisconnectWithWill {
		t.Fatalf("got %+v", d)
	}
}

func TestKeepAlivePing(t *testing.T) {
	c, srv, err := fakeServer(t, packet.V311, Options{KeepAlive: 200 * time.Millisecond}, &packet.Connack{})
	if err != nil {
		t.Fatal(err)
	}
	next[packet.Pingreq](t, srv)
	// No PINGRESP: the client must give up after the keep-alive interval.
	select {
	case <-c.Done():
		if !errors.Is(c.Err(), ErrKeepAlive) {
			t.Fatalf("err %v", c.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client did not time out")
	}
}

func TestServerDisconnect(t *testing.T) {
	c, srv, err := fakeServer(t, packet.V5, Options{}, &packet.Connack{})
	if err != nil {
		t.Fatal(err)
	}
	d := &packet.Disconnect{Code: packet.ErrSessionTakenOver}
	srv.Send(d)
	<-c.Done()
	var de *DisconnectError
	if !errors.As(c.Err(), &de) || de.Code != packet.ErrSessionTakenOver {
		t.Fatalf("err %v", c.Err())
	}
}

// socksServer is a minimal SOCKS5 proxy (no auth or user/pass) for the test.
func socksServer(t *testing.T, user, pass string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 262)
				io.ReadFull(c, b[:2])
				io.ReadFull(c, b[:b[1]])
				if user != "" {
					c.Write([]byte{5, 2})
					io.ReadFull(c, b[:2])
					u := make([]byte, b[1])
					io.ReadFull(c, u)
					io.ReadFull(c, b[:1])
					p := make([]byte, b[0])
					io.ReadFull(c, p)
					if string(u) != user || string(p) != pass {
						c.Write([]byte{1, 1})
						return
					}
					c.Write([]byte{1, 0})
				} else {
					c.Write([]byte{5, 0})
				}
				io.ReadFull(c, b[:4])
				var host string
				switch b[3] {
				case 1:
					io.ReadFull(c, b[:4])
					host = net.IP(b[:4]).String()
				case 3:
					io.ReadFull(c, b[:1])
					n := int(b[0])
					io.ReadFull(c, b[:n])
					host = string(b[:n])
				}
				io.ReadFull(c, b[:2])
				port := int(b[0])<<8 | int(b[1])
				up, err := net.Dial("tcp", net.JoinHostPort(host, itoa(port)))
				if err != nil {
					c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
					return
				}
				defer up.Close()
				c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return l.Addr().String()
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

func TestSOCKS5(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	for _, tc := range []struct{ name, user, pass, give string }{
		{"no auth", "", "", ""},
		{"password", "u", "p", "p"},
		{"wrong password", "u", "p", "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := socksServer(t, tc.user, tc.pass)
			s := &SOCKS5{Proxy: proxy, Username: tc.user, Password: tc.give}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := s.DialContext(ctx, "tcp", "localhost:"+itoa(echo.Addr().(*net.TCPAddr).Port))
			if tc.give != tc.pass {
				if err == nil {
					c.Close()
					t.Fatal("wrong password accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("ping"))
			b := make([]byte, 4)
			if _, err := io.ReadFull(c, b); err != nil || !bytes.Equal(b, []byte("ping")) {
				t.Fatalf("echo %q %v", b, err)
			}
		})
	}
}

// FuzzReadPath feeds arbitrary bytes to a connected client as if the server
// sent them: the client must never panic, only end the connection.
func FuzzReadPath(f *testing.F) {
	pub := (&packet.Publish{Topic: []byte("a"), QoS: 2, PacketID: 1, Payload: []byte("x")}).Append(nil, packet.V5)
	f.Add(pub)
	f.Add(append(pub, (&packet.Ack{Kind: packet.PUBREL, PacketID: 1}).Append(nil, packet.V5)...))
	f.Add((&packet.Suback{PacketID: 1, Codes: []packet.ReasonCode{0}}).Append(nil, packet.V5))
	f.Add([]byte{0xd0, 0x00, 0xe0, 0x01, 0x8e})
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, ss := net.Pipe()
		defer ss.Close()
		go func() {
			b := make([]byte, 1024)
			n, _ := ss.Read(b) // CONNECT
			_ = n
			ss.Write((&packet.Connack{}).Append(nil, packet.V5))
			go io.Copy(io.Discard, ss)
			ss.Write(data)
			ss.Close()
		}()
		o := Options{Version: packet.V5, OnMessage: func(*Message) {}, Dial: func(context.Context) (net.Conn, error) { return cs, nil }}
		o.Props.Set(packet.PropTopicAliasMaximum)
		o.Props.TopicAliasMaximum = 10
		c, _, err := Dial(context.Background(), o)
		if err != nil {
			return
		}
		<-c.Done()
		c.Close()
	})
}
