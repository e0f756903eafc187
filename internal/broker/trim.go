package broker

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory trimming. Go's runtime keeps the heap it grew to for a while and
// lets it grow to twice the live data before collecting, so after a burst —
// a connection storm, a backlog of queued messages — a broker holding
// thousands of idle connections would keep about twice the memory they
// need. Once the broker is quiet again it collects and hands the free
// pages back to the operating system at once, as a C broker's allocator
// does when it frees.

// trimEvery is how often the trimmer looks at activity and memory.
const trimEvery = time.Second

// trimSample is what one look sees.
type trimSample struct {
	at      time.Time
	bytes   uint64 // bytes received and sent so far
	conns   uint64 // connections accepted so far
	objects uint64 // heap bytes in objects (live, or garbage not yet swept)
	free    uint64 // heap bytes free but not yet returned to the system
	live    uint64 // heap bytes the last collection found live
}

// spare is what a trim can hand back: garbage and free pages.
func (s trimSample) spare() uint64 {
	if s.objects+s.free <= s.live {
		return 0
	}
	return s.objects + s.free - s.live
}

// trimmer decides when to trim.
type trimmer struct {
	prev     trimSample
	lastTrim time.Time
	lastLive uint64 // live heap right after the last trim
}

// Thresholds: quiet means less than this much traffic in the last look;
// worth it means at least this much to hand back, and a quarter of the
// live heap.
const (
	quietBytesPerSec = 1 << 20
	quietConnsPerSec = 100
	minTrimSpare     = 1 << 20
	// A quiet broker that keeps its size is trimmed at most this often.
	trimInterval = time.Minute
)

// shouldTrim reports whether to trim now, given the previous look and this
// one, and records the look.
func (t *trimmer) shouldTrim(cur trimSample) bool {
	prev := t.prev
	t.prev = cur
	if prev.at.IsZero() {
		return false
	}
	secs := cur.at.Sub(prev.at).Seconds()
	if secs <= 0 {
		return false
	}
	quiet := float64(cur.bytes-prev.bytes)/secs < quietBytesPerSec &&
		float64(cur.conns-prev.conns)/secs < quietConnsPerSec
	spare := cur.spare()
	worth := spare >= minTrimSpare && spare >= cur.live/4
	grown := cur.live > t.lastLive+t.lastLive/4
	return quiet && worth && (grown || cur.at.Sub(t.lastTrim) >= trimInterval)
}

// trimmed records a trim that left live bytes in the heap.
func (t *trimmer) trimmed(at time.Time, live uint64) {
	t.lastTrim = at
	t.lastLive = live
}

// trimLoop looks every trimEvery and trims when the broker is quiet after
// its heap has grown.
func (b *Broker) trimLoop() {
	defer b.wg.Done()
	tk := time.NewTicker(trimEvery)
	defer tk.Stop()
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	var t trimmer
	read := func(now time.Time) trimSample {
		metrics.Read(samples)
		s := trimSample{at: now, bytes: b.stats.BytesReceived.Load() + b.stats.BytesSent.Load(),
			conns: b.stats.TotalConnects.Load()}
		if samples[0].Value.Kind() == metrics.KindUint64 {
			s.objects = samples[0].Value.Uint64()
		}
		if samples[1].Value.Kind() == metrics.KindUint64 {
			s.free = samples[1].Value.Uint64()
		}
		if samples[2].Value.Kind() == metrics.KindUint64 {
			s.live = samples[2].Value.Uint64()
		}
		return s
	}
	for {
		select {
		case <-b.ctx.Done():
			return
		case now := <-tk.C:
			if !t.shouldTrim(read(now)) {
				continue
			}
			debug.FreeOSMemory()
			after := read(time.Now())
			t.trimmed(after.at, after.live)
			t.prev = after
			b.trims.Add(1)
		}
	}
}
