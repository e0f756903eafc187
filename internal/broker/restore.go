package broker

import (
	"fmt"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/store"
)

// restore loads retained messages and persistent sessions (subscriptions,
// queued and in-flight messages) from the store at start-up. Messages that
// were in flight are queued again; they are resent in their original order
// when the client returns.
func (b *Broker) restore() error {
	if err := b.st.LoadRetained(func(m *store.Message) {
		if msg, err := messageFromStore(m); err == nil {
			b.retained.Set(msg.Topic, msg)
		}
	}); err != nil {
		return fmt.Errorf("load retained messages: %w", err)
	}
	var recs []*store.Session
	if err := b.st.LoadSessions(func(s *store.Session) { recs = append(recs, s) }); err != nil {
		return fmt.Errorf("load sessions: %w", err)
	}
	now := time.Now()
	var maxSeq uint64
	for _, rec := range recs {
		s := newSession(b, rec.ClientID)
		s.version = packet.Version(rec.Version)
		s.expiry = rec.ExpiryInterval
		for _, sub := range rec.Subscriptions {
			s.setSub(sub.Filter, subOpts{Subscription: packet.Subscription{Filter: []byte(sub.Filter), QoS: sub.QoS,
				NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished, RetainHandling: sub.RetainHandling},
				subID: sub.SubscriptionID})
			b.subs.Subscribe(s.id, sub.Filter, subscription{sess: s, qos: sub.QoS, noLocal: sub.NoLocal,
				retainAsPublished: sub.RetainAsPublished, subID: sub.SubscriptionID})
		}
		if err := b.st.LoadQueue(rec.ClientID, func(seq uint64, m *store.Message) {
			msg, err := messageFromStore(m)
			if err != nil {
				return
			}
			s.queue.push(&outMsg{msg: msg, qos: m.QoS, retain: m.Retain, subID: m.SubscriptionID, seq: seq})
			s.qBytes += len(msg.Payload) + len(msg.Topic)
			maxSeq = max(maxSeq, seq)
		}); err != nil {
			return fmt.Errorf("load queue of %s: %w", rec.ClientID, err)
		}
		sortBySeq(s.queue.items)
		b.sessions[s.id] = s
		if s.expiry != neverExpires {
			left := time.Duration(s.expiry)*time.Second - now.Sub(rec.Disconnected)
			s.expireTimer = time.AfterFunc(max(left, 0), b.guarded("session expiry", func() { b.endSession(s) }))
		}
	}
	if maxSeq > b.seq.Load() {
		b.seq.Store(maxSeq)
	}
	return nil
}
