package topic

import (
	"strings"
	"sync"
)

// Retained is the retained-message index: one value per topic name, stored
// in a tree by level so that a new subscription finds the retained messages
// its filter matches ([MQTT-3.3.1-9], 3.1.1: [MQTT-3.3.1-6]) without
// scanning every topic.
//
// A Retained is safe for concurrent use. The callbacks of Match and Range run
// under its read lock: they must not call methods of the same Retained.
type Retained[V any] struct {
	mu    sync.RWMutex
	root  rnode[V]
	count int // topics with a value
	nodes int // nodes below the root; tests check pruning with it
}

// rnode is one level of a topic name. The path from the root spells a name;
// a node that has a value also keeps the whole name for callbacks. Like the
// subscription tree's node it has no parent pointer or level of its own:
// Delete prunes on the way back up a recursive walk.
type rnode[V any] struct {
	kids kids[rnode[V]]
	name string // the topic name, when set
	v    V
	set  bool
}

// NewRetained returns an empty retained-message index.
func NewRetained[V any]() *Retained[V] { return &Retained[V]{} }

// Set stores v as the retained value of the topic name, replacing any
// previous one. name must be a valid topic name (ValidName). Clearing a
// retained message with an empty payload [MQTT-3.3.1-6] (3.1.1:
// [MQTT-3.3.1-10]) is Delete.
func (r *Retained[V]) Set(name string, v V) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, owned := &r.root, false
	for pos := 0; pos <= len(name); {
		level, next := nextLevel(name, pos)
		c := n.kids.get(level)
		if c == nil {
			if !owned {
				// One copy of the name serves every new node's level and
				// the stored name.
				name, owned = strings.Clone(name), true
				level, _ = nextLevel(name, pos)
			}
			c = &rnode[V]{}
			n.kids.add(level, c)
			r.nodes++
		}
		n, pos = c, next
	}
	if !n.set {
		if !owned {
			name = strings.Clone(name)
		}
		n.name, n.set = name, true
		r.count++
	}
	n.v = v
}

// find returns the node for name, or nil.
func (r *Retained[V]) find(name string) *rnode[V] {
	n := &r.root
	for pos := 0; pos <= len(name) && n != nil; {
		var level string
		level, pos = nextLevel(name, pos)
		n = n.kids.get(level)
	}
	return n
}

// Get returns the retained value of the topic name.
func (r *Retained[V]) Get(name string) (v V, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := r.find(name); n != nil && n.set {
		return n.v, true
	}
	return v, false
}

// Delete removes the retained value of the topic name, if any, and reports
// whether there was one. Nodes left empty are removed.
func (r *Retained[V]) Delete(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.remove(&r.root, name, 0) {
		return false
	}
	r.count--
	return true
}

// remove clears the value of the node for the levels of name from pos on,
// below n, and prunes the nodes it leaves empty on its way back up.
func (r *Retained[V]) remove(n *rnode[V], name string, pos int) bool {
	if pos > len(name) {
		if !n.set {
			return false
		}
		var zero V
		n.v, n.name, n.set = zero, "", false
		return true
	}
	level, next := nextLevel(name, pos)
	c := n.kids.get(level)
	if c == nil || !r.remove(c, name, next) {
		return false
	}
	if !c.set && c.kids.len() == 0 {
		n.kids.remove(level)
		r.nodes--
	}
	return true
}

// Len returns the number of retained topics.
func (r *Retained[V]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.count
}

// Match calls fn with each retained topic name the filter matches, and its
// value, until fn returns false. filter must be valid (ValidFilter, without
// a "$share/" prefix). Wildcards follow Match: '#' includes the parent level
// ("sport/#" finds "sport") [MQTT-4.7.1-1], and names starting with '$' are
// not found by a filter whose first level is '+' or '#' [MQTT-4.7.2-1]. The
// order of the calls is unspecified.
func (r *Retained[V]) Match(filter string, fn func(name string, v V) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rmatch(&r.root, true, filter, 0, fn)
}

// rmatch reports the values at and below n (the root if root is set) that
// match the levels of filter from pos on, and returns false once fn has
// asked to stop.
func rmatch[V any](n *rnode[V], root bool, filter string, pos int, fn func(string, V) bool) bool {
	for {
		if pos > len(filter) {
			return !n.set || fn(n.name, n.v)
		}
		level, next := nextLevel(filter, pos)
		switch level {
		case "#":
			// The root has no value of its own; any other node is the parent
			// level "#" also matches.
			if n.set && !fn(n.name, n.v) {
				return false
			}
			return n.eachKid(root, func(c *rnode[V]) bool { return rwalk(c, fn) })
		case "+":
			return n.eachKid(root, func(c *rnode[V]) bool { return rmatch(c, false, filter, next, fn) })
		}
		if n = n.kids.get(level); n == nil {
			return true
		}
		pos, root = next, false
	}
}

// eachKid calls fn for each child of n until fn returns false, and reports
// whether it ran to the end. At the root it skips levels starting with '$',
// which is where wildcards stop [MQTT-4.7.2-1]; eachKid is only used for
// wildcard levels.
func (n *rnode[V]) eachKid(root bool, fn func(c *rnode[V]) bool) bool {
	if n.kids.big != nil {
		for level, c := range n.kids.big {
			if root && strings.HasPrefix(level, "$") {
				continue
			}
			if !fn(c) {
				return false
			}
		}
		return true
	}
	for _, k := range n.kids.small {
		if root && strings.HasPrefix(k.level, "$") {
			continue
		}
		if !fn(k.n) {
			return false
		}
	}
	return true
}

// rwalk reports every value at and below n, until fn returns false.
func rwalk[V any](n *rnode[V], fn func(string, V) bool) bool {
	if n.set && !fn(n.name, n.v) {
		return false
	}
	if n.kids.big != nil {
		for _, c := range n.kids.big {
			if !rwalk(c, fn) {
				return false
			}
		}
		return true
	}
	for _, k := range n.kids.small {
		if !rwalk(k.n, fn) {
			return false
		}
	}
	return true
}

// Range calls fn with every retained topic and value, '$' topics included,
// until fn returns false; for persistence snapshots. It holds the read lock
// throughout, so Set and Delete wait until it returns.
func (r *Retained[V]) Range(fn func(name string, v V) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rwalk(&r.root, fn)
}
