package bench

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"slices"
	"time"
)

// Every benchmark payload starts with this header, so that the receiving
// side can attribute each message to its publisher, place it in that
// publisher's sequence and (in the latency scenario) tell how long it took.
// The rest of the payload is zeros.
const (
	offPublisher = 0  // uint32: publisher index within the run
	offSeq       = 4  // uint64: per-publisher sequence number from 0
	offStamp     = 12 // int64: nanoseconds since the run's clock base, 0 when unused
	// HeaderSize is the smallest payload the benchmark can send.
	HeaderSize = 20
)

// stampHeader writes the header into payload, which must be at least
// HeaderSize bytes.
func stampHeader(payload []byte, pub uint32, seq uint64, stamp int64) {
	binary.BigEndian.PutUint32(payload[offPublisher:], pub)
	binary.BigEndian.PutUint64(payload[offSeq:], seq)
	binary.BigEndian.PutUint64(payload[offStamp:], uint64(stamp))
}

// errShortPayload marks a message that is not one of ours.
var errShortPayload = errors.New("payload shorter than the benchmark header")

// readHeader is the inverse of stampHeader.
func readHeader(payload []byte) (pub uint32, seq uint64, stamp int64, err error) {
	if len(payload) < HeaderSize {
		return 0, 0, 0, errShortPayload
	}
	return binary.BigEndian.Uint32(payload[offPublisher:]),
		binary.BigEndian.Uint64(payload[offSeq:]),
		int64(binary.BigEndian.Uint64(payload[offStamp:])), nil
}

// SeqSet records which sequence numbers of one publisher have arrived at one
// subscriber. It keeps a bitmap rather than a high-water mark so that a
// message counts once however late it comes: losses, duplicates and
// reordering are then exact counts, not estimates. The bitmap costs one bit
// per message sent, 1.2 MiB for ten million.
type SeqSet struct {
	bits      []uint64
	next      uint64 // highest sequence number seen + 1
	Unique    int64  // distinct sequence numbers received
	Dups      int64  // arrivals of a sequence number already received
	Reordered int64  // first arrivals below the highest number already seen
}

// maxSeq bounds the bitmap (128 MiB of bits); a sequence number past it is
// not ours or is corrupt, and is counted as a duplicate-free stray instead
// of growing memory without bound.
const maxSeq = 1 << 30

// Add records the arrival of seq. It reports false for a sequence number
// too large to be one of ours.
func (s *SeqSet) Add(seq uint64) bool {
	if seq >= maxSeq {
		return false
	}
	w := int(seq / 64)
	if w >= len(s.bits) {
		n := max(2*len(s.bits), w+1, 64)
		s.bits = append(s.bits, make([]uint64, n-len(s.bits))...)
	}
	m := uint64(1) << (seq % 64)
	if s.bits[w]&m != 0 {
		s.Dups++
		return true
	}
	s.bits[w] |= m
	s.Unique++
	if seq+1 < s.next {
		s.Reordered++
	} else {
		s.next = seq + 1
	}
	return true
}

// Missing is the number of sequence numbers in [0, sent) not received.
func (s *SeqSet) Missing(sent uint64) int64 {
	if sent > maxSeq {
		sent = maxSeq
	}
	var got int64
	full := int(sent / 64)
	for i := 0; i < full && i < len(s.bits); i++ {
		got += int64(bits.OnesCount64(s.bits[i]))
	}
	if rem := sent % 64; rem != 0 && full < len(s.bits) {
		got += int64(bits.OnesCount64(s.bits[full] & (uint64(1)<<rem - 1)))
	}
	return int64(sent) - got
}

// Tracker is one subscriber's view of every publisher's sequence. It is
// owned by the subscriber's read goroutine and read after it stops.
type Tracker struct {
	pubs    []SeqSet
	Stray   int64 // messages that did not carry a valid benchmark header
	Latency []int64
	// keepLatency makes Add record publish-to-delivery times.
	keepLatency bool
}

// NewTracker returns a Tracker for publishers numbered 0..pubs-1.
func NewTracker(pubs int, latency bool) *Tracker {
	return &Tracker{pubs: make([]SeqSet, pubs), keepLatency: latency}
}

// maxSamples caps the latency samples kept per subscriber (8 MiB); a
// fixed-rate run of ten minutes at 10k msg/s stays under it.
const maxSamples = 1 << 20

// Add records one received payload; now is the receiver's clock in the same
// base as the publisher's stamp.
func (t *Tracker) Add(payload []byte, now int64) {
	pub, seq, stamp, err := readHeader(payload)
	if err != nil || int(pub) >= len(t.pubs) || !t.pubs[pub].Add(seq) {
		t.Stray++
		return
	}
	if t.keepLatency && stamp > 0 && len(t.Latency) < maxSamples {
		t.Latency = append(t.Latency, now-stamp)
	}
}

// Counts sums the tracker over publishers, given how many messages each
// publisher had sent (or had acknowledged, for QoS 1) when it stopped.
func (t *Tracker) Counts(sent []uint64) Counts {
	var c Counts
	for i := range t.pubs {
		s := &t.pubs[i]
		c.Unique += s.Unique
		c.Dups += s.Dups
		c.Reordered += s.Reordered
		if i < len(sent) {
			c.Expected += int64(sent[i])
			c.Lost += s.Missing(sent[i])
		}
	}
	c.Stray = t.Stray
	return c
}

// Counts is the outcome of a run's deliveries.
type Counts struct {
	Expected  int64 `json:"expected"` // deliveries owed: messages accepted × subscribers
	Unique    int64 `json:"received"` // distinct messages delivered
	Lost      int64 `json:"lost"`     // owed but never delivered
	Dups      int64 `json:"duplicates"`
	Reordered int64 `json:"reordered"`
	Stray     int64 `json:"stray"` // deliveries that were not ours
}

// Add accumulates o into c.
func (c *Counts) Add(o Counts) {
	c.Expected += o.Expected
	c.Unique += o.Unique
	c.Lost += o.Lost
	c.Dups += o.Dups
	c.Reordered += o.Reordered
	c.Stray += o.Stray
}

// LossPercent is the share of owed deliveries that never arrived.
func (c Counts) LossPercent() float64 {
	if c.Expected == 0 {
		return 0
	}
	return 100 * float64(c.Lost) / float64(c.Expected)
}

// Percentiles summarises a latency distribution in microseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
	Mean  float64 `json:"mean_us"`
}

// Summarize computes the percentiles of samples (nanoseconds) by the
// nearest-rank method: the p-th percentile is the smallest sample such that
// at least p% of the samples are less than or equal to it, so every
// reported value is a latency that was actually observed. samples is
// sorted in place.
func Summarize(samples []int64) Percentiles {
	if len(samples) == 0 {
		return Percentiles{}
	}
	slices.Sort(samples)
	var sum float64
	for _, s := range samples {
		sum += float64(s)
	}
	us := func(ns int64) float64 { return float64(ns) / float64(time.Microsecond) }
	return Percentiles{
		Count: int64(len(samples)),
		Min:   us(samples[0]),
		P50:   us(Rank(samples, 50)),
		P90:   us(Rank(samples, 90)),
		P99:   us(Rank(samples, 99)),
		P999:  us(Rank(samples, 99.9)),
		Max:   us(samples[len(samples)-1]),
		Mean:  sum / float64(len(samples)) / float64(time.Microsecond),
	}
}

// Rank is the nearest-rank p-th percentile of sorted (0 < p <= 100).
func Rank(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	// A small epsilon keeps 99.9% of 1000 at rank 999 despite floating
	// point (0.999*1000 = 998.9999999999999).
	k := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	k = max(1, min(k, len(sorted)))
	return sorted[k-1]
}
