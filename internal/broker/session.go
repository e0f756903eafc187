package broker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// neverExpires is the MQTT 5 session expiry interval meaning "never".
const neverExpires = 0xFFFFFFFF

// session is a client's state, which outlives its connections when the
// session is persistent.
type session struct {
	id string
	b  *Broker

	mu   sync.Mutex
	conn *conn // nil while the client is offline
	// isOnline mirrors conn != nil for readers that cannot take mu.
	isOnline atomic.Bool
	expiry   uint32 // session expiry interval, seconds
	nextID   uint16
	version  packet.Version
	gone     bool // removed from the broker
	// info and l are who the client was on its last connection and where
	// it connected: the read ACL of messages queued while it is offline is
	// checked with them (nil l: restored from the store, checked when the
	// client returns).
	info ClientInfo
	l    *Listener

	subs     map[string]subOpts  // by full filter, "$share/..." included
	inflight map[uint16]*outMsg  // outbound QoS>0 awaiting PUBACK/PUBREC/PUBCOMP
	incoming map[uint16]*Message // inbound QoS 2 between PUBREC and PUBREL: the message to release (nil: none)
	queue    msgQueue            // outbound QoS>0 waiting for a window slot
	qBytes   int
	// resendQ holds in-flight messages of a resumed session that did not
	// fit the new connection's Receive Maximum [MQTT-3.3.4-7]: resent (with
	// their packet identifiers) as acknowledgements make room. pending
	// counts those still marked pending.
	resendQ []*outMsg
	pending int
	// space, when not nil, is closed once the queue has room again:
	// publishers held back by a full queue wait on it.
	space chan struct{}
	// lastAck is when the client last completed an outbound message, or
	// connected, or was sent one with nothing in flight (UnixNano): a
	// client that has taken nothing for maxHold since is stalled, and
	// holds no publisher back.
	lastAck int64

	expireTimer *time.Timer
	willTimer   *time.Timer
	will        *pendingWill // pending delayed will
}

// subOpts records a session's subscription for resubscription checks,
// unsubscribe-all and persistence.
type subOpts struct {
	packet.Subscription
	subID uint32
}

// outMsg is one outbound QoS>0 delivery (or a queued QoS 0 one).
type outMsg struct {
	msg    *Message
	qos    byte
	retain bool
	subID  uint32
	id     uint16
	seq    uint64 // order of first transmission, for redelivery [MQTT-4.6.0-1]
	rel    bool   // PUBREC received, PUBREL sent: awaiting PUBCOMP
	// pending: in flight on a previous connection, not yet resent on
	// this one (session.resendQ).
	pending bool
}

func newSession(b *Broker, id string) *session {
	// The maps are made on first use: most sessions of idle devices never
	// have a message in flight, and many never subscribe.
	return &session{id: id, b: b}
}

// setSub records a subscription. Caller holds s.mu.
func (s *session) setSub(full string, o subOpts) {
	if s.subs == nil {
		s.subs = make(map[string]subOpts)
	}
	s.subs[full] = o
}

// setInflight records an outbound QoS>0 delivery. Caller holds s.mu.
func (s *session) setInflight(om *outMsg) {
	if s.inflight == nil {
		s.inflight = make(map[uint16]*outMsg)
	}
	if len(s.inflight) == 0 {
		// An idle client owes no acknowledgement: the time it may take
		// before it counts as stalled starts now.
		s.lastAck = time.Now().UnixNano()
	}
	s.inflight[om.id] = om
}

// setIncoming records an inbound QoS 2 packet id and the message its
// PUBREL releases. Caller holds s.mu.
func (s *session) setIncoming(id uint16, m *Message) {
	if s.incoming == nil {
		s.incoming = make(map[uint16]*Message)
	}
	s.incoming[id] = m
}

// doneInflight removes a completed or dropped in-flight message. Caller
// holds s.mu.
func (s *session) doneInflight(om *outMsg) {
	delete(s.inflight, om.id)
	if om.pending {
		om.pending = false
		s.pending--
	}
}

// allocID returns a packet identifier not in use for an outbound flow
// [MQTT-2.2.1-4]. Caller holds s.mu and has checked the window.
func (s *session) allocID() uint16 {
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if _, used := s.inflight[s.nextID]; !used {
			return s.nextID
		}
	}
}

func (s *session) stopTimers() {
	if s.expireTimer != nil {
		s.expireTimer.Stop()
		s.expireTimer = nil
	}
	if s.willTimer != nil {
		s.willTimer.Stop()
		s.willTimer = nil
	}
}

// window is the number of outbound QoS>0 messages allowed in flight: the
// smaller of the client's Receive Maximum and max_inflight_messages.
func (s *session) window() int {
	w := s.b.o().MaxInflightMessages
	if c := s.conn; c != nil && c.clientRecvMax > 0 && int(c.clientRecvMax) < w {
		w = int(c.clientRecvMax)
	}
	return w
}

// track records a new outbound QoS>0 (or queued) message of a persistent
// session in the store, so that it survives a restart. Caller holds s.mu.
func (s *session) track(om *outMsg) {
	if om.seq == 0 {
		om.seq = s.b.nextSeq()
	}
	if !s.b.persist || s.expiry == 0 {
		return
	}
	m := om.msg.toStore()
	m.QoS, m.Retain, m.SubscriptionID = om.qos, om.retain, om.subID
	if err := s.b.st.Enqueue(s.id, om.seq, m); err != nil {
		s.b.log.Error("persisting a queued message failed", "client", s.id, "err", err)
	}
}

// untrack removes a completed (acknowledged, dropped or expired) message
// from the store. Caller holds s.mu.
func (s *session) untrack(om *outMsg) {
	if !s.b.persist || s.expiry == 0 {
		return
	}
	if err := s.b.st.Dequeue(s.id, om.seq); err != nil {
		s.b.log.Error("removing a delivered message from the store failed", "client", s.id, "err", err)
	}
}

// enqueue queues an outbound message, honouring max_queued_messages and
// max_queued_bytes. When the queue is full and the client is online and
// taking messages, the publisher (from) is held back instead of the
// message being lost: the message is queued past the limit (at most twice
// it) and the publisher's read loop waits for room before it reads more.
// A stalled client (nothing acknowledged for maxHold), one whose own read
// loop is held back (two clients publishing to each other would wait on
// each other), or an offline one holds nobody: what does not fit is
// dropped and counted, as Mosquitto does. Caller holds s.mu.
func (s *session) enqueue(om *outMsg, from *conn) bool {
	o := s.b.o()
	size := len(om.msg.Payload) + len(om.msg.Topic)
	n := s.queue.len()
	over := (o.MaxQueuedMessages > 0 && n >= o.MaxQueuedMessages) ||
		(o.MaxQueuedBytes > 0 && s.qBytes+size > o.MaxQueuedBytes)
	if over {
		hard := (o.MaxQueuedMessages > 0 && n >= 2*o.MaxQueuedMessages) ||
			(o.MaxQueuedBytes > 0 && s.qBytes+size > 2*o.MaxQueuedBytes)
		if s.conn == nil || from == nil || from.sess == s || hard || s.conn.holding.Load() ||
			time.Now().UnixNano()-s.lastAck > int64(maxHold) {
			s.b.stats.MessagesDropped.Add(1)
			return false
		}
		from.holdFor(s)
	}
	s.track(om)
	s.queue.push(om)
	s.qBytes += size
	return true
}

// drained reports whether the queue has fallen to half its limits: held
// publishers are released only then, so that each wake-up lets them hand
// over many messages instead of one at a time. Caller holds s.mu.
func (s *session) drained() bool {
	o := s.b.o()
	return (o.MaxQueuedMessages <= 0 || s.queue.len() <= o.MaxQueuedMessages/2) &&
		(o.MaxQueuedBytes <= 0 || s.qBytes <= o.MaxQueuedBytes/2)
}

// wakeWaiters releases publishers held back by this session's full queue.
// Caller holds s.mu.
func (s *session) wakeWaiters() {
	if s.space != nil {
		close(s.space)
		s.space = nil
	}
}

// mayRead reports whether the ACL in force lets the offline client read
// topicName, judged by who it was on its last connection. Caller holds
// s.mu.
func (s *session) mayRead(topicName string) bool {
	if s.l == nil {
		return true // restored, identity unknown: checked when it returns
	}
	a := s.b.authFor(s.l)
	return a == nil || s.b.authorizeHeld(a, &s.info, topicName, AccessRead)
}

// purgeUnreadable drops the queued (and, with inflight, in-flight)
// messages whose topic may reports unreadable, as Mosquitto does when a
// client reconnects: the ACL may have changed (SIGHUP) or the client come
// back under another user name. It returns how many it dropped. Caller
// holds s.mu.
func (s *session) purgeUnreadable(may func(string) bool, inflight bool) int {
	n := 0
	if inflight {
		for _, om := range s.inflight {
			if !om.rel && !may(om.msg.Topic) {
				s.doneInflight(om)
				s.untrack(om)
				n++
			}
		}
	}
	if s.queue.len() == 0 {
		return n
	}
	kept := s.queue.items[:0]
	for _, om := range s.queue.items[s.queue.head:] {
		if may(om.msg.Topic) {
			kept = append(kept, om)
			continue
		}
		s.qBytes -= len(om.msg.Payload) + len(om.msg.Topic)
		s.untrack(om)
		n++
	}
	clear(s.queue.items[len(kept):])
	s.queue.items, s.queue.head = kept, 0
	return n
}

// pump moves queued messages into the in-flight window and onto the wire
// while there is room, and reports whether it sent anything; the caller
// wakes the writer (once per batch of acknowledgements). Each message's
// read access is checked again as it is sent: the ACL may have changed
// since it was queued. Caller holds s.mu.
func (s *session) pump(now time.Time) bool {
	c := s.conn
	if c == nil {
		return false
	}
	w := s.window()
	moved := false
	// First what a resumed session still has to resend, in order.
	for len(s.resendQ) > 0 && len(s.inflight)-s.pending < w && !c.outFull() {
		om := s.resendQ[0]
		s.resendQ[0] = nil
		s.resendQ = s.resendQ[1:]
		if !om.pending {
			continue // acknowledged meanwhile
		}
		om.pending = false
		s.pending--
		moved = true
		if c.sendOwnedDup(om, now) == sendTooLarge {
			delete(s.inflight, om.id)
			s.untrack(om)
		}
	}
	if len(s.resendQ) == 0 {
		s.resendQ = nil
	}
	for s.queue.len() > 0 && len(s.inflight) < w {
		if c.outFull() {
			break
		}
		om := s.queue.pop()
		moved = true
		s.qBytes -= len(om.msg.Payload) + len(om.msg.Topic)
		if om.msg.expired(now) || !c.authorizeLocked(om.msg.Topic, AccessRead) {
			if om.qos > 0 {
				// Mosquitto numbers a message when it is queued, so one
				// that expired or that the ACL no longer lets through has
				// used its packet identifier: the same numbers as
				// Mosquitto's on the wire.
				s.allocID()
			}
			s.untrack(om)
			continue
		}
		if om.qos == 0 {
			c.sendOwned(om, now)
			s.untrack(om)
			continue
		}
		om.id = s.allocID()
		s.setInflight(om)
		if c.sendOwned(om, now) == sendTooLarge {
			delete(s.inflight, om.id)
			s.untrack(om)
		}
	}
	if moved && s.space != nil && s.drained() {
		s.wakeWaiters()
	}
	return moved
}

// msgQueue is a FIFO of outbound messages that pops from the front
// without moving the rest.
type msgQueue struct {
	items []*outMsg
	head  int
}

func (q *msgQueue) len() int { return len(q.items) - q.head }

func (q *msgQueue) push(om *outMsg) { q.items = append(q.items, om) }

func (q *msgQueue) pop() *outMsg {
	om := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
		if cap(q.items) > 4096 {
			q.items = nil
		}
	case q.head > 1024 && 2*q.head > len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return om
}

// resend retransmits in-flight messages on a resumed session, in their
// original order, PUBLISH with DUP set or PUBREL [MQTT-4.4.0-1]. No more
// PUBLISH packets than the new connection's window (its Receive Maximum)
// go out at once [MQTT-3.3.4-7]; the rest wait in resendQ for pump.
// Caller holds s.mu.
func (s *session) resend(now time.Time) {
	for _, om := range s.resendQ {
		om.pending = false
	}
	s.resendQ, s.pending = nil, 0
	c := s.conn
	if c == nil || len(s.inflight) == 0 {
		return
	}
	list := make([]*outMsg, 0, len(s.inflight))
	for _, om := range s.inflight {
		list = append(list, om)
	}
	sortBySeq(list)
	w, sentNow := s.window(), 0
	for _, om := range list {
		if om.rel {
			c.writeAck(packet.PUBREL, om.id)
			continue
		}
		if sentNow >= w {
			om.pending = true
			s.resendQ = append(s.resendQ, om)
			s.pending++
			continue
		}
		sentNow++
		c.sendOwnedDup(om, now)
	}
	c.kick()
}

func sortBySeq(l []*outMsg) {
	// insertion sort: windows are small and mostly ordered already
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].seq < l[j-1].seq; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}
