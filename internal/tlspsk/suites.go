package tlspsk

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// Versions.
const (
	VersionTLS12 uint16 = 0x0303
	VersionTLS13 uint16 = 0x0304
)

// Cipher suite identifiers (IANA). The TLS 1.2 names in comments are
// OpenSSL's, which ciphers in mosquitto.conf and --ciphers use.
const (
	TLS_AES_128_GCM_SHA256                      uint16 = 0x1301
	TLS_AES_256_GCM_SHA384                      uint16 = 0x1302
	TLS_CHACHA20_POLY1305_SHA256                uint16 = 0x1303
	TLS_PSK_WITH_AES_128_GCM_SHA256             uint16 = 0x00a8 // PSK-AES128-GCM-SHA256
	TLS_PSK_WITH_AES_256_GCM_SHA384             uint16 = 0x00a9 // PSK-AES256-GCM-SHA384
	TLS_PSK_WITH_CHACHA20_POLY1305_SHA256       uint16 = 0xccab // PSK-CHACHA20-POLY1305
	TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 uint16 = 0xccac // ECDHE-PSK-CHACHA20-POLY1305
	scsvRenegotiation                           uint16 = 0x00ff
)

type kx uint8

const (
	kxTLS13 kx = iota
	kxPSK
	kxECDHEPSK
)

// suite is what the record layer and key schedule need of a cipher suite.
type suite struct {
	id       uint16
	name     string // OpenSSL's name
	kx       kx
	keyLen   int
	ivLen    int  // TLS 1.3 and ChaCha20: 12; TLS 1.2 GCM: the 4-byte salt
	explicit bool // TLS 1.2 GCM: an 8-byte explicit nonce in each record
	hash     func() hash.Hash
	hashLen  int
	aead     func(key []byte) (cipher.AEAD, error)
}

func aesGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

var suites = []*suite{
	{id: TLS_AES_128_GCM_SHA256, name: "TLS_AES_128_GCM_SHA256", kx: kxTLS13, keyLen: 16, ivLen: 12, hash: sha256.New, hashLen: 32, aead: aesGCM},
	{id: TLS_CHACHA20_POLY1305_SHA256, name: "TLS_CHACHA20_POLY1305_SHA256", kx: kxTLS13, keyLen: 32, ivLen: 12, hash: sha256.New, hashLen: 32, aead: chacha20poly1305.New},
	{id: TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256, name: "ECDHE-PSK-CHACHA20-POLY1305", kx: kxECDHEPSK, keyLen: 32, ivLen: 12, hash: sha256.New, hashLen: 32, aead: chacha20poly1305.New},
	{id: TLS_PSK_WITH_AES_256_GCM_SHA384, name: "PSK-AES256-GCM-SHA384", kx: kxPSK, keyLen: 32, ivLen: 4, explicit: true, hash: sha512.New384, hashLen: 48, aead: aesGCM},
	{id: TLS_PSK_WITH_AES_128_GCM_SHA256, name: "PSK-AES128-GCM-SHA256", kx: kxPSK, keyLen: 16, ivLen: 4, explicit: true, hash: sha256.New, hashLen: 32, aead: aesGCM},
	{id: TLS_PSK_WITH_CHACHA20_POLY1305_SHA256, name: "PSK-CHACHA20-POLY1305", kx: kxPSK, keyLen: 32, ivLen: 12, hash: sha256.New, hashLen: 32, aead: chacha20poly1305.New},
}

// DefaultCipherSuites is the order of preference when Config.CipherSuites
// is nil: TLS 1.3 AES-GCM first (hardware AES), then the forward-secret
// TLS 1.2 suite, then the plain PSK suites small devices have.
var DefaultCipherSuites = []uint16{
	TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256,
	TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256,
	TLS_PSK_WITH_AES_128_GCM_SHA256, TLS_PSK_WITH_AES_256_GCM_SHA384, TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
}

func suiteByID(id uint16) *suite {
	for _, s := range suites {
		if s.id == id {
			return s
		}
	}
	return nil
}

// CipherSuiteName returns the OpenSSL name of a suite this package
// implements, or a hex form.
func CipherSuiteName(id uint16) string {
	if s := suiteByID(id); s != nil {
		return s.name
	}
	return fmt.Sprintf("0x%04X", id)
}

// IsTLS13Suite reports whether id is a TLS 1.3 suite of this package.
func IsTLS13Suite(id uint16) bool {
	s := suiteByID(id)
	return s != nil && s.kx == kxTLS13
}

// ParseCipherList reads a cipher list as in mosquitto.conf's ciphers and
// ciphers_tls1.3 or --ciphers: OpenSSL names (or IANA names) separated by
// ':', ',' or spaces. A name this package does not implement is an error
// that names it and lists what is available.
func ParseCipherList(s string) ([]uint16, error) {
	var ids []uint16
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		var found *suite
		for _, su := range suites {
			if strings.EqualFold(f, su.name) || strings.EqualFold(f, ianaName(su.id)) {
				found = su
			}
		}
		if found == nil {
			var names []string
			for _, su := range suites {
				names = append(names, su.name)
			}
			return nil, fmt.Errorf("cipher %q is not available for TLS-PSK; available: %s", f, strings.Join(names, ", "))
		}
		ids = append(ids, found.id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("empty cipher list")
	}
	return ids, nil
}

func ianaName(id uint16) string {
	switch id {
	case TLS_PSK_WITH_AES_128_GCM_SHA256:
		return "TLS_PSK_WITH_AES_128_GCM_SHA256"
	case TLS_PSK_WITH_AES_256_GCM_SHA384:
		return "TLS_PSK_WITH_AES_256_GCM_SHA384"
	case TLS_PSK_WITH_CHACHA20_POLY1305_SHA256:
		return "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256"
	case TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256:
		return "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256"
	}
	return CipherSuiteName(id)
}

// Named groups.
const (
	groupP256   uint16 = 23
	groupX25519 uint16 = 29
)
