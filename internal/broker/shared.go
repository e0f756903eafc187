package broker

import "github.com/mamori-mqtt/mamori/internal/packet"

// encCache holds the encodings of one message being routed, so that every
// subscriber that receives the same bytes (same protocol family, QoS and
// RETAIN flag, no per-subscriber property) gets a copy of one encoding
// instead of its own encode. QoS>0 encodings carry a placeholder packet
// identifier that is patched in the receiver's buffer.
type encCache struct {
	buf  []byte
	slot [2][3][2]encSlot // [v5][qos][retain]
}

type encSlot struct {
	ok       bool
	off, n   int
	idOffset int
}

func (e *encCache) reset() {
	if cap(e.buf) > keepOutCap {
		e.buf = nil // one large message must not pin a large buffer
	}
	e.buf = e.buf[:0]
	e.slot = [2][3][2]encSlot{}
}

// get returns the encoding of in for the family of version v.
func (e *encCache) get(in *inbound, v packet.Version, qos byte, retain bool) ([]byte, int) {
	fam := 0
	if v == packet.V5 {
		fam = 1
	}
	r := 0
	if retain {
		r = 1
	}
	s := &e.slot[fam][qos][r]
	if !s.ok {
		p := packet.Publish{QoS: qos, Retain: retain, Topic: stringBytes(in.topic), Payload: in.payload}
		if qos > 0 {
			p.PacketID = 0xffff // placeholder, patched per receiver
		}
		if fam == 1 {
			p.Props = *in.props
			p.Props.SubscriptionIDs = nil
			p.Props.Clear(packet.PropSubscriptionID)
			if p.Props.Present(packet.PropMessageExpiry) {
				// Message expiry goes last, as Mosquitto sends it.
				p.Props.Clear(packet.PropMessageExpiry)
				p.Props.Set(packet.PropMessageExpiry)
			}
		}
		s.off = len(e.buf)
		e.buf = p.Append(e.buf, v)
		s.n = len(e.buf) - s.off
		s.idOffset = p.PacketIDOffset(v)
		s.ok = true
	}
	return e.buf[s.off : s.off+s.n], s.idOffset
}

// shareable reports whether c receives exactly the common encoding: no
// mount point to strip, no subscription identifier and no outbound topic
// alias to insert.
func (c *conn) shareable(subID uint32) bool {
	return c.l.MountPoint == "" && (c.version != packet.V5 || (subID == 0 && c.clientAliasMx == 0))
}

// sendShared appends the common encoding of in to c's output, patching the
// packet identifier. It applies the same limits as sendPublish.
func (c *conn) sendShared(in *inbound, qos byte, id uint16, retain bool) sendResult {
	enc, idOff := in.enc.get(in, c.version, qos, retain)
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.closed {
		return sendClosed
	}
	if qos == 0 && len(c.out) >= c.b.o().MaxOutBytes {
		c.b.stats.MessagesDropped.Add(1)
		return sendDropped
	}
	if c.clientMaxPkt > 0 && len(enc) > int(c.clientMaxPkt) || len(enc) > maxEncodable {
		c.b.stats.MessagesDropped.Add(1)
		return sendTooLarge
	}
	start := len(c.out)
	c.out = append(c.out, enc...)
	if qos > 0 {
		c.out[start+idOff] = byte(id >> 8)
		c.out[start+idOff+1] = byte(id)
	}
	c.b.stats.MessagesSent.Add(1)
	c.b.stats.PublishSent.Add(1)
	return sent
}
