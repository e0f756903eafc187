package packet

// Pingreq is the PINGREQ packet.
type Pingreq struct{}

// Type implements Packet.
func (Pingreq) Type() Type { return PINGREQ }

// Append implements Packet.
func (Pingreq) Append(dst []byte, _ Version) []byte { return append(dst, byte(PINGREQ)<<4, 0) }

// Pingresp is the PINGRESP packet.
type Pingresp struct{}

// Type implements Packet.
func (Pingresp) Type() Type { return PINGRESP }

// Append implements Packet.
func (Pingresp) Append(dst []byte, _ Version) []byte { return append(dst, byte(PINGRESP)<<4, 0) }

// Disconnect is the DISCONNECT packet; before MQTT 5 it has no body.
type Disconnect struct {
	Code  ReasonCode
	Props Properties
}

// Type implements Packet.
func (*Disconnect) Type() Type { return DISCONNECT }

// Decode decodes a DISCONNECT body for version v.
func (d *Disconnect) Decode(body []byte, v Version) error {
	*d = Disconnect{}
	if v != V5 {
		if len(body) != 0 {
			return ErrMalformedPacket.With("DISCONNECT with a body")
		}
		return nil
	}
	return decodeCodeProps(body, DISCONNECT, &d.Code, &d.Props)
}

// Append implements Packet.
func (d *Disconnect) Append(dst []byte, v Version) []byte {
	if v != V5 {
		return append(dst, byte(DISCONNECT)<<4, 0)
	}
	return appendCodeProps(dst, DISCONNECT, d.Code, &d.Props)
}

// Auth is the AUTH packet (MQTT 5 only).
type Auth struct {
	Code  ReasonCode
	Props Properties
}

// Type implements Packet.
func (*Auth) Type() Type { return AUTH }

// Decode decodes an AUTH body.
func (a *Auth) Decode(body []byte) error {
	*a = Auth{}
	if err := decodeCodeProps(body, AUTH, &a.Code, &a.Props); err != nil {
		return err
	}
	switch a.Code {
	case Success, ContinueAuthentication, ReAuthenticate:
		return nil
	}
	return ErrProtocol.With("AUTH with an invalid reason code") // [MQTT-3.15.2-1]
}

// Append implements Packet.
func (a *Auth) Append(dst []byte, _ Version) []byte {
	return appendCodeProps(dst, AUTH, a.Code, &a.Props)
}

// decodeCodeProps reads the "reason code, then properties, both optional"
// layout that DISCONNECT and AUTH share [MQTT-3.14.2-1] [MQTT-3.15.2-2].
func decodeCodeProps(body []byte, t Type, code *ReasonCode, props *Properties) error {
	r := reader{b: body}
	if r.left() == 0 {
		return nil
	}
	c, _ := r.u8()
	*code = ReasonCode(c)
	if r.left() == 0 {
		return nil
	}
	if err := decodeProps(&r, t, props); err != nil {
		return err
	}
	if r.left() != 0 {
		return ErrMalformedPacket.With("extra bytes after " + t.String())
	}
	return nil
}

func appendCodeProps(dst []byte, t Type, code ReasonCode, props *Properties) []byte {
	ps := props.size()
	switch {
	case code == Success && ps == 0:
		return append(dst, byte(t)<<4, 0)
	case ps == 0:
		return append(dst, byte(t)<<4, 1, byte(code))
	}
	dst = AppendHeader(dst, t, 0, 1+VarIntLen(ps)+ps)
	dst = append(dst, byte(code))
	return props.appendProps(dst)
}

// Decode decodes any packet whose header h was read by ParseHeader, for a
// connection of version v, into a newly allocated value. The broker's hot
// path decodes PUBLISH and acknowledgements into reused values instead.
func Decode(h Header, body []byte, v Version) (Packet, error) {
	var err error
	switch h.Type {
	case CONNECT:
		p := new(Connect)
		err = p.Decode(body)
		return p, err
	case CONNACK:
		p := new(Connack)
		err = p.Decode(body, v)
		return p, err
	case PUBLISH:
		p := new(Publish)
		err = p.Decode(h.Flags, body, v)
		return p, err
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		p := new(Ack)
		err = p.Decode(h.Type, body, v)
		return p, err
	case SUBSCRIBE:
		p := new(Subscribe)
		err = p.Decode(body, v)
		return p, err
	case SUBACK:
		p := new(Suback)
		err = p.Decode(body, v)
		return p, err
	case UNSUBSCRIBE:
		p := new(Unsubscribe)
		err = p.Decode(body, v)
		return p, err
	case UNSUBACK:
		p := new(Unsuback)
		err = p.Decode(body, v)
		return p, err
	case PINGREQ, PINGRESP:
		if len(body) != 0 {
			return nil, ErrMalformedPacket.With(h.Type.String() + " with a body")
		}
		if h.Type == PINGREQ {
			return Pingreq{}, nil
		}
		return Pingresp{}, nil
	case DISCONNECT:
		p := new(Disconnect)
		err = p.Decode(body, v)
		return p, err
	case AUTH:
		if v != V5 {
			return nil, ErrProtocol.With("AUTH before MQTT 5")
		}
		p := new(Auth)
		err = p.Decode(body)
		return p, err
	}
	return nil, ErrMalformedPacket.With("reserved packet type")
}
