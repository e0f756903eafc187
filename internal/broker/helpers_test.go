package broker

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// newBroker makes a broker with the tests' options (no $SYS, quiet logs
// unless -v) and a listener on 127.0.0.1:0 for it; the caller serves.
func newBroker(t testing.TB, mod func(*Options)) (*Broker, net.Listener) {
	t.Helper()
	opts := DefaultOptions()
	opts.SysInterval = 0
	opts.ConnectionMessages = false
	opts.TrimMemory = false // process-wide; trim_test.go turns it on
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if mod != nil {
		mod(&opts)
	}
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return b, ln
}

// startBroker runs a broker on 127.0.0.1:0 and returns its address.
func startBroker(t testing.TB, mod func(*Options)) (*Broker, string) {
	t.Helper()
	b, ln := newBroker(t, mod)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Serve(ln, &Listener{Name: "test"})
	}()
	t.Cleanup(func() {
		b.Close()
		<-done
	})
	return b, ln.Addr().String()
}

// rawClient speaks MQTT packet by packet, so tests can send anything,
// including what a well-behaved client never would.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	r  *packet.Reader
	v  packet.Version
}

func dialRaw(t *testing.T, addr string, v packet.Version) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, r: packet.NewReader(nc, 0), v: v}
}

func (c *rawClient) send(p packet.Packet) {
	c.t.Helper()
	c.sendRaw(p.Append(nil, c.v))
}

func (c *rawClient) sendRaw(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv returns the next packet, or fails the test after the timeout.
func (c *rawClient) recv() packet.Packet {
	c.t.Helper()
	p, err := c.recvErr(3 * time.Second)
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return p
}

func (c *rawClient) recvErr(d time.Duration) (packet.Packet, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	for {
		h, body, ok, err := c.r.Next()
		if err != nil {
			return nil, err
		}
		if ok {
			return packet.Decode(h, append([]byte(nil), body...), c.v)
		}
		if err := c.r.Fill(); err != nil {
			return nil, err
		}
	}
}

// expectNothing checks that no packet arrives within d.
func (c *rawClient) expectNothing(d time.Duration) {
	c.t.Helper()
	p, err := c.recvErr(d)
	if err == nil {
		c.t.Fatalf("unexpected %T %+v", p, p)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("connection ended: %v", err)
	}
}

// expectClosed checks that the broker closes the connection (after an
// optional DISCONNECT, which is returned).
func (c *rawClient) expectClosed() *packet.Disconnect {
	c.t.Helper()
	return c.expectClosedWithin(3 * time.Second)
}

// expectClosedWithin is expectClosed with a longer wait for each packet.
func (c *rawClient) expectClosedWithin(d time.Duration) *packet.Disconnect {
	c.t.Helper()
	var dis *packet.Disconnect
	for {
		p, err := c.recvErr(d)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				return dis
			}
			c.t.Fatalf("expected close, got %v", err)
		}
		if dp, ok := p.(*packet.Disconnect); ok {
			dis = dp
			continue
		}
		c.t.Fatalf("expected close, got %T %+v", p, p)
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

func (c *rawClient) connect(p *packet.Connect) *packet.Connack {
	c.t.Helper()
	if p.Version == 0 {
		p.Version = c.v
	}
	c.send(p)
	ack, ok := c.recv().(*packet.Connack)
	if !ok {
		c.t.Fatal("expected CONNACK")
	}
	return ack
}

// connectOK connects with a client id and clean start, asserting success.
func connectOK(t *testing.T, addr string, v packet.Version, id string) *rawClient {
	t.Helper()
	c := dialRaw(t, addr, v)
	ack := c.connect(&packet.Connect{ClientID: []byte(id), CleanStart: true, KeepAlive: 60})
	if ack.Code != 0 {
		t.Fatalf("connect %s: code %v", id, ack.Code)
	}
	return c
}

// brokerWithSubscriber starts a broker and a client (MQTT version v)
// subscribed to filter, and returns the broker's address and the client.
func brokerWithSubscriber(t *testing.T, v packet.Version, filter string, qos byte) (string, *rawClient) {
	t.Helper()
	_, addr := startBroker(t, nil)
	sub := connectOK(t, addr, v, "watcher")
	sub.subscribe(1, filter, qos)
	return addr, sub
}

func (c *rawClient) subscribe(id uint16, filter string, qos byte) *packet.Suback {
	c.t.Helper()
	c.send(&packet.Subscribe{PacketID: id, Subs: []packet.Subscription{{Filter: []byte(filter), QoS: qos}}})
	sa, ok := c.recv().(*packet.Suback)
	if !ok {
		c.t.Fatal("expected SUBACK")
	}
	return sa
}

// sync waits for a PINGRESP: packets are handled in order on a connection,
// so everything sent before it has been processed once it returns.
func (c *rawClient) sync() {
	c.t.Helper()
	c.send(packet.Pingreq{})
	if p := c.recv(); p.Type() != packet.PINGRESP {
		c.t.Fatalf("expected PINGRESP, got %T %+v", p, p)
	}
}

func (c *rawClient) recvPublish() *packet.Publish {
	c.t.Helper()
	p := c.recv()
	pub, ok := p.(*packet.Publish)
	if !ok {
		c.t.Fatalf("expected PUBLISH, got %T %+v", p, p)
	}
	return pub
}

var versions = []packet.Version{packet.V311, packet.V5}
