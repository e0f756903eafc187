package broker

import (
	"runtime"
	"testing"
	"time"
)

func TestShouldTrim(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	const mib = 1 << 20
	var tr trimmer
	steps := []struct {
		name string
		s    trimSample
		want bool
	}{
		{"first look only records", trimSample{at: at(0), objects: 8 * mib, live: 4 * mib}, false},
		{"busy: many bytes moved", trimSample{at: at(1), bytes: 50 * mib, objects: 8 * mib, live: 4 * mib}, false},
		{"busy: connection storm", trimSample{at: at(2), bytes: 50 * mib, conns: 5000, objects: 8 * mib, live: 4 * mib}, false},
		{"quiet, little to hand back", trimSample{at: at(3), bytes: 50 * mib, conns: 5000, objects: 4 * mib, free: mib / 2, live: 4 * mib}, false},
		{"quiet, spare small next to the live heap", trimSample{at: at(4), bytes: 50 * mib, conns: 5000, objects: 40 * mib, free: 2 * mib, live: 40 * mib}, false},
		{"quiet after growth, garbage and free pages", trimSample{at: at(5), bytes: 50*mib + 100, conns: 5010, objects: 6 * mib, free: mib, live: 4 * mib}, true},
	}
	for _, st := range steps {
		if got := tr.shouldTrim(st.s); got != st.want {
			t.Fatalf("%s: shouldTrim = %v, want %v", st.name, got, st.want)
		}
	}
	tr.trimmed(at(5), 4*mib)
	if tr.shouldTrim(trimSample{at: at(6), bytes: 50 * mib, conns: 5010, objects: 6 * mib, free: mib, live: 4 * mib}) {
		t.Fatal("trimmed again within a minute without growth")
	}
	if !tr.shouldTrim(trimSample{at: at(7), bytes: 50 * mib, conns: 5010, objects: 8 * mib, free: mib, live: 6 * mib}) {
		t.Fatal("not trimmed after the live heap grew by half")
	}
	tr.trimmed(at(7), 6*mib)
	if !tr.shouldTrim(trimSample{at: at(70), bytes: 50 * mib, conns: 5010, objects: 8 * mib, free: mib, live: 6 * mib}) {
		t.Fatal("not trimmed a minute later")
	}
}

// sink keeps the test's garbage from being optimised away.
var sink [][]byte

func TestTrimAfterBurst(t *testing.T) {
	b, _ := startBroker(t, func(o *Options) { o.TrimMemory = true })
	// A burst that leaves much free heap behind: allocate, drop, collect.
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	runtime.GC()
	deadline := time.Now().Add(10 * time.Second)
	for b.trims.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no trim within 10 s of a quiet broker with 64 MiB free")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
