package mosqdb

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/mamori-mqtt/mamori/internal/store"
)

// ImportMarker is the store metadata name recording a finished import: it
// makes the import happen once.
const ImportMarker = "import/mosquitto"

// ImportStats says what Import did, for the log.
type ImportStats struct {
	// Done is false when there was nothing to import: no file, or an
	// import already recorded in the store.
	Done          bool
	AlreadyDone   bool
	Retained      int
	Sessions      int
	Subscriptions int
	Messages      int // queue entries (queued and in flight)
	Bodies        int // distinct message bodies stored
	// Not imported: sessions and messages whose expiry had passed,
	// inbound QoS 2 messages awaiting PUBREL (Mosquitto had not routed
	// them yet; mamori keeps only their packet ids), client messages
	// whose stored message is missing from the file.
	ExpiredSessions, ExpiredMessages, Inbound, Missing int
}

// maxBatch bounds the size of one import batch; bodies are written with
// their first reference, so a body and the entries of that batch commit
// together.
const maxBatch = 4 << 20

// Import reads the mosquitto.db at path into d, once: it does nothing when
// the file does not exist or an import is recorded, and it never writes to
// the file. Every batch is committed Sync; the marker goes with the last
// one, so an interrupted import is done again (from scratch, overwriting
// the same keys and replacing the sessions) at the next start. It must run
// before the broker starts committing and before Recover.
func Import(d *store.DB, path string, now time.Time) (ImportStats, error) {
	var st ImportStats
	if d == nil {
		return st, nil
	}
	if _, ok, err := d.Meta(ImportMarker); err != nil {
		return st, fmt.Errorf("import %s: %w", path, err)
	} else if ok {
		st.AlreadyDone = true
		return st, nil
	}
	f, err := ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	return importFile(d, f, path, now, true)
}

// importFile imports f; mark false leaves the marker out, as an import
// interrupted before its last batch would (for tests).
func importFile(d *store.DB, f *File, path string, now time.Time, mark bool) (ImportStats, error) {
	var st ImportStats
	// Count the references of what is in the store already (a previous,
	// interrupted import): sessions are replaced below, which releases
	// their bodies.
	if _, err := d.Recover(store.Recovery{}); err != nil {
		return st, fmt.Errorf("import %s: %w", path, err)
	}
	seq, err := d.MaxSeq()
	if err != nil {
		return st, fmt.Errorf("import %s: %w", path, err)
	}
	im := importer{d: d, f: f, now: now, st: &st, seq: seq, bodies: map[uint64]store.BodyID{}}
	im.b = d.NewBatch()
	for _, id := range f.Retained {
		m := f.Messages[id]
		if m == nil {
			st.Missing++
			continue
		}
		if im.expired(m) {
			st.ExpiredMessages++
			continue
		}
		sm := storeMessage(m)
		sm.Retain = true
		im.b.SetRetained(sm)
		st.Retained++
		if err := im.maybeCommit(); err != nil {
			return st, fmt.Errorf("import %s: %w", path, err)
		}
	}
	for _, s := range f.Sessions {
		im.session(s)
		if err := im.maybeCommit(); err != nil {
			return st, fmt.Errorf("import %s: %w", path, err)
		}
	}
	if mark {
		im.b.SetMeta(ImportMarker, fmt.Appendf(nil, "%s at %s", path, now.UTC().Format(time.RFC3339)))
	}
	if err := im.commit(); err != nil {
		return st, fmt.Errorf("import %s: %w", path, err)
	}
	st.Done = true
	return st, nil
}

type importer struct {
	d      *store.DB
	f      *File
	b      *store.Batch
	now    time.Time
	st     *ImportStats
	seq    uint64
	bodies map[uint64]store.BodyID // store id → body, once written
}

func (im *importer) expired(m *Message) bool {
	return !m.Expiry.IsZero() && !im.now.Before(m.Expiry)
}

func storeMessage(m *Message) *store.Message {
	return &store.Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain,
		Props: m.Props, Expiry: m.Expiry, From: m.SourceID}
}

func (im *importer) session(s *Session) {
	if s.ExpiryInterval == 0 {
		return // a clean session: Mosquitto restores nothing for it either
	}
	rec := &store.Session{ClientID: s.ClientID, ExpiryInterval: s.ExpiryInterval, Username: s.Username,
		Disconnected: im.now, Version: 5}
	if s.ExpiryInterval == 0xFFFFFFFF {
		// Mosquitto does not record the protocol version; a session that
		// never expires is most often a 3.1.1 clean-session-false one.
		// The client's next CONNECT sets the real version.
		rec.Version = 4
	} else if !s.ExpiryTime.IsZero() {
		if !im.now.Before(s.ExpiryTime) {
			im.st.ExpiredSessions++
			return
		}
		rec.Disconnected = s.ExpiryTime.Add(-time.Duration(s.ExpiryInterval) * time.Second)
	}
	for _, sub := range s.Subscriptions {
		rec.Subscriptions = append(rec.Subscriptions, store.Subscription{Filter: sub.Filter, QoS: sub.QoS,
			NoLocal: sub.Options&0x04 != 0, RetainAsPublished: sub.Options&0x08 != 0,
			RetainHandling: (sub.Options >> 4) & 3, SubscriptionID: sub.Identifier})
	}
	im.b.DeleteSession(s.ClientID) // what an interrupted import left
	im.b.PutSession(rec)
	im.st.Sessions++
	im.st.Subscriptions += len(rec.Subscriptions)
	for _, cm := range s.Messages {
		if !cm.Outgoing {
			im.st.Inbound++
			continue
		}
		m := im.f.Messages[cm.StoreID]
		if m == nil {
			im.st.Missing++
			continue
		}
		if im.expired(m) {
			im.st.ExpiredMessages++
			continue
		}
		body, ok := im.bodies[cm.StoreID]
		if !ok {
			body = im.b.PutBody(storeMessage(m))
			im.bodies[cm.StoreID] = body
			im.st.Bodies++
		}
		im.seq++
		e := &store.Entry{ClientID: s.ClientID, Seq: im.seq, Body: body, QoS: min(cm.QoS, m.QoS),
			Retain: cm.Retain, SubscriptionID: cm.SubscriptionID}
		switch cm.State {
		case stateWaitForPuback, stateWaitForPubrec:
			e.PacketID, e.State = cm.Mid, store.Sent
		case stateResendPubrel, stateWaitForPubcomp, stateWaitForPubrel:
			e.PacketID, e.State = cm.Mid, store.Released
		}
		if e.PacketID == 0 {
			e.State = store.Queued
		}
		im.b.Enqueue(e)
		im.st.Messages++
	}
}

func (im *importer) maybeCommit() error {
	if im.b.Len() < maxBatch {
		return nil
	}
	if err := im.commit(); err != nil {
		return err
	}
	im.b = im.d.NewBatch()
	return nil
}

func (im *importer) commit() error {
	ch := make(chan error, 1)
	im.d.Commit(im.b, store.Sync, func(err error) { ch <- err })
	return <-ch
}
