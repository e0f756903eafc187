package store

import "time"

// Message is a stored application message.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// Props is the MQTT 5 property block as encoded on the wire (the
	// forwardable properties only), so the store need not know their layout.
	Props  []byte
	Expiry time.Time // zero: never expires
	From   string
	// SubscriptionID is the identifier of the subscription a queued message
	// was matched by (MQTT 5), for the receiver.
	SubscriptionID uint32
}

// Subscription is one stored subscription of a session.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	SubscriptionID    uint32
}

// Session is a persistent session's durable state.
type Session struct {
	ClientID       string
	Version        byte
	ExpiryInterval uint32    // seconds; 0xFFFFFFFF never expires
	Disconnected   time.Time // zero while connected
	// Username is the name the client authenticated with, kept so that a
	// restored session is authorized as its owner (Mosquitto keeps it too).
	Username      string
	Subscriptions []Subscription
}
