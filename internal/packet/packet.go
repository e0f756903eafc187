// Package packet is mamori's MQTT codec: the fixed header, properties and
// every control packet of MQTT 3.1, 3.1.1 and 5.0.
//
// Decoders check every length against the buffer and the configured limits
// before anything is allocated, and decode PUBLISH without allocating: the
// byte-slice fields of a decoded packet point into the buffer given to
// Decode and are valid only until that buffer is reused. Encoders append to
// a caller's slice so the connection's output buffer is written in place.
//
// Comments cite normative statements of the MQTT specifications as
// [MQTT-x.y.z-n].
package packet

import "fmt"

// Type is an MQTT control packet type (the high nibble of the first byte).
type Type byte

// Control packet types.
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15
)

var typeNames = [...]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
	"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", byte(t))
}

// Version is the protocol level of a connection.
type Version byte

// Protocol levels as carried in CONNECT.
const (
	V31  Version = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 Version = 4 // MQTT 3.1.1
	V5   Version = 5 // MQTT 5.0
)

func (v Version) String() string {
	switch v {
	case V31:
		return "3.1"
	case V311:
		return "3.1.1"
	case V5:
		return "5.0"
	}
	return fmt.Sprintf("Version(%d)", byte(v))
}

// MaxRemaining is the largest remaining length the variable byte integer can
// express (268,435,455).
const MaxRemaining = 268435455

// Header describes a fixed header found at the start of a buffer.
type Header struct {
	Type      Type
	Flags     byte // low nibble of the first byte
	Remaining int  // remaining length
	Len       int  // bytes used by the fixed header itself (2..5)
}

// Size is the whole packet's size in bytes.
func (h Header) Size() int { return h.Len + h.Remaining }

// ParseHeader reads a fixed header from the start of buf. ok is false when
// buf does not yet hold a complete header. A remaining length that is
// malformed, or whose packet would exceed maxSize bytes (when maxSize > 0),
// is reported before the caller reserves any memory for the body.
func ParseHeader(buf []byte, maxSize int) (h Header, ok bool, err error) {
	if len(buf) < 2 {
		return h, false, nil
	}
	b0 := buf[0]
	h.Type = Type(b0 >> 4)
	h.Flags = b0 & 0x0f
	mult := 1
	n := 0
	for i := 1; ; i++ {
		if i > 4 {
			// [MQTT-1.5.5-1] at most four bytes.
			return h, false, ErrMalformedPacket.With("remaining length longer than four bytes")
		}
		if i >= len(buf) {
			return h, false, nil
		}
		c := buf[i]
		n += int(c&0x7f) * mult
		mult *= 128
		if c&0x80 == 0 {
			h.Remaining = n
			h.Len = i + 1
			break
		}
	}
	if h.Type == 0 {
		return h, false, ErrMalformedPacket.With("reserved packet type 0")
	}
	if maxSize > 0 && h.Size() > maxSize {
		return h, false, ErrPacketTooLarge
	}
	if err := checkFlags(h.Type, h.Flags); err != nil {
		return h, false, err
	}
	return h, true, nil
}

// checkFlags enforces the reserved flag bits of each packet type
// [MQTT-2.2.2-1] [MQTT-2.2.2-2] [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1].
func checkFlags(t Type, f byte) error {
	switch t {
	case PUBLISH:
		if f&0x06 == 0x06 {
			return ErrMalformedPacket.With("PUBLISH with QoS 3") // [MQTT-3.3.1-4]
		}
		return nil
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		if f != 0x02 {
			return ErrMalformedPacket.With(t.String() + " with reserved flags not 0010")
		}
	default:
		if f != 0 {
			return ErrMalformedPacket.With(t.String() + " with reserved flags not 0000")
		}
	}
	return nil
}

// AppendHeader appends a fixed header for a packet of type t with flags and
// the given remaining length.
func AppendHeader(dst []byte, t Type, flags byte, remaining int) []byte {
	dst = append(dst, byte(t)<<4|flags&0x0f)
	return AppendVarInt(dst, remaining)
}

// VarIntLen is the encoded size of a variable byte integer.
func VarIntLen(n int) int {
	switch {
	case n < 128:
		return 1
	case n < 16384:
		return 2
	case n < 2097152:
		return 3
	default:
		return 4
	}
}

// AppendVarInt appends a variable byte integer (n must be 0..MaxRemaining).
func AppendVarInt(dst []byte, n int) []byte {
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		dst = append(dst, c)
		if n == 0 {
			return dst
		}
	}
}

// Packet is implemented by every decoded or encodable control packet.
type Packet interface {
	// Type reports the control packet type.
	Type() Type
	// Append encodes the packet for protocol version v onto dst.
	Append(dst []byte, v Version) []byte
}
