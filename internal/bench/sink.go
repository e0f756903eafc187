package bench

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// sink is a subscriber: it counts and tracks every PUBLISH it receives and
// acknowledges QoS 1 ones.
type sink struct {
	c     *mqttConn
	track *Tracker
	base  time.Time
	// last is when the latest message arrived, in nanoseconds since base.
	last atomic.Int64
	done chan struct{}
	err  error
}

// run reads until the connection ends. Everything one read returned is
// handled before the next read, and its PUBACKs go out in one write.
func (s *sink) run(progress *atomic.Int64) {
	defer close(s.done)
	var (
		pub  packet.Publish
		acks []byte
	)
	for {
		if err := s.c.r.Fill(); err != nil {
			s.err = err
			return
		}
		// One clock reading per read: the messages it returned arrived
		// together, and the latency samples need no finer grain.
		now := int64(time.Since(s.base))
		n := 0
		for {
			h, body, ok, err := s.c.r.Next()
			if err != nil {
				s.err = err
				return
			}
			if !ok {
				break
			}
			if h.Type != packet.PUBLISH {
				continue
			}
			if err := pub.Decode(h.Flags, body, s.c.v); err != nil {
				s.err = fmt.Errorf("bad PUBLISH: %w", err)
				return
			}
			s.track.Add(pub.Payload, now)
			if pub.QoS == 1 {
				acks = packet.AppendAck(acks, packet.PUBACK, pub.PacketID)
			}
			n++
		}
		if len(acks) > 0 {
			if _, err := s.c.nc.Write(acks); err != nil {
				s.err = err
				return
			}
			acks = acks[:0]
		}
		if n > 0 {
			progress.Add(int64(n))
			s.last.Store(now)
		}
	}
}
