package topic

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// Benchmarks. The 1M-subscription tree takes a few seconds and a few
// hundred MB to build; run it briefly:
//
//	go test ./internal/topic -run '^$' -bench . -benchmem -benchtime 200ms

type benchSub struct {
	qos byte
	id  uint32
}

// benchTree builds a tree with n subscriptions of a realistic mixture:
// mostly exact per-device filters, some per-device '+' and '#' filters,
// per-fleet filters, and a few dashboards subscribed to wide wildcards and
// a shared group.
func benchTree(n int) *Tree[benchSub] {
	tr := NewTree[benchSub]()
	for i := range n {
		id := strconv.Itoa(i)
		client := "client-" + id
		var f string
		switch i % 100 {
		case 0, 1, 2, 3, 4:
			f = "device/" + id + "/+"
		case 5, 6, 7:
			f = "device/" + id + "/#"
		case 8:
			f = "fleet/" + strconv.Itoa(i%1000) + "/+/status"
		default:
			f = "device/" + id + "/telemetry"
		}
		tr.Subscribe(client, f, benchSub{1, uint32(i)})
	}
	for i := range 10 {
		tr.Subscribe(fmt.Sprint("dashboard-", i), "device/+/telemetry", benchSub{})
	}
	tr.Subscribe("audit", "#", benchSub{})
	tr.Subscribe("sys", "$SYS/#", benchSub{})
	for i := range 4 {
		tr.Subscribe(fmt.Sprint("worker-", i), "$share/ingest/device/+/telemetry", benchSub{})
	}
	return tr
}

var (
	benchTreesMu sync.Mutex
	benchTrees   = map[int]*Tree[benchSub]{}
)

// cachedBenchTree builds each size once per test binary run.
func cachedBenchTree(b *testing.B, n int) *Tree[benchSub] {
	b.Helper()
	benchTreesMu.Lock()
	defer benchTreesMu.Unlock()
	if tr, ok := benchTrees[n]; ok {
		return tr
	}
	tr := benchTree(n)
	benchTrees[n] = tr
	return tr
}

func benchNames(n, count int) []string {
	r := rand.New(rand.NewPCG(7, 8))
	names := make([]string, count)
	for i := range names {
		names[i] = "device/" + strconv.Itoa(r.IntN(n)) + "/telemetry"
	}
	return names
}

func BenchmarkTreeMatch(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		names := benchNames(n, 1024)
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			tr := cachedBenchTree(b, n)
			b.ReportAllocs()
			matches := 0
			i := 0
			for b.Loop() {
				tr.MatchAll(names[i&1023], func(string, *benchSub) { matches++ }, func(g *SharedGroup[benchSub]) {
					_, _ = g.At(int(g.Next() % uint64(g.Len())))
					matches++
				})
				i++
			}
			b.ReportMetric(float64(matches)/float64(b.N), "matches/op")
		})
		b.Run(fmt.Sprintf("subs=%d/nomatch", n), func(b *testing.B) {
			tr := cachedBenchTree(b, n)
			b.ReportAllocs()
			for b.Loop() {
				tr.Match("sensor/42/humidity", func(string, *benchSub) {})
			}
		})
		b.Run(fmt.Sprintf("subs=%d/sys", n), func(b *testing.B) {
			tr := cachedBenchTree(b, n)
			b.ReportAllocs()
			for b.Loop() {
				tr.Match("$SYS/broker/clients/connected", func(string, *benchSub) {})
			}
		})
	}
}

// BenchmarkTreeMemory reports the heap a tree of the benchmark mixture
// takes per subscription.
func BenchmarkTreeMemory(b *testing.B) {
	const n = 100_000
	var before, after runtime.MemStats
	var tr *Tree[benchSub]
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr = benchTree(n)
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/sub")
	b.ReportMetric(float64(tr.nodes)/n, "nodes/sub")
	runtime.KeepAlive(tr)
}

// BenchmarkTreeMatchParallel measures matching from all cores at once, as
// publishers on many connections do; the read lock is shared.
func BenchmarkTreeMatchParallel(b *testing.B) {
	tr := cachedBenchTree(b, 10_000)
	names := benchNames(10_000, 1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		n := 0
		for pb.Next() {
			tr.Match(names[i&1023], func(string, *benchSub) { n++ })
			i++
		}
	})
}

// BenchmarkTreeChurn subscribes and unsubscribes a client on a populated
// tree, creating and pruning its nodes each time.
func BenchmarkTreeChurn(b *testing.B) {
	tr := cachedBenchTree(b, 10_000)
	filters := make([]string, 1024)
	for i := range filters {
		filters[i] = "device/churn-" + strconv.Itoa(i) + "/telemetry"
	}
	b.Run("new-filter", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			f := filters[i&1023]
			tr.Subscribe("churner", f, benchSub{})
			tr.Unsubscribe("churner", f)
			i++
		}
	})
	b.Run("existing-filter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tr.Subscribe("churner", "device/+/telemetry", benchSub{})
			tr.Unsubscribe("churner", "device/+/telemetry")
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	cases := []struct{ filter, name string }{
		{"device/1234/telemetry", "device/1234/telemetry"},
		{"device/+/telemetry", "device/1234/telemetry"},
		{"device/#", "device/1234/telemetry/temperature"},
		{"#", "$SYS/broker/uptime"},
	}
	for _, c := range cases {
		b.Run(c.filter, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !Match(c.filter, c.name) && c.filter != "#" {
					b.Fatal("no match")
				}
			}
		})
	}
}

func BenchmarkValid(b *testing.B) {
	b.Run("name", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ValidName("device/1234567/telemetry/temperature")
		}
	})
	b.Run("name-utf8", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ValidName("gerät/1234567/küche/temperatur")
		}
	})
	b.Run("filter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ValidFilter("device/+/telemetry/#")
		}
	})
	b.Run("shared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, _, _ = ParseShared("$share/ingest/device/+/telemetry")
		}
	})
}

// BenchmarkRetainedMatch matches filters against 100k retained topics, as
// a new subscription does.
func BenchmarkRetainedMatch(b *testing.B) {
	r := NewRetained[int]()
	for i := range 100_000 {
		r.Set("device/"+strconv.Itoa(i)+"/telemetry", i)
	}
	for i := range 100 {
		r.Set("$SYS/broker/stat"+strconv.Itoa(i), i)
	}
	cases := []string{
		"device/4242/telemetry", // exact: one topic
		"device/4242/#",         // one device
		"device/+/telemetry",    // all 100k
		"#",                     // all 100k, skipping $SYS
		"$SYS/#",                // 100 topics
	}
	for _, filter := range cases {
		b.Run(filter, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				r.Match(filter, func(string, int) bool { n++; return true })
			}
			b.ReportMetric(float64(n)/float64(b.N), "topics/op")
		})
	}
	b.Run("set-existing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Set("device/4242/telemetry", 1)
		}
	})
	b.Run("set-delete-new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Set("device/new/telemetry", 1)
			r.Delete("device/new/telemetry")
		}
	})
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Get("device/4242/telemetry")
		}
	})
}

// BenchmarkKids compares a linear scan of a small child slice with a map
// lookup, which sets maxSmallKids.
func BenchmarkKids(b *testing.B) {
	for _, n := range []int{1, 4, 8, 16} {
		levels := make([]string, n)
		var small, big kids[int]
		big.big = map[string]*int{}
		for i := range levels {
			levels[i] = fmt.Sprint("level-", i)
			v := i
			small.small = append(small.small, kid[int]{levels[i], &v})
			big.big[levels[i]] = &v
		}
		for _, k := range []struct {
			name string
			k    *kids[int]
		}{{"slice", &small}, {"map", &big}} {
			b.Run(fmt.Sprintf("n=%d/%s", n, k.name), func(b *testing.B) {
				i := 0
				for b.Loop() {
					if k.k.get(levels[i%n]) == nil {
						b.Fatal("not found")
					}
					i++
				}
			})
		}
	}
}
