// Package tlspsk is mamori's own TLS with pre-shared keys, written on Go's
// cryptographic primitives because crypto/tls has no PSK (golang/go#6379).
//
// It implements, for both client and server:
//
//   - TLS 1.3 with an external PSK in psk_dhe_ke mode (RFC 8446 §4.2.9):
//     X25519 or P-256 key shares, a HelloRetryRequest when the client's
//     share is of a group it supports but did not send, suites
//     TLS_AES_128_GCM_SHA256 and TLS_CHACHA20_POLY1305_SHA256. External
//     PSKs are bound to SHA-256, as OpenSSL binds them. No 0-RTT: early
//     data is skipped as §4.2.10 says; KeyUpdate is honoured.
//   - TLS 1.2 PSK suites: ECDHE-PSK (RFC 5489) with ChaCha20-Poly1305 (RFC
//     7905) and plain PSK with AES-GCM (RFC 5487) or ChaCha20-Poly1305, with
//     the extended master secret (RFC 7627) and the identity hint (RFC 4279).
//
// Nothing else: no certificates, no resumption, no renegotiation (RFC 5746
// is answered so that OpenSSL clients connect), no compression.
//
// Every handshake message is parsed by length-checked readers that never
// allocate before the length is known to fit (fuzz targets in
// fuzz_test.go); records and handshake messages are bounded by the RFC
// limits before a byte is buffered. Binders and Finished values are
// compared in constant time. Key material never appears in errors or
// logs; Config.KeyLogWriter writes the NSS key log format for Wireshark,
// on request only.
package tlspsk
