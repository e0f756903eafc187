package broker

import (
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/store"
)

// Message is an application message owned by the broker: retained, queued,
// in flight, or a will. It is immutable once built, so one Message is shared
// by every session it is queued for.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// Props are the forwardable properties (owned copies), nil when the
	// message has none — every MQTT 3 message and most MQTT 5 ones: the
	// struct is 420 bytes, and a queued QoS 1 message should not carry it.
	Props  *packet.Properties
	Expiry time.Time // zero: no message expiry
	From   string    // client id of the publisher
	// Source is the publisher of a retained message, kept with
	// check_retain_source so that its write access is checked again each
	// time the message is served; nil otherwise.
	Source *msgSource
}

// msgSource identifies the client that published a message.
type msgSource struct {
	info ClientInfo
	l    *Listener
}

// noProps stands for a message without properties. Read only.
var noProps packet.Properties

// props returns the message's properties, never nil. Read only.
func (m *Message) props() *packet.Properties {
	if m.Props != nil {
		return m.Props
	}
	return &noProps
}

// hasForwardable reports whether src holds a property forwardable copies.
func hasForwardable(src *packet.Properties) bool {
	const ids = 1<<packet.PropPayloadFormat | 1<<packet.PropMessageExpiry | 1<<packet.PropContentType |
		1<<packet.PropResponseTopic | 1<<packet.PropCorrelationData
	return src.Has&ids != 0 || len(src.User) > 0
}

// ownedProps is the forwardable part of src as an owned copy, or nil.
func ownedProps(src *packet.Properties) *packet.Properties {
	if !hasForwardable(src) {
		return nil
	}
	p := new(packet.Properties)
	forwardable(p, src, true)
	return p
}

// forwardable copies the properties a server passes on to subscribers
// [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17]
// [MQTT-3.3.2-18] [MQTT-3.3.2-20]; the topic alias is per connection and
// subscription identifiers are per subscriber.
func forwardable(dst *packet.Properties, src *packet.Properties, copyBytes bool) {
	cp := func(b []byte) []byte {
		if !copyBytes || b == nil {
			return b
		}
		return append([]byte(nil), b...)
	}
	*dst = packet.Properties{SubscriptionIDs: dst.SubscriptionIDs[:0]}
	// In the publisher's order: subscribers get them as Mosquitto
	// forwards them.
	src.EachInOrder(func(id byte) {
		switch id {
		case packet.PropPayloadFormat, packet.PropMessageExpiry, packet.PropContentType,
			packet.PropResponseTopic, packet.PropCorrelationData:
			dst.Set(int(id))
		case packet.PropUser:
			dst.SetUserPosition()
		}
	})
	dst.PayloadFormat = src.PayloadFormat
	dst.MessageExpiry = src.MessageExpiry
	dst.ContentType = cp(src.ContentType)
	dst.ResponseTopic = cp(src.ResponseTopic)
	dst.CorrelationData = cp(src.CorrelationData)
	dst.User = cp(src.User)
}

// newMessage builds an owned Message from a decoded PUBLISH.
// topicName may alias a read buffer: the topic and the payload are copied
// into one allocation.
func newMessage(topicName string, p *packet.Publish, from string, now time.Time) *Message {
	buf := make([]byte, len(topicName)+len(p.Payload))
	copy(buf, topicName)
	copy(buf[len(topicName):], p.Payload)
	m := &Message{
		Topic:   bytesString(buf[:len(topicName)]),
		Payload: buf[len(topicName):len(buf):len(buf)],
		QoS:     p.QoS,
		Retain:  p.Retain,
		From:    from,
	}
	m.Props = ownedProps(&p.Props)
	if m.Props != nil && m.Props.Present(packet.PropMessageExpiry) {
		m.Expiry = now.Add(time.Duration(m.Props.MessageExpiry) * time.Second)
	}
	return m
}

// expired reports whether the message's expiry interval has passed.
func (m *Message) expired(now time.Time) bool {
	return !m.Expiry.IsZero() && !now.Before(m.Expiry)
}

// remaining is the message expiry interval to forward: the received value
// minus the time spent in the broker [MQTT-3.3.2-6].
func (m *Message) remaining(now time.Time) uint32 {
	d := m.Expiry.Sub(now)
	if d <= 0 {
		return 0
	}
	return uint32((d + time.Second - 1) / time.Second)
}

func (m *Message) toStore() *store.Message {
	var props []byte
	if m.Props != nil && (m.Props.Has != 0 || len(m.Props.User) > 0) {
		// Reuse the wire encoding through a throwaway PUBLISH: the store keeps
		// the property block opaque.
		p := packet.Publish{Topic: []byte("x"), Props: *m.Props}
		enc := p.Append(nil, packet.V5)
		h, _, _ := packet.ParseHeader(enc, 0)
		props = enc[h.Len+3:]
	}
	return &store.Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain,
		Props: props, Expiry: m.Expiry, From: m.From}
}

func messageFromStore(s *store.Message) (*Message, error) {
	m := &Message{Topic: s.Topic, Payload: s.Payload, QoS: s.QoS, Retain: s.Retain, Expiry: s.Expiry, From: s.From}
	if len(s.Props) > 0 {
		raw := packet.AppendHeader(nil, packet.PUBLISH, 0, 3+len(s.Props))
		raw = append(raw, 0, 1, 'x')
		raw = append(raw, s.Props...)
		h, _, err := packet.ParseHeader(raw, 0)
		if err != nil {
			return nil, err
		}
		var p packet.Publish
		if err := p.Decode(h.Flags, raw[h.Len:], packet.V5); err != nil {
			return nil, err
		}
		m.Props = ownedProps(&p.Props)
	}
	return m, nil
}
