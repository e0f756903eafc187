package client

import (
	"context"
	"net"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

var noDeadline time.Time

// Raw is a low-level MQTT connection for protocol tests: it writes any
// packet (or raw bytes, well-formed or not) and reads the next packet with
// a timeout, with no session logic at all.
type Raw struct {
	Conn    net.Conn
	Version packet.Version // used to encode and decode; set after CONNECT
	r       *packet.Reader
}

// NewRaw wraps conn.
func NewRaw(conn net.Conn, v packet.Version) *Raw {
	return &Raw{Conn: conn, Version: v, r: packet.NewReader(conn, 0)}
}

// DialRaw connects to address on network ("tcp" or "unix").
func DialRaw(ctx context.Context, network, address string, v packet.Version) (*Raw, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return NewRaw(conn, v), nil
}

// Send encodes and writes the packets in one write.
func (r *Raw) Send(ps ...packet.Packet) error {
	var b []byte
	for _, p := range ps {
		b = p.Append(b, r.Version)
	}
	return r.SendBytes(b)
}

// SendBytes writes b as is.
func (r *Raw) SendBytes(b []byte) error {
	_, err := r.Conn.Write(b)
	return err
}

// Next reads the next packet, waiting at most timeout. The packet owns its
// memory. A closed connection gives io.EOF (possibly wrapped).
func (r *Raw) Next(timeout time.Duration) (packet.Packet, error) {
	r.Conn.SetReadDeadline(time.Now().Add(timeout))
	defer r.Conn.SetReadDeadline(noDeadline)
	h, body, err := r.r.ReadPacket()
	if err != nil {
		return nil, err
	}
	return packet.Decode(h, append([]byte(nil), body...), r.Version)
}

// Close closes the connection.
func (r *Raw) Close() error { return r.Conn.Close() }
