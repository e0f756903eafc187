package packet

import (
	"encoding/binary"
	"unicode/utf8"
)

// reader is a cursor over a packet body. Every read checks the bounds first,
// so a lying length field can never make the decoder read or allocate past
// the packet.
type reader struct {
	b []byte
	i int
}

func (r *reader) left() int { return len(r.b) - r.i }

func (r *reader) u8() (byte, error) {
	if r.i >= len(r.b) {
		return 0, ErrMalformedPacket.With("packet ends early")
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *reader) u16() (uint16, error) {
	if r.left() < 2 {
		return 0, ErrMalformedPacket.With("packet ends early")
	}
	v := binary.BigEndian.Uint16(r.b[r.i:])
	r.i += 2
	return v, nil
}

func (r *reader) u32() (uint32, error) {
	if r.left() < 4 {
		return 0, ErrMalformedPacket.With("packet ends early")
	}
	v := binary.BigEndian.Uint32(r.b[r.i:])
	r.i += 4
	return v, nil
}

// varint reads a variable byte integer [MQTT-1.5.5-1].
func (r *reader) varint() (int, error) {
	n, mult := 0, 1
	for k := 0; k < 4; k++ {
		c, err := r.u8()
		if err != nil {
			return 0, err
		}
		n += int(c&0x7f) * mult
		if c&0x80 == 0 {
			return n, nil
		}
		mult *= 128
	}
	return 0, ErrMalformedPacket.With("variable byte integer longer than four bytes")
}

// bin reads two-byte-length-prefixed binary data; the result aliases the body.
func (r *reader) bin() ([]byte, error) {
	n, err := r.u16()
	if err != nil {
		return nil, err
	}
	if r.left() < int(n) {
		return nil, ErrMalformedPacket.With("length field exceeds packet")
	}
	v := r.b[r.i : r.i+int(n) : r.i+int(n)]
	r.i += int(n)
	return v, nil
}

// str reads a UTF-8 encoded string and checks it [MQTT-1.5.4-1] [MQTT-1.5.4-2].
func (r *reader) str() ([]byte, error) {
	v, err := r.bin()
	if err != nil {
		return nil, err
	}
	if !ValidUTF8(v) {
		return nil, ErrMalformedPacket.With("string is not well-formed UTF-8 or contains U+0000")
	}
	return v, nil
}

func (r *reader) rest() []byte {
	v := r.b[r.i:len(r.b):len(r.b)]
	r.i = len(r.b)
	return v
}

// ValidUTF8 reports whether b is well-formed UTF-8 without U+0000, as MQTT
// requires of every string [MQTT-1.5.4-1] [MQTT-1.5.4-2]. The ASCII fast path
// keeps it cheap for typical topic names.
func ValidUTF8(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == 0 {
			return false
		}
		if c >= 0x80 {
			rest := b[i:]
			if !utf8.Valid(rest) {
				return false
			}
			for _, c := range rest {
				if c == 0 {
					return false
				}
			}
			return true
		}
	}
	return true
}

func appendU16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendU32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendBin(dst, v []byte) []byte {
	dst = appendU16(dst, uint16(len(v)))
	return append(dst, v...)
}

func appendStr(dst []byte, v string) []byte {
	dst = appendU16(dst, uint16(len(v)))
	return append(dst, v...)
}
