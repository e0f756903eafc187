package broker

import (
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/store"
)

// memStore is a Store kept in memory across broker instances, standing in
// for the embedded store to show the broker saves and restores through the
// interface alone.
type memStore struct {
	mu       sync.Mutex
	retained map[string]*store.Message
	sessions map[string]*store.Session
	queues   map[string]map[uint64]*store.Message
}

func newMemStore() *memStore {
	return &memStore{retained: map[string]*store.Message{}, sessions: map[string]*store.Session{},
		queues: map[string]map[uint64]*store.Message{}}
}

func (m *memStore) SetRetained(r *store.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retained[r.Topic] = r
	return nil
}
func (m *memStore) DeleteRetained(t string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.retained, t)
	return nil
}
func (m *memStore) LoadRetained(fn func(*store.Message)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.retained {
		fn(r)
	}
	return nil
}
func (m *memStore) SaveSession(s *store.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[s.ClientID] = s
	return nil
}
func (m *memStore) DeleteSession(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, id)
	delete(m.queues, id)
	return nil
}
func (m *memStore) LoadSessions(fn func(*store.Session)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.sessions {
		fn(s)
	}
	return nil
}
func (m *memStore) Enqueue(id string, seq uint64, msg *store.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.queues[id] == nil {
		m.queues[id] = map[uint64]*store.Message{}
	}
	m.queues[id][seq] = msg
	return nil
}
func (m *memStore) Dequeue(id string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.queues[id], seq)
	return nil
}
func (m *memStore) LoadQueue(id string, fn func(uint64, *store.Message)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var seqs []uint64
	for s := range m.queues[id] {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for _, s := range seqs {
		fn(s, m.queues[id][s])
	}
	return nil
}
func (m *memStore) Close() error { return nil }

func (m *memStore) queued(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queues[id])
}

// startOn runs a broker with st on a fresh port; stop it with the returned func.
func startOn(t *testing.T, st store.Store) (string, func()) {
	t.Helper()
	b, ln := newBroker(t, func(o *Options) { o.Store = st })
	go b.Serve(ln, nil)
	return ln.Addr().String(), func() { b.Close() }
}

func TestStateSurvivesRestartThroughStore(t *testing.T) {
	st := newMemStore()
	addr, stop := startOn(t, st)
	c := dialRaw(t, addr, packet.V5)
	cp := &packet.Connect{ClientID: []byte("keep"), CleanStart: true}
	cp.Props.Set(packet.PropSessionExpiry)
	cp.Props.SessionExpiry = 3600
	c.connect(cp)
	c.subscribe(1, "p/#", 1)
	c.send(&packet.Disconnect{})
	c.expectClosed()
	pub := connectOK(t, addr, packet.V5, "pub")
	pub.send(&packet.Publish{QoS: 1, PacketID: 1, Topic: []byte("p/1"), Payload: []byte("first")})
	pub.recv()
	pub.send(&packet.Publish{QoS: 1, PacketID: 2, Topic: []byte("p/2"), Payload: []byte("second"), Retain: true})
	pub.recv()
	if n := st.queued("keep"); n != 2 {
		t.Fatalf("store holds %d queued messages, want 2", n)
	}
	stop()

	addr2, stop2 := startOn(t, st)
	defer stop2()
	c2 := dialRaw(t, addr2, packet.V5)
	cp.CleanStart = false
	if ack := c2.connect(cp); !ack.SessionPresent {
		t.Fatal("session not restored from the store")
	}
	for _, want := range []string{"first", "second"} {
		m := c2.recvPublish()
		if string(m.Payload) != want {
			t.Fatalf("got %q want %q", m.Payload, want)
		}
		c2.send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
	}
	// The subscription was restored too: a new message reaches it.
	p2 := connectOK(t, addr2, packet.V5, "pub2")
	p2.send(&packet.Publish{Topic: []byte("p/3"), Payload: []byte("live")})
	if m := c2.recvPublish(); string(m.Payload) != "live" {
		t.Fatalf("got %q", m.Payload)
	}
	// Acknowledged messages leave the store; the retained one was restored.
	c2.send(packet.Pingreq{})
	c2.recv()
	if n := st.queued("keep"); n != 0 {
		t.Fatalf("store still holds %d messages after PUBACK", n)
	}
	late := connectOK(t, addr2, packet.V5, "late")
	late.subscribe(1, "p/2", 0)
	if m := late.recvPublish(); !m.Retain || string(m.Payload) != "second" {
		t.Fatalf("retained not restored: %+v", m)
	}
}

func TestUpdateOptionsAppliesNewQueueLimit(t *testing.T) {
	b, addr := startBroker(t, nil)
	c, _ := v5Session(t, addr, "q", 300, nil)
	c.subscribe(1, "lim", 1)
	c.send(&packet.Disconnect{})
	c.expectClosed()
	b.UpdateOptions(func(o *Options) { o.MaxQueuedMessages = 2 })
	pub := connectOK(t, addr, packet.V5, "pub")
	for i := range 5 {
		pub.send(&packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("lim"), Payload: []byte{byte('0' + i)}})
		pub.recv()
	}
	c2, _ := v5Session(t, addr, "q", 300, nil)
	for _, want := range []byte{'0', '1'} {
		m := c2.recvPublish()
		if m.Payload[0] != want {
			t.Fatalf("got %q", m.Payload)
		}
		c2.send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
	}
	c2.expectNothing(200 * time.Millisecond)
	if d := b.Stats().MessagesDropped.Load(); d != 3 {
		t.Fatalf("dropped %d, want 3", d)
	}
}

func TestFullQueueHoldsPublisherBackInsteadOfDropping(t *testing.T) {
	// An online subscriber that is slower than its publisher: rather than
	// dropping messages the broker has acknowledged, the publisher is held
	// back until the subscriber's queue has room.
	b, addr := startBroker(t, func(o *Options) { o.MaxQueuedMessages = 5; o.MaxInflightMessages = 2 })
	sub := connectOK(t, addr, packet.V311, "slow")
	sub.subscribe(1, "bp", 1)
	pub := connectOK(t, addr, packet.V311, "fast")
	const n = 60
	done := make(chan error, 1)
	go func() {
		for i := range n {
			pub.nc.Write((&packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: []byte("bp"), Payload: []byte{byte(i)}}).Append(nil, packet.V311))
		}
		done <- nil
	}()
	for i := range n {
		m := sub.recvPublish()
		if int(m.Payload[0]) != i {
			t.Fatalf("message %d arrived as %d", i, m.Payload[0])
		}
		time.Sleep(2 * time.Millisecond) // a slow consumer
		sub.send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
	}
	<-done
	if d := b.Stats().MessagesDropped.Load(); d != 0 {
		t.Fatalf("%d acknowledged messages were dropped", d)
	}
}
