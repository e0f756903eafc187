package auth

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// Throttle slows down repeated failed logins from one address. After Free
// failures, every further attempt from that address should wait Delay,
// which doubles with each failure from Base up to Max. Failures are
// forgotten one per Decay interval, so an address that stops guessing is
// back to normal after a while, and the table is bounded to MaxEntries
// addresses (least recently seen evicted first).
//
// IPv6 addresses are grouped by /64: one host usually owns a whole /64 and
// could otherwise rotate addresses to escape the throttle.
//
// Set the fields before first use; NewThrottle fills in defaults.
type Throttle struct {
	Free       int           // failures allowed before any delay
	Base       time.Duration // delay after the first failure beyond Free
	Max        time.Duration // delay cap
	Decay      time.Duration // one failure is forgotten per Decay
	MaxEntries int           // addresses remembered
	// Now is the clock; tests replace it.
	Now func() time.Time

	mu      sync.Mutex
	lru     *list.List // of *throttleEntry, most recent at front
	entries map[netip.Addr]*list.Element
}

type throttleEntry struct {
	addr     netip.Addr
	failures float64
	last     time.Time
}

// NewThrottle returns a Throttle with defaults: 3 free failures, then
// 250 ms doubling up to 5 s, one failure forgotten per 30 s, 65,536
// addresses.
func NewThrottle() *Throttle {
	return &Throttle{
		Free:       3,
		Base:       250 * time.Millisecond,
		Max:        5 * time.Second,
		Decay:      30 * time.Second,
		MaxEntries: 1 << 16,
		Now:        time.Now,
	}
}

// key maps an address to the unit that is throttled.
func throttleKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return a.WithZone("")
}

// lookup returns addr's entry with decay applied, or nil. Caller holds mu.
func (t *Throttle) lookup(addr netip.Addr, now time.Time) *throttleEntry {
	el, ok := t.entries[addr]
	if !ok {
		return nil
	}
	e := el.Value.(*throttleEntry)
	if t.Decay > 0 {
		if el := now.Sub(e.last); el > 0 {
			e.failures -= float64(el) / float64(t.Decay)
			if e.failures < 0 {
				e.failures = 0
			}
		}
	}
	e.last = now
	return e
}

// Delay returns how long the broker should wait before answering a login
// attempt from addr (before checking the password, so a guess costs the
// attacker the delay whatever its outcome). Zero for an address in good
// standing.
func (t *Throttle) Delay(addr netip.Addr) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.lookup(throttleKey(addr), t.Now())
	if e == nil {
		return 0
	}
	over := int(e.failures) - t.Free
	if over < 0 {
		return 0
	}
	d := t.Base
	for i := 0; i < over && d < t.Max; i++ {
		d *= 2
	}
	return min(d, t.Max)
}

// Failure records a failed login from addr.
func (t *Throttle) Failure(addr netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.entries == nil {
		t.entries = make(map[netip.Addr]*list.Element)
		t.lru = list.New()
	}
	key, now := throttleKey(addr), t.Now()
	e := t.lookup(key, now)
	if e == nil {
		e = &throttleEntry{addr: key, last: now}
		t.entries[key] = t.lru.PushFront(e)
		for t.lru.Len() > max(1, t.MaxEntries) {
			old := t.lru.Remove(t.lru.Back()).(*throttleEntry)
			delete(t.entries, old.addr)
		}
	} else {
		t.lru.MoveToFront(t.entries[key])
	}
	e.failures++
}

// Success records a successful login from addr. It forgives one failure
// rather than all of them: otherwise anyone holding one valid account could
// wipe the record between guesses at other accounts, while devices behind
// one NAT address that mostly log in fine still drain a neighbour's
// penalty.
func (t *Throttle) Success(addr netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := throttleKey(addr)
	e := t.lookup(key, t.Now())
	if e == nil {
		return
	}
	e.failures--
	if e.failures <= 0 {
		t.lru.Remove(t.entries[key])
		delete(t.entries, key)
	}
}

// Len returns the number of addresses remembered.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}
