package tlspsk

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
)

// CurveID is a key exchange group.
type CurveID uint16

// The groups this package implements.
const (
	X25519 CurveID = CurveID(groupX25519)
	P256   CurveID = CurveID(groupP256)
)

func (g CurveID) String() string {
	switch g {
	case X25519:
		return "X25519"
	case P256:
		return "P-256"
	}
	return fmt.Sprintf("group(%d)", uint16(g))
}

func (g CurveID) curve() ecdh.Curve {
	switch g {
	case X25519:
		return ecdh.X25519()
	case P256:
		return ecdh.P256()
	}
	return nil
}

// Config configures a client or server. A Config may be shared by many
// connections and must not be changed while in use.
type Config struct {
	// GetKey returns the key of a PSK identity (server). The returned
	// slice is copied before use and zeroed after the handshake, so the
	// caller can hand out its own copy.
	GetKey func(identity string) ([]byte, bool)
	// Hint is the identity hint a TLS 1.2 server sends (psk_hint).
	Hint string

	// Identity and Key are the client's PSK.
	Identity string
	Key      []byte
	// ServerName is the SNI the client sends (none when empty).
	ServerName string

	// MinVersion and MaxVersion bound the versions (default TLS 1.2 and
	// TLS 1.3).
	MinVersion, MaxVersion uint16
	// CipherSuites in order of preference (default DefaultCipherSuites).
	CipherSuites []uint16
	// CurvePreferences in order of preference (default X25519, P-256). A
	// client sends a key share for the first.
	CurvePreferences []CurveID
	// NextProtos are the ALPN protocols, in order of preference.
	NextProtos []string
	// KeyLogWriter receives the connection secrets in the NSS key log
	// format, for Wireshark. For debugging only.
	KeyLogWriter io.Writer
	// Rand is the source of randomness (default crypto/rand).
	Rand io.Reader

	// earlyData, in tests only, makes a client offer 0-RTT and send these
	// bytes as early data, to check that a server skips them.
	earlyData []byte
}

func (c *Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *Config) minVersion() uint16 {
	if c.MinVersion == 0 {
		return VersionTLS12
	}
	return c.MinVersion
}

func (c *Config) maxVersion() uint16 {
	if c.MaxVersion == 0 {
		return VersionTLS13
	}
	return c.MaxVersion
}

// suitesFor returns the configured suites of TLS 1.3 (tls13) or TLS 1.2.
func (c *Config) suitesFor(tls13 bool) []*suite {
	ids := c.CipherSuites
	if ids == nil {
		ids = DefaultCipherSuites
	}
	var out []*suite
	for _, id := range ids {
		if s := suiteByID(id); s != nil && (s.kx == kxTLS13) == tls13 && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (c *Config) curves() []CurveID {
	if c.CurvePreferences == nil {
		return []CurveID{X25519, P256}
	}
	return c.CurvePreferences
}

// Check reports a configuration that cannot work.
func (c *Config) Check(server bool) error {
	if c.minVersion() > c.maxVersion() || c.minVersion() < VersionTLS12 || c.maxVersion() > VersionTLS13 {
		return fmt.Errorf("tls-psk: versions %04x..%04x: TLS-PSK supports TLS 1.2 and 1.3", c.minVersion(), c.maxVersion())
	}
	has13 := len(c.suitesFor(true)) > 0 && c.maxVersion() >= VersionTLS13
	has12 := len(c.suitesFor(false)) > 0 && c.minVersion() <= VersionTLS12
	if !has13 && !has12 {
		return fmt.Errorf("tls-psk: no cipher suite for the TLS versions allowed")
	}
	for _, g := range c.curves() {
		if g.curve() == nil {
			return fmt.Errorf("tls-psk: unsupported group %v", g)
		}
	}
	if server && c.GetKey == nil {
		return fmt.Errorf("tls-psk: a server needs GetKey")
	}
	if !server && (c.Identity == "" || len(c.Key) == 0) {
		return fmt.Errorf("tls-psk: a client needs an identity and a key")
	}
	if len(c.Identity) > 0xffff || len(c.Hint) > 0xffff {
		return fmt.Errorf("tls-psk: identity or hint longer than 65535 bytes")
	}
	return nil
}
