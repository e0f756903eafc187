package broker

import (
	"fmt"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/store"
	"github.com/mamori-mqtt/mamori/internal/topic"
)

func (c *conn) onSubscribe(p *packet.Subscribe) error {
	var subID uint32
	if len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
	}
	codes := make([]packet.ReasonCode, len(p.Subs))
	type pending struct {
		filter string
		qos    byte
		rap    bool
	}
	var retainedFor []pending
	s := c.sess
	for i, sub := range p.Subs {
		filter := string(sub.Filter)
		if err := topic.ValidFilter(filter); err != nil {
			codes[i] = c.failCode(packet.ErrTopicFilterInvalid)
			continue
		}
		group, inner, shared, err := topic.ParseShared(filter)
		if err != nil {
			codes[i] = c.failCode(packet.ErrTopicFilterInvalid)
			continue
		}
		if shared && sub.NoLocal {
			return packet.ErrProtocol.With("no local on a shared subscription") // [MQTT-3.8.3-4]
		}
		if c.isBridge && c.version != packet.V5 && !shared {
			// A Mosquitto bridge (try_private) gets its own messages not
			// echoed back and retain flags as published, as Mosquitto
			// gives it; MQTT 5 bridges ask for both themselves.
			sub.NoLocal, sub.RetainAsPublished = true, true
		}
		full := c.l.MountPoint + inner
		if shared {
			full = "$share/" + group + "/" + full
		}
		if !c.authorize(c.l.MountPoint+inner, AccessSubscribe) {
			codes[i] = c.failCode(packet.ErrNotAuthorized)
			continue
		}
		qos := min(sub.QoS, c.maxQoS)
		codes[i] = packet.ReasonCode(qos)
		v := subscription{sess: s, qos: qos, noLocal: sub.NoLocal, retainAsPublished: sub.RetainAsPublished, subID: subID}
		s.mu.Lock()
		_, existed := s.subs[full]
		s.setSub(full, subOpts{Subscription: packet.Subscription{Filter: []byte(full), QoS: qos, NoLocal: sub.NoLocal,
			RetainAsPublished: sub.RetainAsPublished, RetainHandling: sub.RetainHandling}, subID: subID})
		s.mu.Unlock()
		c.b.subs.Subscribe(s.id, full, v) // [MQTT-3.8.4-3] replaces an existing subscription
		c.b.subLog.Info(fmt.Sprintf("%s %d %s", s.id, qos, filter))
		// Retained messages: not for shared subscriptions (MQTT 5.0 §4.8.2),
		// per Retain Handling [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11].
		if !shared && (sub.RetainHandling == 0 || sub.RetainHandling == 1 && !existed) {
			retainedFor = append(retainedFor, pending{filter: c.l.MountPoint + inner, qos: qos, rap: sub.RetainAsPublished})
		}
	}
	ack := packet.Suback{PacketID: p.PacketID, Codes: codes}
	c.writePacket(&ack) // [MQTT-3.8.4-1]
	c.touch(c)
	c.b.saveSession(s)
	now := time.Now()
	for _, r := range retainedFor {
		var msgs []*Message
		c.b.retained.Match(r.filter, func(_ string, m *Message) bool {
			msgs = append(msgs, m)
			return true
		})
		for _, m := range msgs {
			if m.expired(now) {
				continue
			}
			c.b.deliverOwned(c, s, m, min(m.QoS, r.qos), true, subID, now)
		}
	}
	return nil
}

// failCode maps an MQTT 5 failure to the 0x80 that MQTT 3.1.1 knows.
func (c *conn) failCode(code packet.ReasonCode) packet.ReasonCode {
	if c.version == packet.V5 {
		return code
	}
	return 0x80
}

// deliverOwned delivers a broker-owned message (retained) to one session.
func (b *Broker) deliverOwned(from *conn, s *session, m *Message, qos byte, retain bool, subID uint32, now time.Time) {
	s.mu.Lock()
	c := s.conn
	if c == nil {
		s.mu.Unlock()
		return
	}
	if !c.authorize(m.Topic, AccessRead) {
		s.mu.Unlock()
		return
	}
	om := &outMsg{msg: m, qos: qos, retain: retain, subID: subID}
	switch {
	case qos == 0:
		c.sendOwned(om, now)
	case s.queue.len() > 0 || len(s.inflight) >= s.window():
		s.enqueue(om, nil)
	default:
		om.id = s.allocID()
		s.track(om)
		s.setInflight(om)
		if c.sendOwned(om, now) == sendTooLarge {
			delete(s.inflight, om.id)
			s.untrack(om)
		}
	}
	s.mu.Unlock()
	b.markTouched(from, c)
}

func (c *conn) onUnsubscribe(p *packet.Unsubscribe) error {
	s := c.sess
	codes := make([]packet.ReasonCode, len(p.Filters))
	for i, f := range p.Filters {
		filter := string(f)
		full := c.l.MountPoint + filter
		if group, inner, shared, err := topic.ParseShared(filter); err == nil && shared {
			full = "$share/" + group + "/" + c.l.MountPoint + inner
		}
		s.mu.Lock()
		_, had := s.subs[full]
		delete(s.subs, full)
		s.mu.Unlock()
		c.b.unsubLog.Info(s.id + " " + filter)
		if c.b.subs.Unsubscribe(s.id, full) || had {
			codes[i] = packet.Success
		} else {
			codes[i] = packet.NoSubscriptionExisted
		}
	}
	ack := packet.Unsuback{PacketID: p.PacketID, Codes: codes}
	c.writePacket(&ack) // [MQTT-3.10.4-4]
	c.touch(c)
	c.b.saveSession(s)
	return nil
}

// attach binds a new connection to its session, taking over an existing
// connection with the same client identifier [MQTT-3.1.4-3], and reports
// whether a session was present [MQTT-3.2.2-2] [MQTT-3.2.2-3].
func (b *Broker) attach(c *conn, cleanStart bool, expiry uint32) (present bool) {
	id := c.info.ClientID
	b.mu.Lock()
	s := b.sessions[id]
	var old *conn
	if s != nil {
		s.mu.Lock()
		old = s.conn
		s.conn = nil
		s.isOnline.Store(false)
		pendingWill := s.will
		s.will = nil
		s.stopTimers() // a new connection cancels a delayed will [MQTT-3.1.3-9]
		// A session whose expiry interval is 0 ends with its connection,
		// even when the new connection arrives before the old one has
		// finished closing [MQTT-3.1.2-23]: it is never resumed.
		if cleanStart || s.expiry == 0 {
			s.gone = true
			subs := s.filters()
			s.mu.Unlock()
			b.subs.UnsubscribeAll(id, subs)
			delete(b.sessions, id)
			_ = b.st.DeleteSession(id)
			s = nil
			if pendingWill != nil {
				defer b.publishWill(pendingWill)
			}
		} else {
			present = true
			s.mu.Unlock()
		}
	}
	if s == nil {
		s = newSession(b, id)
		b.sessions[id] = s
	}
	s.mu.Lock()
	s.conn = c
	s.isOnline.Store(true)
	s.version = c.version
	s.expiry = expiry
	s.mu.Unlock()
	c.sess = s
	b.mu.Unlock()
	if old != nil {
		old.takenOver = true
		if b.o().ConnectionMessages {
			b.log.Info("Client " + id + " already connected, closing old connection.")
		}
		old.disconnect(packet.ErrSessionTakenOver, "another connection with the same client identifier")
	}
	return present
}

func (s *session) filters() []string {
	out := make([]string, 0, len(s.subs))
	for f := range s.subs {
		out = append(out, f)
	}
	return out
}

// start resends what the resumed session had in flight and then what was
// queued while the client was away, after the CONNACK.
func (b *Broker) start(c *conn) {
	s := c.sess
	now := time.Now()
	s.mu.Lock()
	if s.conn == c {
		s.resend(now)
		s.wakeWaiters()
		s.pump(now)
	}
	s.mu.Unlock()
	// The read loop writes the CONNACK (and anything resent) itself at
	// the end of this batch: no writer goroutine for a connection that may
	// go quiet right away.
	c.touch(c)
}

// detach unbinds a closed connection from its session, publishes or
// schedules its will, and ends or schedules the end of the session.
func (b *Broker) detach(c *conn) {
	s := c.sess
	will := c.will
	if c.normalClose {
		will = nil
	}
	s.mu.Lock()
	if s.conn != c {
		// Taken over: the new connection owns the session now.
		s.mu.Unlock()
		if will != nil && c.willDelay == 0 {
			b.publishWill(will)
		}
		return
	}
	s.conn = nil
	s.isOnline.Store(false)
	s.wakeWaiters() // offline: overflow is dropped now, nobody waits
	expiry := s.expiry
	if will != nil {
		delay := min(c.willDelay, expiry)
		if delay == 0 {
			s.mu.Unlock()
			b.publishWill(will)
			s.mu.Lock()
		} else {
			s.will = will
			s.willTimer = time.AfterFunc(time.Duration(delay)*time.Second, func() {
				s.mu.Lock()
				w := s.will
				s.will = nil
				s.mu.Unlock()
				if w != nil {
					b.publishWill(w)
				}
			})
		}
	}
	if expiry == 0 || s.gone {
		s.mu.Unlock()
		b.endSession(s)
		return
	}
	if expiry != neverExpires {
		s.expireTimer = time.AfterFunc(time.Duration(expiry)*time.Second, func() { b.endSession(s) })
	}
	s.mu.Unlock()
	b.saveSession(s)
}

// endSession removes an offline session; a pending will is published
// first [MQTT-3.1.3-9].
func (b *Broker) endSession(s *session) {
	b.mu.Lock()
	s.mu.Lock()
	if s.conn != nil || b.sessions[s.id] != s {
		s.mu.Unlock()
		b.mu.Unlock()
		return
	}
	delete(b.sessions, s.id)
	s.gone = true
	will := s.will
	s.will = nil
	s.stopTimers()
	subs := s.filters()
	s.queue, s.inflight = msgQueue{}, nil
	s.wakeWaiters()
	s.mu.Unlock()
	b.mu.Unlock()
	b.subs.UnsubscribeAll(s.id, subs)
	_ = b.st.DeleteSession(s.id)
	if will != nil {
		b.publishWill(will)
	}
}

// pendingWill is a will with who published it, checked against the ACL
// when it is published, as Mosquitto 2.0 does.
type pendingWill struct {
	msg   *Message
	topic string // without the mount point, as the client named it
	info  ClientInfo
	l     *Listener
}

func (b *Broker) publishWill(w *pendingWill) {
	if a := b.authFor(w.l); a != nil && !a.Authorize(&w.info, w.topic, AccessWrite) {
		b.log.Info("Will of " + w.info.ClientID + " to " + w.topic + " not published: not authorized")
		return
	}
	m := w.msg
	in := inbound{topic: m.Topic, payload: m.Payload, props: m.props(), qos: m.QoS, retain: m.Retain,
		from: m.From, now: time.Now(), msg: m}
	if m.Retain {
		b.retain(&in)
	}
	b.route(nil, &in)
}

// saveSession hands a persistent session's durable state to the store.
func (b *Broker) saveSession(s *session) {
	s.mu.Lock()
	if s.expiry == 0 || s.gone {
		s.mu.Unlock()
		return
	}
	rec := &store.Session{ClientID: s.id, Version: byte(s.version), ExpiryInterval: s.expiry}
	for f, o := range s.subs {
		rec.Subscriptions = append(rec.Subscriptions, store.Subscription{Filter: f, QoS: o.QoS, NoLocal: o.NoLocal,
			RetainAsPublished: o.RetainAsPublished, RetainHandling: o.RetainHandling, SubscriptionID: o.subID})
	}
	if s.conn == nil {
		rec.Disconnected = time.Now()
	}
	s.mu.Unlock()
	if err := b.st.SaveSession(rec); err != nil {
		b.log.Error("persisting session failed", "client", s.id, "err", err)
	}
}
