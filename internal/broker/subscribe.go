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
		if err := checkTopic(filter, true); err != nil {
			return err
		}
		group, inner, shared, err := topic.ParseShared(filter)
		if err != nil {
			return packet.ErrMalformedPacket.With("subscription " + err.Error())
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
		if len(full) > topic.MaxLen {
			codes[i] = c.failCode(packet.ErrTopicFilterInvalid) // no topic that long can be sent
			continue
		}
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
		// Under s.mu, and not for a session that has ended (taken over
		// with a clean start): the tree is keyed by client id, so this
		// would replace the subscription of the session now holding it.
		if !s.gone {
			c.b.subs.Subscribe(s.id, full, v) // [MQTT-3.8.4-3] replaces an existing subscription
		}
		s.mu.Unlock()
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
			if m.expired(now) || !c.b.sourceMayPublish(m) {
				continue
			}
			qos := min(m.QoS, r.qos)
			if c.b.o().UpgradeOutgoingQoS {
				qos = r.qos
			}
			c.b.deliverOwned(c, s, m, qos, true, subID, now)
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
	if !c.authorizeLocked(m.Topic, AccessRead) {
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
		if err := checkTopic(filter, true); err != nil {
			return err
		}
		full := c.l.MountPoint + filter
		if group, inner, shared, err := topic.ParseShared(filter); err == nil && shared {
			full = "$share/" + group + "/" + c.l.MountPoint + inner
		}
		s.mu.Lock()
		_, had := s.subs[full]
		delete(s.subs, full)
		inTree := !s.gone && c.b.subs.Unsubscribe(s.id, full) // see onSubscribe
		s.mu.Unlock()
		c.b.unsubLog.Info(s.id + " " + filter)
		if inTree || had {
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
		// A new connection cancels a delayed will [MQTT-3.1.3-9], also one
		// that starts clean (as Mosquitto does).
		s.will = nil
		s.stopTimers()
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
		} else {
			present = true
			if old != nil {
				old.sessionResumed.Store(true)
			}
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
	s.info, s.l = c.info, c.l
	s.lastAck = time.Now().UnixNano() // a new connection is not stalled
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
		// What was queued or left in flight while the client was away is
		// checked against the rules in force and the client it now is.
		s.purgeUnreadable(func(t string) bool { return c.authorizeLocked(t, AccessRead) }, true)
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
		// Taken over: the new connection owns the session now. The will
		// goes out only if the takeover ended the session.
		s.mu.Unlock()
		if will != nil && c.willDelay == 0 && !c.sessionResumed.Load() {
			b.publishWill(will)
		}
		return
	}
	s.conn = nil
	s.isOnline.Store(false)
	s.wakeWaiters() // offline: overflow is dropped now, nobody waits
	expiry := s.expiry
	// With session expiry 0 and a will delay, the session is kept until
	// the will is due, as Mosquitto does: a client that reconnects within
	// the delay cancels its will (the point of a will delay), even though
	// its session otherwise ended at the disconnect.
	lingers := false
	if will != nil {
		delay := min(c.willDelay, expiry)
		if expiry == 0 && !s.gone {
			delay = c.willDelay
			lingers = delay > 0
		}
		if delay == 0 {
			s.mu.Unlock()
			b.publishWill(will)
			s.mu.Lock()
		} else {
			s.will = will
			s.willTimer = time.AfterFunc(time.Duration(delay)*time.Second, b.guarded("delayed will", func() {
				s.mu.Lock()
				w := s.will
				s.will = nil
				s.mu.Unlock()
				if w != nil {
					b.publishWill(w)
				}
				if lingers {
					b.endSession(s)
				}
			}))
		}
	}
	if lingers {
		s.mu.Unlock()
		return
	}
	if expiry == 0 || s.gone {
		s.mu.Unlock()
		b.endSession(s)
		return
	}
	if expiry != neverExpires {
		s.expireTimer = time.AfterFunc(time.Duration(expiry)*time.Second, b.guarded("session expiry", func() { b.endSession(s) }))
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
	s.queue, s.inflight, s.resendQ, s.pending = msgQueue{}, nil, nil, 0
	s.wakeWaiters()
	s.mu.Unlock()
	// Still under b.mu: the tree is keyed by client id, and a new session
	// with this id (which attach makes under b.mu) must not have the
	// subscriptions it makes removed as this one's.
	b.subs.UnsubscribeAll(s.id, subs)
	b.mu.Unlock()
	if h := b.hookSessionEnded.Load(); h != nil {
		(*h)()
	}
	_ = b.st.DeleteSession(s.id)
	if will != nil {
		b.publishWill(will)
	}
}

// pendingWill is a will with who published it, checked against the ACL
// when it is published, as Mosquitto 2.0 does. Its message has no expiry
// time yet: the expiry interval counts from when the will is published.
type pendingWill struct {
	msg  *Message // topic with the mount point
	info ClientInfo
	l    *Listener
}

func (b *Broker) publishWill(w *pendingWill) {
	// Called from a connection's cleanup, timers and takeovers: a panic
	// here (an Auth's) must not end the process or skip the rest of a
	// session's end.
	defer b.recoverIn("the will of " + w.info.ClientID)
	m := w.msg
	// The checks a PUBLISH gets, on the topic with the mount point as
	// Mosquitto makes them: no client writes to $SYS or $share, and the
	// ACL in force now decides.
	if why := reservedTopic(m.Topic); why != "" {
		b.log.Info("Will of " + w.info.ClientID + " to " + m.Topic + " not published: " + why)
		return
	}
	if a := b.authFor(w.l); a != nil && !a.Authorize(&w.info, m.Topic, AccessWrite) {
		b.log.Info("Will of " + w.info.ClientID + " to " + m.Topic + " not published: not authorized")
		return
	}
	now := time.Now()
	if m.Props != nil && m.Props.Present(packet.PropMessageExpiry) {
		// [MQTT-3.1.3-9]... the will's Message Expiry Interval applies to
		// the message as it is published, not from the CONNECT.
		cp := *m
		cp.Expiry = now.Add(time.Duration(m.Props.MessageExpiry) * time.Second)
		m = &cp
	}
	in := inbound{topic: m.Topic, payload: m.Payload, props: m.props(), qos: m.QoS, retain: m.Retain,
		from: m.From, now: now, msg: m}
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
