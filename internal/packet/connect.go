package packet

import "bytes"

// Connect is the CONNECT packet.
type Connect struct {
	ProtocolName []byte // "MQTT" or, for 3.1, "MQIsdp"
	Version      Version
	// Bridge is the high bit of the protocol level that Mosquitto's bridges
	// set with try_private (0x83, 0x84): the client is a bridge, so the
	// server applies no-local and retain-as-published to its subscriptions.
	// Version holds the level without that bit.
	Bridge     bool
	CleanStart bool // "clean session" before MQTT 5
	KeepAlive  uint16
	Props      Properties
	ClientID   []byte

	WillFlag    bool
	WillQoS     byte
	WillRetain  bool
	WillProps   Properties
	WillTopic   []byte
	WillPayload []byte

	UsernameFlag bool
	Username     []byte
	PasswordFlag bool
	Password     []byte
}

// Type implements Packet.
func (*Connect) Type() Type { return CONNECT }

var (
	nameMQTT   = []byte("MQTT")
	nameMQIsdp = []byte("MQIsdp")
)

// Decode decodes a CONNECT body. When the protocol name or level is
// not one mamori speaks, the error is ErrUnsupportedVersion and c.Version
// holds what the client asked for, so the broker can answer with a CONNACK
// the client understands [MQTT-3.1.2-2].
func (c *Connect) Decode(body []byte) error {
	*c = Connect{}
	r := reader{b: body}
	var err error
	if c.ProtocolName, err = r.str(); err != nil {
		return err
	}
	lvl, err := r.u8()
	if err != nil {
		return err
	}
	if lvl == 0x83 || lvl == 0x84 {
		c.Bridge = true
		lvl &^= 0x80
	}
	c.Version = Version(lvl)
	switch {
	case bytes.Equal(c.ProtocolName, nameMQTT) && (lvl == 4 || lvl == 5):
	case bytes.Equal(c.ProtocolName, nameMQIsdp) && lvl == 3:
	case bytes.Equal(c.ProtocolName, nameMQTT) || bytes.Equal(c.ProtocolName, nameMQIsdp):
		return ErrUnsupportedVersion.With("unsupported protocol level")
	default:
		// [MQTT-3.1.2-1] the server MAY send a CONNACK 0x84, then MUST close.
		return ErrUnsupportedVersion.With("unknown protocol name " + quoteBytes(c.ProtocolName))
	}
	cf, err := r.u8()
	if err != nil {
		return err
	}
	if cf&0x01 != 0 {
		return ErrMalformedPacket.With("CONNECT reserved flag set") // [MQTT-3.1.2-3]
	}
	c.CleanStart = cf&0x02 != 0
	c.WillFlag = cf&0x04 != 0
	c.WillQoS = (cf >> 3) & 0x03
	c.WillRetain = cf&0x20 != 0
	c.PasswordFlag = cf&0x40 != 0
	c.UsernameFlag = cf&0x80 != 0
	if c.WillQoS == 3 {
		return ErrMalformedPacket.With("will QoS 3") // [MQTT-3.1.2-14]
	}
	if !c.WillFlag && (c.WillQoS != 0 || c.WillRetain) {
		return ErrMalformedPacket.With("will QoS or retain set without will flag") // [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]
	}
	if c.Version < V5 && c.PasswordFlag && !c.UsernameFlag {
		return ErrMalformedPacket.With("password flag set without user name flag") // [MQTT-3.1.2-22]
	}
	if c.KeepAlive, err = r.u16(); err != nil {
		return err
	}
	if c.Version == V5 {
		if err = decodeProps(&r, CONNECT, &c.Props); err != nil {
			return err
		}
		if c.Props.Present(PropAuthData) && !c.Props.Present(PropAuthMethod) {
			return ErrProtocol.With("authentication data without authentication method")
		}
	}
	// [MQTT-3.1.3-1] payload fields in order: client id, will properties,
	// will topic, will payload, user name, password.
	if c.ClientID, err = r.str(); err != nil {
		return err
	}
	if c.WillFlag {
		if c.Version == V5 {
			if err = decodeProps(&r, willContext, &c.WillProps); err != nil {
				return err
			}
		}
		if c.WillTopic, err = r.str(); err != nil {
			return err
		}
		if c.WillPayload, err = r.bin(); err != nil {
			return err
		}
	}
	if c.UsernameFlag {
		if c.Username, err = r.str(); err != nil {
			return err
		}
	}
	if c.PasswordFlag {
		if c.Password, err = r.bin(); err != nil {
			return err
		}
	}
	if r.left() != 0 {
		return ErrMalformedPacket.With("extra bytes after CONNECT payload")
	}
	return nil
}

// Append implements Packet. The version is taken from c.Version; v is
// ignored because CONNECT announces its own version.
func (c *Connect) Append(dst []byte, _ Version) []byte {
	v := c.Version
	name := c.ProtocolName
	if len(name) == 0 {
		name = nameMQTT
		if v == V31 {
			name = nameMQIsdp
		}
	}
	n := 2 + len(name) + 1 + 1 + 2 + 2 + len(c.ClientID)
	if v == V5 {
		n += c.Props.sizeWithLen()
	}
	if c.WillFlag {
		if v == V5 {
			n += c.WillProps.sizeWithLen()
		}
		n += 4 + len(c.WillTopic) + len(c.WillPayload)
	}
	if c.UsernameFlag {
		n += 2 + len(c.Username)
	}
	if c.PasswordFlag {
		n += 2 + len(c.Password)
	}
	dst = AppendHeader(dst, CONNECT, 0, n)
	dst = appendBin(dst, name)
	if c.Bridge {
		dst = append(dst, byte(v)|0x80)
	} else {
		dst = append(dst, byte(v))
	}
	var f byte
	if c.CleanStart {
		f |= 0x02
	}
	if c.WillFlag {
		f |= 0x04 | c.WillQoS<<3
		if c.WillRetain {
			f |= 0x20
		}
	}
	if c.PasswordFlag {
		f |= 0x40
	}
	if c.UsernameFlag {
		f |= 0x80
	}
	dst = append(dst, f)
	dst = appendU16(dst, c.KeepAlive)
	if v == V5 {
		dst = c.Props.appendProps(dst)
	}
	dst = appendBin(dst, c.ClientID)
	if c.WillFlag {
		if v == V5 {
			dst = c.WillProps.appendProps(dst)
		}
		dst = appendBin(dst, c.WillTopic)
		dst = appendBin(dst, c.WillPayload)
	}
	if c.UsernameFlag {
		dst = appendBin(dst, c.Username)
	}
	if c.PasswordFlag {
		dst = appendBin(dst, c.Password)
	}
	return dst
}

// Connack is the CONNACK packet. For 3.1/3.1.1, Code carries the return
// code (0..5) as sent on the wire.
type Connack struct {
	SessionPresent bool
	Code           ReasonCode
	Props          Properties
}

// Type implements Packet.
func (*Connack) Type() Type { return CONNACK }

// Decode decodes a CONNACK body sent to a client of version v.
func (c *Connack) Decode(body []byte, v Version) error {
	*c = Connack{}
	r := reader{b: body}
	f, err := r.u8()
	if err != nil {
		return err
	}
	if f&0xfe != 0 {
		return ErrMalformedPacket.With("CONNACK reserved flags set") // [MQTT-3.2.2-1]
	}
	c.SessionPresent = f&1 != 0
	code, err := r.u8()
	if err != nil {
		return err
	}
	c.Code = ReasonCode(code)
	if v == V5 && r.left() > 0 {
		if err = decodeProps(&r, CONNACK, &c.Props); err != nil {
			return err
		}
	}
	if r.left() != 0 {
		return ErrMalformedPacket.With("extra bytes after CONNACK")
	}
	return nil
}

// Append implements Packet.
func (c *Connack) Append(dst []byte, v Version) []byte {
	n := 2
	if v == V5 {
		n += c.Props.sizeWithLen()
	}
	dst = AppendHeader(dst, CONNACK, 0, n)
	var f byte
	if c.SessionPresent {
		f = 1
	}
	dst = append(dst, f, byte(c.Code))
	if v == V5 {
		dst = c.Props.appendProps(dst)
	}
	return dst
}

func quoteBytes(b []byte) string {
	const max = 32
	s := b
	if len(s) > max {
		s = s[:max]
	}
	out := []byte{'"'}
	for _, c := range s {
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			out = append(out, c)
		} else {
			out = append(out, '\\', 'x', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		}
	}
	if len(b) > max {
		out = append(out, '.', '.', '.')
	}
	return string(append(out, '"'))
}
