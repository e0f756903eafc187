package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// retainedMatch returns the "name=value" strings Retained.Match reports,
// sorted.
func retainedMatch(r *Retained[int], filter string) []string {
	var got []string
	r.Match(filter, func(name string, v int) bool {
		got = append(got, fmt.Sprintf("%s=%d", name, v))
		return true
	})
	slices.Sort(got)
	return got
}

func TestRetainedMatchTable(t *testing.T) {
	for _, tt := range matchTests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRetained[int]()
			r.Set(tt.topic, 1)
			got := len(retainedMatch(r, tt.filter)) == 1
			if got != tt.want {
				t.Errorf("Retained with %q, Match(%q) = %v, want %v", tt.topic, tt.filter, got, tt.want)
			}
		})
	}
}

func TestRetained(t *testing.T) {
	r := NewRetained[int]()
	topics := []string{
		"sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player2",
		"sport/football", "sport/", "/sport", "$SYS/uptime", "$SYS", "a//b",
	}
	for i, name := range topics {
		r.Set(name, i)
	}
	r.Set("sport", 100) // replaces
	if r.Len() != len(topics) {
		t.Errorf("Len = %d, want %d", r.Len(), len(topics))
	}
	if v, ok := r.Get("sport"); !ok || v != 100 {
		t.Errorf("Get(sport) = %d, %v; want 100, true", v, ok)
	}
	if _, ok := r.Get("sport/tennis/player3"); ok {
		t.Error("Get of a missing topic found something")
	}
	if _, ok := r.Get("sport/tennis/player1/x"); ok {
		t.Error("Get below a leaf found something")
	}

	tests := []struct {
		filter string
		want   []string
	}{
		{"sport/#", []string{"sport/=5", "sport/football=4", "sport/tennis/player1=2", "sport/tennis/player2=3", "sport/tennis=1", "sport=100"}},
		{"sport/tennis/+", []string{"sport/tennis/player1=2", "sport/tennis/player2=3"}},
		{"sport/+", []string{"sport/=5", "sport/football=4", "sport/tennis=1"}},
		{"+", []string{"sport=100"}},
		{"+/+", []string{"/sport=6", "sport/=5", "sport/football=4", "sport/tennis=1"}},
		{"#", []string{"/sport=6", "a//b=9", "sport/=5", "sport/football=4", "sport/tennis/player1=2", "sport/tennis/player2=3", "sport/tennis=1", "sport=100"}},
		{"$SYS/#", []string{"$SYS/uptime=7", "$SYS=8"}},
		{"$SYS/+", []string{"$SYS/uptime=7"}},
		{"+/uptime", nil}, // [MQTT-4.7.2-1]
		{"a/+/b", []string{"a//b=9"}},
		{"sport/tennis/player1", []string{"sport/tennis/player1=2"}},
		{"sport/tennis/player1/#", []string{"sport/tennis/player1=2"}},
		{"nothing/#", nil},
	}
	for _, tt := range tests {
		if got := retainedMatch(r, tt.filter); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%q) = %v, want %v", tt.filter, got, tt.want)
		}
	}

	// Stopping early.
	n := 0
	r.Match("#", func(string, int) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("Match kept calling after false: %d calls", n)
	}
	n = 0
	r.Match("sport/+", func(string, int) bool { n++; return false })
	if n != 1 {
		t.Errorf("Match with + kept calling after false: %d calls", n)
	}
	n = 0
	r.Range(func(string, int) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("Range kept calling after false: %d calls", n)
	}

	var all []string
	r.Range(func(name string, v int) bool {
		all = append(all, name)
		return true
	})
	slices.Sort(all)
	want := slices.Clone(topics)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("Range = %v, want %v", all, want)
	}

	if r.Delete("sport/tennis/player3") || r.Delete("sport/tennis/player1/x") {
		t.Error("Delete of a missing topic reported true")
	}
	// Deleting an inner topic keeps its children.
	if !r.Delete("sport/tennis") || r.Delete("sport/tennis") {
		t.Error("Delete(sport/tennis) twice did not report true, false")
	}
	if got := retainedMatch(r, "sport/tennis/#"); len(got) != 2 {
		t.Errorf("after Delete(sport/tennis), Match(sport/tennis/#) = %v", got)
	}
	for _, name := range topics {
		r.Delete(name)
	}
	if r.Len() != 0 || r.nodes != 0 || r.root.kids.len() != 0 {
		t.Errorf("after deleting everything: Len %d, nodes %d", r.Len(), r.nodes)
	}
}

// TestRetainedProperty checks Retained.Match against the oracle over random
// sets of topics.
func TestRetainedProperty(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	r := NewRetained[int]()
	oracle := map[string]int{}
	for step := range 2500 {
		name := randomName(rnd)
		if rnd.IntN(3) == 0 {
			_, want := oracle[name]
			if got := r.Delete(name); got != want {
				t.Fatalf("step %d: Delete(%q) = %v, want %v", step, name, got, want)
			}
			delete(oracle, name)
		} else {
			r.Set(name, step)
			oracle[name] = step
		}
		if r.Len() != len(oracle) {
			t.Fatalf("step %d: Len = %d, want %d", step, r.Len(), len(oracle))
		}
		filter := randomFilter(rnd)
		var want []string
		for name, v := range oracle {
			if oracleMatch(filter, name) {
				want = append(want, fmt.Sprintf("%s=%d", name, v))
			}
		}
		slices.Sort(want)
		if got := retainedMatch(r, filter); !slices.Equal(got, want) {
			t.Fatalf("step %d: Match(%q) = %v, want %v", step, filter, got, want)
		}
	}
	for name := range oracle {
		r.Delete(name)
	}
	if r.Len() != 0 || r.nodes != 0 {
		t.Errorf("after deleting everything: Len %d, nodes %d", r.Len(), r.nodes)
	}
}

// TestRetainedMany exercises the map children of a wide node.
func TestRetainedMany(t *testing.T) {
	r := NewRetained[int]()
	for i := range 100 {
		r.Set(fmt.Sprintf("d/%d/t", i), i)
		r.Set(fmt.Sprintf("$d/%d", i), i)
	}
	if got := retainedMatch(r, "d/+/t"); len(got) != 100 {
		t.Errorf("Match(d/+/t) = %d topics, want 100", len(got))
	}
	if got := retainedMatch(r, "+/+"); len(got) != 0 {
		t.Errorf("Match(+/+) = %v, want none [MQTT-4.7.2-1]", got)
	}
	for i := range 100 {
		r.Delete(fmt.Sprintf("d/%d/t", i))
		r.Delete(fmt.Sprintf("$d/%d", i))
	}
	if r.nodes != 0 {
		t.Errorf("nodes = %d after deleting everything", r.nodes)
	}
}

func TestRetainedConcurrent(t *testing.T) {
	r := NewRetained[int]()
	r.Set("s/stable", 1)
	iters := 2000
	if testing.Short() {
		iters = 200
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 2 {
		wg.Go(func() {
			for i := range iters {
				name := fmt.Sprintf("s/%d/%d", w, i%20)
				r.Set(name, i)
				if i%2 == 0 {
					r.Delete(name)
				}
				_, _ = r.Get(name)
			}
		})
		wg.Go(func() {
			for i := range iters {
				found := false
				r.Match("s/+", func(name string, _ int) bool {
					found = found || name == "s/stable"
					return true
				})
				if !found {
					errs <- fmt.Errorf("matcher %d, iteration %d: s/stable not found", w, i)
					return
				}
				r.Range(func(string, int) bool { return true })
				_ = r.Len()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
