package tlsconf

import (
	"container/list"
	"context"
	"net"
	"net/netip"
	"sync"
)

// pending tracks the handshakes in progress on one listener, by client
// address, oldest first, so that the listener can bound them without ever
// refusing a new client (see maxPendingPerAddr).
type pending struct {
	maxTotal, maxPerAddr int

	mu     sync.Mutex
	all    *list.List // of *pendingConn, oldest first
	byAddr map[netip.Prefix]*addrPending
}

// addrPending is one address's handshakes in progress.
type addrPending struct {
	conns  *list.List // of *pendingConn, oldest first
	warned bool       // the flood from this address was logged
}

// pendingConn is one handshake in progress.
type pendingConn struct {
	key     netip.Prefix
	cancel  context.CancelFunc
	all     *list.Element
	mine    *list.Element
	evicted bool
}

// addrString is how logs name a key: the address alone for IPv4, the
// prefix for IPv6.
func addrString(k netip.Prefix) string {
	if k.Addr().Is4() {
		return k.Addr().String()
	}
	return k.String()
}

// eviction says that a pending handshake was closed to make room.
type eviction struct {
	key   netip.Prefix
	limit int
	first bool // the first eviction for this address since it had none pending
}

func newPending(maxTotal, maxPerAddr int) *pending {
	return &pending{maxTotal: maxTotal, maxPerAddr: maxPerAddr, all: list.New(), byAddr: map[netip.Prefix]*addrPending{}}
}

// addrKey groups client addresses: an IPv4 address alone, an IPv6 address
// by its /64 (a single host routinely owns a whole /64, so counting its
// addresses one by one would not limit it). A remote address that is not
// IP (a unix socket) shares one key.
func addrKey(a net.Addr) netip.Prefix {
	var ip netip.Addr
	switch v := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(v.IP)
	default:
		if a != nil {
			if ap, err := netip.ParseAddrPort(a.String()); err == nil {
				ip = ap.Addr()
			}
		}
	}
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		return netip.PrefixFrom(ip, 32)
	case ip.Is6():
		p, _ := ip.Prefix(64)
		return p
	}
	return netip.Prefix{}
}

// add registers a new handshake from addr whose context cancel aborts, and
// evicts (cancels) the oldest pending ones of the same address, or of the
// listener, that go over the limits.
func (p *pending) add(addr net.Addr, cancel context.CancelFunc) (*pendingConn, []eviction) {
	key := addrKey(addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []eviction
	ap := p.byAddr[key]
	if ap == nil {
		ap = &addrPending{conns: list.New()}
		p.byAddr[key] = ap
	}
	for ap.conns.Len() >= p.maxPerAddr {
		out = append(out, eviction{key: key, limit: p.maxPerAddr, first: !ap.warned})
		ap.warned = true
		p.evictLocked(ap.conns.Front().Value.(*pendingConn))
	}
	for p.all.Len() >= p.maxTotal {
		old := p.all.Front().Value.(*pendingConn)
		oap := p.byAddr[old.key]
		out = append(out, eviction{key: old.key, limit: p.maxPerAddr, first: !oap.warned})
		oap.warned = true
		p.evictLocked(old)
	}
	pc := &pendingConn{key: key, cancel: cancel}
	pc.all = p.all.PushBack(pc)
	pc.mine = ap.conns.PushBack(pc)
	return pc, out
}

// evictLocked aborts pc's handshake and forgets it.
func (p *pending) evictLocked(pc *pendingConn) {
	pc.evicted = true
	pc.cancel()
	p.removeLocked(pc)
}

func (p *pending) removeLocked(pc *pendingConn) {
	if pc.all == nil {
		return
	}
	p.all.Remove(pc.all)
	pc.all = nil
	if ap := p.byAddr[pc.key]; ap != nil {
		ap.conns.Remove(pc.mine)
		if ap.conns.Len() == 0 {
			delete(p.byAddr, pc.key)
		}
	}
}

// done ends pc's handshake and reports whether it had been evicted.
func (p *pending) done(pc *pendingConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(pc)
	return pc.evicted
}

// count returns the handshakes in progress in total and from addr's key.
func (p *pending) count(addr net.Addr) (total, fromAddr int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ap := p.byAddr[addrKey(addr)]; ap != nil {
		fromAddr = ap.conns.Len()
	}
	return p.all.Len(), fromAddr
}
