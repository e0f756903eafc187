package packet

// Publish is the PUBLISH packet. After Decode, Topic, Payload and the
// property byte slices alias the decoded body.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    []byte
	PacketID uint16
	Props    Properties
	Payload  []byte
}

// Type implements Packet.
func (*Publish) Type() Type { return PUBLISH }

// Decode decodes a PUBLISH with the fixed-header flags and body, for a
// connection of version v. It does not allocate (unless the packet has
// non-adjacent user properties), so the broker can reuse one Publish for
// every message it reads.
func (p *Publish) Decode(flags byte, body []byte, v Version) error {
	p.Dup = flags&0x08 != 0
	p.QoS = (flags >> 1) & 0x03
	p.Retain = flags&0x01 != 0
	p.PacketID = 0
	if p.Props.Has != 0 || p.Props.User != nil {
		p.Props.Reset() // skipped for MQTT 3, whose packets never set any
	}
	if p.QoS == 3 {
		return ErrMalformedPacket.With("PUBLISH with QoS 3") // [MQTT-3.3.1-4]
	}
	if p.QoS == 0 && p.Dup {
		return ErrMalformedPacket.With("DUP set on a QoS 0 PUBLISH") // [MQTT-3.3.1-2]
	}
	r := reader{b: body}
	var err error
	if p.Topic, err = r.str(); err != nil {
		return err
	}
	if p.QoS > 0 {
		if p.PacketID, err = r.u16(); err != nil {
			return err
		}
		if p.PacketID == 0 {
			return ErrProtocol.With("PUBLISH with packet identifier 0") // [MQTT-2.2.1-3]
		}
	}
	if v == V5 {
		if err = decodeProps(&r, PUBLISH, &p.Props); err != nil {
			return err
		}
	}
	p.Payload = r.rest()
	return nil
}

// Flags is the fixed-header flag nibble for p.
func (p *Publish) Flags() byte {
	f := p.QoS << 1
	if p.Dup {
		f |= 0x08
	}
	if p.Retain {
		f |= 0x01
	}
	return f
}

func (p *Publish) remaining(v Version) int {
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if v == V5 {
		n += p.Props.sizeWithLen()
	}
	return n
}

// Size is the encoded size of p for version v, used to honour a peer's
// Maximum Packet Size before encoding anything.
func (p *Publish) Size(v Version) int {
	n := p.remaining(v)
	return 1 + VarIntLen(n) + n
}

// PacketIDOffset is where the two packet-identifier bytes start in p's
// encoding for version v; the broker encodes a QoS>0 PUBLISH once and
// patches the identifier for each receiver.
func (p *Publish) PacketIDOffset(v Version) int {
	return 1 + VarIntLen(p.remaining(v)) + 2 + len(p.Topic)
}

// Append implements Packet.
func (p *Publish) Append(dst []byte, v Version) []byte {
	dst = AppendHeader(dst, PUBLISH, p.Flags(), p.remaining(v))
	dst = appendBin(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendU16(dst, p.PacketID)
	}
	if v == V5 {
		dst = p.Props.appendProps(dst)
	}
	return append(dst, p.Payload...)
}

// Ack is PUBACK, PUBREC, PUBREL or PUBCOMP.
type Ack struct {
	Kind     Type
	PacketID uint16
	Code     ReasonCode
	Props    Properties
}

// Type implements Packet.
func (a *Ack) Type() Type { return a.Kind }

// Decode decodes an acknowledgement body of type t.
func (a *Ack) Decode(t Type, body []byte, v Version) error {
	a.Kind = t
	a.Code = Success
	a.Props.Reset()
	r := reader{b: body}
	var err error
	if a.PacketID, err = r.u16(); err != nil {
		return err
	}
	if a.PacketID == 0 {
		return ErrProtocol.With(t.String() + " with packet identifier 0")
	}
	if v == V5 && r.left() > 0 {
		c, _ := r.u8()
		a.Code = ReasonCode(c)
		if r.left() > 0 {
			if err = decodeProps(&r, t, &a.Props); err != nil {
				return err
			}
		}
	}
	if r.left() != 0 {
		return ErrMalformedPacket.With("extra bytes after " + t.String())
	}
	return nil
}

// Append implements Packet. In MQTT 5 the reason code and properties are
// omitted when they are Success and empty [MQTT-3.4.2-1].
func (a *Ack) Append(dst []byte, v Version) []byte {
	flags := byte(0)
	if a.Kind == PUBREL {
		flags = 0x02
	}
	if v != V5 || (a.Code == Success && a.Props.size() == 0) {
		dst = AppendHeader(dst, a.Kind, flags, 2)
		return appendU16(dst, a.PacketID)
	}
	ps := a.Props.size()
	n := 3
	if ps > 0 {
		n += VarIntLen(ps) + ps
	}
	dst = AppendHeader(dst, a.Kind, flags, n)
	dst = appendU16(dst, a.PacketID)
	dst = append(dst, byte(a.Code))
	if ps > 0 {
		dst = a.Props.appendProps(dst)
	}
	return dst
}

// AppendAck appends a bare acknowledgement (success, no properties) without
// building an Ack: the common case on the hot path.
func AppendAck(dst []byte, t Type, id uint16) []byte {
	flags := byte(0)
	if t == PUBREL {
		flags = 0x02
	}
	return append(dst, byte(t)<<4|flags, 2, byte(id>>8), byte(id))
}
