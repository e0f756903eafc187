package topic

// maxSmallKids is the number of literal children a node keeps in a slice
// before switching to a map. A short slice scanned linearly compares levels
// stored next to each other and costs far less memory than a map, which
// matters for the common shape "device/{id}/telemetry": a million {id} nodes
// with one child each. From about four children on, the map is as fast or
// faster (BenchmarkKids).
const maxSmallKids = 4

// kid is one literal child in a small child list. The level is stored next
// to the pointer so a lookup does not touch the child nodes it skips.
type kid[T any] struct {
	level string
	n     *T
}

// kids is the set of literal children of a tree node, keyed by level: a
// small slice while there are at most maxSmallKids, a map after that.
type kids[T any] struct {
	small []kid[T]
	big   map[string]*T
}

// get returns the child for level, or nil.
func (k *kids[T]) get(level string) *T {
	if k.big != nil {
		return k.big[level]
	}
	for i := range k.small {
		if k.small[i].level == level {
			return k.small[i].n
		}
	}
	return nil
}

// add inserts a child that is known not to exist yet.
func (k *kids[T]) add(level string, n *T) {
	if k.big != nil {
		k.big[level] = n
		return
	}
	if len(k.small) < maxSmallKids {
		k.small = append(k.small, kid[T]{level, n})
		return
	}
	k.big = make(map[string]*T, 2*maxSmallKids)
	for _, c := range k.small {
		k.big[c.level] = c.n
	}
	k.big[level] = n
	k.small = nil
}

// remove deletes the child for level, if any.
func (k *kids[T]) remove(level string) {
	if k.big != nil {
		delete(k.big, level)
		// Go back to a slice only well below the threshold, so a node that
		// hovers around it does not convert on every change.
		if len(k.big) <= maxSmallKids/2 {
			small := make([]kid[T], 0, len(k.big))
			for l, n := range k.big {
				small = append(small, kid[T]{l, n})
			}
			k.big = nil
			if len(small) > 0 {
				k.small = small
			}
		}
		return
	}
	for i := range k.small {
		if k.small[i].level == level {
			last := len(k.small) - 1
			k.small[i] = k.small[last]
			k.small[last] = kid[T]{} // let the GC have the node
			k.small = k.small[:last]
			if last == 0 {
				k.small = nil
			}
			return
		}
	}
}

// len returns the number of children.
func (k *kids[T]) len() int {
	if k.big != nil {
		return len(k.big)
	}
	return len(k.small)
}
