package tlspsk

import (
	"errors"
	"fmt"
)

// Alert is a TLS alert description (RFC 8446 §6, RFC 5246 §7.2, RFC 4279).
type Alert uint8

// The alerts this package sends or explains.
const (
	AlertCloseNotify           Alert = 0
	AlertUnexpectedMessage     Alert = 10
	AlertBadRecordMAC          Alert = 20
	AlertRecordOverflow        Alert = 22
	AlertHandshakeFailure      Alert = 40
	AlertIllegalParameter      Alert = 47
	AlertDecodeError           Alert = 50
	AlertDecryptError          Alert = 51
	AlertProtocolVersion       Alert = 70
	AlertInsufficientSecurity  Alert = 71
	AlertInternalError         Alert = 80
	AlertInappropriateFallback Alert = 86
	AlertUserCanceled          Alert = 90
	AlertNoRenegotiation       Alert = 100
	AlertMissingExtension      Alert = 109
	AlertUnsupportedExtension  Alert = 110
	AlertUnknownPSKIdentity    Alert = 115
	AlertNoApplicationProtocol Alert = 120
)

var alertNames = map[Alert]string{
	AlertCloseNotify: "close_notify", AlertUnexpectedMessage: "unexpected_message",
	AlertBadRecordMAC: "bad_record_mac", AlertRecordOverflow: "record_overflow",
	AlertHandshakeFailure: "handshake_failure", AlertIllegalParameter: "illegal_parameter",
	AlertDecodeError: "decode_error", AlertDecryptError: "decrypt_error",
	AlertProtocolVersion: "protocol_version", AlertInsufficientSecurity: "insufficient_security",
	AlertInternalError: "internal_error", AlertInappropriateFallback: "inappropriate_fallback",
	AlertUserCanceled: "user_canceled", AlertNoRenegotiation: "no_renegotiation",
	AlertMissingExtension: "missing_extension", AlertUnsupportedExtension: "unsupported_extension",
	AlertUnknownPSKIdentity: "unknown_psk_identity", AlertNoApplicationProtocol: "no_application_protocol",
	// Alerts other stacks send that a person may need explained.
	41: "no_certificate", 42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
	45: "certificate_expired", 46: "certificate_unknown", 48: "unknown_ca", 49: "access_denied",
	112: "unrecognized_name", 116: "certificate_required", 21: "decryption_failed",
}

func (a Alert) String() string {
	if n, ok := alertNames[a]; ok {
		return n
	}
	return fmt.Sprintf("alert(%d)", uint8(a))
}

// Error is a handshake or connection failure: the reason in words and the
// alert that carried it. Remote is true when the peer sent the alert;
// otherwise this side sent it (or tried to). Reasons never contain key
// material.
type Error struct {
	Alert  Alert
	Remote bool
	Reason string
}

func (e *Error) Error() string {
	if e.Remote {
		if e.Reason != "" {
			return fmt.Sprintf("tls-psk: the peer sent alert %s: %s", e.Alert, e.Reason)
		}
		return fmt.Sprintf("tls-psk: the peer sent alert %s", e.Alert)
	}
	return fmt.Sprintf("tls-psk: %s (alert %s)", e.Reason, e.Alert)
}

// errorf makes a local Error carrying the alert to send.
func errorf(a Alert, format string, args ...any) *Error {
	return &Error{Alert: a, Reason: fmt.Sprintf(format, args...)}
}

// AlertOf returns the alert of err, if it is or wraps an *Error.
func AlertOf(err error) (Alert, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Alert, true
	}
	return 0, false
}

// remoteReason explains an alert received during the handshake, from the
// point of view of PSK: which alerts mean which misconfiguration.
func remoteReason(a Alert, client bool) string {
	switch a {
	case AlertUnknownPSKIdentity:
		if client {
			return "the server does not know this PSK identity (check --psk-identity and the server's psk_file)"
		}
		return "the client does not know the identity"
	case AlertDecryptError, AlertBadRecordMAC:
		return "the keys do not match: the two sides use different pre-shared keys for this identity"
	case AlertHandshakeFailure:
		if client {
			return "the server found nothing in common with this client (TLS version, cipher suite, key exchange or PSK)"
		}
		return "the client found nothing acceptable in the server's choices"
	case AlertProtocolVersion:
		return "no TLS version in common (see tls_version / --tls-version)"
	case AlertInsufficientSecurity:
		return "the peer refused the cipher suites offered as too weak"
	case AlertIllegalParameter, AlertDecodeError:
		return "the peer found this side's handshake malformed"
	}
	return ""
}
