package tlspsk

import (
	"bytes"
	"errors"
	"testing"
)

// chRecord wraps a ClientHello message in a record.
func chRecord(msg []byte) []byte {
	return append([]byte{22, 3, 1, byte(len(msg) >> 8), byte(len(msg))}, msg...)
}

// TestServerAlerts: malformed or hostile first flights are refused with
// the alert RFC 8446 / RFC 5246 name, which is also sent to the client.
func TestServerAlerts(t *testing.T) {
	good := recordedClientHello(&Config{Identity: "dev1", Key: testKey})[5:]
	noPSK := recordedClientHello(&Config{Identity: "dev1", Key: testKey, MaxVersion: VersionTLS12})[5:]
	chachaOnly := recordedClientHello(&Config{Identity: "dev1", Key: testKey, MinVersion: VersionTLS13, CipherSuites: []uint16{TLS_CHACHA20_POLY1305_SHA256}})[5:]
	// A ClientHello whose binder is flipped.
	badBinder := bytes.Clone(good)
	badBinder[len(badBinder)-1] ^= 1
	// Truncated by one byte but with the original length fields.
	truncated := good[:len(good)-1]
	tests := []struct {
		name  string
		in    []byte
		cfg   *Config
		alert Alert
	}{
		{"record over 2^14", []byte{22, 3, 1, 0x40, 0x01}, nil, AlertRecordOverflow},
		{"not TLS", []byte("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c"), nil, AlertUnexpectedMessage},
		{"application data first", []byte{23, 3, 3, 0, 1, 0}, nil, AlertUnexpectedMessage},
		{"handshake message over the limit", []byte{22, 3, 1, 0, 4, 1, 0x7f, 0xff, 0xff}, nil, AlertDecodeError},
		{"not a ClientHello", chRecord([]byte{2, 0, 0, 0}), nil, AlertUnexpectedMessage},
		{"truncated ClientHello", chRecord(append([]byte{1, 0, byte((len(truncated) - 4) >> 8), byte(len(truncated) - 4)}, truncated[4:]...)), nil, AlertDecodeError},
		{"bad binder", chRecord(badBinder), nil, AlertDecryptError},
		{"unknown identity", chRecord(good), &Config{GetKey: keyLookup(map[string][]byte{"other": testKey})}, AlertUnknownPSKIdentity},
		{"TLS 1.2 client, TLS 1.3 server", chRecord(noPSK), &Config{GetKey: keyLookup(map[string][]byte{"dev1": testKey}), MinVersion: VersionTLS13}, AlertProtocolVersion},
		{"no common cipher", chRecord(chachaOnly), &Config{GetKey: keyLookup(map[string][]byte{"dev1": testKey}), CipherSuites: []uint16{TLS_AES_128_GCM_SHA256}}, AlertHandshakeFailure},
		{"alert instead of hello", []byte{21, 3, 1, 0, 2, 2, 40}, nil, AlertHandshakeFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg == nil {
				cfg = &Config{GetKey: keyLookup(map[string][]byte{"dev1": testKey})}
			}
			sc := &scriptConn{r: bytes.NewReader(tc.in)}
			err := Server(sc, cfg).Handshake()
			var e *Error
			if !errors.As(err, &e) || e.Alert != tc.alert {
				t.Fatalf("error %v, want alert %v", err, tc.alert)
			}
			out := sc.written.Bytes()
			if e.Remote {
				if len(out) != 0 {
					t.Fatalf("answered a received alert with %x", out)
				}
				return
			}
			// The alert is the last record written, in the clear.
			if len(out) < 7 || !bytes.Equal(out[len(out)-7:], []byte{21, 3, 3, 0, 2, 2, byte(tc.alert)}) {
				t.Fatalf("sent %x, want a fatal %v alert", out, tc.alert)
			}
		})
	}
}
