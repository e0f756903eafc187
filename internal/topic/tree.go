package topic

import (
	"strings"
	"sync"
	"sync/atomic"
)

// Tree is the subscription index: topic filters arranged by level, each
// filter holding its subscribers keyed by client id, and its shared
// subscription groups. V is what the broker keeps per subscription
// (QoS, options, subscription identifier, ...).
//
// A Tree is safe for concurrent use. Matching takes a read lock, so
// publishers match in parallel; Subscribe and Unsubscribe take the write
// lock. The callbacks of the Match methods run under the read lock: they
// must be quick and must not call methods of the same Tree (a pending
// writer would deadlock them).
//
// The Tree keeps the clientID strings it is given and its own copy of each
// filter.
type Tree[V any] struct {
	mu    sync.RWMutex
	root  node[V]
	count int // subscriptions, shared members included
	nodes int // nodes below the root; tests check pruning with it
	gen   atomic.Uint64
}

// node is one level of a filter. The path from the root to a node spells a
// filter; subs and shared are the subscriptions to exactly that filter.
//
// A node is kept small (88 bytes, the 96-byte size class) because there are
// about as many nodes as subscriptions: it has no parent pointer and no copy
// of its own level (the parent's kids hold the level; Unsubscribe prunes on
// the way back up a recursive walk), and the rarely used shared groups sit
// behind a pointer.
type node[V any] struct {
	kids   kids[node[V]]
	plus   *node[V] // child for a '+' level
	hash   *node[V] // child for a '#' level; it never has children
	subs   entries[V]
	shared *groups[V] // nil when no shared subscription uses this filter
}

// groups are the shared subscription groups of one filter.
type groups[V any] struct {
	list []*SharedGroup[V]
}

// empty reports whether nothing is subscribed at or below n, so n can be
// pruned.
func (n *node[V]) empty() bool {
	return len(n.subs.list) == 0 && n.shared == nil && n.plus == nil && n.hash == nil && n.kids.len() == 0
}

// group returns the shared group named name at n and its position, or nil
// and -1.
func (n *node[V]) group(name string) (*SharedGroup[V], int) {
	if n.shared != nil {
		for i, g := range n.shared.list {
			if g.name == name {
				return g, i
			}
		}
	}
	return nil, -1
}

// SharedGroup is the set of members of one shared subscription,
// "$share/{Name}/{Filter}" (MQTT 5.0 §4.8.2). Each matching message goes to
// one member; the broker picks it, for example round-robin with Next:
//
//	i := int(g.Next() % uint64(g.Len()))
//	id, v := g.At(i)
//
// Members are kept in subscription order; a member that resubscribes keeps
// its place. A *SharedGroup passed to a callback is valid only during the
// callback, except that Next may be called at any time.
type SharedGroup[V any] struct {
	name    string
	filter  string
	members entries[V]
	next    atomic.Uint64
}

// Name returns the share name (the group).
func (g *SharedGroup[V]) Name() string { return g.name }

// Filter returns the topic filter without the "$share/{Name}/" prefix.
func (g *SharedGroup[V]) Filter() string { return g.filter }

// Len returns the number of members; it is at least 1.
func (g *SharedGroup[V]) Len() int { return len(g.members.list) }

// At returns member i, 0 <= i < Len(). v points into the tree and may be
// read (not kept) during the callback.
func (g *SharedGroup[V]) At(i int) (clientID string, v *V) {
	e := &g.members.list[i]
	return e.clientID, &e.v
}

// Next returns a counter that advances by one on each call, atomically, so
// concurrent publishers share the round-robin position of the group.
func (g *SharedGroup[V]) Next() uint64 { return g.next.Add(1) - 1 }

// NewTree returns an empty subscription tree.
func NewTree[V any]() *Tree[V] { return &Tree[V]{} }

// splitShared separates "$share/{group}/{filter}". Unlike ParseShared it
// does not validate: the Tree is told valid filters, and anything that is
// not a well-formed shared filter is stored as an ordinary one.
func splitShared(filter string) (group, inner string, shared bool) {
	if !strings.HasPrefix(filter, SharePrefix) {
		return "", filter, false
	}
	rest := filter[len(SharePrefix):]
	i := strings.IndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return "", filter, false
	}
	return rest[:i], rest[i+1:], true
}

// Subscribe adds or replaces the subscription of clientID to filter with
// value v and reports whether it replaced one ([MQTT-3.8.4-3]: a
// subscription with the same filter replaces the existing one). A filter
// "$share/{group}/{f}" makes clientID a member of group on f.
//
// The filter must have passed ParseShared; Subscribe does not validate it.
func (t *Tree[V]) Subscribe(clientID, filter string, v V) (existed bool) {
	group, inner, shared := splitShared(filter)
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.insert(inner)
	if shared {
		g, _ := n.group(group)
		if g == nil {
			g = &SharedGroup[V]{name: strings.Clone(group), filter: strings.Clone(inner)}
			if n.shared == nil {
				n.shared = &groups[V]{}
			}
			n.shared.list = append(n.shared.list, g)
		}
		existed = g.members.set(clientID, v)
	} else {
		existed = n.subs.set(clientID, v)
	}
	if !existed {
		t.count++
	}
	// A replaced value changes what Match reports too.
	t.gen.Add(1)
	return existed
}

// insert returns the node for filter, creating missing nodes. New nodes'
// levels point into one copy of filter: the tree keeps one copy however many
// nodes it creates, and never a caller's string that might alias a buffer.
func (t *Tree[V]) insert(filter string) *node[V] {
	n, owned := &t.root, false
	for pos := 0; pos <= len(filter); {
		level, next := nextLevel(filter, pos)
		var c *node[V]
		switch level {
		case "+":
			c = n.plus
		case "#":
			c = n.hash
		default:
			c = n.kids.get(level)
		}
		if c == nil {
			if !owned {
				filter = strings.Clone(filter)
				owned = true
				level, _ = nextLevel(filter, pos)
			}
			c = &node[V]{}
			switch level {
			case "+":
				n.plus = c
			case "#":
				n.hash = c
			default:
				n.kids.add(level, c)
			}
			t.nodes++
		}
		n, pos = c, next
	}
	return n
}

// Unsubscribe removes the subscription of clientID to filter (which may be
// "$share/{group}/{f}") and reports whether there was one. Nodes and groups
// left empty are removed, so memory does not grow under churn.
func (t *Tree[V]) Unsubscribe(clientID, filter string) (existed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.unsubscribe(clientID, filter) {
		return false
	}
	t.gen.Add(1)
	return true
}

// UnsubscribeAll removes the subscriptions of clientID to each of filters,
// under one lock and with one generation change; filters it is not
// subscribed to are ignored. The broker calls it when a session ends, with
// the filters it recorded for the session.
func (t *Tree[V]) UnsubscribeAll(clientID string, filters []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed := false
	for _, f := range filters {
		if t.unsubscribe(clientID, f) {
			changed = true
		}
	}
	if changed {
		t.gen.Add(1)
	}
}

// unsubscribe is Unsubscribe with t.mu held and no generation change.
func (t *Tree[V]) unsubscribe(clientID, filter string) bool {
	group, inner, shared := splitShared(filter)
	if !t.remove(&t.root, inner, 0, clientID, group, shared) {
		return false
	}
	t.count--
	return true
}

// remove deletes the subscription from the subtree of n that holds the
// levels of filter from pos on, and prunes the nodes it leaves empty on its
// way back up.
func (t *Tree[V]) remove(n *node[V], filter string, pos int, clientID, group string, shared bool) bool {
	if pos > len(filter) {
		if !shared {
			return n.subs.remove(clientID, false)
		}
		g, i := n.group(group)
		if g == nil || !g.members.remove(clientID, true) {
			return false
		}
		if g.Len() == 0 {
			list := n.shared.list
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			n.shared.list = list[:len(list)-1]
			if len(n.shared.list) == 0 {
				n.shared = nil
			}
		}
		return true
	}
	level, next := nextLevel(filter, pos)
	var c *node[V]
	switch level {
	case "+":
		c = n.plus
	case "#":
		c = n.hash
	default:
		c = n.kids.get(level)
	}
	if c == nil || !t.remove(c, filter, next, clientID, group, shared) {
		return false
	}
	if c.empty() {
		switch level {
		case "+":
			n.plus = nil
		case "#":
			n.hash = nil
		default:
			n.kids.remove(level)
		}
		t.nodes--
	}
	return true
}

// Match calls fn for every non-shared subscription whose filter matches the
// topic name, once per (client, filter) pair: a client subscribed with two
// matching filters is reported twice, and the broker merges the deliveries
// (MQTT 5.0 §3.3.4). v points into the tree: read it, do not keep it. The '$'
// rule holds: a name starting with '$' does not match filters starting with
// '+' or '#' [MQTT-4.7.2-1]. Match does not allocate.
func (t *Tree[V]) Match(name string, fn func(clientID string, v *V)) {
	t.MatchAll(name, fn, nil)
}

// MatchShared calls fn for every shared subscription group whose filter
// matches the topic name. The broker picks one member of each group.
func (t *Tree[V]) MatchShared(name string, fn func(g *SharedGroup[V])) {
	t.MatchAll(name, nil, fn)
}

// MatchAll is Match and MatchShared in one walk of the tree; either callback
// may be nil.
func (t *Tree[V]) MatchAll(name string, fn func(clientID string, v *V), shared func(g *SharedGroup[V])) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(name) > 0 && name[0] == '$' {
		// Skip the root's '+' and '#' children [MQTT-4.7.2-1]: only
		// filters whose first level is literally "$..." match.
		level, next := nextLevel(name, 0)
		if c := t.root.kids.get(level); c != nil {
			matchNode(c, name, next, fn, shared)
		}
		return
	}
	matchNode(&t.root, name, 0, fn, shared)
}

// matchNode reports the subscriptions at and below n that match the levels
// of name from pos on. It follows the literal child in a loop and recurses
// only for '+', so the common literal path costs no call per level.
func matchNode[V any](n *node[V], name string, pos int, fn func(string, *V), shared func(*SharedGroup[V])) {
	for {
		// '#' matches the rest, including no levels at all: "sport/#"
		// matches "sport" [MQTT-4.7.1-1].
		if n.hash != nil {
			n.hash.report(fn, shared)
		}
		if pos > len(name) {
			n.report(fn, shared)
			return
		}
		level, next := nextLevel(name, pos)
		if n.plus != nil {
			matchNode(n.plus, name, next, fn, shared)
		}
		if n = n.kids.get(level); n == nil {
			return
		}
		pos = next
	}
}

// report calls the callbacks for the subscriptions at n.
func (n *node[V]) report(fn func(string, *V), shared func(*SharedGroup[V])) {
	if fn != nil {
		for i := range n.subs.list {
			e := &n.subs.list[i]
			fn(e.clientID, &e.v)
		}
	}
	if shared != nil && n.shared != nil {
		for _, g := range n.shared.list {
			shared(g)
		}
	}
}

// Generation returns a number that changes whenever a Subscribe or an
// Unsubscribe changes the tree, so the broker can cache match results per
// topic (as nats-server does per publisher) and drop them when stale. Read
// it before matching: a result computed after reading generation g is
// complete for g, and a change racing with the match leaves a newer
// generation that invalidates it.
func (t *Tree[V]) Generation() uint64 { return t.gen.Load() }

// Len returns the number of subscriptions, counting each shared group
// member as one.
func (t *Tree[V]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.count
}

// entry is one subscriber: a client id and the broker's value.
type entry[V any] struct {
	clientID string
	v        V
}

// indexMin is the list length from which entries keeps a map from client id
// to position. Below it a linear scan is faster and saves the map; above it,
// a popular filter ("broadcast/#" with 100k clients) still subscribes and
// unsubscribes in constant time.
const indexMin = 16

// entries is a list of subscribers keyed by client id. A slice is what
// matching iterates; the optional index only speeds up set and remove.
type entries[V any] struct {
	list  []entry[V]
	index map[string]int32
}

// find returns the position of clientID, or -1.
func (e *entries[V]) find(clientID string) int {
	if e.index != nil {
		if i, ok := e.index[clientID]; ok {
			return int(i)
		}
		return -1
	}
	for i := range e.list {
		if e.list[i].clientID == clientID {
			return i
		}
	}
	return -1
}

// set adds clientID with v, or replaces its value in place, and reports
// whether it was there.
func (e *entries[V]) set(clientID string, v V) (existed bool) {
	if i := e.find(clientID); i >= 0 {
		e.list[i].v = v
		return true
	}
	e.list = append(e.list, entry[V]{clientID, v})
	switch {
	case e.index != nil:
		e.index[clientID] = int32(len(e.list) - 1)
	case len(e.list) >= indexMin:
		e.index = make(map[string]int32, 2*len(e.list))
		for i := range e.list {
			e.index[e.list[i].clientID] = int32(i)
		}
	}
	return false
}

// remove deletes clientID and reports whether it was there. keepOrder
// shifts the following entries down (shared group members keep their
// round-robin order); otherwise the last entry takes the freed place.
func (e *entries[V]) remove(clientID string, keepOrder bool) bool {
	i := e.find(clientID)
	if i < 0 {
		return false
	}
	last := len(e.list) - 1
	if keepOrder {
		copy(e.list[i:], e.list[i+1:])
		if e.index != nil {
			for j := i; j < last; j++ {
				e.index[e.list[j].clientID] = int32(j)
			}
		}
	} else {
		e.list[i] = e.list[last]
		if e.index != nil {
			e.index[e.list[i].clientID] = int32(i)
		}
	}
	e.list[last] = entry[V]{} // release the id and value
	e.list = e.list[:last]
	if e.index != nil {
		delete(e.index, clientID)
		if len(e.list) < indexMin/2 {
			e.index = nil
		}
	}
	switch {
	case last == 0:
		e.list = nil
	case cap(e.list) >= 64 && last <= cap(e.list)/4:
		// A filter that once had many subscribers should not keep their
		// array forever.
		e.list = append([]entry[V](nil), e.list...)
	}
	return true
}
