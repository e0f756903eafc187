package tlspsk

import (
	"crypto/hkdf"
	"crypto/hmac"
	"hash"
)

// TLS 1.3 key schedule (RFC 8446 §7.1) for one hash function.

// expandLabel is HKDF-Expand-Label.
func expandLabel(h func() hash.Hash, secret []byte, label string, context []byte, length int) []byte {
	var b builder
	b.u16(uint16(length))
	b.vec8([]byte("tls13 " + label))
	b.vec8(context)
	out, err := hkdf.Expand(h, secret, string(b.bytes()), length)
	if err != nil {
		panic("tlspsk: hkdf: " + err.Error()) // only for lengths past 255*hashLen, which are never asked for
	}
	return out
}

func extract(h func() hash.Hash, ikm, salt []byte) []byte {
	if ikm == nil {
		ikm = make([]byte, h().Size())
	}
	out, err := hkdf.Extract(h, ikm, salt)
	if err != nil {
		panic("tlspsk: hkdf: " + err.Error())
	}
	return out
}

// deriveSecret is Derive-Secret with the transcript hash already computed.
func deriveSecret(h func() hash.Hash, secret []byte, label string, transcriptHash []byte) []byte {
	return expandLabel(h, secret, label, transcriptHash, h().Size())
}

func emptyHash(h func() hash.Hash) []byte { return h().Sum(nil) }

// schedule holds the secrets of one TLS 1.3 handshake.
type schedule struct {
	h                  func() hash.Hash
	early              []byte
	handshake          []byte
	master             []byte
	cHS, sHS, cAP, sAP []byte
}

// newSchedule starts from the PSK: Early Secret = HKDF-Extract(0, PSK).
func newSchedule(h func() hash.Hash, psk []byte) *schedule {
	return &schedule{h: h, early: extract(h, psk, nil)}
}

// binderKey is the binder key; external says which label (RFC 8446 §7.1:
// "ext binder" for external PSKs, "res binder" for resumption).
func (s *schedule) binderKey(external bool) []byte {
	label := "res binder"
	if external {
		label = "ext binder"
	}
	return deriveSecret(s.h, s.early, label, emptyHash(s.h))
}

// finishedKey is the key of a Finished (or binder) HMAC.
func finishedKey(h func() hash.Hash, base []byte) []byte {
	return expandLabel(h, base, "finished", nil, h().Size())
}

// finishedMAC is HMAC(finished_key, transcriptHash).
func finishedMAC(h func() hash.Hash, base, transcriptHash []byte) []byte {
	m := hmac.New(h, finishedKey(h, base))
	m.Write(transcriptHash)
	return m.Sum(nil)
}

// binder computes the PSK binder over the transcript hash of the
// truncated ClientHello.
func (s *schedule) binder(external bool, transcriptHash []byte) []byte {
	return finishedMAC(s.h, s.binderKey(external), transcriptHash)
}

// handshakeSecrets mixes in the (EC)DHE shared secret and derives the
// handshake traffic secrets from the hash of ClientHello..ServerHello.
func (s *schedule) handshakeSecrets(shared, helloHash []byte) {
	derived := deriveSecret(s.h, s.early, "derived", emptyHash(s.h))
	s.handshake = extract(s.h, shared, derived)
	s.cHS = deriveSecret(s.h, s.handshake, "c hs traffic", helloHash)
	s.sHS = deriveSecret(s.h, s.handshake, "s hs traffic", helloHash)
}

// appSecrets derives the application traffic secrets from the hash of
// ClientHello..server Finished.
func (s *schedule) appSecrets(finishedHash []byte) {
	derived := deriveSecret(s.h, s.handshake, "derived", emptyHash(s.h))
	s.master = extract(s.h, nil, derived)
	s.cAP = deriveSecret(s.h, s.master, "c ap traffic", finishedHash)
	s.sAP = deriveSecret(s.h, s.master, "s ap traffic", finishedHash)
}

// zero overwrites the secrets the connection no longer needs once the
// application keys are installed.
func (s *schedule) zero() {
	for _, b := range [][]byte{s.early, s.handshake, s.master, s.cHS, s.sHS} {
		clear(b)
	}
}

// trafficKeys derives the record key and IV from a traffic secret.
func trafficKeys(su *suite, secret []byte) (key, iv []byte) {
	return expandLabel(su.hash, secret, "key", nil, su.keyLen), expandLabel(su.hash, secret, "iv", nil, 12)
}

// nextSecret is the KeyUpdate step: application_traffic_secret_N+1.
func nextSecret(su *suite, secret []byte) []byte {
	return expandLabel(su.hash, secret, "traffic upd", nil, su.hashLen)
}

// prf12 is the TLS 1.2 PRF (RFC 5246 §5) with the suite's hash.
func prf12(h func() hash.Hash, secret []byte, label string, seed []byte, n int) []byte {
	ls := append([]byte(label), seed...)
	out := make([]byte, 0, n+h().Size())
	m := hmac.New(h, secret)
	a := ls
	for len(out) < n {
		m.Reset()
		m.Write(a)
		a = m.Sum(nil)
		m.Reset()
		m.Write(a)
		m.Write(ls)
		out = m.Sum(out)
	}
	return out[:n]
}
