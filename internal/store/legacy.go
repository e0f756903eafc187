package store

// This file holds the synchronous per-call interface the broker uses today.
// It stays until the broker is wired to DB (the batch write path); new code
// uses DB and Batch.

// Store is the broker's current, synchronous persistence interface; DB
// replaces it. It is implemented by a persistence backend. Every method must be safe
// for concurrent use; the broker calls them on state changes and reads
// everything back once at start with the Load methods.
type Store interface {
	SetRetained(m *Message) error
	DeleteRetained(topic string) error
	LoadRetained(fn func(*Message)) error

	SaveSession(s *Session) error
	DeleteSession(clientID string) error
	LoadSessions(fn func(*Session)) error

	// Enqueue and Dequeue record messages queued or in flight for a
	// persistent session, keyed by a broker-assigned sequence number.
	Enqueue(clientID string, seq uint64, m *Message) error
	Dequeue(clientID string, seq uint64) error
	LoadQueue(clientID string, fn func(seq uint64, m *Message)) error

	Close() error
}

// Nop is a Store that keeps nothing: the broker's state lives in memory for
// the life of the process.
type Nop struct{}

var _ Store = Nop{}

// SetRetained implements Store.
func (Nop) SetRetained(*Message) error { return nil }

// DeleteRetained implements Store.
func (Nop) DeleteRetained(string) error { return nil }

// LoadRetained implements Store.
func (Nop) LoadRetained(func(*Message)) error { return nil }

// SaveSession implements Store.
func (Nop) SaveSession(*Session) error { return nil }

// DeleteSession implements Store.
func (Nop) DeleteSession(string) error { return nil }

// LoadSessions implements Store.
func (Nop) LoadSessions(func(*Session)) error { return nil }

// Enqueue implements Store.
func (Nop) Enqueue(string, uint64, *Message) error { return nil }

// Dequeue implements Store.
func (Nop) Dequeue(string, uint64) error { return nil }

// LoadQueue implements Store.
func (Nop) LoadQueue(string, func(uint64, *Message)) error { return nil }

// Close implements Store.
func (Nop) Close() error { return nil }
