package packet

import (
	"errors"
	"fmt"
)

// ReasonCode is an MQTT 5 reason code. Codes of 0x80 and above are failures
// and a ReasonCode is an error, so decoders and the broker can return the
// code that the DISCONNECT or acknowledgement must carry.
type ReasonCode byte

// Reason codes of MQTT 5.0 §2.4.
const (
	Success                     ReasonCode = 0x00
	NormalDisconnection         ReasonCode = 0x00
	GrantedQoS0                 ReasonCode = 0x00
	GrantedQoS1                 ReasonCode = 0x01
	GrantedQoS2                 ReasonCode = 0x02
	DisconnectWithWill          ReasonCode = 0x04
	NoMatchingSubscribers       ReasonCode = 0x10
	NoSubscriptionExisted       ReasonCode = 0x11
	ContinueAuthentication      ReasonCode = 0x18
	ReAuthenticate              ReasonCode = 0x19
	ErrUnspecified              ReasonCode = 0x80
	ErrMalformedPacket          ReasonCode = 0x81
	ErrProtocol                 ReasonCode = 0x82
	ErrImplementationSpecific   ReasonCode = 0x83
	ErrUnsupportedVersion       ReasonCode = 0x84
	ErrClientIDNotValid         ReasonCode = 0x85
	ErrBadUsernameOrPassword    ReasonCode = 0x86
	ErrNotAuthorized            ReasonCode = 0x87
	ErrServerUnavailable        ReasonCode = 0x88
	ErrServerBusy               ReasonCode = 0x89
	ErrBanned                   ReasonCode = 0x8A
	ErrServerShuttingDown       ReasonCode = 0x8B
	ErrBadAuthMethod            ReasonCode = 0x8C
	ErrKeepAliveTimeout         ReasonCode = 0x8D
	ErrSessionTakenOver         ReasonCode = 0x8E
	ErrTopicFilterInvalid       ReasonCode = 0x8F
	ErrTopicNameInvalid         ReasonCode = 0x90
	ErrPacketIDInUse            ReasonCode = 0x91
	ErrPacketIDNotFound         ReasonCode = 0x92
	ErrReceiveMaximumExceeded   ReasonCode = 0x93
	ErrTopicAliasInvalid        ReasonCode = 0x94
	ErrPacketTooLarge           ReasonCode = 0x95
	ErrMessageRateTooHigh       ReasonCode = 0x96
	ErrQuotaExceeded            ReasonCode = 0x97
	ErrAdministrativeAction     ReasonCode = 0x98
	ErrPayloadFormatInvalid     ReasonCode = 0x99
	ErrRetainNotSupported       ReasonCode = 0x9A
	ErrQoSNotSupported          ReasonCode = 0x9B
	ErrUseAnotherServer         ReasonCode = 0x9C
	ErrServerMoved              ReasonCode = 0x9D
	ErrSharedSubsNotSupported   ReasonCode = 0x9E
	ErrConnectionRateExceeded   ReasonCode = 0x9F
	ErrMaximumConnectTime       ReasonCode = 0xA0
	ErrSubIDsNotSupported       ReasonCode = 0xA1
	ErrWildcardSubsNotSupported ReasonCode = 0xA2
)

var reasonText = map[ReasonCode]string{
	0x00: "success", 0x01: "granted QoS 1", 0x02: "granted QoS 2", 0x04: "disconnect with will message",
	0x10: "no matching subscribers", 0x11: "no subscription existed", 0x18: "continue authentication",
	0x19: "re-authenticate", 0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
	0x83: "implementation specific error", 0x84: "unsupported protocol version", 0x85: "client identifier not valid",
	0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable", 0x89: "server busy",
	0x8A: "banned", 0x8B: "server shutting down", 0x8C: "bad authentication method", 0x8D: "keep alive timeout",
	0x8E: "session taken over", 0x8F: "topic filter invalid", 0x90: "topic name invalid",
	0x91: "packet identifier in use", 0x92: "packet identifier not found", 0x93: "receive maximum exceeded",
	0x94: "topic alias invalid", 0x95: "packet too large", 0x96: "message rate too high", 0x97: "quota exceeded",
	0x98: "administrative action", 0x99: "payload format invalid", 0x9A: "retain not supported",
	0x9B: "QoS not supported", 0x9C: "use another server", 0x9D: "server moved",
	0x9E: "shared subscriptions not supported", 0x9F: "connection rate exceeded", 0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported", 0xA2: "wildcard subscriptions not supported",
}

func (r ReasonCode) String() string {
	if s, ok := reasonText[r]; ok {
		return s
	}
	return fmt.Sprintf("reason code 0x%02X", byte(r))
}

// Error makes a ReasonCode usable as an error.
func (r ReasonCode) Error() string { return r.String() }

// IsError reports whether the code signals failure (0x80 and above).
func (r ReasonCode) IsError() bool { return r >= 0x80 }

// With returns an error carrying r and a human explanation, suitable as an
// MQTT 5 reason string.
func (r ReasonCode) With(reason string) error { return &Error{Code: r, Reason: reason} }

// Error is a reason code with an explanation.
type Error struct {
	Code   ReasonCode
	Reason string
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Reason }

// Unwrap lets errors.Is(err, packet.ErrProtocol) match.
func (e *Error) Unwrap() error { return e.Code }

// CodeOf extracts the reason code from err: the code of a ReasonCode or
// *Error in its chain, or ErrUnspecified.
func CodeOf(err error) ReasonCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var r ReasonCode
	if errors.As(err, &r) {
		return r
	}
	return ErrUnspecified
}

// ReasonOf returns the explanation carried by err, if any.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// ConnackV3 maps an MQTT 5 CONNACK reason code to the MQTT 3.1/3.1.1 return
// code that carries the same meaning.
func ConnackV3(r ReasonCode) byte {
	switch r {
	case Success:
		return 0
	case ErrUnsupportedVersion:
		return 1 // unacceptable protocol version
	case ErrClientIDNotValid:
		return 2 // identifier rejected
	case ErrServerUnavailable, ErrServerBusy, ErrServerShuttingDown, ErrUseAnotherServer, ErrServerMoved,
		ErrConnectionRateExceeded:
		return 3 // server unavailable
	case ErrBadUsernameOrPassword, ErrBadAuthMethod:
		return 4 // bad user name or password
	default:
		return 5 // not authorised
	}
}
