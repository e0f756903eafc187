// Package client is mamori's MQTT client: MQTT 3.1, 3.1.1 and 5.0 over any
// net.Conn (TCP, unix socket, TLS, WebSocket, through a SOCKS5 proxy), with
// QoS 0/1/2 in both directions, an in-flight window, keep-alive, wills,
// sessions, topic aliases from the server and every MQTT 5 property.
//
// It is used by "mamori pub", "sub", "rr", "bench" and "tlscheck", and by
// the broker's protocol tests, which also use Raw to send arbitrary packets.
//
// A Client has one read goroutine and one write goroutine. Writers append
// encoded packets to a shared output buffer and the write goroutine sends
// whatever has accumulated in one system call, so a burst of publishes costs
// few writes.
package client

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/tlspsk"
)

// Options configure a connection. Only one of Dial and Address is needed.
type Options struct {
	// Dial opens the byte stream. When nil, Network and Address are dialled
	// with a net.Dialer.
	Dial func(ctx context.Context) (net.Conn, error)
	// Network ("tcp" or "unix") and Address are used when Dial is nil.
	Network, Address string
	// TLSConfig, when set, wraps the stream in TLS and completes the
	// handshake before CONNECT. The caller builds it (see package tlsprobe).
	TLSConfig *tls.Config
	// PSK, when set instead, wraps the stream in TLS-PSK (package tlspsk)
	// and completes its handshake before CONNECT.
	PSK *tlspsk.Config

	// Version is the protocol level; zero means MQTT 3.1.1.
	Version    packet.Version
	ClientID   string
	CleanStart bool
	// KeepAlive is sent in CONNECT; zero disables keep-alive pings.
	KeepAlive time.Duration
	// Username and Password are sent when non-nil.
	Username *string
	Password []byte
	// Props are the CONNECT properties (MQTT 5): session expiry, receive
	// maximum, topic alias maximum, user properties, authentication...
	Props packet.Properties
	// Will is the will message, if any.
	Will *Will

	// MaxInflight caps the number of outgoing QoS 1/2 publishes awaiting
	// acknowledgement; the server's Receive Maximum lowers it further.
	// Zero means 20, as libmosquitto.
	MaxInflight int
	// MaxPacketSize is the largest packet accepted from the server; zero
	// means the protocol maximum.
	MaxPacketSize int
	// LastPacketID continues the packet numbering of an earlier connection
	// (LastPacketID of the old Client), as libmosquitto does across a
	// reconnect; zero starts at 1.
	LastPacketID uint16
	// ConnectTimeout bounds dialling, the TLS handshake and the wait for
	// CONNACK when ctx has no earlier deadline; zero means 30 seconds.
	ConnectTimeout time.Duration

	// OnMessage, when set, is called on the read goroutine for every
	// application message, after it has been acknowledged (for QoS 2: after
	// PUBREL, as libmosquitto does). It must not block for long: while it
	// runs no other packet is read. When nil, messages go to Messages().
	OnMessage func(*Message)
	// OnPacket, when set, is called for every packet sent (sent=true) and
	// received, for debug output. The packet and its byte slices are only
	// valid during the call.
	OnPacket func(sent bool, p packet.Packet)
	// OnAuth, when set, is called for AUTH packets from the server (MQTT 5
	// enhanced authentication); without it an AUTH packet ends the
	// connection with a protocol error.
	OnAuth func(c *Client, a *packet.Auth)
}

// Will is a will message.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Props   packet.Properties
}

// Message is an application message, received or to be published. Received
// messages own their memory.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retain   bool
	Dup      bool
	PacketID uint16 // set on received messages with QoS > 0, and after Publish
	Props    packet.Properties
}

func (o *Options) version() packet.Version {
	if o.Version == 0 {
		return packet.V311
	}
	return o.Version
}
