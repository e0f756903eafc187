package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"unsafe"
)

// collect returns the "client filter=value" strings Tree.Match reports for
// name, sorted.
func collect(tr *Tree[int], name string) []string {
	var got []string
	tr.Match(name, func(clientID string, v *int) {
		got = append(got, fmt.Sprintf("%s=%d", clientID, *v))
	})
	slices.Sort(got)
	return got
}

// collectShared returns "group filter [members]" strings for name, sorted.
func collectShared(tr *Tree[int], name string) []string {
	var got []string
	tr.MatchShared(name, func(g *SharedGroup[int]) {
		s := g.Name() + " " + g.Filter()
		for i := range g.Len() {
			id, v := g.At(i)
			s += fmt.Sprintf(" %s=%d", id, *v)
		}
		got = append(got, s)
	})
	slices.Sort(got)
	return got
}

func TestTreeMatchTable(t *testing.T) {
	for _, tt := range matchTests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTree[int]()
			tr.Subscribe("c", tt.filter, 1)
			tr.Subscribe("s", "$share/g/"+tt.filter, 2)
			got := len(collect(tr, tt.topic)) == 1
			if got != tt.want {
				t.Errorf("Tree with %q, Match(%q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
			}
			gotShared := len(collectShared(tr, tt.topic)) == 1
			if gotShared != tt.want {
				t.Errorf("Tree with $share/g/%q, MatchShared(%q) = %v, want %v", tt.filter, tt.topic, gotShared, tt.want)
			}
		})
	}
}

func TestTreeSubscribe(t *testing.T) {
	tr := NewTree[int]()
	if tr.Subscribe("a", "x/y", 1) {
		t.Error("first Subscribe reported existed")
	}
	g0 := tr.Generation()
	// [MQTT-3.8.4-3]: a subscription to the same filter replaces the old one.
	if !tr.Subscribe("a", "x/y", 2) {
		t.Error("second Subscribe did not report existed")
	}
	if tr.Generation() == g0 {
		t.Error("replacing a value did not change the generation")
	}
	tr.Subscribe("b", "x/+", 3)
	tr.Subscribe("a", "x/#", 4) // same client, second matching filter
	tr.Subscribe("c", "#", 5)
	tr.Subscribe("d", "x/y/z", 6)
	want := []string{"a=2", "a=4", "b=3", "c=5"}
	if got := collect(tr, "x/y"); !slices.Equal(got, want) {
		t.Errorf("Match(x/y) = %v, want %v", got, want)
	}
	if got := tr.Len(); got != 5 {
		t.Errorf("Len = %d, want 5", got)
	}
	if got := collect(tr, "$SYS/x"); len(got) != 0 {
		t.Errorf("Match($SYS/x) = %v, want none [MQTT-4.7.2-1]", got)
	}
	g1 := tr.Generation()
	if tr.Unsubscribe("a", "x/z") || tr.Unsubscribe("zz", "x/y") || tr.Unsubscribe("a", "$share/g/x/y") {
		t.Error("Unsubscribe of a missing subscription reported existed")
	}
	if tr.Generation() != g1 {
		t.Error("a no-op Unsubscribe changed the generation")
	}
	if !tr.Unsubscribe("a", "x/y") {
		t.Error("Unsubscribe reported not existed")
	}
	if tr.Generation() == g1 {
		t.Error("Unsubscribe did not change the generation")
	}
	want = []string{"a=4", "b=3", "c=5"}
	if got := collect(tr, "x/y"); !slices.Equal(got, want) {
		t.Errorf("after Unsubscribe, Match(x/y) = %v, want %v", got, want)
	}
	tr.UnsubscribeAll("a", []string{"x/#", "never/subscribed"})
	tr.UnsubscribeAll("b", []string{"x/+"})
	tr.UnsubscribeAll("c", []string{"#"})
	tr.UnsubscribeAll("d", []string{"x/y/z"})
	if tr.Len() != 0 || tr.nodes != 0 || !tr.root.empty() {
		t.Errorf("after removing everything: Len %d, nodes %d, root empty %v", tr.Len(), tr.nodes, tr.root.empty())
	}
	g2 := tr.Generation()
	tr.UnsubscribeAll("a", []string{"x/#"})
	if tr.Generation() != g2 {
		t.Error("a no-op UnsubscribeAll changed the generation")
	}
}

func TestTreeShared(t *testing.T) {
	tr := NewTree[int]()
	tr.Subscribe("a", "$share/g1/s/+", 1)
	tr.Subscribe("b", "$share/g1/s/+", 2)
	tr.Subscribe("c", "$share/g1/s/+", 3)
	tr.Subscribe("d", "$share/g2/s/+", 4)
	tr.Subscribe("e", "$share/g1/s/#", 5)
	tr.Subscribe("f", "s/+", 6) // non-shared, same filter
	// Resubscribing keeps the member's place in the round-robin order.
	if !tr.Subscribe("a", "$share/g1/s/+", 7) {
		t.Error("resubscribe to a shared group did not report existed")
	}
	want := []string{"g1 s/# e=5", "g1 s/+ a=7 b=2 c=3", "g2 s/+ d=4"}
	if got := collectShared(tr, "s/x"); !slices.Equal(got, want) {
		t.Errorf("MatchShared(s/x) = %v, want %v", got, want)
	}
	if got := collect(tr, "s/x"); !slices.Equal(got, []string{"f=6"}) {
		t.Errorf("Match(s/x) = %v, want only the non-shared subscription", got)
	}
	if got := tr.Len(); got != 6 {
		t.Errorf("Len = %d, want 6", got)
	}

	// Round-robin: the counter survives membership changes of the group.
	var picks []string
	for range 4 {
		tr.MatchShared("s/x", func(g *SharedGroup[int]) {
			if g.Name() == "g1" && g.Filter() == "s/+" {
				id, _ := g.At(int(g.Next() % uint64(g.Len())))
				picks = append(picks, id)
			}
		})
	}
	if want := []string{"a", "b", "c", "a"}; !slices.Equal(picks, want) {
		t.Errorf("round-robin picks = %v, want %v", picks, want)
	}

	// Leaving keeps the order of the others.
	if !tr.Unsubscribe("b", "$share/g1/s/+") {
		t.Error("Unsubscribe of a member reported not existed")
	}
	if tr.Unsubscribe("b", "$share/g1/s/+") || tr.Unsubscribe("a", "$share/g3/s/+") || tr.Unsubscribe("a", "s/+") {
		t.Error("Unsubscribe of a non-member reported existed")
	}
	want = []string{"g1 s/# e=5", "g1 s/+ a=7 c=3", "g2 s/+ d=4"}
	if got := collectShared(tr, "s/x"); !slices.Equal(got, want) {
		t.Errorf("after leave, MatchShared(s/x) = %v, want %v", got, want)
	}

	// One walk reports both kinds.
	var n, ns int
	tr.MatchAll("s/x", func(string, *int) { n++ }, func(*SharedGroup[int]) { ns++ })
	if n != 1 || ns != 3 {
		t.Errorf("MatchAll reported %d subscriptions and %d groups, want 1 and 3", n, ns)
	}

	// '$' rule applies to shared subscriptions too [MQTT-4.7.2-1].
	tr.Subscribe("z", "$share/g/#", 9)
	tr.Subscribe("y", "$share/g/$SYS/#", 9)
	if got := collectShared(tr, "$SYS/x"); !slices.Equal(got, []string{"g $SYS/# y=9"}) {
		t.Errorf("MatchShared($SYS/x) = %v", got)
	}

	for _, s := range []struct{ id, f string }{
		{"a", "$share/g1/s/+"}, {"c", "$share/g1/s/+"}, {"d", "$share/g2/s/+"},
		{"e", "$share/g1/s/#"}, {"f", "s/+"}, {"z", "$share/g/#"}, {"y", "$share/g/$SYS/#"},
	} {
		if !tr.Unsubscribe(s.id, s.f) {
			t.Errorf("Unsubscribe(%s, %s) reported not existed", s.id, s.f)
		}
	}
	if tr.Len() != 0 || tr.nodes != 0 {
		t.Errorf("after removing everything: Len %d, nodes %d", tr.Len(), tr.nodes)
	}
}

// TestTreeMalformedShared checks that filters which are not well-formed
// shared subscriptions are kept as ordinary filters rather than lost.
func TestTreeMalformedShared(t *testing.T) {
	tr := NewTree[int]()
	for _, f := range []string{"$share/g", "$share//a", "$share/g/"} {
		tr.Subscribe("c", f, 1)
		if got := collect(tr, f); len(got) != 1 {
			t.Errorf("%q: Match(%q) = %v, want one literal match", f, f, got)
		}
		if !tr.Unsubscribe("c", f) {
			t.Errorf("%q: Unsubscribe reported not existed", f)
		}
	}
	if tr.nodes != 0 {
		t.Errorf("nodes = %d after unsubscribing", tr.nodes)
	}
}

// TestTreeManySubscribers exercises the client-id index of large lists and
// the switch between slice and map children.
func TestTreeManySubscribers(t *testing.T) {
	tr := NewTree[int]()
	const n = 200
	for i := range n {
		tr.Subscribe(fmt.Sprint("c", i), "all", i)
		tr.Subscribe(fmt.Sprint("c", i), fmt.Sprint("k/", i), i)
		tr.Subscribe(fmt.Sprint("c", i), "$share/g/all", i)
	}
	for i := range n {
		if !tr.Subscribe(fmt.Sprint("c", i), "all", i+1000) {
			t.Fatalf("resubscribe c%d not found", i)
		}
	}
	// Remove every other one, in an order that moves entries around.
	for i := n - 1; i >= 0; i -= 2 {
		tr.Unsubscribe(fmt.Sprint("c", i), "all")
		tr.Unsubscribe(fmt.Sprint("c", i), fmt.Sprint("k/", i))
		tr.Unsubscribe(fmt.Sprint("c", i), "$share/g/all")
	}
	got := collect(tr, "all")
	if len(got) != n/2 {
		t.Fatalf("Match(all) = %d subscriptions, want %d", len(got), n/2)
	}
	for i := 0; i < n; i += 2 {
		if !slices.Contains(got, fmt.Sprintf("c%d=%d", i, i+1000)) {
			t.Errorf("c%d missing from Match(all)", i)
		}
		if got := collect(tr, fmt.Sprint("k/", i)); len(got) != 1 {
			t.Errorf("Match(k/%d) = %v", i, got)
		}
	}
	tr.MatchShared("all", func(g *SharedGroup[int]) {
		for j := range g.Len() {
			if id, _ := g.At(j); id != fmt.Sprint("c", 2*j) {
				t.Errorf("member %d = %s, want c%d (order kept)", j, id, 2*j)
			}
		}
	})
	for i := 0; i < n; i += 2 {
		tr.UnsubscribeAll(fmt.Sprint("c", i), []string{"all", fmt.Sprint("k/", i), "$share/g/all"})
	}
	if tr.Len() != 0 || tr.nodes != 0 || !tr.root.empty() {
		t.Errorf("after removing everything: Len %d, nodes %d", tr.Len(), tr.nodes)
	}
}

// randomFilter and randomName draw from a small alphabet so that random
// filters and names often match, including empty levels and '$' levels.
var propLevels = []string{"a", "b", "", "$s", "c"}

func randomName(r *rand.Rand) string {
	n := 1 + r.IntN(4)
	s := ""
	for i := range n {
		if i > 0 {
			s += "/"
		}
		s += propLevels[r.IntN(len(propLevels))]
	}
	if s == "" {
		s = "/" // names are not empty [MQTT-4.7.3-1]
	}
	return s
}

func randomFilter(r *rand.Rand) string {
	n := 1 + r.IntN(4)
	s := ""
	for i := range n {
		if i > 0 {
			s += "/"
		}
		switch x := r.IntN(10); {
		case x < 2:
			s += "+"
		case x < 3:
			return s + "#"
		default:
			s += propLevels[r.IntN(len(propLevels))]
		}
	}
	if s == "" {
		s = "/"
	}
	return s
}

// TestTreeProperty checks Tree against a brute-force oracle (a map of
// subscriptions matched one by one with oracleMatch) under random
// subscribe and unsubscribe, and that pruning leaves no node behind.
func TestTreeProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type key struct{ client, filter string }
	tr := NewTree[int]()
	oracle := map[key]int{}
	clients := []string{"c0", "c1", "c2", "c3"}
	steps := 8000
	if testing.Short() {
		steps = 2000
	}
	for step := range steps {
		k := key{clients[r.IntN(len(clients))], randomFilter(r)}
		if r.IntN(5) == 0 {
			k.filter = "$share/" + clients[r.IntN(2)] + "/" + k.filter
		}
		if r.IntN(3) == 0 {
			_, want := oracle[k]
			if got := tr.Unsubscribe(k.client, k.filter); got != want {
				t.Fatalf("step %d: Unsubscribe(%v) = %v, want %v", step, k, got, want)
			}
			delete(oracle, k)
		} else {
			_, want := oracle[k]
			if got := tr.Subscribe(k.client, k.filter, step); got != want {
				t.Fatalf("step %d: Subscribe(%v) = %v, want %v", step, k, got, want)
			}
			oracle[k] = step
		}
		if tr.Len() != len(oracle) {
			t.Fatalf("step %d: Len = %d, want %d", step, tr.Len(), len(oracle))
		}
		if step%10 != 0 {
			continue
		}
		name := randomName(r)
		var want, wantShared []string
		groups := map[string][]string{}
		for k, v := range oracle {
			group, inner, shared := splitShared(k.filter)
			if !oracleMatch(inner, name) {
				continue
			}
			if shared {
				groups[group+" "+inner] = append(groups[group+" "+inner], fmt.Sprintf("%s=%d", k.client, v))
			} else {
				want = append(want, fmt.Sprintf("%s=%d", k.client, v))
			}
		}
		for g, members := range groups {
			slices.Sort(members)
			wantShared = append(wantShared, g+" "+fmt.Sprint(members))
		}
		slices.Sort(want)
		slices.Sort(wantShared)
		if got := collect(tr, name); !slices.Equal(got, want) {
			t.Fatalf("step %d: Match(%q) = %v, want %v", step, name, got, want)
		}
		var gotShared []string
		tr.MatchShared(name, func(g *SharedGroup[int]) {
			var members []string
			for i := range g.Len() {
				id, v := g.At(i)
				members = append(members, fmt.Sprintf("%s=%d", id, *v))
			}
			slices.Sort(members)
			gotShared = append(gotShared, g.Name()+" "+g.Filter()+" "+fmt.Sprint(members))
		})
		slices.Sort(gotShared)
		if !slices.Equal(gotShared, wantShared) {
			t.Fatalf("step %d: MatchShared(%q) = %v, want %v", step, name, gotShared, wantShared)
		}
	}
	for k := range oracle {
		if !tr.Unsubscribe(k.client, k.filter) {
			t.Fatalf("final Unsubscribe(%v) reported not existed", k)
		}
	}
	if tr.Len() != 0 || tr.nodes != 0 || !tr.root.empty() {
		t.Errorf("after removing everything: Len %d, nodes %d", tr.Len(), tr.nodes)
	}
}

func TestTreeMatchDoesNotAllocate(t *testing.T) {
	tr := NewTree[int]()
	for i := range 100 {
		tr.Subscribe(fmt.Sprint("c", i), fmt.Sprintf("device/%d/telemetry", i), i)
	}
	tr.Subscribe("x", "device/+/telemetry", 1)
	tr.Subscribe("y", "device/#", 1)
	tr.Subscribe("z", "$share/g/device/+/+", 1)
	n, ns := 0, 0
	allocs := testing.AllocsPerRun(1000, func() {
		tr.MatchAll("device/42/telemetry", func(string, *int) { n++ }, func(*SharedGroup[int]) { ns++ })
		tr.Match("device/42/telemetry", func(string, *int) { n++ })
		tr.MatchShared("$SYS/x", func(*SharedGroup[int]) { ns++ })
	})
	if allocs != 0 {
		t.Errorf("Tree.Match allocates %v times per run", allocs)
	}
	if n == 0 || ns == 0 {
		t.Error("nothing matched")
	}
}

// TestTreeConcurrent runs subscribers, unsubscribers and matchers at once;
// run it with -race. Each matcher checks that a subscription that is never
// removed is always found.
func TestTreeConcurrent(t *testing.T) {
	tr := NewTree[int]()
	tr.Subscribe("stable", "s/#", 1)
	tr.Subscribe("stable", "$share/g/s/+", 1)
	const workers = 4
	iters := 2000
	if testing.Short() {
		iters = 200
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range workers {
		wg.Go(func() {
			id := fmt.Sprint("w", w)
			for i := range iters {
				f := fmt.Sprintf("s/%d", i%50)
				if i%3 == 0 {
					f = "$share/g/" + f
				}
				tr.Subscribe(id, f, i)
				if i%2 == 0 {
					tr.Unsubscribe(id, f)
				}
			}
			tr.UnsubscribeAll(id, nil)
		})
		wg.Go(func() {
			for i := range iters {
				found, foundShared := false, false
				tr.MatchAll(fmt.Sprintf("s/%d", i%50), func(id string, _ *int) {
					found = found || id == "stable"
				}, func(g *SharedGroup[int]) {
					id, _ := g.At(int(g.Next() % uint64(g.Len())))
					foundShared = foundShared || (g.Filter() == "s/+" && id == "stable")
				})
				if !found || !foundShared {
					errs <- fmt.Errorf("matcher %d, iteration %d: stable found %v, in group %v", w, i, found, foundShared)
					return
				}
				_ = tr.Generation()
				_ = tr.Len()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestNodeSize guards the memory layout: there is about one node per
// subscription, and 88 bytes is the 96-byte size class.
func TestNodeSize(t *testing.T) {
	if size := unsafe.Sizeof(node[*int]{}); size > 96 {
		t.Errorf("node is %d bytes, want at most 96", size)
	}
}
