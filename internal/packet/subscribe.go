package packet

// Subscription is one topic filter of a SUBSCRIBE with its options.
type Subscription struct {
	Filter            []byte
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte // 0 send retained, 1 only for new subscriptions, 2 never
}

// Subscribe is the SUBSCRIBE packet.
type Subscribe struct {
	PacketID uint16
	Props    Properties
	Subs     []Subscription
}

// Type implements Packet.
func (*Subscribe) Type() Type { return SUBSCRIBE }

// Decode decodes a SUBSCRIBE body for version v.
func (s *Subscribe) Decode(body []byte, v Version) error {
	*s = Subscribe{}
	r := reader{b: body}
	var err error
	if s.PacketID, err = r.u16(); err != nil {
		return err
	}
	if s.PacketID == 0 {
		return ErrProtocol.With("SUBSCRIBE with packet identifier 0") // [MQTT-2.2.1-3]
	}
	if v == V5 {
		if err = decodeProps(&r, SUBSCRIBE, &s.Props); err != nil {
			return err
		}
	}
	for r.left() > 0 {
		var sub Subscription
		if sub.Filter, err = r.str(); err != nil {
			return err
		}
		o, err := r.u8()
		if err != nil {
			return err
		}
		sub.QoS = o & 0x03
		if sub.QoS == 3 {
			return ErrMalformedPacket.With("subscription QoS 3") // [MQTT-3.8.3-4]
		}
		if v == V5 {
			sub.NoLocal = o&0x04 != 0
			sub.RetainAsPublished = o&0x08 != 0
			sub.RetainHandling = (o >> 4) & 0x03
			if sub.RetainHandling == 3 {
				return ErrProtocol.With("retain handling 3")
			}
			if o&0xc0 != 0 {
				return ErrMalformedPacket.With("subscription options reserved bits set") // [MQTT-3.8.3-5]
			}
		} else if o&0xfc != 0 {
			return ErrMalformedPacket.With("subscription options reserved bits set") // [MQTT-3.8.3-4] (3.1.1)
		}
		s.Subs = append(s.Subs, sub)
	}
	if len(s.Subs) == 0 {
		return ErrProtocol.With("SUBSCRIBE without topic filters") // [MQTT-3.8.3-3]
	}
	return nil
}

// Append implements Packet.
func (s *Subscribe) Append(dst []byte, v Version) []byte {
	n := 2
	if v == V5 {
		n += s.Props.sizeWithLen()
	}
	for _, sub := range s.Subs {
		n += 3 + len(sub.Filter)
	}
	dst = AppendHeader(dst, SUBSCRIBE, 0x02, n)
	dst = appendU16(dst, s.PacketID)
	if v == V5 {
		dst = s.Props.appendProps(dst)
	}
	for _, sub := range s.Subs {
		dst = appendBin(dst, sub.Filter)
		o := sub.QoS
		if v == V5 {
			if sub.NoLocal {
				o |= 0x04
			}
			if sub.RetainAsPublished {
				o |= 0x08
			}
			o |= sub.RetainHandling << 4
		}
		dst = append(dst, o)
	}
	return dst
}

// Suback is the SUBACK packet; in MQTT 3.1.1, failure is code 0x80.
type Suback struct {
	PacketID uint16
	Props    Properties
	Codes    []ReasonCode
}

// Type implements Packet.
func (*Suback) Type() Type { return SUBACK }

// Decode decodes a SUBACK body for version v.
func (s *Suback) Decode(body []byte, v Version) error {
	*s = Suback{}
	return decodeAckList(body, v, SUBACK, &s.PacketID, &s.Props, &s.Codes)
}

// Append implements Packet.
func (s *Suback) Append(dst []byte, v Version) []byte {
	return appendAckList(dst, v, SUBACK, s.PacketID, &s.Props, s.Codes)
}

// Unsubscribe is the UNSUBSCRIBE packet.
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  [][]byte
}

// Type implements Packet.
func (*Unsubscribe) Type() Type { return UNSUBSCRIBE }

// Decode decodes an UNSUBSCRIBE body for version v.
func (u *Unsubscribe) Decode(body []byte, v Version) error {
	*u = Unsubscribe{}
	r := reader{b: body}
	var err error
	if u.PacketID, err = r.u16(); err != nil {
		return err
	}
	if u.PacketID == 0 {
		return ErrProtocol.With("UNSUBSCRIBE with packet identifier 0") // [MQTT-2.2.1-3]
	}
	if v == V5 {
		if err = decodeProps(&r, UNSUBSCRIBE, &u.Props); err != nil {
			return err
		}
	}
	for r.left() > 0 {
		f, err := r.str()
		if err != nil {
			return err
		}
		u.Filters = append(u.Filters, f)
	}
	if len(u.Filters) == 0 {
		return ErrProtocol.With("UNSUBSCRIBE without topic filters") // [MQTT-3.10.3-2]
	}
	return nil
}

// Append implements Packet.
func (u *Unsubscribe) Append(dst []byte, v Version) []byte {
	n := 2
	if v == V5 {
		n += u.Props.sizeWithLen()
	}
	for _, f := range u.Filters {
		n += 2 + len(f)
	}
	dst = AppendHeader(dst, UNSUBSCRIBE, 0x02, n)
	dst = appendU16(dst, u.PacketID)
	if v == V5 {
		dst = u.Props.appendProps(dst)
	}
	for _, f := range u.Filters {
		dst = appendBin(dst, f)
	}
	return dst
}

// Unsuback is the UNSUBACK packet; before MQTT 5 it carries no codes.
type Unsuback struct {
	PacketID uint16
	Props    Properties
	Codes    []ReasonCode
}

// Type implements Packet.
func (*Unsuback) Type() Type { return UNSUBACK }

// Decode decodes an UNSUBACK body for version v.
func (u *Unsuback) Decode(body []byte, v Version) error {
	*u = Unsuback{}
	if v != V5 {
		r := reader{b: body}
		var err error
		if u.PacketID, err = r.u16(); err != nil {
			return err
		}
		if r.left() != 0 {
			return ErrMalformedPacket.With("extra bytes after UNSUBACK")
		}
		return nil
	}
	return decodeAckList(body, v, UNSUBACK, &u.PacketID, &u.Props, &u.Codes)
}

// Append implements Packet.
func (u *Unsuback) Append(dst []byte, v Version) []byte {
	if v != V5 {
		return AppendAck(dst, UNSUBACK, u.PacketID)
	}
	return appendAckList(dst, v, UNSUBACK, u.PacketID, &u.Props, u.Codes)
}

func decodeAckList(body []byte, v Version, t Type, id *uint16, props *Properties, codes *[]ReasonCode) error {
	r := reader{b: body}
	var err error
	if *id, err = r.u16(); err != nil {
		return err
	}
	if v == V5 {
		if err = decodeProps(&r, t, props); err != nil {
			return err
		}
	}
	for r.left() > 0 {
		c, _ := r.u8()
		*codes = append(*codes, ReasonCode(c))
	}
	if len(*codes) == 0 {
		return ErrProtocol.With(t.String() + " without reason codes")
	}
	return nil
}

func appendAckList(dst []byte, v Version, t Type, id uint16, props *Properties, codes []ReasonCode) []byte {
	n := 2 + len(codes)
	if v == V5 {
		n += props.sizeWithLen()
	}
	dst = AppendHeader(dst, t, 0, n)
	dst = appendU16(dst, id)
	if v == V5 {
		dst = props.appendProps(dst)
	}
	for _, c := range codes {
		dst = append(dst, byte(c))
	}
	return dst
}
