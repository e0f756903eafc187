package bench

import (
	"bufio"
	"encoding/binary"
	"net"
	"sync/atomic"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// publisher sends one sequence of messages on its own connection.
type publisher struct {
	c      *mqttConn
	idx    uint32
	qos    byte
	tmpl   []byte // one encoded PUBLISH, patched in place for each message
	payOff int    // offset of the payload in tmpl
	idOff  int    // offset of the packet identifier in tmpl (QoS 1)
	cw     countingWriter
	w      *bufio.Writer
	seq    uint64 // messages handed to w
	window int

	// QoS 1 acknowledgements, counted by ackLoop.
	acked   atomic.Uint64
	refused atomic.Uint64 // MQTT 5 PUBACKs with a failure reason code
	ackWake chan struct{}
	ackDone chan struct{}
	ackErr  error
}

// countingWriter counts the bytes the socket accepted, so that the number
// of messages really sent is known even when a write is cut short.
type countingWriter struct {
	nc net.Conn
	n  int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.nc.Write(b)
	w.n += int64(n)
	return n, err
}

// writeBuffer is large so that an unthrottled QoS 0 publisher makes one
// system call per several hundred messages, as a busy real client would.
const writeBuffer = 64 << 10

func newPublisher(c *mqttConn, idx uint32, topic string, cfg *Config) *publisher {
	p := &publisher{c: c, idx: idx, qos: cfg.QoS, window: min(cfg.Window, c.recvMax)}
	pub := &packet.Publish{Topic: []byte(topic), QoS: cfg.QoS, Payload: make([]byte, cfg.PayloadSize)}
	if cfg.QoS > 0 {
		pub.PacketID = 1
		p.idOff = pub.PacketIDOffset(c.v)
	}
	p.tmpl = pub.Append(nil, c.v)
	p.payOff = len(p.tmpl) - cfg.PayloadSize
	p.cw.nc = c.nc
	p.w = bufio.NewWriterSize(&p.cw, writeBuffer)
	if cfg.QoS > 0 {
		p.ackWake = make(chan struct{}, 1)
		p.ackDone = make(chan struct{})
	}
	return p
}

// sent is the number of whole messages the socket accepted.
func (p *publisher) sent() uint64 { return uint64(p.cw.n / int64(len(p.tmpl))) }

// pace decides how many messages a publisher may send now.
type pace struct {
	start time.Time
	rate  float64 // messages per second for this publisher; 0: unlimited
	limit uint64  // messages in all; 0: unlimited
}

// run publishes until stop is closed or the limit is reached. base is the
// clock the latency stamps are measured from (stamp false: no stamps).
// progress is advanced once per batch.
func (p *publisher) run(stop <-chan struct{}, pc pace, batch int, base time.Time, stamp bool, progress *atomic.Int64) error {
	for {
		select {
		case <-stop:
			return p.w.Flush()
		default:
		}
		n := uint64(batch)
		if pc.limit > 0 {
			if p.seq >= pc.limit {
				return p.w.Flush()
			}
			n = min(n, pc.limit-p.seq)
		}
		if pc.rate > 0 {
			due := uint64(time.Since(pc.start).Seconds() * pc.rate)
			if due <= p.seq {
				if err := p.w.Flush(); err != nil {
					return err
				}
				// Sleep until the next message is due; the timer's
				// granularity makes messages leave in small bursts, each
				// stamped when it is written.
				next := pc.start.Add(time.Duration(float64(p.seq+1) / pc.rate * float64(time.Second)))
				sleep(stop, time.Until(next))
				continue
			}
			n = min(n, due-p.seq)
		}
		if p.qos > 0 {
			inflight := p.seq - p.acked.Load()
			if inflight >= uint64(p.window) {
				if err := p.w.Flush(); err != nil {
					return err
				}
				select {
				case <-p.ackWake:
				case <-p.ackDone:
					return p.ackErr
				case <-stop:
					return nil
				}
				continue
			}
			n = min(n, uint64(p.window)-inflight)
		}
		pay := p.tmpl[p.payOff:]
		for range n {
			var ts int64
			if stamp {
				ts = int64(time.Since(base))
			}
			stampHeader(pay, p.idx, p.seq, ts)
			if p.qos > 0 {
				// Identifiers cycle through 1..65535; the window keeps
				// at most 65535 of them in flight.
				binary.BigEndian.PutUint16(p.tmpl[p.idOff:], uint16(p.seq%65535)+1)
			}
			if _, err := p.w.Write(p.tmpl); err != nil {
				return err
			}
			p.seq++
		}
		// Throttled and windowed publishers send what they have at once:
		// holding messages in the buffer would add to their latency and
		// keep the window from refilling.
		if pc.rate > 0 || p.qos > 0 {
			if err := p.w.Flush(); err != nil {
				return err
			}
		}
		progress.Add(int64(n))
	}
}

// ackLoop counts PUBACKs for a QoS 1 publisher until the connection ends.
// It wakes the publisher once per read, not per acknowledgement.
func (p *publisher) ackLoop() {
	defer close(p.ackDone)
	var ack packet.Ack
	for {
		if err := p.c.r.Fill(); err != nil {
			p.ackErr = err
			return
		}
		var n, bad uint64
		for {
			h, body, ok, err := p.c.r.Next()
			if err != nil {
				p.ackErr = err
				return
			}
			if !ok {
				break
			}
			if h.Type != packet.PUBACK {
				continue
			}
			if err := ack.Decode(h.Type, body, p.c.v); err != nil {
				p.ackErr = err
				return
			}
			n++
			if ack.Code >= 0x80 {
				bad++
			}
		}
		if bad > 0 {
			p.refused.Add(bad)
		}
		if n > 0 {
			p.acked.Add(n)
			select {
			case p.ackWake <- struct{}{}:
			default:
			}
		}
	}
}

// sleep waits for d or until stop is closed.
func sleep(stop <-chan struct{}, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	}
}
