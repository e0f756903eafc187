package bridge

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe"
	"github.com/mamori-mqtt/mamori/internal/topic"
)

// primaryRetry is how often a bridge connected to a secondary address
// checks whether the first one is back (Mosquitto: 5 seconds).
const primaryRetry = 5 * time.Second

var (
	errIdle        = errors.New("idle_timeout reached with nothing to send")
	errPrimaryBack = errors.New("the main address is reachable again")
	errKeepalive   = errors.New("no answer from the remote within 1.5 times keepalive_interval")
	errClosing     = errors.New("bridge stopped")
)

// remote is one connection to the remote broker.
type remote struct {
	conn      net.Conn
	v         packet.Version
	window    int
	maxPacket int  // 0: no limit
	retainOK  bool // the remote accepts retained messages (MQTT 5 Retain Available)
	maxQoS    byte
	keepalive time.Duration // keepalive_interval, or the MQTT 5 Server Keep Alive; 0: none

	wmu      sync.Mutex
	wbuf     []byte
	lastSend atomic.Int64 // unix nanoseconds
	lastRecv atomic.Int64
	subsLeft atomic.Int32 // SUBACKs still expected on this connection
}

// write sends one packet.
func (r *remote) write(p packet.Packet) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.wbuf = p.Append(r.wbuf[:0], r.v)
	_ = r.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := r.conn.Write(r.wbuf)
	r.lastSend.Store(time.Now().UnixNano())
	return err
}

// run connects, serves and reconnects as start_type and restart_timeout
// say, over the configured addresses.
func (b *Bridge) run() {
	defer b.wg.Done()
	c := b.cfg
	delay := c.RestartBase
	addr := 0
	for attempt := 0; ; attempt++ {
		if c.StartType == config.StartLazy && !b.waitThreshold() {
			return
		}
		connected, err := b.connectAndServe(addr)
		if b.ctx.Err() != nil {
			return
		}
		if connected {
			delay = c.RestartBase
		}
		switch {
		case errors.Is(err, errPrimaryBack):
			addr = 0
		case len(c.Addresses) > 1:
			addr = (addr + 1) % len(c.Addresses)
		}
		if c.StartType == config.StartOnce {
			b.log.Warn("Bridge " + c.Name + " (start_type once) is not restarted")
			return
		}
		if errors.Is(err, errIdle) || errors.Is(err, errPrimaryBack) {
			continue
		}
		if !b.sleep(delay) {
			return
		}
		if c.RestartCap > 0 {
			// Mosquitto 2's "decorrelated jitter": a random delay between
			// the base and three times the last one, capped.
			hi := max(delay*3, c.RestartBase+time.Second)
			delay = min(c.RestartBase+time.Duration(rand.Int64N(int64(hi-c.RestartBase))), c.RestartCap)
		}
	}
}

// waitThreshold blocks a lazy bridge until threshold messages are queued.
func (b *Bridge) waitThreshold() bool {
	for {
		b.mu.Lock()
		n := len(b.queue) + len(b.inflight)
		b.mu.Unlock()
		if n >= b.cfg.Threshold {
			return true
		}
		select {
		case <-b.wake:
		case <-b.ctx.Done():
			return false
		}
	}
}

// connectAndServe makes one connection to address i and serves it until it
// ends. connected reports whether the remote accepted the CONNECT.
func (b *Bridge) connectAndServe(i int) (connected bool, err error) {
	c := b.cfg
	addr := c.Addresses[i]
	b.log.Info(fmt.Sprintf("Connecting bridge %s (%s)", c.Name, addr))
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	conn, err := b.dial.open(ctx, addr)
	cancel()
	if err != nil {
		if b.ctx.Err() == nil {
			b.log.Error(fmt.Sprintf("Bridge %s: cannot connect to %s: %v", c.Name, addr, err))
		}
		return false, err
	}
	b.setLinkUp(true)
	defer b.setLinkUp(false)
	var first *firstBytes
	if b.dial.tls == nil {
		first = &firstBytes{Conn: conn}
		conn = first
	}
	r, rd, err := b.handshake(conn)
	if err != nil {
		conn.Close()
		if b.ctx.Err() != nil {
			return false, err
		}
		if first != nil {
			// A plain bridge to a TLS port gets no CONNACK: say so.
			ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
			msg, ok := tlsprobe.ExplainPlainFailure(ctx, errors.Unwrap(err), first.b, addr.String())
			cancel()
			if ok {
				err = errors.New(flagsToOptions.Replace(msg))
				b.log.Error(fmt.Sprintf("Bridge %s: cannot connect to %s: %v", c.Name, addr, err))
				return false, err
			}
		}
		b.log.Error(fmt.Sprintf("Bridge %s: %s refused the connection: %v", c.Name, addr, err))
		return false, err
	}
	b.stats.Connects.Add(1)
	err = b.serve(r, rd, i)
	b.stats.Connected.Store(false)
	b.dropQueue()
	if b.ctx.Err() == nil {
		b.log.Warn(fmt.Sprintf("Bridge %s disconnected from %s: %v", c.Name, addr, err))
		if c.Notifications {
			b.notifyLocal("0")
		}
	}
	return true, err
}

// setLinkUp records whether a connection to the remote exists; when it
// ends, QoS 0 messages that came in meanwhile are not kept (unless
// queue_qos0_messages), as for a remote that is down.
func (b *Bridge) setLinkUp(up bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.linkUp = up
	if up || b.o.QueueQoS0 {
		return
	}
	kept := b.queue[:0]
	for _, m := range b.queue {
		if m.qos > 0 {
			kept = append(kept, m)
			continue
		}
		b.qbytes -= len(m.payload)
		b.stats.Dropped.Add(1)
		b.sentOn(m)
	}
	clear(b.queue[len(kept):])
	b.queue = kept
	b.stats.Queued.Store(int64(len(b.queue) + len(b.inflight)))
}

// firstBytes keeps the first bytes a plain connection reads, for
// ExplainPlainFailure (a TLS server answers CONNECT with a TLS record).
type firstBytes struct {
	net.Conn
	b []byte
}

func (f *firstBytes) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	if len(f.b) < 8 {
		f.b = append(f.b, p[:min(n, 8-len(f.b))]...)
	}
	return n, err
}

// handshake sends CONNECT as Mosquitto's bridge does and reads CONNACK.
func (b *Bridge) handshake(conn net.Conn) (*remote, *packet.Reader, error) {
	c := b.cfg
	v := packet.Version(c.ProtocolVersion)
	cp := &packet.Connect{
		Version:    v,
		Bridge:     c.TryPrivate && v != packet.V5,
		CleanStart: c.CleanSession,
		KeepAlive:  uint16(c.Keepalive / time.Second),
		ClientID:   []byte(c.RemoteClientID),
	}
	if v == packet.V5 {
		// libmosquitto announces its receive maximum; Mosquitto 2.0 sends
		// no session expiry for bridges (its issue 1632), and mamori sends
		// the same bytes.
		cp.Props.ReceiveMaximum = uint16(min(b.o.MaxInflight, 65535))
		cp.Props.Set(packet.PropReceiveMaximum)
	}
	if c.Notifications && !c.NotificationsLocalOnly {
		cp.WillFlag, cp.WillQoS, cp.WillRetain = true, 1, true
		cp.WillTopic, cp.WillPayload = []byte(c.NotificationTopic), []byte("0")
	}
	if c.RemoteUsername != nil {
		cp.UsernameFlag, cp.Username = true, []byte(*c.RemoteUsername)
		if c.RemotePassword != nil {
			cp.PasswordFlag, cp.Password = true, []byte(*c.RemotePassword)
		}
	}
	r := &remote{conn: conn, v: v, window: b.o.MaxInflight, retainOK: true, maxQoS: 2, maxPacket: c.MaxPacketSize,
		keepalive: c.Keepalive}
	if err := r.write(cp); err != nil {
		return nil, nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	rd := packet.NewReader(conn, 0)
	h, body, err := rd.ReadPacket()
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, nil, fmt.Errorf("no CONNACK: %w", err)
	}
	if h.Type != packet.CONNACK {
		return nil, nil, fmt.Errorf("expected CONNACK, got %v", h.Type)
	}
	var ack packet.Connack
	if err := ack.Decode(body, v); err != nil {
		return nil, nil, fmt.Errorf("bad CONNACK: %w", err)
	}
	if v != packet.V5 && ack.Code != 0 {
		return nil, nil, errors.New(client.ConnackString(byte(ack.Code)))
	}
	if v == packet.V5 {
		if ack.Code.IsError() {
			return nil, nil, fmt.Errorf("CONNACK %v", ack.Code)
		}
		p := &ack.Props
		if p.Present(packet.PropReceiveMaximum) && int(p.ReceiveMaximum) < r.window {
			r.window = int(p.ReceiveMaximum)
		}
		if p.Present(packet.PropMaximumPacketSize) && (r.maxPacket == 0 || int(p.MaximumPacketSize) < r.maxPacket) {
			r.maxPacket = int(p.MaximumPacketSize)
		}
		if p.Present(packet.PropRetainAvailable) && p.RetainAvailable == 0 {
			r.retainOK = false
		}
		if p.Present(packet.PropMaximumQoS) {
			r.maxQoS = p.MaximumQoS
		}
		if p.Present(packet.PropServerKeepAlive) {
			r.keepalive = time.Duration(p.ServerKeepAlive) * time.Second // [MQTT-3.2.2-21]
		}
	}
	r.lastRecv.Store(time.Now().UnixNano())
	return r, rd, nil
}

// serve runs one accepted connection: notifications, subscriptions,
// resending what was in flight, then the queue, until the connection ends.
func (b *Bridge) serve(r *remote, rd *packet.Reader, addrIndex int) error {
	c := b.cfg
	b.mu.Lock()
	b.cur = r
	b.lastUse = time.Now()
	b.mu.Unlock()
	// Connected from the moment messages are taken for this connection.
	b.stats.Connected.Store(true)
	b.log.Info(fmt.Sprintf("Bridge %s connected to %s", c.Name, c.Addresses[addrIndex]))
	defer func() {
		b.mu.Lock()
		b.cur = nil
		b.mu.Unlock()
	}()

	readErr := make(chan error, 1)
	go func() { readErr <- b.readLoop(r, rd) }()
	fail := func(err error) error {
		r.conn.Close()
		<-readErr
		return err
	}

	if c.Notifications {
		if !c.NotificationsLocalOnly {
			n := &message{topic: c.NotificationTopic, payload: []byte("1"), qos: min(1, r.maxQoS), retain: r.retainOK}
			if err := b.sendNew(r, n); err != nil {
				return fail(err)
			}
		}
		b.notifyLocal("1")
	}
	for _, t := range c.Topics {
		if t.Direction != config.BridgeOut {
			r.subsLeft.Add(1)
		}
	}
	for _, t := range c.Topics {
		var p packet.Packet
		if t.Direction == config.BridgeOut {
			if !c.AttemptUnsubscribe {
				continue
			}
			p = &packet.Unsubscribe{PacketID: b.nextID(), Filters: [][]byte{[]byte(t.RemoteFilter())}}
		} else {
			s := packet.Subscription{Filter: []byte(t.RemoteFilter()), QoS: min(t.QoS, r.maxQoS)}
			if r.v == packet.V5 {
				s.NoLocal, s.RetainAsPublished = true, true
			}
			p = &packet.Subscribe{PacketID: b.nextID(), Subs: []packet.Subscription{s}}
		}
		if err := r.write(p); err != nil {
			return fail(err)
		}
	}
	// What was in flight on the last connection goes again, in order:
	// PUBLISH with DUP, or PUBREL for QoS 2 messages already received.
	b.mu.Lock()
	resend := append([]*message(nil), b.inflight...)
	b.mu.Unlock()
	for _, m := range resend {
		var err error
		if m.pubrel {
			err = r.write(&packet.Ack{Kind: packet.PUBREL, PacketID: m.id})
		} else {
			err = r.write(b.publishPacket(r, m, true))
		}
		if err != nil {
			return fail(err)
		}
	}
	b.refreshRetained()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var primary chan struct{}
	if !c.RoundRobin && addrIndex != 0 {
		primary = make(chan struct{})
		stop := make(chan struct{})
		defer close(stop)
		go b.watchPrimary(primary, stop)
	}
	for {
		if err := b.flush(r); err != nil {
			return fail(err)
		}
		select {
		case <-b.wake:
		case err := <-readErr:
			r.conn.Close()
			return err
		case <-primary:
			_ = r.write(&packet.Disconnect{})
			return fail(errPrimaryBack)
		case <-b.ctx.Done():
			if c.Notifications && !c.NotificationsLocalOnly {
				// A clean DISCONNECT suppresses the will: say "0" ourselves.
				_ = r.write(&packet.Publish{Topic: []byte(c.NotificationTopic), Payload: []byte("0"), Retain: r.retainOK})
			}
			_ = r.write(&packet.Disconnect{})
			return fail(errClosing)
		case <-tick.C:
			now := time.Now()
			if r.keepalive > 0 && now.Sub(time.Unix(0, r.lastRecv.Load())) > r.keepalive*3/2 {
				return fail(errKeepalive)
			}
			if r.keepalive > 0 && now.Sub(time.Unix(0, r.lastSend.Load())) >= r.keepalive {
				if err := r.write(packet.Pingreq{}); err != nil {
					return fail(err)
				}
			}
			if c.StartType == config.StartLazy {
				b.mu.Lock()
				idle := len(b.queue) == 0 && len(b.inflight) == 0 && now.Sub(b.lastUse) >= c.IdleTimeout
				b.mu.Unlock()
				if idle {
					_ = r.write(&packet.Disconnect{})
					return fail(errIdle)
				}
			}
		}
	}
}

// watchPrimary signals primary once the first address accepts a TCP
// connection again.
func (b *Bridge) watchPrimary(primary chan<- struct{}, stop <-chan struct{}) {
	every := b.o.primaryRetry
	if every <= 0 {
		every = primaryRetry
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		d := net.Dialer{Timeout: every}
		if conn, err := d.DialContext(b.ctx, "tcp", b.cfg.Addresses[0].String()); err == nil {
			conn.Close()
			close(primary)
			return
		}
	}
}

// nextID returns the next free packet identifier; SUBSCRIBE, UNSUBSCRIBE
// and PUBLISH share one sequence that continues across connections, as
// libmosquitto's does.
func (b *Bridge) nextID() uint16 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nextIDLocked()
}

func (b *Bridge) nextIDLocked() uint16 {
	for {
		b.lastID++
		if b.lastID == 0 {
			b.lastID = 1
		}
		used := false
		for _, m := range b.inflight {
			if m.id == b.lastID {
				used = true
				break
			}
		}
		if !used {
			return b.lastID
		}
	}
}

// sendNew sends a message that did not go through the queue (the
// notification), tracking it in flight when its QoS needs an answer.
func (b *Bridge) sendNew(r *remote, m *message) error {
	if m.qos > 0 {
		b.mu.Lock()
		m.id = b.nextIDLocked()
		b.inflight = append(b.inflight, m)
		b.mu.Unlock()
	}
	return r.write(b.publishPacket(r, m, false))
}

// publishPacket builds the PUBLISH of m for connection r.
func (b *Bridge) publishPacket(r *remote, m *message, dup bool) *packet.Publish {
	p := &packet.Publish{Topic: []byte(m.topic), Payload: m.payload, QoS: m.qos, Retain: m.retain && r.retainOK,
		PacketID: m.id, Dup: dup && m.qos > 0}
	if r.v == packet.V5 {
		p.Props = m.props
	}
	return p
}

// flush moves queued messages into the in-flight window and sends them.
func (b *Bridge) flush(r *remote) error {
	var out []*message
	b.mu.Lock()
	for len(b.queue) > 0 {
		m := b.queue[0]
		if m.qos > 0 && len(b.inflight) >= r.window {
			break
		}
		b.queue[0] = nil
		b.queue = b.queue[1:]
		b.qbytes -= len(m.payload)
		m.qos = min(m.qos, r.maxQoS)
		if r.maxPacket > 0 && b.publishPacket(r, m, false).Size(r.v) > r.maxPacket {
			b.stats.Dropped.Add(1)
			b.sentOn(m)
			b.log.Warn(fmt.Sprintf("Bridge %s: dropping a message on %s: larger than the remote's maximum packet size %d", b.cfg.Name, m.topic, r.maxPacket))
			continue
		}
		if m.qos > 0 {
			m.id = b.nextIDLocked()
			b.inflight = append(b.inflight, m)
		} else {
			b.sentOn(m)
		}
		out = append(out, m)
	}
	if len(b.queue) == 0 {
		b.queue = nil // let the backing array go
	}
	b.stats.Queued.Store(int64(len(b.queue) + len(b.inflight)))
	b.mu.Unlock()
	for _, m := range out {
		if err := r.write(b.publishPacket(r, m, false)); err != nil {
			return err
		}
		b.stats.MessagesOut.Add(1)
	}
	return nil
}

// complete removes the in-flight message id (acknowledged).
func (b *Bridge) complete(id uint16, kind packet.Type) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, m := range b.inflight {
		if m.id != id {
			continue
		}
		if kind == packet.PUBACK && m.qos != 1 || kind == packet.PUBCOMP && !m.pubrel {
			return false
		}
		b.inflight = append(b.inflight[:i], b.inflight[i+1:]...)
		b.sentOn(m)
		b.stats.Queued.Store(int64(len(b.queue) + len(b.inflight)))
		b.lastUse = time.Now()
		return true
	}
	return false
}

// readLoop handles what the remote sends until the connection ends.
func (b *Bridge) readLoop(r *remote, rd *packet.Reader) error {
	var pub packet.Publish
	var ack packet.Ack
	for {
		h, body, err := rd.ReadPacket()
		if err != nil {
			return err
		}
		r.lastRecv.Store(time.Now().UnixNano())
		switch h.Type {
		case packet.PUBLISH:
			if err := pub.Decode(h.Flags, body, r.v); err != nil {
				return err
			}
			if err := b.fromRemote(r, &pub); err != nil {
				return err
			}
		case packet.PUBACK, packet.PUBREC, packet.PUBREL, packet.PUBCOMP:
			if err := ack.Decode(h.Type, body, r.v); err != nil {
				return err
			}
			if err := b.handleAck(r, &ack); err != nil {
				return err
			}
		case packet.SUBACK:
			var s packet.Suback
			if err := s.Decode(body, r.v); err != nil {
				return err
			}
			for _, code := range s.Codes {
				if code.IsError() {
					b.log.Warn(fmt.Sprintf("Bridge %s: the remote refused a subscription (%v)", b.cfg.Name, code))
				}
			}
			if r.subsLeft.Add(-1) == 0 {
				b.log.Info(fmt.Sprintf("Bridge %s: the remote answered every subscription", b.cfg.Name))
			}
		case packet.PINGREQ:
			// libmosquitto answers a server's PINGREQ; so does a bridge.
			if err := r.write(packet.Pingresp{}); err != nil {
				return err
			}
		case packet.UNSUBACK, packet.PINGRESP:
		case packet.DISCONNECT:
			var d packet.Disconnect
			_ = d.Decode(body, r.v)
			return fmt.Errorf("the remote sent DISCONNECT (%v)", d.Code)
		default:
			return fmt.Errorf("unexpected %v from the remote", h.Type)
		}
	}
}

// handleAck applies PUBACK, PUBREC, PUBREL or PUBCOMP. Unknown
// identifiers are answered as Mosquitto does (PUBREC → PUBREL, PUBREL →
// PUBCOMP) so a remote with stale state moves on.
func (b *Bridge) handleAck(r *remote, a *packet.Ack) error {
	switch a.Kind {
	case packet.PUBACK, packet.PUBCOMP:
		if b.complete(a.PacketID, a.Kind) {
			b.signal()
		}
	case packet.PUBREC:
		if a.Code.IsError() {
			// MQTT 5: the remote refused the message; nothing follows.
			b.dropRefused(a.PacketID)
			b.signal()
			return nil
		}
		b.mu.Lock()
		for _, m := range b.inflight {
			if m.id == a.PacketID && m.qos == 2 {
				m.pubrel = true
			}
		}
		b.mu.Unlock()
		return r.write(&packet.Ack{Kind: packet.PUBREL, PacketID: a.PacketID})
	case packet.PUBREL:
		b.mu.Lock()
		delete(b.inQoS2, a.PacketID)
		b.mu.Unlock()
		return r.write(&packet.Ack{Kind: packet.PUBCOMP, PacketID: a.PacketID})
	}
	return nil
}

// dropRefused drops a QoS 2 message the remote refused.
func (b *Bridge) dropRefused(id uint16) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, m := range b.inflight {
		if m.id == id {
			b.inflight = append(b.inflight[:i], b.inflight[i+1:]...)
			b.sentOn(m)
			return
		}
	}
}

// fromRemote publishes a message from the remote locally, then
// acknowledges it, so nothing acknowledged to the remote is lost here.
func (b *Bridge) fromRemote(r *remote, p *packet.Publish) error {
	if p.QoS == 2 {
		b.mu.Lock()
		seen := b.inQoS2[p.PacketID]
		b.mu.Unlock()
		if seen { // a resend of a message already published locally
			return r.write(&packet.Ack{Kind: packet.PUBREC, PacketID: p.PacketID})
		}
	}
	b.stats.MessagesIn.Add(1)
	lt, _, ok := inbound(b.cfg.Topics, string(p.Topic))
	if ok && topic.ValidName(lt) != nil {
		// A remote must not send this; publishing it would cost the local
		// session its connection.
		b.log.Warn(fmt.Sprintf("Bridge %s: the remote sent an invalid topic name %q; dropped", b.cfg.Name, p.Topic))
		ok = false
	}
	if !ok {
		b.log.Debug(fmt.Sprintf("Bridge %s: message on %s matches no incoming topic; dropped", b.cfg.Name, p.Topic))
	} else {
		m := &client.Message{Topic: lt, Payload: append([]byte(nil), p.Payload...), QoS: p.QoS, Retain: p.Retain}
		if p.Retain {
			b.mu.Lock()
			if len(p.Payload) == 0 {
				delete(b.fromRemoteRetained, lt)
			} else {
				b.fromRemoteRetained[lt] = maphash.Bytes(b.seed, p.Payload)
			}
			b.mu.Unlock()
		}
		if r.v == packet.V5 {
			m.Props = forwardable(&p.Props)
			m.Props.User = append([]byte(nil), m.Props.User...)
			m.Props.ContentType = append([]byte(nil), m.Props.ContentType...)
			m.Props.ResponseTopic = append([]byte(nil), m.Props.ResponseTopic...)
			m.Props.CorrelationData = append([]byte(nil), m.Props.CorrelationData...)
		}
		if err := b.publishLocal(m); err != nil {
			var ae *client.AckError
			if !errors.As(err, &ae) {
				return fmt.Errorf("publishing locally: %w", err)
			}
			// Refused by the local broker: acknowledged anyway, as a
			// broker acknowledges a message it will not deliver.
		}
	}
	switch p.QoS {
	case 1:
		return r.write(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
	case 2:
		b.mu.Lock()
		b.inQoS2[p.PacketID] = true
		b.mu.Unlock()
		return r.write(&packet.Ack{Kind: packet.PUBREC, PacketID: p.PacketID})
	}
	return nil
}
