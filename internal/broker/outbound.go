package broker

import (
	"strings"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// keepOutCap bounds scratch buffers kept between messages (encodings).
const keepOutCap = 16 << 10

// maxKeptOut is the largest output buffer a busy connection keeps between
// writes; larger ones (after a burst to a slow reader) are dropped.
const maxKeptOut = 1 << 20

// idleRelease is how long a connection's output must have been quiet
// before the sweeper frees its buffers.
const idleRelease = 10 * time.Second

// releaseIfIdle frees the output buffers of a connection that has written
// nothing for idleRelease, so idle connections hold no buffers.
func (c *conn) releaseIfIdle(now int64) {
	c.outMu.Lock()
	if !c.writing && len(c.out) == 0 && now-c.lastOut > int64(idleRelease) {
		c.out, c.spare = nil, nil
	}
	c.outMu.Unlock()
}

// writePacket encodes p onto the connection's output.
func (c *conn) writePacket(p packet.Packet) {
	c.outMu.Lock()
	if !c.closed {
		c.out = p.Append(c.out, c.version)
	}
	c.outMu.Unlock()
}

// writeAck encodes a bare acknowledgement onto the output.
func (c *conn) writeAck(t packet.Type, id uint16) {
	c.outMu.Lock()
	if !c.closed {
		c.out = packet.AppendAck(c.out, t, id)
	}
	c.outMu.Unlock()
}

// outFull reports whether the output holds more than MaxOutBytes: QoS 0
// deliveries are then dropped and QoS>0 ones wait in the session queue.
func (c *conn) outFull() bool {
	c.outMu.Lock()
	full := len(c.out) >= c.b.o().MaxOutBytes
	c.outMu.Unlock()
	return full
}

// touch records that target has new output; the read loop flushes every
// touched connection once per batch of packets instead of once per message.
func (c *conn) touch(target *conn) {
	if c.w == nil {
		// CONNECT handling (the CONNACK and a resumed session's messages):
		// the read loop's first batch flushes it.
		c.w = workPool.Get().(*work)
	}
	if target.kickMark.CompareAndSwap(false, true) {
		c.w.touched = append(c.w.touched, target)
	}
}

func (c *conn) flushTouched() {
	for i, t := range c.w.touched {
		t.kickMark.Store(false)
		if t == c {
			// The read loop writes its own acknowledgements itself when no
			// writer is running: no goroutine to start for a PUBACK. Other
			// connections get their writer goroutine, so that fan-out
			// writes run in parallel and a slow subscriber never blocks
			// the publisher (writing from the publisher's goroutine was
			// measured: fan-out fell from 3.4M to 0.12M deliveries/s).
			c.flushInline()
		} else {
			t.kick()
		}
		c.w.touched[i] = nil
	}
	c.w.touched = c.w.touched[:0]
}

// flushInline runs the writer in the calling goroutine if none is running.
func (c *conn) flushInline() {
	c.outMu.Lock()
	start := !c.writing && !c.closed && (len(c.out) > 0 || c.closing)
	if start {
		c.writing = true
	}
	c.outMu.Unlock()
	if start {
		c.writeLoop()
	}
}

// kick starts the writer goroutine if there is output and none is running.
func (c *conn) kick() {
	c.outMu.Lock()
	start := !c.writing && !c.closed && (len(c.out) > 0 || c.closing)
	if start {
		c.writing = true
	}
	c.outMu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// writeLoop writes the output until it is empty, swapping buffers so that
// publishers keep appending while a write is in progress; everything queued
// since the last write goes out in one system call.
func (c *conn) writeLoop() {
	for {
		c.outMu.Lock()
		if c.closed {
			c.writing = false
			c.out, c.spare = nil, nil
			c.outMu.Unlock()
			return
		}
		if len(c.out) == 0 {
			c.writing = false
			closing, why := c.closing, c.closeReason
			// Buffers are kept while the connection is busy, so a stream of
			// bursts does not regrow them each time; the broker's sweeper
			// drops them once the connection has been quiet for a while.
			if cap(c.out) > maxKeptOut {
				c.out = nil
			}
			if cap(c.spare) > maxKeptOut {
				c.spare = nil
			}
			c.lastOut = time.Now().UnixNano()
			c.outMu.Unlock()
			if closing {
				c.closeNow(why)
				return
			}
			c.afterDrain()
			return
		}
		buf := c.out
		c.out = c.spare[:0]
		c.spare = nil
		nc := c.nc
		c.outMu.Unlock()

		var err error
		n := 0
		if nc == nil {
			// Released (park_linux.go): straight to the socket; only what
			// it cannot take now needs a net.Conn to wait on. While this
			// writer runs the connection is not released again.
			n, nc, err = c.rawWrite(buf)
		}
		if err == nil && n < len(buf) {
			_ = nc.SetWriteDeadline(time.Now().Add(c.b.o().WriteTimeout))
			var m int
			m, err = nc.Write(buf[n:])
			n += m
		}
		c.b.stats.BytesSent.Add(uint64(n))
		if err != nil {
			c.closeNow("write failed: " + err.Error())
			c.outMu.Lock()
			c.writing = false
			c.outMu.Unlock()
			return
		}
		c.outMu.Lock()
		if c.spare == nil && cap(buf) <= maxKeptOut {
			c.spare = buf[:0]
		}
		c.outMu.Unlock()
	}
}

// afterDrain lets the session move queued messages into the window once
// the socket has taken everything.
func (c *conn) afterDrain() {
	s := c.sess
	if s == nil {
		return
	}
	s.mu.Lock()
	moved := s.conn == c && (s.queue.len() > 0 || len(s.resendQ) > 0) && s.pump(time.Now())
	s.mu.Unlock()
	if moved {
		c.kick()
	}
}

// sendPublish encodes one PUBLISH for this connection. It applies the
// outbound topic alias, the subscription identifier and the client's
// Maximum Packet Size; a message too large for the client is not sent
// [MQTT-3.1.2-24] (sendTooLarge). QoS 0 is dropped when the output is over
// its limit (sendDropped). On a closed connection nothing is sent
// (sendClosed): a QoS>0 message stays in flight for the next connection.
func (c *conn) sendPublish(topicName string, payload []byte, props *packet.Properties,
	qos byte, id uint16, retain, dup bool, subID uint32, expiry uint32, hasExpiry bool) sendResult {
	// A client of a listener with a mount point sees topics without it.
	topicName = strings.TrimPrefix(topicName, c.l.MountPoint)
	p := packet.Publish{Dup: dup, QoS: qos, Retain: retain, PacketID: id, Payload: payload}
	v5 := c.version == packet.V5
	var ids [1]uint32
	if v5 {
		// Mosquitto's order: subscription identifier, the publisher's
		// properties in its order, the remaining message expiry last.
		p.Props = *props
		p.Props.SubscriptionIDs = nil
		p.Props.Clear(packet.PropSubscriptionID)
		if !hasExpiry && p.Props.Present(packet.PropMessageExpiry) {
			// A live message forwards the publisher's value unchanged.
			hasExpiry, expiry = true, p.Props.MessageExpiry
		}
		p.Props.Clear(packet.PropMessageExpiry)
		if subID != 0 {
			ids[0] = subID
			p.Props.SubscriptionIDs = ids[:]
			p.Props.SetFirst(packet.PropSubscriptionID)
		}
		if hasExpiry {
			p.Props.Set(packet.PropMessageExpiry)
			p.Props.MessageExpiry = expiry
		}
	}
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.closed {
		return sendClosed
	}
	if qos == 0 && len(c.out) >= c.b.o().MaxOutBytes {
		c.b.stats.MessagesDropped.Add(1)
		return sendDropped
	}
	p.Topic = stringBytes(topicName)
	var newAlias uint16 // assigned by this message, recorded once it is sent
	if v5 && c.clientAliasMx > 0 {
		if a, ok := c.aliasOut[topicName]; ok {
			p.Props.Set(packet.PropTopicAlias)
			p.Props.TopicAlias = a
			p.Topic = nil // the alias stands for the topic
		} else if len(c.aliasOut) < int(c.clientAliasMx) {
			newAlias = uint16(len(c.aliasOut) + 1)
			p.Props.Set(packet.PropTopicAlias)
			p.Props.TopicAlias = newAlias
		}
	}
	if size := p.Size(c.version); c.clientMaxPkt > 0 && size > int(c.clientMaxPkt) || size > maxEncodable {
		c.b.stats.MessagesDropped.Add(1)
		return sendTooLarge
	}
	if newAlias != 0 {
		if c.aliasOut == nil {
			c.aliasOut = make(map[string]uint16)
		}
		// The topic may point into a publisher's read buffer: keep a copy.
		c.aliasOut[strings.Clone(topicName)] = newAlias
	}
	c.out = p.Append(c.out, c.version)
	c.b.stats.MessagesSent.Add(1)
	c.b.stats.PublishSent.Add(1)
	return sent
}

// maxEncodable is the largest packet MQTT can frame: a message received
// at that size grows past it for some receivers (the mount point stripped
// or not, MQTT 5 properties, a subscription identifier) and cannot be
// sent to them — its remaining length would not fit the variable byte
// integer.
const maxEncodable = packet.MaxRemaining + 5

// sendResult is what sendPublish did with a message.
type sendResult int

const (
	sent sendResult = iota
	sendDropped
	sendTooLarge
	sendClosed
)

// sendOwned sends a broker-owned message (queued, retained, will, resumed).
func (c *conn) sendOwned(om *outMsg, now time.Time) sendResult {
	return c.sendOwnedFlags(om, now, false)
}

// sendOwnedDup retransmits an in-flight message with DUP set [MQTT-3.3.1-1].
func (c *conn) sendOwnedDup(om *outMsg, now time.Time) sendResult {
	return c.sendOwnedFlags(om, now, true)
}

func (c *conn) sendOwnedFlags(om *outMsg, now time.Time, dup bool) sendResult {
	m := om.msg
	var exp uint32
	hasExp := !m.Expiry.IsZero()
	if hasExp {
		exp = m.remaining(now)
	}
	return c.sendPublish(m.Topic, m.Payload, m.props(), om.qos, om.id, om.retain, dup, om.subID, exp, hasExp)
}
