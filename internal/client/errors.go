package client

import (
	"errors"
	"fmt"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// ConnackError is returned by Dial when the server refuses the connection.
// Code is the CONNACK return code (0..5 before MQTT 5) or reason code.
type ConnackError struct {
	Version packet.Version
	Code    packet.ReasonCode
	Connack *packet.Connack
}

func (e *ConnackError) Error() string {
	if e.Version == packet.V5 {
		return "connection refused: " + e.Code.String()
	}
	return "connection refused: " + ConnackString(byte(e.Code))
}

// ConnackString is the text of an MQTT 3.1/3.1.1 CONNACK return code, as
// libmosquitto words it (mosquitto_sub prints it after "Connection error: ").
func ConnackString(code byte) string {
	switch code {
	case 0:
		return "Connection Accepted."
	case 1:
		return "Connection Refused: unacceptable protocol version."
	case 2:
		return "Connection Refused: identifier rejected."
	case 3:
		return "Connection Refused: broker unavailable."
	case 4:
		return "Connection Refused: bad user name or password."
	case 5:
		return "Connection Refused: not authorised."
	}
	return "Connection Refused: unknown reason."
}

// HandshakeError wraps a failed TLS handshake, so callers can tell it from a
// TCP error and explain it.
type HandshakeError struct{ Err error }

func (e *HandshakeError) Error() string { return "TLS handshake: " + e.Err.Error() }

// Unwrap returns the TLS error.
func (e *HandshakeError) Unwrap() error { return e.Err }

// DisconnectError ends a connection the server closed with a DISCONNECT
// (MQTT 5 carries a reason code and properties).
type DisconnectError struct {
	Code  packet.ReasonCode
	Props packet.Properties
}

func (e *DisconnectError) Error() string {
	s := "server sent DISCONNECT: " + e.Code.String()
	if len(e.Props.ReasonString) > 0 {
		s += " (" + string(e.Props.ReasonString) + ")"
	}
	return s
}

// AckError is returned by Publish, Subscribe and Unsubscribe when the server
// answers with a failure reason code (MQTT 5) for a publish.
type AckError struct {
	Kind  packet.Type
	Code  packet.ReasonCode
	Props packet.Properties
}

func (e *AckError) Error() string {
	s := fmt.Sprintf("%s: %s", e.Kind, e.Code)
	if len(e.Props.ReasonString) > 0 {
		s += " (" + string(e.Props.ReasonString) + ")"
	}
	return s
}

// Errors reported for a connection that is gone or was never usable.
var (
	ErrClosed         = errors.New("client: connection closed")
	ErrKeepAlive      = errors.New("client: no PINGRESP within the keep-alive interval")
	ErrPacketTooLarge = errors.New("client: packet exceeds the server's maximum packet size")
	ErrTopicAlias     = errors.New("client: invalid topic alias from server")
)
