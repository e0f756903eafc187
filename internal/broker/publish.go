package broker

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

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
	src     *conn           // the publishing connection; nil for wills and $SYS
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
	if err := checkTopic(name, false); err != nil {
		return err // [MQTT-3.3.2-2]
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
		// Only an MQTT 5 client is given a Receive Maximum, and only one
		// that exceeds it is at fault [MQTT-3.3.4-9]. MQTT 3 has none:
		// like Mosquitto, the broker takes every unreleased message (at
		// most one per packet identifier).
		if !dup && c.version == packet.V5 && c.recvMax > 0 && len(c.sess.incoming) >= int(c.recvMax) {
			c.sess.mu.Unlock()
			return packet.ErrReceiveMaximumExceeded.With("too many QoS 2 messages in flight")
		}
		c.sess.setIncoming(p.PacketID, nil)
		c.sess.mu.Unlock()
		if dup {
			c.ackPublish(p, packet.Success, "")
			return nil
		}
	}

	// The topic with the listener's mount point is the one routed, and the
	// one the $SYS rule and the ACL see, as in Mosquitto (and as for
	// SUBSCRIBE, wills and deliveries).
	full := name
	if mp := c.l.MountPoint; mp != "" {
		full = mp + name
	}
	code, why := packet.Success, ""
	switch {
	case len(full) > topic.MaxLen:
		// It could not be encoded for subscribers without the mount point.
		code, why = packet.ErrTopicNameInvalid, "topic too long with the mount point"
	case o.MessageSizeLimit > 0 && len(p.Payload) > o.MessageSizeLimit:
		code, why = packet.ErrPacketTooLarge, "payload exceeds message_size_limit" // Mosquitto's code
	case p.Props.PayloadFormat == 1 && !packet.ValidUTF8(p.Payload):
		code, why = packet.ErrPayloadFormatInvalid, "payload is not valid UTF-8" // [MQTT-3.3.2-4]
	case reservedTopic(full) != "":
		code, why = packet.ErrNotAuthorized, reservedTopic(full)
	case !c.authorize(full, AccessWrite):
		code, why = packet.ErrNotAuthorized, "not authorized to publish to "+name
	}
	if code == packet.Success {
		w := c.w
		if c.version == packet.V5 {
			w.props.Reset()
			forwardable(&w.props, &p.Props, false)
		} else if w.props.Has != 0 || w.props.User != nil {
			w.props.Reset() // left over from an MQTT 5 connection's batch
		}
		w.enc.reset()
		in := inbound{topic: full, payload: p.Payload, props: &w.props, qos: p.QoS, retain: p.Retain,
			from: c.info.ClientID, src: c, pub: p, enc: &w.enc}
		if p.QoS == 2 {
			// Held until PUBREL, then delivered (Mosquitto's order: PUBREC
			// first, the message to subscribers after the release).
			m := in.owned()
			c.sess.mu.Lock()
			c.sess.setIncoming(p.PacketID, m)
			c.sess.mu.Unlock()
			c.ackPublish(p, code, why)
			return nil
		}
		if p.Retain {
			c.b.retain(&in)
		}
		if !c.b.route(c, &in) && p.QoS == 1 && c.version == packet.V5 {
			// Mosquitto's PUBACK says so; a QoS 2 PUBREC stays 0 (it is
			// sent before the message is released).
			code = packet.NoMatchingSubscribers
		}
	}
	c.ackPublish(p, code, why)
	return nil
}

// reservedTopic says why no client may publish to topicName (the topic
// with the mount point), or returns "" when one may: $SYS is the broker's,
// and $share names shared subscriptions, not topics. These are the checks
// Mosquitto makes before any ACL, for PUBLISH and wills alike.
func reservedTopic(topicName string) string {
	switch {
	case strings.HasPrefix(topicName, "$SYS") && !topic.Match("$SYS/broker/connection/+/state", topicName):
		// Like Mosquitto, a bridge's state topic is the one exception.
		return "$SYS topics are published by the broker only"
	case strings.HasPrefix(topicName, "$share"):
		return "$share is for shared subscriptions, not a topic"
	}
	return ""
}

// ackPublish sends PUBACK or PUBREC. A refused message is still
// acknowledged so the client's flow completes: with the reason code in
// MQTT 5, as success before (the message is dropped silently, as Mosquitto
// does).
func (c *conn) ackPublish(p *packet.Publish, code packet.ReasonCode, why string) {
	if code.IsError() {
		c.b.log.Debug(fmt.Sprintf("Denied PUBLISH from %s (q%d, '%s'): %v (%s).", c.info.ClientID, p.QoS, p.Topic, code, why))
	}
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
		if why != "" && c.problemInfo && c.b.o().ReasonStrings {
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
	if b.o().CheckRetainSource && in.src != nil && m.Source == nil {
		// Set before the message is shared: route runs after retain.
		m.Source = &msgSource{info: in.src.info, l: in.src.l}
	}
	b.retained.Set(m.Topic, m)
	if err := b.st.SetRetained(m.toStore()); err != nil {
		b.log.Error("persisting retained message failed", "topic", m.Topic, "err", err)
	}
}

// route delivers a message to every matching subscription. from is the
// publishing connection (nil for wills and $SYS), whose touched list
// collects the receivers to flush after its read batch. It reports whether
// any subscription matched (PUBACK 0x10 otherwise, as Mosquitto answers).
func (b *Broker) route(from *conn, in *inbound) bool {
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
			return true
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
	return len(matches) > 0 || len(picks) > 0
}

// matchCache remembers a publisher's recent topic matches for one
// generation of the subscription tree. Topics with shared subscriptions
// are not cached, since each message picks a member anew.
type matchCache struct {
	gen   uint64
	m     map[string][]subscription
	bytes int // cacheCost of everything in m
}

// maxCachedTopics bounds the cache of a publisher that uses many topics,
// and maxCacheBytes what it holds: every connection that publishes keeps
// one, so it is bounded by size, not by count (256 topics of a fan-out to
// 10,000 subscribers would otherwise be tens of MB per publisher).
const (
	maxCachedTopics = 256
	maxCacheBytes   = 32 << 10
)

// cacheCost is what caching subs for topicName holds, in bytes.
func cacheCost(topicName string, n int) int {
	return len(topicName) + n*int(unsafe.Sizeof(subscription{}))
}

func (mc *matchCache) get(gen uint64, topicName string) []subscription {
	if mc == nil || mc.m == nil {
		return nil
	}
	if mc.gen != gen {
		clear(mc.m)
		mc.gen, mc.bytes = gen, 0
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
	cost := cacheCost(topicName, len(subs))
	if cost > maxCacheBytes {
		return // a match this large is cheaper to redo than to keep
	}
	if mc.m == nil {
		mc.m = make(map[string][]subscription)
	}
	if mc.gen != gen {
		clear(mc.m)
		mc.gen, mc.bytes = gen, 0
	}
	if len(mc.m) >= maxCachedTopics || mc.bytes+cost > maxCacheBytes {
		clear(mc.m)
		mc.bytes = 0
	}
	if old, ok := mc.m[topicName]; ok {
		mc.bytes -= cacheCost(topicName, len(old))
	}
	mc.m[strings.Clone(topicName)] = append([]subscription(nil), subs...)
	mc.bytes += cost
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
	if b.o().UpgradeOutgoingQoS {
		qos = sub.qos // upgrade_outgoing_qos: a Mosquitto option against the spec
	}
	retain := sub.retainAsPublished && in.retain
	s.mu.Lock()
	c := s.conn
	if c != nil && !c.authorizeLocked(in.topic, AccessRead) {
		s.mu.Unlock()
		return
	}
	if c == nil {
		// Queued for an offline client only if it may read the topic; it
		// is checked again when it is sent (the ACL may change meanwhile).
		if !s.gone && (qos > 0 || b.o().QueueQoS0Messages) && s.expiry != 0 && s.mayRead(in.topic) {
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

// releaseQoS2 delivers a QoS 2 message whose PUBREL arrived.
func (c *conn) releaseQoS2(m *Message) {
	in := inbound{topic: m.Topic, payload: m.Payload, props: m.props(), qos: m.QoS, retain: m.Retain,
		from: m.From, src: c, msg: m}
	if m.Retain {
		c.b.retain(&in)
	}
	c.b.route(c, &in)
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
		if ok && (a.Kind == packet.PUBACK) != (om.qos == 1) || ok && a.Kind == packet.PUBCOMP && !om.rel {
			// An acknowledgement that does not fit the message's flow (PUBACK
			// for QoS 2, PUBCOMP for QoS 1 or before PUBREC): a protocol
			// error, as in Mosquitto.
			s.mu.Unlock()
			return packet.ErrProtocol.With(fmt.Sprintf("%v for a QoS %d message in flight", a.Kind, om.qos))
		}
		moved := false
		if ok {
			s.doneInflight(om)
			s.untrack(om)
			s.lastAck = now.UnixNano()
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
		if ok && om.qos != 2 {
			s.mu.Unlock()
			return packet.ErrProtocol.With(fmt.Sprintf("PUBREC for a QoS %d message in flight", om.qos))
		}
		if ok && om.qos == 2 {
			if a.Code.IsError() {
				s.doneInflight(om) // a failure in PUBREC ends the flow
				s.untrack(om)
				if s.pump(now) {
					c.touch(c)
				}
			} else {
				if om.pending {
					// Received on the previous connection: no longer to be resent.
					om.pending = false
					s.pending--
				}
				om.rel = true
				s.lastAck = now.UnixNano()
				c.writeAck(packet.PUBREL, a.PacketID) // [MQTT-4.3.3-4]
				c.touch(c)
			}
		} else {
			// Unknown id: a resend after a reconnect, most likely; answered
			// with success like Mosquitto, so the client's flow completes.
			c.writeAck(packet.PUBREL, a.PacketID)
			c.touch(c)
		}
		s.mu.Unlock()
	case packet.PUBREL:
		s.mu.Lock()
		m := s.incoming[a.PacketID]
		delete(s.incoming, a.PacketID)
		s.mu.Unlock()
		if m != nil {
			c.releaseQoS2(m)
		}
		// An unknown id is answered with success too, as Mosquitto does: a
		// PUBREL repeated after a reconnect whose PUBCOMP was lost.
		c.writeAck(packet.PUBCOMP, a.PacketID) // [MQTT-4.3.3-11]
		c.touch(c)
	}
	return nil
}

// maxTopicLevels is Mosquitto's limit on topic hierarchy: a topic or
// filter with more than 200 '/' separators is refused. Besides matching
// Mosquitto, it bounds the work of matching one topic against the tree.
const maxTopicLevels = 200

// checkTopic validates a PUBLISH topic name or a SUBSCRIBE/UNSUBSCRIBE
// filter with Mosquitto's reason codes: invalid UTF-8 is a malformed
// packet; any other fault in a name is a protocol error, in a filter a
// malformed packet (Mosquitto's DISCONNECT codes; MQTT 3 clients are just
// disconnected).
func checkTopic(s string, filter bool) error {
	var err error
	if filter {
		err = topic.ValidFilter(s)
	} else {
		err = topic.ValidName(s)
	}
	if err == nil && strings.Count(s, "/") > maxTopicLevels {
		err = fmt.Errorf("more than %d topic levels", maxTopicLevels)
	}
	switch {
	case err == nil:
		return nil
	case filter || errors.Is(err, topic.ErrInvalidUTF8):
		return packet.ErrMalformedPacket.With(err.Error())
	default:
		return packet.ErrProtocol.With(err.Error())
	}
}
