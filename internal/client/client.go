package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/tlspsk"
)

// Client is a connected MQTT client. Its methods are safe for concurrent use.
type Client struct {
	opts     Options
	conn     net.Conn
	version  packet.Version
	r        *packet.Reader
	clientID string

	// Write side: everything below mu is guarded by it.
	mu       sync.Mutex
	out      []byte          // encoded packets waiting for the writer
	spare    []byte          // the writer's previous buffer, reused
	flushers []chan struct{} // closed once what was queued before them is written
	ids      map[uint16]*pending
	nextID   uint16
	free     []*pending
	topicBuf []byte // scratch for the topic of an outgoing PUBLISH
	maxOut   int    // the server's Maximum Packet Size, 0 for none
	wake     chan struct{}

	slots chan struct{} // outgoing QoS>0 in-flight window

	// Read side, owned by the read goroutine.
	aliases map[uint16]string
	qos2In  map[uint16]*Message
	msgs    chan *Message

	keepAlive   time.Duration
	lastSent    atomic.Int64 // unix nanoseconds of the last write
	pingSentAt  atomic.Int64 // unix nanoseconds, 0 when no PINGREQ is outstanding
	done        chan struct{}
	failOnce    sync.Once
	err         error
	wg          sync.WaitGroup
	closeCalled atomic.Bool
}

// pending is a packet identifier in use: an outgoing publish awaiting its
// acknowledgement, or a SUBSCRIBE/UNSUBSCRIBE awaiting its answer.
type pending struct {
	kind      packet.Type
	qos       byte
	abandoned bool // the caller gave up waiting; the reader recycles it
	done      chan error
	suback    *packet.Suback
	unsuback  *packet.Unsuback
}

const defaultInflight = 20

// Dial connects, sends CONNECT and waits for CONNACK. When the server
// refuses, the error is a *ConnackError and the CONNACK is returned too.
// A TLS handshake failure is a *HandshakeError.
func Dial(ctx context.Context, o Options) (*Client, *packet.Connack, error) {
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	conn, err := dialConn(ctx, &o)
	if err != nil {
		return nil, nil, err
	}
	if o.TLSConfig != nil {
		tc := tls.Client(conn, o.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, nil, &HandshakeError{Err: err}
		}
		conn = tc
	} else if o.PSK != nil {
		pc := tlspsk.Client(conn, o.PSK)
		if err := pc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, nil, &HandshakeError{Err: err}
		}
		conn = pc
	}
	c := newClient(conn, o)
	ack, err := c.handshake(ctx)
	if err != nil {
		conn.Close()
		return nil, ack, err
	}
	c.start()
	return c, ack, nil
}

func dialConn(ctx context.Context, o *Options) (net.Conn, error) {
	if o.Dial != nil {
		return o.Dial(ctx)
	}
	network := o.Network
	if network == "" {
		network = "tcp"
	}
	var d net.Dialer
	return d.DialContext(ctx, network, o.Address)
}

func newClient(conn net.Conn, o Options) *Client {
	c := &Client{
		opts:     o,
		conn:     conn,
		version:  o.version(),
		r:        packet.NewReader(conn, o.MaxPacketSize),
		clientID: o.ClientID,
		ids:      make(map[uint16]*pending),
		nextID:   o.LastPacketID,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if o.OnMessage == nil {
		c.msgs = make(chan *Message, 64)
	}
	return c
}

// handshake sends CONNECT and reads CONNACK synchronously, before the
// goroutines start, so Dial can report a refusal directly.
func (c *Client) handshake(ctx context.Context) (*packet.Connack, error) {
	o := &c.opts
	cp := &packet.Connect{
		Version:    c.version,
		CleanStart: o.CleanStart,
		KeepAlive:  uint16(o.KeepAlive / time.Second),
		ClientID:   []byte(o.ClientID),
	}
	if c.version == packet.V5 {
		cp.Props = o.Props
	}
	if w := o.Will; w != nil {
		cp.WillFlag = true
		cp.WillTopic = []byte(w.Topic)
		cp.WillPayload = w.Payload
		cp.WillQoS = w.QoS
		cp.WillRetain = w.Retain
		if c.version == packet.V5 {
			cp.WillProps = w.Props
		}
	}
	if o.Username != nil {
		cp.UsernameFlag = true
		cp.Username = []byte(*o.Username)
	}
	if o.Password != nil {
		cp.PasswordFlag = true
		cp.Password = o.Password
	}
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
	}
	// A cancelled ctx unblocks the read below by moving the deadline.
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		c.conn.SetDeadline(time.Time{})
	}()
	if o.OnPacket != nil {
		o.OnPacket(true, cp)
	}
	if _, err := c.conn.Write(cp.Append(nil, c.version)); err != nil {
		return nil, ctxErr(ctx, err)
	}
	c.lastSent.Store(time.Now().UnixNano())
	h, body, err := c.readPacket()
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	if h.Type != packet.CONNACK {
		return nil, fmt.Errorf("client: expected CONNACK, got %s", h.Type)
	}
	ack := new(packet.Connack)
	if err := ack.Decode(body, c.version); err != nil {
		return nil, fmt.Errorf("client: bad CONNACK: %w", err)
	}
	ack.Props = cloneProps(&ack.Props)
	if o.OnPacket != nil {
		o.OnPacket(false, ack)
	}
	if ack.Code != 0 {
		return ack, &ConnackError{Version: c.version, Code: ack.Code, Connack: ack}
	}
	c.applyConnack(ack)
	return ack, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// readPacket returns the next whole packet, reading as needed.
func (c *Client) readPacket() (packet.Header, []byte, error) { return c.r.ReadPacket() }

func (c *Client) applyConnack(ack *packet.Connack) {
	inflight := c.opts.MaxInflight
	if inflight <= 0 {
		inflight = defaultInflight
	}
	c.keepAlive = c.opts.KeepAlive
	if c.version == packet.V5 {
		p := &ack.Props
		if p.Present(packet.PropReceiveMaximum) && int(p.ReceiveMaximum) < inflight {
			inflight = int(p.ReceiveMaximum)
		}
		if p.Present(packet.PropMaximumPacketSize) {
			c.maxOut = int(p.MaximumPacketSize)
		}
		if p.Present(packet.PropServerKeepAlive) {
			// [MQTT-3.2.2-21] the client MUST use the server's value.
			c.keepAlive = time.Duration(p.ServerKeepAlive) * time.Second
		}
		if p.Present(packet.PropAssignedClientID) {
			c.clientID = string(p.AssignedClientID)
		}
	}
	c.slots = make(chan struct{}, inflight)
}

func (c *Client) start() {
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	if c.keepAlive > 0 {
		c.wg.Add(1)
		go c.keepAliveLoop()
	}
}

// ClientID is the client identifier in use: the one sent, or the one the
// server assigned (MQTT 5).
func (c *Client) ClientID() string { return c.clientID }

// LastPacketID is the last packet identifier this client used, for
// Options.LastPacketID of a reconnection.
func (c *Client) LastPacketID() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextID
}

// Version is the protocol version of the connection.
func (c *Client) Version() packet.Version { return c.version }

// Messages delivers received messages when Options.OnMessage is nil. It is
// closed when the connection ends.
func (c *Client) Messages() <-chan *Message { return c.msgs }

// Done is closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is the reason the connection ended (ErrClosed after Close or
// Disconnect), or nil while it is up.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// fail ends the connection once, with err as the reason, and wakes every
// caller waiting on it.
func (c *Client) fail(err error) {
	c.failOnce.Do(func() {
		c.err = err
		close(c.done)
		c.conn.Close()
		c.mu.Lock()
		for id, p := range c.ids {
			if !p.abandoned {
				p.done <- err
			}
			delete(c.ids, id)
		}
		c.mu.Unlock()
	})
}

// Close closes the connection without DISCONNECT (the server then sends the
// will) and waits for the client's goroutines.
func (c *Client) Close() error {
	c.closeCalled.Store(true)
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

// Disconnect sends DISCONNECT with the reason code and properties (MQTT 5;
// ignored before), waits until it is written, and closes the connection.
func (c *Client) Disconnect(code packet.ReasonCode, props *packet.Properties) error {
	d := &packet.Disconnect{Code: code}
	if props != nil && c.version == packet.V5 {
		d.Props = *props
	}
	err := c.Send(d)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = c.Flush(ctx)
		cancel()
	}
	c.Close()
	return err
}

// Send queues any packet for writing, as is. It is the low-level path used
// for DISCONNECT and AUTH and by tests; it does not track packet ids.
func (c *Client) Send(p packet.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queueLocked(p)
}

func (c *Client) queueLocked(p packet.Packet) error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	if c.opts.OnPacket != nil {
		c.opts.OnPacket(true, p)
	}
	c.out = p.Append(c.out, c.version)
	c.signal()
	return nil
}

func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Flush waits until everything queued so far has been written.
func (c *Client) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	c.mu.Lock()
	c.flushers = append(c.flushers, ch)
	c.signal()
	c.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) writeLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		buf := c.out
		c.out = c.spare[:0]
		waiters := c.flushers
		c.flushers = nil
		c.mu.Unlock()
		if len(buf) > 0 {
			if _, err := c.conn.Write(buf); err != nil {
				c.fail(fmt.Errorf("client: write: %w", err))
				return
			}
			c.lastSent.Store(time.Now().UnixNano())
		}
		if cap(buf) > 256<<10 {
			buf = nil // do not keep a burst's buffer for the life of the connection
		}
		c.mu.Lock()
		c.spare = buf[:0]
		c.mu.Unlock()
		for _, w := range waiters {
			close(w)
		}
	}
}

func (c *Client) keepAliveLoop() {
	defer c.wg.Done()
	ka := c.keepAlive
	tick := ka / 4
	if tick < 50*time.Millisecond {
		tick = 50 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			if sent := c.pingSentAt.Load(); sent != 0 {
				if now.UnixNano()-sent >= int64(ka) {
					c.fail(ErrKeepAlive)
					return
				}
				continue
			}
			if now.UnixNano()-c.lastSent.Load() >= int64(ka) {
				c.pingSentAt.Store(now.UnixNano())
				c.Send(packet.Pingreq{})
			}
		}
	}
}

// allocID reserves a packet identifier for p; mu must be held.
// libmosquitto numbers QoS 0 publishes too (p == nil), which shows in
// mosquitto_pub -d output, so every outgoing message gets a number.
func (c *Client) allocID(p *pending) uint16 {
	for {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if _, used := c.ids[c.nextID]; !used {
			if p != nil {
				c.ids[c.nextID] = p
			}
			return c.nextID
		}
	}
}

func (c *Client) getPending(kind packet.Type) *pending {
	var p *pending
	if n := len(c.free); n > 0 {
		p = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		p = &pending{done: make(chan error, 1)}
	}
	p.kind = kind
	p.abandoned = false
	p.suback, p.unsuback = nil, nil
	return p
}

func (c *Client) putPending(p *pending) {
	if len(c.free) < 64 {
		c.free = append(c.free, p)
	}
}

// Publish sends m. At QoS 0 it returns once the message is queued; at QoS 1
// and 2 it waits for PUBACK or PUBCOMP, within the in-flight window, and
// returns an *AckError when the server reports a failure. m.PacketID is set.
func (c *Client) Publish(ctx context.Context, m *Message) error {
	p, id, err := c.queuePublish(ctx, m)
	if err != nil || p == nil {
		return err
	}
	return c.wait(ctx, p, id, true)
}

// Token tracks an outgoing QoS 1 or 2 publish until it is acknowledged.
type Token struct {
	c  *Client
	p  *pending
	id uint16
}

// Wait blocks until the publish is acknowledged (nil), refused (*AckError)
// or lost with the connection. A nil Token (QoS 0) returns nil at once. If
// ctx ends first the packet identifier stays reserved until the server
// answers. Call Wait once.
func (t *Token) Wait(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.c.wait(ctx, t.p, t.id, true)
}

// PublishAsync queues m in order with other publishes and returns without
// waiting for the acknowledgement, so a caller can keep the in-flight window
// full. It blocks only while the window is full. For QoS 0 the Token is nil.
func (c *Client) PublishAsync(ctx context.Context, m *Message) (*Token, error) {
	p, id, err := c.queuePublish(ctx, m)
	if err != nil || p == nil {
		return nil, err
	}
	return &Token{c: c, p: p, id: id}, nil
}

// queuePublish encodes m into the output buffer; p is nil for QoS 0.
func (c *Client) queuePublish(ctx context.Context, m *Message) (p *pending, id uint16, err error) {
	if m.QoS > 0 {
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-c.done:
			return nil, 0, c.err
		}
	}
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		if m.QoS > 0 {
			<-c.slots
		}
		return nil, 0, c.err
	default:
	}
	if m.QoS > 0 {
		p = c.getPending(packet.PUBLISH)
		p.qos = m.QoS
	}
	c.topicBuf = append(c.topicBuf[:0], m.Topic...)
	pp := packet.Publish{
		Dup: m.Dup, QoS: m.QoS, Retain: m.Retain, Topic: c.topicBuf,
		Props: m.Props, Payload: m.Payload,
	}
	if c.maxOut > 0 && pp.Size(c.version) > c.maxOut {
		if p != nil {
			c.putPending(p)
			<-c.slots
		}
		c.mu.Unlock()
		return nil, 0, ErrPacketTooLarge
	}
	pp.PacketID = c.allocID(p)
	m.PacketID = pp.PacketID
	if c.opts.OnPacket != nil {
		c.opts.OnPacket(true, &pp)
	}
	c.out = pp.Append(c.out, c.version)
	c.signal()
	c.mu.Unlock()
	return p, pp.PacketID, nil
}

// wait blocks until the pending id completes. When ctx ends first the id
// stays reserved until the server answers, and the reader recycles it.
func (c *Client) wait(ctx context.Context, p *pending, id uint16, slot bool) error {
	var err error
	select {
	case err = <-p.done:
	case <-ctx.Done():
		c.mu.Lock()
		if c.ids[id] == p {
			p.abandoned = true
			c.mu.Unlock()
			return ctx.Err()
		}
		c.mu.Unlock()
		err = <-p.done
	}
	if slot {
		<-c.slots
	}
	if p.kind == packet.PUBLISH {
		// SUBSCRIBE and UNSUBSCRIBE results are read by the caller after
		// this returns, so only publish entries are recycled.
		c.mu.Lock()
		c.putPending(p)
		c.mu.Unlock()
	}
	return err
}

// complete finishes the pending id with err; the reader calls it.
func (c *Client) complete(id uint16, kind packet.Type, err error, fill func(*pending)) {
	c.mu.Lock()
	p := c.ids[id]
	if p == nil || p.kind != kind {
		c.mu.Unlock()
		return
	}
	delete(c.ids, id)
	if fill != nil {
		fill(p)
	}
	if p.abandoned {
		if kind == packet.PUBLISH {
			<-c.slots
		}
		c.putPending(p)
	} else {
		p.done <- err
	}
	c.mu.Unlock()
}

// Subscribe sends SUBSCRIBE with subs (and props, MQTT 5) and waits for the
// SUBACK, which carries a reason code per subscription.
func (c *Client) Subscribe(ctx context.Context, props *packet.Properties, subs ...packet.Subscription) (*packet.Suback, error) {
	s := &packet.Subscribe{Subs: subs}
	if props != nil {
		s.Props = *props
	}
	c.mu.Lock()
	p := c.getPending(packet.SUBSCRIBE)
	s.PacketID = c.allocID(p)
	if err := c.queueLocked(s); err != nil {
		delete(c.ids, s.PacketID)
		c.mu.Unlock()
		return nil, err
	}
	c.mu.Unlock()
	if err := c.wait(ctx, p, s.PacketID, false); err != nil {
		return nil, err
	}
	return p.suback, nil
}

// Unsubscribe sends UNSUBSCRIBE for filters and waits for the UNSUBACK.
func (c *Client) Unsubscribe(ctx context.Context, props *packet.Properties, filters ...string) (*packet.Unsuback, error) {
	u := &packet.Unsubscribe{}
	for _, f := range filters {
		u.Filters = append(u.Filters, []byte(f))
	}
	if props != nil {
		u.Props = *props
	}
	c.mu.Lock()
	p := c.getPending(packet.UNSUBSCRIBE)
	u.PacketID = c.allocID(p)
	if err := c.queueLocked(u); err != nil {
		delete(c.ids, u.PacketID)
		c.mu.Unlock()
		return nil, err
	}
	c.mu.Unlock()
	if err := c.wait(ctx, p, u.PacketID, false); err != nil {
		return nil, err
	}
	return p.unsuback, nil
}

func (c *Client) readLoop() {
	defer c.wg.Done()
	if c.msgs != nil {
		defer close(c.msgs)
	}
	var pub packet.Publish
	var ack packet.Ack
	for {
		for {
			h, body, ok, err := c.r.Next()
			if err != nil {
				c.fail(fmt.Errorf("client: from server: %w", err))
				return
			}
			if !ok {
				break
			}
			if err := c.handle(h, body, &pub, &ack); err != nil {
				c.fail(err)
				return
			}
		}
		if err := c.r.Fill(); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.fail(fmt.Errorf("client: read: %w", err))
			return
		}
	}
}

func (c *Client) handle(h packet.Header, body []byte, pub *packet.Publish, ack *packet.Ack) error {
	hook := c.opts.OnPacket
	switch h.Type {
	case packet.PUBLISH:
		if err := pub.Decode(h.Flags, body, c.version); err != nil {
			return err
		}
		if hook != nil {
			hook(false, pub)
		}
		return c.handlePublish(pub)
	case packet.PUBACK, packet.PUBREC, packet.PUBCOMP, packet.PUBREL:
		if err := ack.Decode(h.Type, body, c.version); err != nil {
			return err
		}
		if hook != nil {
			hook(false, ack)
		}
		return c.handleAck(ack)
	case packet.SUBACK:
		s := new(packet.Suback)
		if err := s.Decode(append([]byte(nil), body...), c.version); err != nil {
			return err
		}
		if hook != nil {
			hook(false, s)
		}
		c.complete(s.PacketID, packet.SUBSCRIBE, nil, func(p *pending) { p.suback = s })
	case packet.UNSUBACK:
		u := new(packet.Unsuback)
		if err := u.Decode(append([]byte(nil), body...), c.version); err != nil {
			return err
		}
		if hook != nil {
			hook(false, u)
		}
		c.complete(u.PacketID, packet.UNSUBSCRIBE, nil, func(p *pending) { p.unsuback = u })
	case packet.PINGRESP:
		if hook != nil {
			hook(false, packet.Pingresp{})
		}
		c.pingSentAt.Store(0)
	case packet.DISCONNECT:
		d := new(packet.Disconnect)
		if err := d.Decode(body, c.version); err != nil {
			return err
		}
		if hook != nil {
			hook(false, d)
		}
		return &DisconnectError{Code: d.Code, Props: cloneProps(&d.Props)}
	case packet.AUTH:
		if c.version != packet.V5 {
			return packet.ErrProtocol.With("AUTH before MQTT 5")
		}
		a := new(packet.Auth)
		if err := a.Decode(append([]byte(nil), body...)); err != nil {
			return err
		}
		if hook != nil {
			hook(false, a)
		}
		if c.opts.OnAuth == nil {
			return packet.ErrProtocol.With("AUTH from server without an authentication method")
		}
		c.opts.OnAuth(c, a)
	default:
		return packet.ErrProtocol.With(h.Type.String() + " sent to a client")
	}
	return nil
}

func (c *Client) handlePublish(pub *packet.Publish) error {
	topic := ""
	if c.version == packet.V5 && pub.Props.Present(packet.PropTopicAlias) {
		alias := pub.Props.TopicAlias
		if alias > c.opts.Props.TopicAliasMaximum {
			return fmt.Errorf("%w: alias %d above the maximum %d", ErrTopicAlias, alias, c.opts.Props.TopicAliasMaximum)
		}
		if c.aliases == nil {
			c.aliases = make(map[uint16]string)
		}
		if len(pub.Topic) > 0 {
			topic = string(pub.Topic)
			c.aliases[alias] = topic
		} else if t, ok := c.aliases[alias]; ok {
			topic = t
		} else {
			return fmt.Errorf("%w: unknown alias %d", ErrTopicAlias, alias)
		}
	} else if len(pub.Topic) == 0 {
		return packet.ErrProtocol.With("PUBLISH without topic")
	}
	switch pub.QoS {
	case 0, 1:
		m := copyMessage(pub, topic)
		if pub.QoS == 1 {
			c.sendAck(packet.PUBACK, pub.PacketID)
		}
		return c.deliver(m)
	default:
		if c.qos2In == nil {
			c.qos2In = make(map[uint16]*Message)
		}
		if _, dup := c.qos2In[pub.PacketID]; !dup {
			c.qos2In[pub.PacketID] = copyMessage(pub, topic)
		}
		c.sendAck(packet.PUBREC, pub.PacketID)
	}
	return nil
}

func (c *Client) sendAck(t packet.Type, id uint16) {
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return
	default:
	}
	if c.opts.OnPacket != nil {
		c.opts.OnPacket(true, &packet.Ack{Kind: t, PacketID: id})
	}
	c.out = packet.AppendAck(c.out, t, id)
	c.signal()
	c.mu.Unlock()
}

func (c *Client) handleAck(a *packet.Ack) error {
	switch a.Kind {
	case packet.PUBACK, packet.PUBCOMP:
		var err error
		if a.Code.IsError() {
			err = &AckError{Kind: a.Kind, Code: a.Code, Props: cloneProps(&a.Props)}
		}
		c.complete(a.PacketID, packet.PUBLISH, err, nil)
	case packet.PUBREC:
		if a.Code.IsError() {
			c.complete(a.PacketID, packet.PUBLISH, &AckError{Kind: a.Kind, Code: a.Code, Props: cloneProps(&a.Props)}, nil)
			return nil
		}
		c.sendAck(packet.PUBREL, a.PacketID)
	case packet.PUBREL:
		c.sendAck(packet.PUBCOMP, a.PacketID)
		if m, ok := c.qos2In[a.PacketID]; ok {
			delete(c.qos2In, a.PacketID)
			return c.deliver(m)
		}
	}
	return nil
}

func (c *Client) deliver(m *Message) error {
	if c.opts.OnMessage != nil {
		c.opts.OnMessage(m)
		return nil
	}
	select {
	case c.msgs <- m:
		return nil
	case <-c.done:
		return c.err
	}
}

func copyMessage(p *packet.Publish, topic string) *Message {
	if topic == "" {
		topic = string(p.Topic)
	}
	return &Message{
		Topic:    topic,
		Payload:  append([]byte(nil), p.Payload...),
		QoS:      p.QoS,
		Retain:   p.Retain,
		Dup:      p.Dup,
		PacketID: p.PacketID,
		Props:    cloneProps(&p.Props),
	}
}

// cloneProps copies the byte slices of p, which alias a read buffer.
func cloneProps(p *packet.Properties) packet.Properties {
	cp := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		return append([]byte{}, b...)
	}
	q := *p
	q.ContentType = cp(p.ContentType)
	q.ResponseTopic = cp(p.ResponseTopic)
	q.CorrelationData = cp(p.CorrelationData)
	q.AssignedClientID = cp(p.AssignedClientID)
	q.AuthMethod = cp(p.AuthMethod)
	q.AuthData = cp(p.AuthData)
	q.ResponseInfo = cp(p.ResponseInfo)
	q.ServerReference = cp(p.ServerReference)
	q.ReasonString = cp(p.ReasonString)
	q.User = cp(p.User)
	if p.SubscriptionIDs != nil {
		q.SubscriptionIDs = append([]uint32(nil), p.SubscriptionIDs...)
	}
	return q
}
