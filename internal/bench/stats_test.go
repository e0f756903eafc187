package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRank(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	thousand := make([]int64, 1000)
	for i := range thousand {
		thousand[i] = int64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []int64
		p      float64
		want   int64
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", []int64{7}, 99.9, 7},
		{"median of 100 is the 50th", hundred, 50, 50},
		{"p99 of 100", hundred, 99, 99},
		{"p99.9 of 100 is the maximum", hundred, 99.9, 100},
		{"p100 is the maximum", hundred, 100, 100},
		{"tiny p is the minimum", hundred, 0.001, 1},
		{"p99.9 of 1000 despite rounding", thousand, 99.9, 999},
		{"median of an even count is the lower middle", []int64{1, 2, 3, 4}, 50, 2},
		{"p75 of four", []int64{1, 2, 3, 4}, 75, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Rank(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Rank(p%v) = %d, want %d", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	// 1..1000 µs in reverse order: Summarize must sort.
	s := make([]int64, 1000)
	for i := range s {
		s[i] = int64(1000-i) * int64(time.Microsecond)
	}
	got := Summarize(s)
	want := Percentiles{Count: 1000, Min: 1, P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000, Mean: 500.5}
	if got != want {
		t.Errorf("Summarize = %+v\nwant %+v", got, want)
	}
	if z := Summarize(nil); z != (Percentiles{}) {
		t.Errorf("Summarize(nil) = %+v", z)
	}
}

func TestSeqSet(t *testing.T) {
	tests := []struct {
		name                         string
		arrivals                     []uint64
		sent                         uint64
		unique, dups, reordered, mis int64
	}{
		{"in order", []uint64{0, 1, 2, 3}, 4, 4, 0, 0, 0},
		{"tail lost", []uint64{0, 1}, 4, 2, 0, 0, 2},
		{"gap in the middle", []uint64{0, 1, 3}, 4, 3, 0, 0, 1},
		{"late arrival fills the gap and counts as reordered", []uint64{0, 2, 1, 3}, 4, 4, 0, 1, 0},
		{"two late arrivals", []uint64{3, 0, 1, 2}, 4, 4, 0, 3, 0},
		{"duplicate", []uint64{0, 1, 1, 2}, 3, 3, 1, 0, 0},
		{"duplicate of a late arrival", []uint64{1, 0, 0}, 2, 2, 1, 1, 0},
		{"across bitmap words", []uint64{0, 63, 64, 127, 128, 5000}, 5001, 6, 0, 0, 4995},
		{"arrival beyond sent is not missing", []uint64{0, 1, 2, 3}, 2, 4, 0, 0, 0},
		{"nothing arrived", nil, 70, 0, 0, 0, 70},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s SeqSet
			for _, a := range tt.arrivals {
				if !s.Add(a) {
					t.Fatalf("Add(%d) refused", a)
				}
			}
			if s.Unique != tt.unique || s.Dups != tt.dups || s.Reordered != tt.reordered {
				t.Errorf("unique %d dups %d reordered %d, want %d %d %d", s.Unique, s.Dups, s.Reordered, tt.unique, tt.dups, tt.reordered)
			}
			if got := s.Missing(tt.sent); got != tt.mis {
				t.Errorf("Missing(%d) = %d, want %d", tt.sent, got, tt.mis)
			}
		})
	}
	var s SeqSet
	if s.Add(maxSeq) {
		t.Error("a sequence number past the bound was accepted")
	}
}

func TestTracker(t *testing.T) {
	tr := NewTracker(2, true)
	pay := make([]byte, 64)
	add := func(pub uint32, seq uint64, stamp, now int64) {
		stampHeader(pay, pub, seq, stamp)
		tr.Add(pay, now)
	}
	add(0, 0, 100, 150)
	add(1, 0, 100, 300)
	add(0, 2, 200, 260)
	add(0, 1, 210, 400) // late
	add(1, 0, 0, 500)   // duplicate, no stamp
	add(7, 0, 0, 0)     // unknown publisher
	tr.Add([]byte("short"), 0)

	got := tr.Counts([]uint64{4, 2})
	want := Counts{Expected: 6, Unique: 4, Lost: 2, Dups: 1, Reordered: 1, Stray: 2}
	if got != want {
		t.Errorf("Counts = %+v\nwant %+v", got, want)
	}
	if wantLat := []int64{50, 200, 60, 190}; !equal(tr.Latency, wantLat) {
		t.Errorf("latency samples %v, want %v", tr.Latency, wantLat)
	}
	if p := got.LossPercent(); p < 33.3 || p > 33.4 {
		t.Errorf("LossPercent = %v", p)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHeaderRoundTrip(t *testing.T) {
	p := make([]byte, HeaderSize)
	stampHeader(p, 0xdeadbeef, 1<<40+3, -5)
	pub, seq, stamp, err := readHeader(p)
	if err != nil || pub != 0xdeadbeef || seq != 1<<40+3 || stamp != -5 {
		t.Errorf("got %x %d %d %v", pub, seq, stamp, err)
	}
	if _, _, _, err := readHeader(p[:HeaderSize-1]); err == nil {
		t.Error("short payload accepted")
	}
}

func TestParseProc(t *testing.T) {
	stat := []byte("1234 (my (odd) broker) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 31 0 0 20 0 9 0 100 0 0\n")
	d, err := parseStatCPU(stat)
	if err != nil || d != 2810*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 2.81s", d, err)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1")); err == nil {
		t.Error("short stat accepted")
	}
	status := []byte("Name:\tmosquitto\nVmPeak:\t  10000 kB\nVmRSS:\t    6120 kB\nThreads:\t1\n")
	if kb, err := parseVmRSS(status); err != nil || kb != 6120 {
		t.Errorf("parseVmRSS = %d, %v", kb, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tzombie\n")); err == nil {
		t.Error("status without VmRSS accepted")
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{Count(0), "0"},
		{Count(999), "999"},
		{Count(1000), "1,000"},
		{Count(-1234567), "-1,234,567"},
		{Rate(950), "950"},
		{Rate(1234), "1.2k"},
		{Rate(412345), "412k"},
		{Rate(1.26e6), "1.26M"},
		{US(85.4), "85 µs"},
		{US(1970), "1.97 ms"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestWriteTable(t *testing.T) {
	r := &Result{Scenario: FanIn, Label: "mamori", Protocol: "3.1.1", Publishers: 2, Subscribers: 1, PayloadSize: 64,
		Elapsed: 1, Sent: 10, SendRate: 10, Deliveries: &Counts{Expected: 10, Unique: 9, Lost: 1},
		BrokerCPU: 0.5, CPUPerUnit: 55.5, Unit: "delivered message"}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fanin against mamori", "lost", "1 (10.00%)", "55.50 µs per delivered message"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
