package tlspsk

import (
	"crypto/cipher"
	"encoding/binary"
	"slices"
)

// Record layer (RFC 8446 §5, RFC 5246 §6.2) for AEAD suites only.

// Content types.
const (
	recordChangeCipherSpec uint8 = 20
	recordAlert            uint8 = 21
	recordHandshake        uint8 = 22
	recordApplicationData  uint8 = 23
)

const (
	recordHeaderLen  = 5
	maxPlaintext     = 1 << 14
	maxCiphertext13  = maxPlaintext + 256  // RFC 8446 §5.2
	maxCiphertext12  = maxPlaintext + 2048 // RFC 5246 §6.2.3
	explicitNonceLen = 8
)

// keyUpdateAfter is the number of records after which this side moves to
// the next TLS 1.3 traffic key, well below AES-GCM's limit of 2^24.5
// records per key (RFC 8446 §5.5).
const keyUpdateAfter = 1 << 23

// halfConn is one direction's protection state.
type halfConn struct {
	aead     cipher.AEAD // nil: plaintext
	iv       []byte      // 12 bytes, or the 4-byte GCM salt in TLS 1.2
	seq      uint64
	tls13    bool
	explicit bool
	secret   []byte // TLS 1.3 traffic secret, for KeyUpdate
	nonce    [12]byte
}

// setKeys installs a key. secret is the TLS 1.3 traffic secret (nil in
// TLS 1.2).
func (h *halfConn) setKeys(su *suite, key, iv []byte, tls13 bool, secret []byte) error {
	a, err := su.aead(key)
	clear(key)
	if err != nil {
		return errorf(AlertInternalError, "cipher setup: %v", err)
	}
	clear(h.secret)
	h.aead, h.iv, h.seq, h.tls13, h.explicit, h.secret = a, iv, 0, tls13, su.explicit && !tls13, secret
	return nil
}

// set13 installs a TLS 1.3 traffic secret.
func (h *halfConn) set13(su *suite, secret []byte) error {
	key, iv := trafficKeys(su, secret)
	return h.setKeys(su, key, iv, true, secret)
}

// makeNonce builds the per-record nonce: the IV XORed with the sequence
// number (TLS 1.3, RFC 7905), or salt || explicit part (TLS 1.2 GCM).
func (h *halfConn) makeNonce(explicit []byte) []byte {
	n := h.nonce[:]
	if h.explicit {
		copy(n, h.iv[:4])
		copy(n[4:], explicit)
		return n
	}
	copy(n, h.iv)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], h.seq)
	for i := range 8 {
		n[4+i] ^= s[i]
	}
	return n
}

// maxIn is the largest record payload accepted in this state.
func (h *halfConn) maxIn() int {
	switch {
	case h.aead == nil:
		return maxPlaintext
	case h.tls13:
		return maxCiphertext13
	}
	return maxCiphertext12
}

// open decrypts payload in place. hdr is the record header (TLS 1.3's
// additional data). It returns the content type and the plaintext.
func (h *halfConn) open(hdr []byte, payload []byte) (uint8, []byte, *Error) {
	typ := hdr[0]
	if h.aead == nil {
		return typ, payload, nil
	}
	if h.seq == ^uint64(0) {
		return 0, nil, errorf(AlertInternalError, "sequence number wrapped")
	}
	overhead := h.aead.Overhead()
	if h.tls13 {
		if typ != recordApplicationData {
			return 0, nil, errorf(AlertUnexpectedMessage, "unprotected record of type %d after keys were set", typ)
		}
		if len(payload) < overhead+1 {
			return 0, nil, errorf(AlertDecodeError, "record too short to be protected")
		}
		pt, err := h.aead.Open(payload[:0], h.makeNonce(nil), payload, hdr)
		if err != nil {
			return 0, nil, errorf(AlertBadRecordMAC, "a record could not be decrypted")
		}
		h.seq++
		// Strip the padding: the content type is the last non-zero byte.
		i := len(pt) - 1
		for i >= 0 && pt[i] == 0 {
			i--
		}
		if i < 0 {
			return 0, nil, errorf(AlertUnexpectedMessage, "protected record without a content type")
		}
		if i > maxPlaintext {
			return 0, nil, errorf(AlertRecordOverflow, "record plaintext longer than 2^14")
		}
		return pt[i], pt[:i], nil
	}
	var explicit []byte
	if h.explicit {
		if len(payload) < explicitNonceLen+overhead {
			return 0, nil, errorf(AlertDecodeError, "record too short to be protected")
		}
		explicit, payload = payload[:explicitNonceLen], payload[explicitNonceLen:]
	} else if len(payload) < overhead {
		return 0, nil, errorf(AlertDecodeError, "record too short to be protected")
	}
	var ad [13]byte
	binary.BigEndian.PutUint64(ad[:], h.seq)
	ad[8], ad[9], ad[10] = typ, hdr[1], hdr[2]
	binary.BigEndian.PutUint16(ad[11:], uint16(len(payload)-overhead))
	pt, err := h.aead.Open(payload[:0], h.makeNonce(explicit), payload, ad[:])
	if err != nil {
		return 0, nil, errorf(AlertBadRecordMAC, "a record could not be decrypted")
	}
	h.seq++
	if len(pt) > maxPlaintext {
		return 0, nil, errorf(AlertRecordOverflow, "record plaintext longer than 2^14")
	}
	return typ, pt, nil
}

// seal appends one record of type typ carrying data (at most 2^14 bytes)
// to out.
func (h *halfConn) seal(out []byte, typ uint8, data []byte) ([]byte, error) {
	if h.aead == nil {
		out = append(out, typ, 3, 3, byte(len(data)>>8), byte(len(data)))
		return append(out, data...), nil
	}
	if h.seq == ^uint64(0) {
		return out, errorf(AlertInternalError, "sequence number wrapped")
	}
	overhead := h.aead.Overhead()
	// Room for header, explicit nonce, content type and tag, so that
	// Seal works in place.
	out = slices.Grow(out, recordHeaderLen+explicitNonceLen+len(data)+1+overhead)
	if h.tls13 {
		n := len(data) + 1 + overhead
		hdr := [5]byte{recordApplicationData, 3, 3, byte(n >> 8), byte(n)}
		out = append(out, hdr[:]...)
		ptAt := len(out)
		out = append(out, data...)
		out = append(out, typ)
		sealed := h.aead.Seal(out[ptAt:ptAt], h.makeNonce(nil), out[ptAt:], hdr[:])
		h.seq++
		return out[:ptAt+len(sealed)], nil
	}
	n := len(data) + overhead
	if h.explicit {
		n += explicitNonceLen
	}
	out = append(out, typ, 3, 3, byte(n>>8), byte(n))
	var explicit []byte
	if h.explicit {
		// The sequence number is a unique explicit nonce (RFC 5288 §3).
		out = binary.BigEndian.AppendUint64(out, h.seq)
		explicit = out[len(out)-explicitNonceLen:]
	}
	var ad [13]byte
	binary.BigEndian.PutUint64(ad[:], h.seq)
	ad[8], ad[9], ad[10] = typ, 3, 3
	binary.BigEndian.PutUint16(ad[11:], uint16(len(data)))
	ptAt := len(out)
	out = append(out, data...)
	sealed := h.aead.Seal(out[ptAt:ptAt], h.makeNonce(explicit), out[ptAt:], ad[:])
	h.seq++
	return out[:ptAt+len(sealed)], nil
}
