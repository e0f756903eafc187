package store

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func openFS(t *testing.T, fs vfs.FS, o Options) *DB {
	t.Helper()
	o.FS = fs
	d, err := Open("db", o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// commit commits b and waits for its callback.
func commit(t *testing.T, d *DB, b *Batch, dur Durability) {
	t.Helper()
	if err := commitErr(d, b, dur); err != nil {
		t.Fatal(err)
	}
}

func commitErr(d *DB, b *Batch, dur Durability) error {
	ch := make(chan error, 1)
	d.Commit(b, dur, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-time.After(20 * time.Second):
		return errors.New("commit callback never came")
	}
}

// contents is everything Recover streamed, bodies resolved.
type contents struct {
	retained map[string]*Message
	sessions map[string]*Session
	incoming map[string][]uint16
	entries  map[string][]Entry
	bodies   map[string][]*Message
	stats    RecoveryStats
}

func recoverAll(t *testing.T, d *DB) *contents {
	t.Helper()
	c := &contents{retained: map[string]*Message{}, sessions: map[string]*Session{},
		incoming: map[string][]uint16{}, entries: map[string][]Entry{}, bodies: map[string][]*Message{}}
	var cur string
	st, err := d.Recover(Recovery{
		Retained: func(m *Message) error { c.retained[m.Topic] = m; return nil },
		Session: func(s *Session, inc []uint16) error {
			cur = s.ClientID
			c.sessions[s.ClientID] = s
			if inc != nil {
				c.incoming[s.ClientID] = inc
			}
			return nil
		},
		Entry: func(e *Entry) error {
			if e.ClientID != cur {
				return fmt.Errorf("entry of %q after session %q", e.ClientID, cur)
			}
			m, err := d.Body(e.Body)
			if err != nil {
				return err
			}
			c.entries[e.ClientID] = append(c.entries[e.ClientID], *e)
			c.bodies[e.ClientID] = append(c.bodies[e.ClientID], m)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.stats = st
	return c
}

func TestRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	d := openFS(t, fs, Options{})
	exp := time.Unix(2000000000, 0)
	msg := &Message{Topic: "a/b", Payload: []byte("hello"), QoS: 2, Props: []byte{0x01, 0x01}, Expiry: exp, From: "pub"}
	sess := &Session{ClientID: "c1", Version: 5, ExpiryInterval: 3600, Disconnected: time.Unix(1700000000, 5),
		Username: "u", Subscriptions: []Subscription{
			{Filter: "a/#", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2, SubscriptionID: 7},
			{Filter: "$share/g/x", QoS: 1},
		}}

	b := d.NewBatch()
	b.PutSession(sess)
	b.PutSession(&Session{ClientID: "c", Version: 4, ExpiryInterval: 0xFFFFFFFF})
	b.SetRetained(&Message{Topic: "r/1", Payload: []byte("v1"), Retain: true, QoS: 1})
	b.SetRetained(&Message{Topic: "r/2", Payload: []byte("v2"), Retain: true})
	id := b.PutBody(msg)
	b.Enqueue(&Entry{ClientID: "c1", Seq: 10, Body: id, QoS: 2, SubscriptionID: 7})
	b.Enqueue(&Entry{ClientID: "c1", Seq: 11, Body: id, QoS: 1, Retain: true, PacketID: 3, State: Sent})
	b.Enqueue(&Entry{ClientID: "c", Seq: 12, Body: id, QoS: 1})
	b.AddIncoming("c1", 9)
	b.AddIncoming("c1", 8)
	commit(t, d, b, Sync)

	b = d.NewBatch()
	b.SetInflight("c1", 10, 4, Released)
	b.DeleteRetained("r/2")
	commit(t, d, b, Lazy)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = openFS(t, fs, Options{})
	defer d.Close()
	c := recoverAll(t, d)
	if len(c.retained) != 1 || string(c.retained["r/1"].Payload) != "v1" || !c.retained["r/1"].Retain {
		t.Fatalf("retained: %+v", c.retained)
	}
	if got := c.sessions["c1"]; !reflect.DeepEqual(got, &Session{ClientID: "c1", Version: 5, ExpiryInterval: 3600,
		Disconnected: time.Unix(1700000000, 5), Username: "u", Subscriptions: []Subscription{
			{Filter: "$share/g/x", QoS: 1},
			{Filter: "a/#", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2, SubscriptionID: 7},
		}}) {
		t.Fatalf("session c1: %+v", got)
	}
	if got := c.sessions["c"]; got == nil || got.ExpiryInterval != 0xFFFFFFFF || got.Version != 4 {
		t.Fatalf("session c: %+v", got)
	}
	if !slices.Equal(c.incoming["c1"], []uint16{8, 9}) {
		t.Fatalf("incoming: %v", c.incoming)
	}
	want := []Entry{
		{ClientID: "c1", Seq: 10, Body: id, QoS: 2, SubscriptionID: 7, PacketID: 4, State: Released},
		{ClientID: "c1", Seq: 11, Body: id, QoS: 1, Retain: true, PacketID: 3, State: Sent},
	}
	if !reflect.DeepEqual(c.entries["c1"], want) {
		t.Fatalf("entries of c1:\n got %+v\nwant %+v", c.entries["c1"], want)
	}
	if len(c.entries["c"]) != 1 {
		t.Fatalf("entries of c: %+v", c.entries["c"])
	}
	got := c.bodies["c1"][0]
	if got.Topic != msg.Topic || string(got.Payload) != "hello" || got.QoS != 2 || !slices.Equal(got.Props, msg.Props) ||
		!got.Expiry.Equal(exp) || got.From != "pub" {
		t.Fatalf("body: %+v", got)
	}
	if c.stats.Sessions != 2 || c.stats.Entries != 3 || c.stats.Bodies != 1 || c.stats.Inflight != 2 ||
		c.stats.Incoming != 2 || c.stats.Retained != 1 || c.stats.MaxSeq != 12 || c.stats.Subscriptions != 2 {
		t.Fatalf("stats: %+v", c.stats)
	}
}

// TestBodyLifetime: a body shared by several sessions goes with its last
// reference — a Dequeue or a session deletion — in the same batch, also
// after a restart rebuilt the counts.
func TestBodyLifetime(t *testing.T) {
	fs := vfs.NewMem()
	d := openFS(t, fs, Options{})
	b := d.NewBatch()
	id := b.PutBody(&Message{Topic: "t", Payload: []byte("x")})
	other := b.PutBody(&Message{Topic: "t", Payload: []byte("y")})
	unused := b.PutBody(&Message{Topic: "t", Payload: []byte("z")})
	for i, c := range []string{"a", "ab", "b"} {
		b.PutSession(&Session{ClientID: c, Version: 5, ExpiryInterval: 60})
		b.Enqueue(&Entry{ClientID: c, Seq: uint64(i + 1), Body: id, QoS: 1})
	}
	b.Enqueue(&Entry{ClientID: "a", Seq: 100, Body: other, QoS: 1, PacketID: 1, State: Sent})
	commit(t, d, b, Sync)
	if _, err := d.Body(unused); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("a body nothing refers to was kept: %v", err)
	}

	b = d.NewBatch()
	b.Dequeue("ab", 2, id)
	commit(t, d, b, Lazy)
	if _, err := d.Body(id); err != nil {
		t.Fatalf("body gone with references left: %v", err)
	}
	// Deleting "a" releases its entries (not those of "ab": the client
	// key's length prefix keeps the ranges apart).
	b = d.NewBatch()
	b.DeleteSession("a")
	commit(t, d, b, Sync)
	if _, err := d.Body(other); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("body of a deleted session kept: %v", err)
	}
	if _, err := d.Body(id); err != nil {
		t.Fatalf("shared body gone while b refers to it: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = openFS(t, fs, Options{})
	defer d.Close()
	c := recoverAll(t, d)
	if len(c.sessions) != 2 || c.sessions["a"] != nil || len(c.entries["ab"]) != 0 || len(c.entries["b"]) != 1 {
		t.Fatalf("after restart: sessions %v entries %v", c.sessions, c.entries)
	}
	if c.stats.Bodies != 1 || c.stats.OrphanBodies != 0 {
		t.Fatalf("stats: %+v", c.stats)
	}
	b = d.NewBatch()
	b.Dequeue("b", 3, id)
	commit(t, d, b, Sync)
	if _, err := d.Body(id); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("body kept after its last reference (counts rebuilt at recovery): %v", err)
	}
}

// TestDeleteSessionInBatch: entries added and acknowledged in the batch
// that deletes their session are counted once.
func TestDeleteSessionInBatch(t *testing.T) {
	d := openFS(t, vfs.NewMem(), Options{})
	defer d.Close()
	b := d.NewBatch()
	keep := b.PutBody(&Message{Topic: "k"})
	b.PutSession(&Session{ClientID: "x", ExpiryInterval: 10})
	b.PutSession(&Session{ClientID: "y", ExpiryInterval: 10})
	b.Enqueue(&Entry{ClientID: "x", Seq: 1, Body: keep})
	b.Enqueue(&Entry{ClientID: "y", Seq: 2, Body: keep})
	commit(t, d, b, Sync)

	b = d.NewBatch()
	fresh := b.PutBody(&Message{Topic: "f"})
	b.Enqueue(&Entry{ClientID: "x", Seq: 3, Body: fresh})
	b.Dequeue("x", 1, keep)
	b.DeleteSession("x")
	commit(t, d, b, Sync)
	if _, err := d.Body(fresh); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("body of an entry deleted with its session kept: %v", err)
	}
	if _, err := d.Body(keep); err != nil {
		t.Fatalf("body still queued for y deleted (double release): %v", err)
	}
}

func TestCallbacksInOrder(t *testing.T) {
	d := openFS(t, vfs.NewMem(), Options{})
	defer d.Close()
	const n = 500
	got := make(chan int, n)
	for i := range n {
		b := d.NewBatch()
		b.SetRetained(&Message{Topic: fmt.Sprint("t/", i), Payload: []byte("p")})
		dur := Sync
		if i%3 == 0 {
			dur = Lazy
		}
		d.Commit(b, dur, func(err error) {
			if err != nil {
				i = -1
			}
			got <- i
		})
	}
	for want := range n {
		select {
		case i := <-got:
			if i != want {
				t.Fatalf("callback %d came as number %d", i, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("callback %d never came", want)
		}
	}
}

func TestMemoryOnly(t *testing.T) {
	var d *DB
	b := d.NewBatch()
	if b != nil || !b.Empty() {
		t.Fatal("memory-only store made a batch")
	}
	id := b.PutBody(&Message{Topic: "t"})
	b.Enqueue(&Entry{ClientID: "c", Body: id})
	b.Dequeue("c", 1, id)
	b.SetRetained(&Message{Topic: "t"})
	b.PutSession(&Session{ClientID: "c"})
	b.DeleteSession("c")
	called := false
	d.Commit(b, Sync, func(err error) { called = err == nil })
	if !called {
		t.Fatal("memory-only Commit did not call back at once")
	}
	called = false
	d.Flush(func(err error) { called = err == nil })
	if !called {
		t.Fatal("memory-only Flush did not call back at once")
	}
	st, err := d.Recover(Recovery{Session: func(*Session, []uint16) error { return errors.New("called") }})
	if err != nil || st.Sessions != 0 {
		t.Fatalf("memory-only Recover: %v %+v", err, st)
	}
	if _, ok, err := d.Meta("x"); ok || err != nil || d.Close() != nil || d.Err() != nil {
		t.Fatal("memory-only store reported something")
	}
}

// TestMemoryOnlyFree: the write path of the memory-only store allocates
// nothing.
func TestMemoryOnlyFree(t *testing.T) {
	var d *DB
	m := &Message{Topic: "t", Payload: []byte("p")}
	e := &Entry{ClientID: "c", Seq: 1}
	done := func(error) {}
	if n := testing.AllocsPerRun(100, func() {
		b := d.NewBatch()
		e.Body = b.PutBody(m)
		b.Enqueue(e)
		b.SetRetained(m)
		b.AddIncoming("c", 1)
		d.Commit(b, Sync, done)
	}); n != 0 {
		t.Fatalf("%v allocations per publish", n)
	}
}

func TestCommitAfterClose(t *testing.T) {
	d := openFS(t, vfs.NewMem(), Options{})
	b := d.NewBatch()
	b.SetRetained(&Message{Topic: "t"})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := commitErr(d, b, Sync); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after Close: %v", err)
	}
}

func TestMeta(t *testing.T) {
	fs := vfs.NewMem()
	d := openFS(t, fs, Options{})
	b := d.NewBatch()
	b.SetMeta("import", []byte("done"))
	commit(t, d, b, Sync)
	d.Close()
	d = openFS(t, fs, Options{})
	defer d.Close()
	v, ok, err := d.Meta("import")
	if err != nil || !ok || string(v) != "done" {
		t.Fatalf("meta: %q %v %v", v, ok, err)
	}
	if _, ok, _ := d.Meta("other"); ok {
		t.Fatal("unknown meta found")
	}
}

// TestBodyIDsNotReused: ids continue past the highest stored body after a
// restart (SingleDelete needs write-once keys).
func TestBodyIDsNotReused(t *testing.T) {
	fs := vfs.NewMem()
	d := openFS(t, fs, Options{})
	b := d.NewBatch()
	id := b.PutBody(&Message{Topic: "t"})
	b.PutSession(&Session{ClientID: "c", ExpiryInterval: 1})
	b.Enqueue(&Entry{ClientID: "c", Seq: 1, Body: id})
	commit(t, d, b, Sync)
	d.Close()
	d = openFS(t, fs, Options{})
	defer d.Close()
	recoverAll(t, d)
	b = d.NewBatch()
	if id2 := b.PutBody(&Message{Topic: "t"}); id2 <= id {
		t.Fatalf("body id %d reused (had %d)", id2, id)
	}
	b.pb.Close()
}

func TestDecodeCorrupt(t *testing.T) {
	good := encodeMessage(nil, &Message{Topic: "t", Payload: []byte("p"), From: "f"})
	for i := range len(good) {
		if _, err := decodeMessage(good[:i]); err == nil {
			t.Fatalf("truncated message (%d of %d bytes) decoded", i, len(good))
		}
	}
	if _, err := decodeMessage(append(good, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	huge := []byte{valueVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := decodeMessage(huge); err == nil {
		t.Fatal("a length past the value accepted")
	}
	if _, _, err := decodeFlight([]byte{valueVersion, 0, 1, 9}); err == nil {
		t.Fatal("unknown in-flight state accepted")
	}
	if _, err := decodeSession("c", []byte{2, 5, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Fatal("unknown value format accepted")
	}
}

// TestEmptyFlushIsNoFailure: a WAL holding no keys (only the sync records
// of Flush) flushes to no table when reopened, which Pebble reports as a
// flush "error" that is not one.
func TestEmptyFlushIsNoFailure(t *testing.T) {
	fs := vfs.NewMem()
	d := openFS(t, fs, Options{})
	for range 3 {
		ch := make(chan error, 1)
		d.Flush(func(err error) { ch <- err })
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openFS(t, fs, Options{})
	b := d.NewBatch()
	b.SetRetained(&Message{Topic: "t"})
	if err := commitErr(d, b, Sync); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
