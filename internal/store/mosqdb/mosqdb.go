// Package mosqdb reads Mosquitto's persistence file (mosquitto.db, the
// format of Mosquitto 1.6 and 2.0: versions 5 and 6) and imports it into
// mamori's store, so that switching brokers keeps retained messages and
// persistent sessions with their subscriptions and queued messages.
//
// The format, learnt from Mosquitto's source: a 15-byte magic, a 4-byte
// CRC field (written as zero and never checked by Mosquitto), a 4-byte
// big-endian format version, then chunks of {type uint32, length uint32}
// big-endian followed by length bytes. Chunk bodies are C structs written
// as they lie in memory: 16- and 32-bit fields are converted to big-endian,
// the 64-bit ones (message ids, times) are not — they are in the writing
// host's byte order, little-endian on every platform Mosquitto ships for,
// which is what this reader assumes.
//
// Every length is checked against the chunk and the file before anything
// is allocated or sliced; the reader never trusts a count.
package mosqdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"
)

var magic = []byte{0x00, 0xB5, 0x00, 'm', 'o', 's', 'q', 'u', 'i', 't', 't', 'o', ' ', 'd', 'b'}

// Chunk types.
const (
	chunkCfg       = 1
	chunkMsgStore  = 2
	chunkClientMsg = 3
	chunkRetain    = 4
	chunkSub       = 5
	chunkClient    = 6
)

// Fixed sizes of the chunk structs (with the C compiler's padding).
const (
	sizeCfg       = 16 // uint64 last_db_id, uint8 shutdown, uint8 dbid_size, padding
	sizeMsgStore  = 32
	sizeClientMsg = 16
	sizeRetain    = 8
	sizeSub       = 12 // uint32, 2×uint16, 2×uint8, padding
	sizeClientV5  = 16
	sizeClientV6  = 24 // v5 + listener_port, username_len, padding
)

// maxPayload is MQTT's largest packet: nothing larger can be a message.
const maxPayload = 268435455

// maxFileSize bounds what ReadFile loads.
const maxFileSize = 8 << 30

// Message states of Mosquitto's client messages (enum mosquitto_msg_state).
const (
	stateWaitForPuback  = 3
	stateWaitForPubrec  = 5
	stateResendPubrel   = 6
	stateWaitForPubrel  = 7
	stateWaitForPubcomp = 9
)

// Message is a stored message (a "msg store" chunk).
type Message struct {
	StoreID        uint64
	Topic          string
	Payload        []byte
	QoS            byte
	Retain         bool
	Expiry         time.Time // zero: never expires
	SourceID       string
	SourceUsername string
	SourceMid      uint16
	SourcePort     uint16
	// Props is the MQTT 5 property block, length prefix included, as
	// Mosquitto wrote it; nil when there is none.
	Props []byte
}

// Subscription is a session's subscription.
type Subscription struct {
	Filter string
	QoS    byte
	// Options are MQTT 5 subscription option bits other than QoS: 0x04 no
	// local, 0x08 retain as published, 0x30 retain handling.
	Options    byte
	Identifier uint32
}

// ClientMessage is a message queued or in flight for a session, referring
// to a Message by StoreID.
type ClientMessage struct {
	StoreID        uint64
	Mid            uint16
	QoS            byte
	State          byte
	Retain, Dup    bool
	Outgoing       bool // false: an inbound QoS 2 message awaiting PUBREL
	SubscriptionID uint32
}

// Session is a persistent client session.
type Session struct {
	ClientID string
	Username string
	// ExpiryTime is when a disconnected session expires; zero if unknown
	// or never.
	ExpiryTime     time.Time
	ExpiryInterval uint32 // 0xFFFFFFFF: never expires
	LastMid        uint16
	ListenerPort   uint16
	Subscriptions  []Subscription
	Messages       []ClientMessage // in file order: in flight first, then queued
}

// File is a parsed mosquitto.db.
type File struct {
	Version  uint32
	LastDBID uint64
	// Messages by store id.
	Messages map[uint64]*Message
	// Retained lists the store ids of retained messages in file order.
	Retained []uint64
	// Sessions in the order their first chunk appears.
	Sessions []*Session
	// Skipped counts chunks of unknown types, skipped as Mosquitto does.
	Skipped int
}

// ReadFile reads and parses a mosquitto.db.
func ReadFile(path string) (*File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: %d bytes is too large for a persistence file", path, fi.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// cursor reads big-endian fields from a chunk; reads past the end set err.
type cursor struct {
	b   []byte
	err error
}

func (c *cursor) need(n int) bool {
	if c.err != nil {
		return false
	}
	if n < 0 || n > len(c.b) {
		c.err = errors.New("truncated")
		return false
	}
	return true
}

func (c *cursor) u8() byte {
	if !c.need(1) {
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

func (c *cursor) u16() uint16 {
	if !c.need(2) {
		return 0
	}
	v := binary.BigEndian.Uint16(c.b)
	c.b = c.b[2:]
	return v
}

func (c *cursor) u32() uint32 {
	if !c.need(4) {
		return 0
	}
	v := binary.BigEndian.Uint32(c.b)
	c.b = c.b[4:]
	return v
}

// host64 reads a 64-bit field in the writer's (little-endian) byte order.
func (c *cursor) host64() uint64 {
	if !c.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(c.b)
	c.b = c.b[8:]
	return v
}

func (c *cursor) skip(n int) {
	if c.need(n) {
		c.b = c.b[n:]
	}
}

func (c *cursor) bytes(n int) []byte {
	if !c.need(n) {
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) string(n int) string { return string(c.bytes(n)) }

func unixTime(v uint64) time.Time {
	if v == 0 || int64(v) < 0 {
		return time.Time{}
	}
	return time.Unix(int64(v), 0)
}

// Parse parses the contents of a mosquitto.db.
func Parse(data []byte) (*File, error) {
	if len(data) < len(magic)+8 {
		return nil, errors.New("not a Mosquitto persistence file (too short)")
	}
	if !bytes.Equal(data[:len(magic)], magic) {
		return nil, errors.New("not a Mosquitto persistence file (bad magic)")
	}
	// data[15:19] is the CRC field: Mosquitto writes zero and never checks it.
	f := &File{Version: binary.BigEndian.Uint32(data[19:23]), Messages: map[uint64]*Message{}}
	if f.Version != 5 && f.Version != 6 {
		return nil, fmt.Errorf("persistence format version %d not supported (Mosquitto 1.6 and 2.0 write 5 and 6)", f.Version)
	}
	byID := map[string]*Session{}
	session := func(id string) *Session {
		s := byID[id]
		if s == nil {
			s = &Session{ClientID: id}
			byID[id] = s
			f.Sessions = append(f.Sessions, s)
		}
		return s
	}
	rest := data[23:]
	for off := 23; len(rest) > 0; {
		if len(rest) < 8 {
			return nil, fmt.Errorf("offset %d: truncated chunk header", off)
		}
		typ, n := binary.BigEndian.Uint32(rest), binary.BigEndian.Uint32(rest[4:])
		if uint64(n) > uint64(len(rest)-8) {
			return nil, fmt.Errorf("offset %d: chunk %d claims %d bytes, %d left", off, typ, n, len(rest)-8)
		}
		body := rest[8 : 8+n]
		if err := f.chunk(typ, body, session); err != nil {
			return nil, fmt.Errorf("offset %d: chunk %d: %w", off, typ, err)
		}
		rest = rest[8+n:]
		off += 8 + int(n)
	}
	return f, nil
}

func (f *File) chunk(typ uint32, body []byte, session func(string) *Session) error {
	c := &cursor{b: body}
	switch typ {
	case chunkCfg:
		if len(body) < 10 {
			return errors.New("config chunk too short")
		}
		f.LastDBID = c.host64()
		c.u8() // shutdown flag
		if size := c.u8(); size != 8 {
			return fmt.Errorf("database ids of %d bytes (only 8 are supported)", size)
		}
		return nil
	case chunkMsgStore:
		return f.msgStore(c)
	case chunkClientMsg:
		return clientMsg(c, session)
	case chunkRetain:
		if len(body) < sizeRetain {
			return errors.New("retain chunk too short")
		}
		f.Retained = append(f.Retained, c.host64())
		return nil
	case chunkSub:
		return sub(c, session)
	case chunkClient:
		return f.client(c, session)
	default:
		f.Skipped++
		return nil
	}
}

func (f *File) msgStore(c *cursor) error {
	if len(c.b) < sizeMsgStore {
		return errors.New("message chunk too short")
	}
	m := &Message{StoreID: c.host64(), Expiry: unixTime(c.host64())}
	payloadLen := c.u32()
	m.SourceMid = c.u16()
	idLen, userLen, topicLen := int(c.u16()), int(c.u16()), int(c.u16())
	m.SourcePort = c.u16()
	m.QoS = c.u8()
	m.Retain = c.u8() != 0
	if payloadLen > maxPayload {
		return fmt.Errorf("payload of %d bytes", payloadLen)
	}
	if m.QoS > 2 {
		return fmt.Errorf("QoS %d", m.QoS)
	}
	if uint64(idLen)+uint64(userLen)+uint64(topicLen)+uint64(payloadLen) > uint64(len(c.b)) {
		return errors.New("lengths exceed the chunk")
	}
	if topicLen == 0 {
		return errors.New("message without a topic")
	}
	m.SourceID = c.string(idLen)
	m.SourceUsername = c.string(userLen)
	m.Topic = c.string(topicLen)
	m.Payload = bytes.Clone(c.bytes(int(payloadLen)))
	if len(c.b) > 0 {
		props, err := propertyBlock(c.b)
		if err != nil {
			return fmt.Errorf("message %d properties: %w", m.StoreID, err)
		}
		m.Props = bytes.Clone(props)
	}
	if c.err != nil {
		return c.err
	}
	f.Messages[m.StoreID] = m
	return nil
}

// propertyBlock checks that b is exactly one MQTT 5 property block (a
// Variable Byte Integer length and that many bytes) and returns it.
func propertyBlock(b []byte) ([]byte, error) {
	n, w, err := varint(b)
	if err != nil {
		return nil, err
	}
	if uint64(n) != uint64(len(b)-w) {
		return nil, fmt.Errorf("property length %d, %d bytes present", n, len(b)-w)
	}
	return b, nil
}

// varint decodes an MQTT Variable Byte Integer.
func varint(b []byte) (v uint32, n int, err error) {
	var mul uint32 = 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, errors.New("truncated variable byte integer")
		}
		v += uint32(b[i]&0x7f) * mul
		if b[i]&0x80 == 0 {
			return v, i + 1, nil
		}
		mul *= 128
	}
	return 0, 0, errors.New("variable byte integer longer than 4 bytes")
}

func clientMsg(c *cursor, session func(string) *Session) error {
	if len(c.b) < sizeClientMsg {
		return errors.New("client message chunk too short")
	}
	m := ClientMessage{StoreID: c.host64(), Mid: c.u16()}
	idLen := int(c.u16())
	m.QoS, m.State = c.u8(), c.u8()
	rd := c.u8()
	m.Retain, m.Dup = rd&0xF0 != 0, rd&0x0F != 0
	m.Outgoing = c.u8() == 1
	if m.QoS > 2 {
		return fmt.Errorf("QoS %d", m.QoS)
	}
	if idLen == 0 || idLen > len(c.b) {
		return errors.New("client id length exceeds the chunk")
	}
	id := c.string(idLen)
	if len(c.b) > 0 {
		props, err := propertyBlock(c.b)
		if err != nil {
			return fmt.Errorf("client message properties: %w", err)
		}
		m.SubscriptionID = subscriptionID(props)
	}
	s := session(id)
	s.Messages = append(s.Messages, m)
	return nil
}

// subscriptionID finds the Subscription Identifier (0x0B) in a property
// block checked by propertyBlock; the only property Mosquitto writes for a
// client message. Anything it cannot read ends the search.
func subscriptionID(props []byte) uint32 {
	_, w, _ := varint(props)
	p := props[w:]
	if len(p) < 2 || p[0] != 0x0B {
		return 0
	}
	v, _, err := varint(p[1:])
	if err != nil {
		return 0
	}
	return v
}

func sub(c *cursor, session func(string) *Session) error {
	if len(c.b) < sizeSub {
		return errors.New("subscription chunk too short")
	}
	s := Subscription{Identifier: c.u32()}
	idLen, topicLen := int(c.u16()), int(c.u16())
	s.QoS, s.Options = c.u8(), c.u8()
	c.skip(2)
	if s.QoS > 2 {
		return fmt.Errorf("QoS %d", s.QoS)
	}
	if idLen == 0 || topicLen == 0 || idLen+topicLen != len(c.b) {
		return errors.New("client id and filter lengths do not match the chunk")
	}
	id := c.string(idLen)
	s.Filter = c.string(topicLen)
	ss := session(id)
	ss.Subscriptions = append(ss.Subscriptions, s)
	return c.err
}

func (f *File) client(c *cursor, session func(string) *Session) error {
	size := sizeClientV6
	if f.Version == 5 {
		size = sizeClientV5
	}
	if len(c.b) < size {
		return errors.New("client chunk too short")
	}
	expiry := unixTime(c.host64())
	interval, lastMid, idLen := c.u32(), c.u16(), int(c.u16())
	var port uint16
	userLen := 0
	if f.Version == 6 {
		port, userLen = c.u16(), int(c.u16())
		c.skip(4)
	}
	if idLen == 0 || idLen+userLen != len(c.b) {
		return errors.New("client id and username lengths do not match the chunk")
	}
	s := session(c.string(idLen))
	s.Username = c.string(userLen)
	s.ExpiryTime, s.ExpiryInterval, s.LastMid, s.ListenerPort = expiry, interval, lastMid, port
	return c.err
}
