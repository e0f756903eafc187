package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Recovery receives the store's contents at start-up, streamed: nothing is
// held in memory by the store but the bodies' reference counts. Any
// callback may be nil. A callback's error stops the recovery and is
// returned.
type Recovery struct {
	// Retained is called for each retained message, in topic order.
	Retained func(m *Message) error
	// Session is called for each persistent session with its
	// subscriptions and the inbound QoS 2 packet identifiers awaiting
	// PUBREL, before the session's entries.
	Session func(s *Session, incoming []uint16) error
	// Entry is called for each queued or in-flight entry of the session
	// last passed to Session, in Seq order. The body is read with
	// DB.Body(e.Body) when the broker wants it: one body is shared by
	// many entries, so the broker keeps one copy per BodyID. *e is
	// reused for the next entry: copy what is kept.
	Entry func(e *Entry) error
}

// RecoveryStats counts what Recover found, for the start-up log line.
type RecoveryStats struct {
	Sessions, Subscriptions, Entries, Inflight, Incoming, Retained int
	Bodies                                                         int // distinct bodies referred to
	OrphanBodies                                                   int // bodies no entry referred to, deleted
	MaxSeq                                                         uint64
	Duration                                                       time.Duration
}

// Recover streams the store's contents to r and rebuilds the bodies'
// reference counts. It must run before the broker commits anything that
// removes entries (a Mosquitto import may run before it); it must not run
// concurrently with commits.
func (d *DB) Recover(r Recovery) (RecoveryStats, error) {
	var st RecoveryStats
	if d == nil {
		return st, nil
	}
	start := time.Now()
	refs := make(map[BodyID]int32)
	if err := d.recoverRetained(r, &st); err != nil {
		return st, err
	}
	if err := d.recoverSessions(r, &st, refs); err != nil {
		return st, err
	}
	st.Bodies = len(refs)
	n, err := d.dropOrphans(refs)
	if err != nil {
		return st, err
	}
	st.OrphanBodies = n
	d.refs = refs
	st.Duration = time.Since(start)
	return st, nil
}

func (d *DB) recoverRetained(r Recovery, st *RecoveryStats) error {
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{pRetained}, UpperBound: []byte{pRetained + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		m, err := decodeMessage(v)
		if err != nil {
			return fmt.Errorf("retained %q: %w", it.Key()[1:], err)
		}
		st.Retained++
		if r.Retained != nil {
			if err := r.Retained(m); err != nil {
				return err
			}
		}
	}
	return it.Error()
}

// cursor walks one per-client key range (subscriptions, queue, …) in step
// with the sessions: every range is ordered by the same client encoding.
type cursor struct {
	it *pebble.Iterator
	ok bool
}

func (d *DB) newCursor(prefix byte) (*cursor, error) {
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return nil, err
	}
	return &cursor{it: it, ok: it.First()}, nil
}

// each calls fn for every key of the cursor under the client prefix p
// (which starts with the cursor's prefix byte), after skipping keys of
// clients without a session.
func (c *cursor) each(p []byte, fn func(rest, value []byte) error) error {
	if c.ok && bytes.Compare(c.it.Key(), p) < 0 {
		c.ok = c.it.SeekGE(p)
	}
	for ; c.ok && bytes.HasPrefix(c.it.Key(), p); c.ok = c.it.Next() {
		v, err := c.it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := fn(c.it.Key()[len(p):], v); err != nil {
			return err
		}
	}
	return c.it.Error()
}

func (d *DB) recoverSessions(r Recovery, st *RecoveryStats, refs map[BodyID]int32) (err error) {
	var curs [4]*cursor
	defer func() {
		for _, c := range curs {
			if c != nil {
				_ = c.it.Close()
			}
		}
	}()
	for i, p := range []byte{pSub, pIncoming, pQueue, pFlight} {
		if curs[i], err = d.newCursor(p); err != nil {
			return err
		}
	}
	subs, incs, queue, flight := curs[0], curs[1], curs[2], curs[3]
	sit, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{pSession}, UpperBound: []byte{pSession + 1}})
	if err != nil {
		return err
	}
	defer sit.Close()
	var e Entry
	for ok := sit.First(); ok; ok = sit.Next() {
		clientID, rest, err := parseClientKey(sit.Key())
		if err != nil || len(rest) != 0 {
			return fmt.Errorf("session key %x: %w", sit.Key(), errCorrupt)
		}
		v, err := sit.ValueAndErr()
		if err != nil {
			return err
		}
		s, err := decodeSession(clientID, v)
		if err != nil {
			return fmt.Errorf("session %q: %w", clientID, err)
		}
		err = subs.each(clientKey(nil, pSub, clientID), func(filter, v []byte) error {
			sub, err := decodeSub(string(filter), v)
			if err != nil {
				return fmt.Errorf("subscription %q of %q: %w", filter, clientID, err)
			}
			s.Subscriptions = append(s.Subscriptions, sub)
			return nil
		})
		if err != nil {
			return err
		}
		var incoming []uint16
		err = incs.each(clientKey(nil, pIncoming, clientID), func(k, _ []byte) error {
			if len(k) != 2 {
				return fmt.Errorf("inbound QoS 2 state of %q: %w", clientID, errCorrupt)
			}
			incoming = append(incoming, binary.BigEndian.Uint16(k))
			return nil
		})
		if err != nil {
			return err
		}
		st.Sessions++
		st.Subscriptions += len(s.Subscriptions)
		st.Incoming += len(incoming)
		if r.Session != nil {
			if err := r.Session(s, incoming); err != nil {
				return err
			}
		}
		fp := clientKey(nil, pFlight, clientID)
		err = queue.each(clientKey(nil, pQueue, clientID), func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("queue entry of %q: %w", clientID, errCorrupt)
			}
			e = Entry{ClientID: clientID, Seq: beUint64(k)}
			if err := decodeEntry(&e, v); err != nil {
				return fmt.Errorf("queue entry %d of %q: %w", e.Seq, clientID, err)
			}
			// The in-flight state of this entry, if any: flight keys are
			// a subset of queue keys, in the same order.
			seqKey := binary.BigEndian.AppendUint64(append([]byte(nil), fp...), e.Seq)
			if flight.ok && bytes.Compare(flight.it.Key(), seqKey) < 0 {
				flight.ok = flight.it.SeekGE(seqKey)
			}
			if flight.ok && bytes.Equal(flight.it.Key(), seqKey) {
				fv, err := flight.it.ValueAndErr()
				if err != nil {
					return err
				}
				if e.PacketID, e.State, err = decodeFlight(fv); err != nil {
					return fmt.Errorf("in-flight state %d of %q: %w", e.Seq, clientID, err)
				}
				st.Inflight++
			}
			refs[e.Body]++
			st.Entries++
			st.MaxSeq = max(st.MaxSeq, e.Seq)
			if r.Entry != nil {
				return r.Entry(&e)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return sit.Error()
}

// dropOrphans deletes bodies no entry refers to. The write path deletes a
// body with its last reference, so these only come from an import or an
// older store; the scan reads keys in order and costs no memory.
func (d *DB) dropOrphans(refs map[BodyID]int32) (int, error) {
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{pBody}, UpperBound: []byte{pBody + 1}})
	if err != nil {
		return 0, err
	}
	pb := d.pdb.NewBatch()
	defer pb.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 9 {
			_ = it.Close()
			return 0, fmt.Errorf("body key %x: %w", k, errCorrupt)
		}
		if refs[BodyID(beUint64(k[1:]))] == 0 {
			_ = pb.SingleDelete(k, nil)
			n++
		}
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	if err := d.pebbleApply(pb, false); err != nil {
		return 0, fmt.Errorf("delete orphan bodies: %w", err)
	}
	return n, nil
}

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// MaxSeq returns the highest queue entry Seq in the store. It reads every
// queue key, so it is meant for the one-time import at first start; the
// broker learns the maximum from Recover.
func (d *DB) MaxSeq() (uint64, error) {
	if d == nil {
		return 0, nil
	}
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{pQueue}, UpperBound: []byte{pQueue + 1}})
	if err != nil {
		return 0, err
	}
	var m uint64
	for ok := it.First(); ok; ok = it.Next() {
		if k := it.Key(); len(k) >= 9 {
			m = max(m, beUint64(k[len(k)-8:]))
		}
	}
	return m, it.Close()
}
