package auth

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"sync"
)

// DefaultVerifierEntries is the cache size NewVerifier uses for 0: enough
// for a large fleet of distinct credentials at ~100 bytes an entry.
const DefaultVerifierEntries = 100_000

// Verifier checks passwords against a PasswordFile and remembers successful
// checks, so a reconnect storm of valid clients (a broker restart, a network
// blip) does not redo PBKDF2 or Argon2 for every CONNECT.
//
// The cache key is HMAC-SHA256 under a random per-process secret of
// username, password and the user's hash field. The secret means a memory
// dump of the cache gives nothing to guess passwords against offline; the
// hash field in the key means a password change or a reload that alters the
// user's line misses the cache without any invalidation step. Only successes
// are cached, so failed guesses always pay the full cost (and Throttle slows
// them down). The cache is an LRU bounded to a fixed number of entries.
//
// A Verifier outlives password-file reloads: keep one per broker.
type Verifier struct {
	secret [32]byte
	max    int
	// slots bounds concurrent hash computations so a storm of CONNECTs
	// with new credentials leaves CPU for delivering messages.
	slots chan struct{}

	mu       sync.Mutex
	lru      *list.List // of [32]byte, most recent at front
	entries  map[[32]byte]*list.Element
	inflight map[[32]byte]*call
}

// call is one in-progress verification that identical concurrent checks
// wait for instead of repeating it.
type call struct {
	done chan struct{}
	ok   bool
}

// NewVerifier returns a Verifier caching up to maxEntries successful checks
// (0 means DefaultVerifierEntries).
func NewVerifier(maxEntries int) *Verifier {
	if maxEntries <= 0 {
		maxEntries = DefaultVerifierEntries
	}
	v := &Verifier{
		max:      maxEntries,
		slots:    make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
		lru:      list.New(),
		entries:  make(map[[32]byte]*list.Element),
		inflight: make(map[[32]byte]*call),
	}
	if _, err := rand.Read(v.secret[:]); err != nil {
		panic("auth: no randomness for the verifier secret: " + err.Error())
	}
	return v
}

// Check reports whether password is username's password in pf, from the
// cache when this exact credential and hash line were verified before.
func (v *Verifier) Check(pf *PasswordFile, username, password string) bool {
	e, ok := pf.users[username]
	if !ok {
		v.compute(func() bool { return pf.Check(username, password) })
		return false
	}
	key := v.key(username, password, e.encoded)

	v.mu.Lock()
	if el, hit := v.entries[key]; hit {
		v.lru.MoveToFront(el)
		v.mu.Unlock()
		return true
	}
	if c, busy := v.inflight[key]; busy {
		v.mu.Unlock()
		<-c.done
		return c.ok
	}
	c := &call{done: make(chan struct{})}
	v.inflight[key] = c
	v.mu.Unlock()

	c.ok = v.compute(func() bool { return e.h.verify(password) })

	v.mu.Lock()
	delete(v.inflight, key)
	if c.ok {
		v.entries[key] = v.lru.PushFront(key)
		for v.lru.Len() > v.max {
			old := v.lru.Remove(v.lru.Back()).([32]byte)
			delete(v.entries, old)
		}
	}
	v.mu.Unlock()
	close(c.done)
	return c.ok
}

// Len returns the number of cached credentials.
func (v *Verifier) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.lru.Len()
}

func (v *Verifier) compute(f func() bool) bool {
	v.slots <- struct{}{}
	defer func() { <-v.slots }()
	return f()
}

// key length-prefixes each part so that no two different triples (MQTT 5
// passwords are binary and may contain any byte) give the same HMAC input.
func (v *Verifier) key(username, password, encoded string) [32]byte {
	m := hmac.New(sha256.New, v.secret[:])
	var n [4]byte
	for _, s := range [...]string{username, password, encoded} {
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	var k [32]byte
	m.Sum(k[:0])
	return k
}
