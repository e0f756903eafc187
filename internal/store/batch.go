package store

import (
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// BodyID names a stored message body. Ids grow and are never reused.
type BodyID uint64

// FlightState is the outbound QoS state of a queue entry.
type FlightState byte

const (
	// Queued: not sent yet (no packet identifier).
	Queued FlightState = iota
	// Sent: PUBLISH sent with PacketID, awaiting PUBACK (QoS 1) or PUBREC
	// (QoS 2).
	Sent
	// Released: PUBREC received and PUBREL sent, awaiting PUBCOMP. After a
	// restart the broker resends PUBREL, not the PUBLISH [MQTT-4.4.0-1].
	Released
)

// Entry is one outbound message of a persistent session: queued, or in
// flight when PacketID is set.
type Entry struct {
	ClientID string
	// Seq orders a session's entries (the broker's order of first
	// transmission [MQTT-4.6.0-1]); unique per session, never reused while
	// the entry exists.
	Seq            uint64
	Body           BodyID
	QoS            byte
	Retain         bool
	SubscriptionID uint32
	PacketID       uint16
	State          FlightState
}

// refDelta is a change of one body's reference count, applied by the
// applier goroutine in commit order.
type refDelta struct {
	body   BodyID
	client string
	seq    uint64
	add    bool
}

// Batch collects the writes of one broker event (a publish: its body, the
// queue entries of every persistent session it was routed to, the
// retained message; an acknowledgement; a SUBSCRIBE; …), committed
// atomically by DB.Commit. Encoding happens in the caller's goroutine, so
// the broker's read loops share that work. A nil *Batch (from the
// memory-only store) ignores every call. A Batch is not safe for
// concurrent use.
type Batch struct {
	d      *DB
	pb     *pebble.Batch
	refs   []refDelta
	bodies []BodyID
	drops  []string // sessions deleted: their entries' bodies are released at apply time

	dur     Durability
	done    func(error)
	err     error
	synced  bool
	applied bool

	finished   atomic.Bool
	tracked    bool // in the DB's outstanding list (under DB.outMu)
	prev, next *Batch
}

// NewBatch returns an empty batch; nil on the memory-only store.
func (d *DB) NewBatch() *Batch {
	if d == nil {
		return nil
	}
	return &Batch{d: d, pb: d.pdb.NewBatch()}
}

// Len returns the batch's encoded size in bytes, to split large imports.
func (b *Batch) Len() int {
	if b == nil {
		return 0
	}
	return b.pb.Len()
}

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool { return b == nil || b.pb.Empty() }

// finish calls the batch back, once: after a failure both the completer's
// sweep and a late return from Pebble may try.
func (b *Batch) finish(err error) {
	if !b.finished.CompareAndSwap(false, true) {
		return
	}
	if b.d != nil {
		b.d.untrack(b)
	}
	if b.done != nil {
		b.done(err)
	}
}

// PutBody stores a message body once and returns its id, for the queue
// entries of every session the message was routed to. A body no entry
// refers to when the batch is applied is dropped in the same batch.
func (b *Batch) PutBody(m *Message) BodyID {
	if b == nil {
		return 0
	}
	id := BodyID(b.d.nextBody.Add(1))
	_ = b.pb.Set(bodyKey(id), encodeMessage(nil, m), nil)
	b.bodies = append(b.bodies, id)
	return id
}

// Enqueue records a session's queue entry referring to e.Body; with a
// PacketID it is recorded in flight as well.
func (b *Batch) Enqueue(e *Entry) {
	if b == nil {
		return
	}
	// Written once: a queue entry's key is never set twice, so Dequeue
	// may use SingleDelete.
	_ = b.pb.Set(seqKey(pQueue, e.ClientID, e.Seq), encodeEntry(e), nil)
	if e.PacketID != 0 && e.State != Queued {
		_ = b.pb.Set(seqKey(pFlight, e.ClientID, e.Seq), encodeFlight(e.PacketID, e.State), nil)
	}
	b.refs = append(b.refs, refDelta{body: e.Body, client: e.ClientID, seq: e.Seq, add: true})
}

// SetInflight records that entry seq of the session was sent with packet
// identifier pid (Sent) or has had its PUBREC (Released). Outbound QoS 2
// state is committed Sync before the PUBLISH goes out, so that exactly
// once survives a restart; QoS 1 may use Lazy (a loss means a resend).
func (b *Batch) SetInflight(clientID string, seq uint64, pid uint16, st FlightState) {
	if b == nil {
		return
	}
	k := seqKey(pFlight, clientID, seq)
	if st == Queued {
		_ = b.pb.Delete(k, nil)
		return
	}
	_ = b.pb.Set(k, encodeFlight(pid, st), nil)
}

// Dequeue removes a completed (acknowledged, expired or dropped) entry;
// body is the entry's Body. The body goes in the same batch when this was
// its last reference.
func (b *Batch) Dequeue(clientID string, seq uint64, body BodyID) {
	if b == nil {
		return
	}
	_ = b.pb.SingleDelete(seqKey(pQueue, clientID, seq), nil)
	// The in-flight key may have been set more than once: Delete.
	_ = b.pb.Delete(seqKey(pFlight, clientID, seq), nil)
	b.refs = append(b.refs, refDelta{body: body, client: clientID, seq: seq})
}

// SetRetained stores the retained message of m.Topic.
func (b *Batch) SetRetained(m *Message) {
	if b == nil {
		return
	}
	_ = b.pb.Set(retainedKey(m.Topic), encodeMessage(nil, m), nil)
}

// DeleteRetained clears the retained message of topic.
func (b *Batch) DeleteRetained(topic string) {
	if b == nil {
		return
	}
	_ = b.pb.Delete(retainedKey(topic), nil)
}

// PutSession stores the session record and replaces its subscriptions with
// s.Subscriptions.
func (b *Batch) PutSession(s *Session) {
	if b == nil {
		return
	}
	_ = b.pb.Set(clientKey(nil, pSession, s.ClientID), encodeSession(s), nil)
	p := clientKey(nil, pSub, s.ClientID)
	_ = b.pb.DeleteRange(p, prefixEnd(p), nil)
	for i := range s.Subscriptions {
		b.PutSubscription(s.ClientID, &s.Subscriptions[i])
	}
}

// PutSubscription adds or replaces one subscription of a session.
func (b *Batch) PutSubscription(clientID string, sub *Subscription) {
	if b == nil {
		return
	}
	_ = b.pb.Set(subKey(clientID, sub.Filter), encodeSub(sub), nil)
}

// DeleteSubscription removes one subscription of a session.
func (b *Batch) DeleteSubscription(clientID, filter string) {
	if b == nil {
		return
	}
	_ = b.pb.Delete(subKey(clientID, filter), nil)
}

// AddIncoming records an inbound QoS 2 packet identifier awaiting PUBREL;
// commit it Sync before sending PUBREC.
func (b *Batch) AddIncoming(clientID string, pid uint16) {
	if b == nil {
		return
	}
	_ = b.pb.Set(incomingKey(clientID, pid), []byte{valueVersion}, nil)
}

// DeleteIncoming forgets an inbound QoS 2 packet identifier (PUBREL came).
func (b *Batch) DeleteIncoming(clientID string, pid uint16) {
	if b == nil {
		return
	}
	// A client may resend the PUBLISH before PUBREL, setting the key
	// twice: Delete, not SingleDelete.
	_ = b.pb.Delete(incomingKey(clientID, pid), nil)
}

// DeleteSession removes a session (expired, or replaced by a clean start):
// its record, subscriptions, queue, in-flight and inbound QoS 2 state, with
// range deletes; bodies only this session referred to go in the same
// batch.
func (b *Batch) DeleteSession(clientID string) {
	if b == nil {
		return
	}
	_ = b.pb.Delete(clientKey(nil, pSession, clientID), nil)
	for _, p := range []byte{pSub, pQueue, pFlight, pIncoming} {
		k := clientKey(nil, p, clientID)
		_ = b.pb.DeleteRange(k, prefixEnd(k), nil)
	}
	// Entries enqueued earlier in this batch are deleted by the range
	// delete too: release their references here. Committed entries are
	// found by the applier.
	for _, r := range b.refs {
		if r.add && r.client == clientID {
			b.refs = append(b.refs, refDelta{body: r.body, client: clientID, seq: r.seq})
		}
	}
	b.drops = append(b.drops, clientID)
}

// SetMeta stores a named store-wide value (for example the marker of a
// finished Mosquitto import).
func (b *Batch) SetMeta(name string, value []byte) {
	if b == nil {
		return
	}
	_ = b.pb.Set(metaKey(name), value, nil)
}

// Meta returns a value stored with SetMeta.
func (d *DB) Meta(name string) ([]byte, bool, error) {
	if d == nil {
		return nil, false, nil
	}
	v, c, err := d.pdb.Get(metaKey(name))
	if err == pebble.ErrNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	return append([]byte(nil), v...), true, nil
}

// Body reads a stored message body; the broker calls it while recovering,
// for the bodies it wants in memory.
func (d *DB) Body(id BodyID) (*Message, error) {
	if d == nil {
		return nil, pebble.ErrNotFound
	}
	v, c, err := d.pdb.Get(bodyKey(id))
	if err != nil {
		return nil, fmt.Errorf("body %d: %w", id, err)
	}
	defer c.Close()
	m, err := decodeMessage(v)
	if err != nil {
		return nil, fmt.Errorf("body %d: %w", id, err)
	}
	return m, nil
}

// applyRefs updates the reference counts for b, in commit order, and adds
// the deletion of every body whose last reference goes to b. Runs on the
// applier goroutine.
func (d *DB) applyRefs(b *Batch) error {
	if len(b.refs) == 0 && len(b.bodies) == 0 && len(b.drops) == 0 {
		return nil
	}
	touched := b.bodies
	for _, id := range b.bodies {
		if _, ok := d.refs[id]; !ok {
			d.refs[id] = 0
		}
	}
	var dequeued map[refDelta]bool
	for _, r := range b.refs {
		if r.add {
			d.refs[r.body]++
		} else {
			d.refs[r.body]--
			if len(b.drops) > 0 {
				if dequeued == nil {
					dequeued = make(map[refDelta]bool)
				}
				dequeued[refDelta{client: r.client, seq: r.seq}] = true
			}
		}
		touched = append(touched, r.body)
	}
	for _, client := range b.drops {
		err := d.scanQueue(client, func(e *Entry) {
			if dequeued[refDelta{client: client, seq: e.Seq}] {
				return // already released by a Dequeue in this batch
			}
			d.refs[e.Body]--
			touched = append(touched, e.Body)
		})
		if err != nil {
			return fmt.Errorf("release queue of %q: %w", client, err)
		}
	}
	for _, id := range touched {
		if n, ok := d.refs[id]; ok && n <= 0 {
			delete(d.refs, id)
			_ = b.pb.SingleDelete(bodyKey(id), nil)
		}
	}
	return nil
}

// scanQueue calls fn for each committed queue entry of a session (without
// its in-flight state), in Seq order.
func (d *DB) scanQueue(clientID string, fn func(*Entry)) error {
	p := clientKey(nil, pQueue, clientID)
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	var e Entry
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(p)+8 {
			_ = it.Close()
			return errCorrupt
		}
		e = Entry{ClientID: clientID, Seq: beUint64(k[len(p):])}
		v, err := it.ValueAndErr()
		if err == nil {
			err = decodeEntry(&e, v)
		}
		if err != nil {
			_ = it.Close()
			return err
		}
		fn(&e)
	}
	return it.Close()
}
