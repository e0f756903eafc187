package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Key prefixes; the layout is described in the package documentation.
const (
	pMeta     = 'm'
	pBody     = 'b'
	pRetained = 'r'
	pSession  = 's'
	pSub      = 'u'
	pQueue    = 'q'
	pFlight   = 'f'
	pIncoming = 'i'
)

// valueVersion leads every value, so that a later layout can be told apart.
const valueVersion = 1

// maxField bounds every length read from a stored value: nothing mamori
// writes is larger than an MQTT packet (256 MiB).
const maxField = 256 << 20

var errCorrupt = errors.New("store: corrupt value")

// clientKey appends prefix, the client id's length and the id: the length
// keeps one client's keys from being a prefix range of another's ("a" and
// "ab"), so a range delete of a session touches that session only.
func clientKey(dst []byte, prefix byte, clientID string) []byte {
	dst = append(dst, prefix)
	dst = binary.AppendUvarint(dst, uint64(len(clientID)))
	return append(dst, clientID...)
}

func seqKey(prefix byte, clientID string, seq uint64) []byte {
	k := clientKey(make([]byte, 0, 1+binary.MaxVarintLen64+len(clientID)+8), prefix, clientID)
	return binary.BigEndian.AppendUint64(k, seq)
}

func bodyKey(id BodyID) []byte {
	return binary.BigEndian.AppendUint64([]byte{pBody}, uint64(id))
}

func retainedKey(topic string) []byte {
	return append([]byte{pRetained}, topic...)
}

func subKey(clientID, filter string) []byte {
	return append(clientKey(nil, pSub, clientID), filter...)
}

func incomingKey(clientID string, pid uint16) []byte {
	return binary.BigEndian.AppendUint16(clientKey(nil, pIncoming, clientID), pid)
}

func metaKey(name string) []byte {
	return append([]byte{pMeta}, name...)
}

// prefixEnd returns the smallest key greater than every key starting with
// p, the exclusive upper bound of p's range.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// parseClientKey splits a key made by clientKey into the client id and the
// rest.
func parseClientKey(k []byte) (clientID string, rest []byte, err error) {
	if len(k) < 1 {
		return "", nil, errCorrupt
	}
	n, w := binary.Uvarint(k[1:])
	if w <= 0 || n > uint64(len(k)-1-w) {
		return "", nil, errCorrupt
	}
	start := 1 + w
	return string(k[start : start+int(n)]), k[start+int(n):], nil
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(dst, 0)
	}
	return binary.AppendVarint(dst, t.UnixNano())
}

// reader decodes a value; the first error sticks and every later read
// returns zero values, so decoders check once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if r.err != nil || len(r.b) < 2 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns a copy: values read from Pebble are only valid until the
// iterator moves.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > maxField || n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	if n == 0 {
		return nil
	}
	v := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil || n > maxField || n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	v := string(r.b[:n])
	r.b = r.b[n:]
	return v
}

func (r *reader) time() time.Time {
	ns := r.varint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (r *reader) version() {
	if v := r.byte(); r.err == nil && v != valueVersion {
		r.err = fmt.Errorf("store: value format %d, want %d", v, valueVersion)
	}
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return r.err
}

// encodeMessage encodes a body or a retained message. SubscriptionID is
// not part of it: it belongs to each queue entry.
func encodeMessage(dst []byte, m *Message) []byte {
	flags := m.QoS & 3
	if m.Retain {
		flags |= 4
	}
	dst = append(dst, valueVersion, flags)
	dst = appendString(dst, m.Topic)
	dst = appendBytes(dst, m.Payload)
	dst = appendBytes(dst, m.Props)
	dst = appendTime(dst, m.Expiry)
	return appendString(dst, m.From)
}

func decodeMessage(b []byte) (*Message, error) {
	r := reader{b: b}
	r.version()
	flags := r.byte()
	m := &Message{QoS: flags & 3, Retain: flags&4 != 0}
	m.Topic = r.string()
	m.Payload = r.bytes()
	m.Props = r.bytes()
	m.Expiry = r.time()
	m.From = r.string()
	if err := r.done(); err != nil {
		return nil, err
	}
	return m, nil
}

func encodeSession(s *Session) []byte {
	dst := append(make([]byte, 0, 24+len(s.Username)), valueVersion, s.Version)
	dst = binary.BigEndian.AppendUint32(dst, s.ExpiryInterval)
	dst = appendTime(dst, s.Disconnected)
	return appendString(dst, s.Username)
}

func decodeSession(clientID string, b []byte) (*Session, error) {
	r := reader{b: b}
	r.version()
	s := &Session{ClientID: clientID, Version: r.byte(), ExpiryInterval: r.u32()}
	s.Disconnected = r.time()
	s.Username = r.string()
	if err := r.done(); err != nil {
		return nil, err
	}
	return s, nil
}

func encodeSub(sub *Subscription) []byte {
	var flags byte
	if sub.NoLocal {
		flags |= 1
	}
	if sub.RetainAsPublished {
		flags |= 2
	}
	flags |= (sub.RetainHandling & 3) << 2
	dst := []byte{valueVersion, sub.QoS, flags}
	return binary.AppendUvarint(dst, uint64(sub.SubscriptionID))
}

func decodeSub(filter string, b []byte) (Subscription, error) {
	r := reader{b: b}
	r.version()
	sub := Subscription{Filter: filter, QoS: r.byte()}
	flags := r.byte()
	sub.NoLocal, sub.RetainAsPublished, sub.RetainHandling = flags&1 != 0, flags&2 != 0, (flags>>2)&3
	id := r.uvarint()
	if err := r.done(); err != nil {
		return Subscription{}, err
	}
	if id > 268435455 { // the largest Variable Byte Integer
		return Subscription{}, errCorrupt
	}
	sub.SubscriptionID = uint32(id)
	return sub, nil
}

func encodeEntry(e *Entry) []byte {
	flags := e.QoS & 3
	if e.Retain {
		flags |= 4
	}
	dst := append(make([]byte, 0, 16), valueVersion)
	dst = binary.AppendUvarint(dst, uint64(e.Body))
	dst = append(dst, flags)
	return binary.AppendUvarint(dst, uint64(e.SubscriptionID))
}

func decodeEntry(e *Entry, b []byte) error {
	r := reader{b: b}
	r.version()
	e.Body = BodyID(r.uvarint())
	flags := r.byte()
	e.QoS, e.Retain = flags&3, flags&4 != 0
	id := r.uvarint()
	if err := r.done(); err != nil {
		return err
	}
	if id > 268435455 {
		return errCorrupt
	}
	e.SubscriptionID = uint32(id)
	return nil
}

func encodeFlight(pid uint16, st FlightState) []byte {
	return []byte{valueVersion, byte(pid >> 8), byte(pid), byte(st)}
}

func decodeFlight(b []byte) (uint16, FlightState, error) {
	r := reader{b: b}
	r.version()
	pid := r.u16()
	st := FlightState(r.byte())
	if err := r.done(); err != nil {
		return 0, 0, err
	}
	if st != Sent && st != Released {
		return 0, 0, errCorrupt
	}
	return pid, st, nil
}
