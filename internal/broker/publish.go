package broker

import (
	"strings"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/topic"
)

// inbound is a message being routed. On the fast path (QoS 0 to online
// subscribers) it is delivered straight from the read buffer; the owned
// Message is built at most once, when something must keep the message.
type inbound struct {
	topic   string
	payload []byte
	props   *packet.Properties // forwardable properties
	qos     byte
	retain  bool
	from    string
	now     time.Time       // zero until clock() is first needed
	pub     *packet.Publish // source, for building msg
	msg     *Message
	enc     *encCache // shared encodings; nil: encode per receiver
}

func (in *inbound) owned() *Message {
	if in.msg == nil {
		in.msg = newMessage(in.topic, in.pub, in.from, in.clock())
	}
	return in.msg
}

// clock is the time the message was received, read once and only when a
// message expiry needs it: most messages never do.
func (in *inbound) clock() time.Time {
	if in.now.IsZero() {
		in.now = time.Now()
	}
	return in.now
}

// groupPick is a shared subscription group chosen during a match.
type groupPick struct {
	sub subscription
	ok  bool
}

func (c *conn) onPublish(p *packet.Publish) error {
	o := c.b.o()
	c.b.stats.MessagesReceived.Add(1)
	c.b.stats.PublishReceived.Add(1)
	if p.Props.Present(packet.PropSubscriptionID) {
		return packet.ErrProtocol.With("PUBLISH from a client with a subscription identifier") // [MQTT-3.3.4-6]
	}
	name := bytesString(p.Topic)
	if p.Props.Present(packet.PropTopicAlias) {
		a := p.Props.TopicAlias
		if a > c.maxAlias {
			return packet.ErrTopicAliasInvalid.With("topic alias above the maximum") // [MQTT-3.3.2-9]
		}
		if len(p.Topic) > 0 {
			if c.aliasIn == nil {
				c.aliasIn = make(map[uint16]string)
			}
			if old, ok := c.aliasIn[a]; !ok || old != name {
				c.aliasIn[a] = strings.Clone(name)
			}
		} else {
			t, ok := c.aliasIn[a]
			if !ok {
				return packet.ErrProtocol.With("unknown topic alias") // [MQTT-3.3.2-7]
			}
			name = t
		}
	}
	if err := topic.ValidName(name); err != nil {
		return packet.ErrTopicNameInvalid.With(err.Error()) // [MQTT-3.3.2-2]
	}
	if p.QoS > c.maxQoS {
		return packet.ErrQoSNotSupported.With("QoS above maximum QoS") // [MQTT-3.2.2-11]
	}
	if p.Retain && !o.RetainAvailable {
		return packet.ErrRetainNotSupported.With("retain not available") // [MQTT-3.2.2-14]
	}

	// QoS 2 duplicate: acknowledged again, not delivered again [MQTT-4.3.3-10].
	if p.QoS == 2 {
		c.sess.mu.Lock()
		_, dup := c.sess.incoming[p.PacketID]
		if !dup && len(c.sess.incoming) >= o.MaxInflightMessages && o.MaxInflightMessages < 65535 {
			c.sess.mu.Unlock()
			return packet.ErrReceiveMaximumExceeded.With("too many QoS 2 messages in flight") // [MQTT-3.3.4-9]
		}
		c.sess.setIncoming(p.PacketID)
		c.sess.mu.Unlock()
		if dup {
			c.ackPublish(p, packet.Success, "")
			return nil
		}
	}

	code, why := packet.Success, ""
	switch {
	case o.MessageSizeLimit > 0 && len(p.Payload) > o.MessageSizeLimit:
		code, why = packet.ErrImplementationSpecific, "payload exceeds message_size_limit"
	case p.Props.PayloadFormat == 1 && !packet.ValidUTF8(p.Payload):
		code, why = packet.ErrPayloadFormatInvalid, "payload is not valid UTF-8" // [MQTT-3.3.2-4]
	case strings.HasPrefix(name, "$SYS") && !topic.Match("$SYS/broker/connection/+/state", name):
		// Bridges publish their state there (notifications), on this
		// broker and on remote ones; Mosquitto lets them.
		code, why = packet.ErrNotAuthorized, "$SYS topics are published by the broker only"
	case !c.authorize(name, AccessWrite):
		code, why = packet.ErrNotAuthorized, "not authorized to publish to "+name
	}
	if code == packet.Success {
		full := name
		if mp := c.l.MountPoint; mp != "" {
			full = mp + name
		}
		w := c.w
		if c.version == packet.V5 {
			w.props.Reset()
			forwardable(&w.props, &p.Props, false)
		} else if w.props.Has != 0 || w.props.User != nil {
			w.props.Reset() // left over from an MQTT 5 connection's batch
		}
		w.enc.reset()
		in := inbound{topic: full, payload: p.Payload, props: &w.props, qos: p.QoS, retain: p.Retain,
			from: c.info.ClientID, pub: p, enc: &w.enc}
		if p.Retain {
			c.b.retain(&in)
		}
		c.b.route(c, &in)
	}
	c.ackPublish(p, code, why)
	return nil
}

// ackPublish sends PUBACK or PUBREC. A refused message is still
// acknowledged so the client's flow completes: with the reason code in
// MQTT 5, as success before (the message is dropped silently, as Mosquitto
// does).
func (c *conn) ackPublish(p *packet.Publish, code packet.ReasonCode, why string) {
	var t packet.Type
	switch p.QoS {
	case 0:
		if code.IsError() {
			c.b.stats.MessagesDropped.Add(1)
		}
		return
	case 1:
		t = packet.PUBACK
	case 2:
		t = packet.PUBREC
		if code.IsError() && c.version == packet.V5 {
			// A PUBREC with a failure code ends the flow (MQTT 5.0 §4.3.3): forget the id.
			c.sess.mu.Lock()
			delete(c.sess.incoming, p.PacketID)
			c.sess.mu.Unlock()
		}
	}
	if c.version != packet.V5 || code == packet.Success {
		c.writeAck(t, p.PacketID)
	} else {
		a := packet.Ack{Kind: t, PacketID: p.PacketID, Code: code}
		if why != "" && c.problemInfo {
			a.Props.Set(packet.PropReasonString)
			a.Props.ReasonString = []byte(why)
		}
		c.writePacket(&a)
	}
	c.touch(c)
}

// retain updates the retained message for the topic [MQTT-3.3.1-5]; an
// empty payload removes it [MQTT-3.3.1-6] [MQTT-3.3.1-7].
func (b *Broker) retain(in *inbound) {
	if len(in.payload) == 0 {
		if b.retained.Delete(in.topic) {
			_ = b.st.DeleteRetained(in.topic)
		}
		return
	}
	m := in.owned()
	b.retained.Set(m.Topic, m)
	if err := b.st.SetRetained(m.toStore()); err != nil {
		b.log.Error("persisting retained message failed", "topic", m.Topic, "err", err)
	}
}

// route delivers a message to every matching subscription. from is the
// publishing connection (nil for wills and $SYS), whose touched list
// collects the receivers to flush after its read batch.
func (b *Broker) route(from *conn, in *inbound) {
	var matches []subscription
	var picks []groupPick
	if from != nil {
		// A publisher usually repeats its topics: reuse the last match of
		// this topic while the subscription tree is unchanged (SPEC §10).
		gen := b.subs.Generation()
		if hit := from.mcache.get(gen, in.topic); hit != nil {
			for i := range hit {
				b.deliver(from, &hit[i], in, false)
			}
			return
		}
		matches, picks = from.w.matches[:0], from.w.groups[:0]
		defer func() {
			if len(picks) == 0 {
				from.cacheMatch(gen, in.topic, matches)
			}
			clear(matches)
			from.w.matches, from.w.groups = matches[:0], picks[:0]
		}()
	}
	b.subs.MatchAll(in.topic, func(_ string, s *subscription) {
		matches = append(matches, *s)
	}, func(g *topic.SharedGroup[subscription]) {
		picks = append(picks, pickMember(g))
	})
	for i := range matches {
		b.deliver(from, &matches[i], in, false)
	}
	for i := range picks {
		if picks[i].ok {
			b.deliver(from, &picks[i].sub, in, true)
		}
	}
}

// matchCache remembers a publisher's recent topic matches for one
// generation of the subscription tree. Topics with shared subscriptions
// are not cached, since each message picks a member anew.
type matchCache struct {
	gen uint64
	m   map[string][]subscription
}

// maxCachedTopics bounds the cache of a publisher that uses many topics.
const maxCachedTopics = 256

func (mc *matchCache) get(gen uint64, topicName string) []subscription {
	if mc == nil || mc.m == nil {
		return nil
	}
	if mc.gen != gen {
		clear(mc.m)
		mc.gen = gen
		return nil
	}
	return mc.m[topicName]
}

// cacheMatch remembers the subscriptions a topic matched. A connection
// that never publishes to a subscribed topic gets no cache.
func (c *conn) cacheMatch(gen uint64, topicName string, subs []subscription) {
	if len(subs) == 0 {
		return // nothing to save: an empty match is cheap to redo
	}
	if c.mcache == nil {
		c.mcache = new(matchCache)
	}
	c.mcache.put(gen, topicName, subs)
}

func (mc *matchCache) put(gen uint64, topicName string, subs []subscription) {
	if mc.m == nil {
		mc.m = make(map[string][]subscription)
	}
	if mc.gen != gen {
		clear(mc.m)
		mc.gen = gen
	}
	if len(mc.m) >= maxCachedTopics {
		clear(mc.m)
	}
	mc.m[strings.Clone(topicName)] = append([]subscription(nil), subs...)
}

// pickMember chooses a shared-subscription member round-robin, preferring
// members that are online (MQTT 5.0 §4.8.2).
func pickMember(g *topic.SharedGroup[subscription]) groupPick {
	n := g.Len()
	start := int(g.Next() % uint64(n))
	for k := 0; k < n; k++ {
		_, s := g.At((start + k) % n)
		if s.sess.online() {
			return groupPick{sub: *s, ok: true}
		}
	}
	_, s := g.At(start)
	return groupPick{sub: *s, ok: true}
}

// online reports whether the session has a connection; it is read under
// the subscription tree's lock, so it must not take s.mu.
func (s *session) online() bool { return s.isOnline.Load() }

// deliver sends or queues one message for one subscription.
func (b *Broker) deliver(from *conn, sub *subscription, in *inbound, shared bool) {
	s := sub.sess
	if sub.noLocal && !shared && s.id == in.from {
		return // [MQTT-3.8.3-3]
	}
	qos := min(in.qos, sub.qos) // [MQTT-3.8.4-8]
	retain := sub.retainAsPublished && in.retain
	s.mu.Lock()
	c := s.conn
	if c != nil && !c.authorize(in.topic, AccessRead) {
		s.mu.Unlock()
		return
	}
	if c == nil {
		if !s.gone && (qos > 0 || b.o().QueueQoS0Messages) && s.expiry != 0 {
			s.enqueue(&outMsg{msg: in.owned(), qos: qos, retain: retain, subID: sub.subID}, nil)
		}
		s.mu.Unlock()
		return
	}
	if qos == 0 {
		var res sendResult
		if in.enc != nil && c.shareable(sub.subID) {
			res = c.sendShared(in, 0, 0, retain)
		} else {
			res = c.sendPublish(in.topic, in.payload, in.props, 0, 0, retain, false, sub.subID, 0, false)
		}
		if res == sent {
			s.mu.Unlock()
			b.markTouched(from, c)
			return
		}
		s.mu.Unlock()
		return
	}
	om := &outMsg{msg: in.owned(), qos: qos, retain: retain, subID: sub.subID}
	if s.queue.len() > 0 || len(s.inflight) >= s.window() || c.outFull() {
		s.enqueue(om, from)
		s.mu.Unlock()
		return
	}
	om.id = s.allocID()
	s.track(om)
	s.setInflight(om)
	m := om.msg
	var res sendResult
	if in.enc != nil && c.shareable(sub.subID) {
		// Sent at once: the remaining expiry equals what was received.
		res = c.sendShared(in, qos, om.id, retain)
	} else {
		var exp uint32
		if !m.Expiry.IsZero() {
			exp = m.remaining(in.clock())
		}
		res = c.sendPublish(m.Topic, m.Payload, m.props(), qos, om.id, retain, false, sub.subID, exp, !m.Expiry.IsZero())
	}
	if res == sendTooLarge {
		delete(s.inflight, om.id) // too large for this client: treated as delivered
		s.untrack(om)
	}
	s.mu.Unlock()
	b.markTouched(from, c)
}

func (b *Broker) markTouched(from, c *conn) {
	if from != nil {
		from.touch(c)
	} else {
		c.kick()
	}
}

// onAck handles PUBACK, PUBREC, PUBREL and PUBCOMP.
func (c *conn) onAck(a *packet.Ack) error {
	s := c.sess
	now := time.Now()
	switch a.Kind {
	case packet.PUBACK, packet.PUBCOMP:
		s.mu.Lock()
		om, ok := s.inflight[a.PacketID]
		moved := false
		if ok && (a.Kind == packet.PUBACK) == (om.qos == 1) && (a.Kind == packet.PUBACK || om.rel) {
			delete(s.inflight, a.PacketID)
			s.untrack(om)
			moved = s.pump(now)
		}
		s.mu.Unlock()
		if moved {
			c.touch(c)
		}
		// An unknown id is tolerated (late ack after a resend).
	case packet.PUBREC:
		s.mu.Lock()
		om, ok := s.inflight[a.PacketID]
		if ok && om.qos == 2 {
			if a.Code.IsError() {
				delete(s.inflight, a.PacketID) // a failure in PUBREC ends the flow
				s.untrack(om)
				if s.pump(now) {
					c.touch(c)
				}
			} else {
				om.rel = true
				c.writeAck(packet.PUBREL, a.PacketID) // [MQTT-4.3.3-4]
				c.touch(c)
			}
		} else if c.version == packet.V5 {
			ack := packet.Ack{Kind: packet.PUBREL, PacketID: a.PacketID, Code: packet.ErrPacketIDNotFound}
			c.writePacket(&ack)
			c.touch(c)
		} else {
			c.writeAck(packet.PUBREL, a.PacketID)
			c.touch(c)
		}
		s.mu.Unlock()
	case packet.PUBREL:
		s.mu.Lock()
		_, ok := s.incoming[a.PacketID]
		delete(s.incoming, a.PacketID)
		s.mu.Unlock()
		if !ok && c.version == packet.V5 {
			ack := packet.Ack{Kind: packet.PUBCOMP, PacketID: a.PacketID, Code: packet.ErrPacketIDNotFound}
			c.writePacket(&ack)
		} else {
			c.writeAck(packet.PUBCOMP, a.PacketID) // [MQTT-4.3.3-11]
		}
		c.touch(c)
	}
	return nil
}
