package tlsprobe

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/mamori-mqtt/mamori/internal/tlspsk"
)

// PSKConfig builds the TLS-PSK client configuration for --psk and
// --psk-identity (package tlspsk: TLS 1.3 first, TLS 1.2 when the server
// offers only that). --tls-version is a minimum, as for certificates;
// --ciphers names the TLS 1.2 PSK suites (OpenSSL names); the TLS 1.3
// suites stay offered. --tls-alpn, --servername and --tls-keylog apply.
func PSKConfig(o ClientOptions, host string) (*tlspsk.Config, error) {
	key, err := ParsePSKHex(o.PSK)
	if err != nil {
		return nil, err
	}
	if o.PSKIdentity == "" {
		return nil, errors.New("--psk-identity required if --psk used")
	}
	if o.CAFile != "" || o.CAPath != "" || o.CertFile != "" {
		return nil, errors.New("--psk cannot be combined with --cafile, --capath or --cert: a connection uses either a pre-shared key or certificates")
	}
	cfg := &tlspsk.Config{Identity: o.PSKIdentity, Key: key, NextProtos: o.ALPN}
	if name := o.verifyName(host); name != "" && !isIP(name) {
		cfg.ServerName = name
	}
	switch strings.TrimPrefix(strings.ToLower(strings.TrimSpace(o.TLSVersion)), "tlsv") {
	case "", "1.2":
	case "1.3":
		cfg.MinVersion = tlspsk.VersionTLS13
	case "1", "1.0", "1.1":
		return nil, fmt.Errorf("--tls-version %s: TLS-PSK needs TLS 1.2 or 1.3", o.TLSVersion)
	default:
		return nil, fmt.Errorf("--tls-version %q: use tlsv1.3 or tlsv1.2", o.TLSVersion)
	}
	if o.Ciphers != "" {
		ids, err := tlspsk.ParseCipherList(o.Ciphers)
		if err != nil {
			return nil, fmt.Errorf("--ciphers: %w", err)
		}
		cfg.CipherSuites = []uint16{tlspsk.TLS_AES_128_GCM_SHA256, tlspsk.TLS_CHACHA20_POLY1305_SHA256}
		for _, id := range ids {
			if !tlspsk.IsTLS13Suite(id) {
				cfg.CipherSuites = append(cfg.CipherSuites, id)
			}
		}
	}
	if o.KeyLogFile != "" {
		kl, err := newKeyLog(o.KeyLogFile)
		if err != nil {
			return nil, err
		}
		cfg.KeyLogWriter = kl
	}
	return cfg, nil
}

// isIP: SNI carries host names only (RFC 6066 §3).
func isIP(s string) bool { return net.ParseIP(s) != nil }

// ParsePSKHex decodes a --psk key the way mosquitto 2.0's clients do: an
// odd number of digits is allowed, and leading zero bytes are kept (part
// of the key, as for Mosquitto's broker and OpenSSL's s_client).
func ParsePSKHex(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	k, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("--psk: the key must be hexadecimal (such as 1a2b3c...)")
	}
	if len(bytes.TrimLeft(k, "\x00")) == 0 {
		return nil, errors.New("--psk: the key is empty or zero")
	}
	return k, nil
}

// explainPSK turns a TLS-PSK failure into a sentence. OpenSSL servers
// answer a wrong key in TLS 1.3 with illegal_parameter ("binder does not
// verify") and an unknown identity with handshake_failure (they fall back
// to certificates and have none), so those alerts are read that way too.
func explainPSK(e *tlspsk.Error, o ClientOptions, where string) string {
	if e.Remote {
		switch e.Alert {
		case tlspsk.AlertUnknownPSKIdentity:
			return fmt.Sprintf("TLS-PSK: %s does not know the identity %q — check --psk-identity and the broker's psk_file", where, o.PSKIdentity)
		case tlspsk.AlertDecryptError, tlspsk.AlertBadRecordMAC, tlspsk.AlertIllegalParameter:
			return fmt.Sprintf("TLS-PSK: %s has a different key for identity %q — check --psk against the broker's psk_file (alert %s)", where, o.PSKIdentity, e.Alert)
		case tlspsk.AlertHandshakeFailure:
			return fmt.Sprintf("TLS-PSK: %s refused the handshake: it does not know the identity %q (check --psk-identity and the broker's psk_file), or it is not a TLS-PSK listener, or no cipher suite is in common (alert handshake_failure)", where, o.PSKIdentity)
		}
	}
	return "TLS-PSK: " + strings.TrimPrefix(e.Error(), "tls-psk: ")
}
