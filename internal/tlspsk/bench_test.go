package tlspsk_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/tlspsk"
)

// BenchmarkHandshake compares full handshakes per second: TLS-PSK (this
// package) against crypto/tls with an ECDSA P-256 certificate, both over
// an in-memory pipe so that only the handshakes are measured.
//
//	go test -run '^$' -bench Handshake ./internal/tlspsk/
func BenchmarkHandshake(b *testing.B) {
	keys := map[string][]byte{"dev1": []byte("0123456789abcdef")}
	srv := &tlspsk.Config{GetKey: func(id string) ([]byte, bool) { k, ok := keys[id]; return k, ok }}
	psk := func(name string, cli *tlspsk.Config) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				c1, c2 := net.Pipe()
				done := make(chan error, 1)
				go func() { done <- tlspsk.Server(c2, srv).Handshake() }()
				if err := tlspsk.Client(c1, cli).Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				c1.Close()
				c2.Close()
			}
		})
	}
	psk("psk-tls13-x25519", &tlspsk.Config{Identity: "dev1", Key: keys["dev1"]})
	psk("psk-tls13-p256", &tlspsk.Config{Identity: "dev1", Key: keys["dev1"], CurvePreferences: []tlspsk.CurveID{tlspsk.P256}})
	psk("psk-tls12-ecdhe", &tlspsk.Config{Identity: "dev1", Key: keys["dev1"], MaxVersion: tlspsk.VersionTLS12})
	psk("psk-tls12-plain", &tlspsk.Config{Identity: "dev1", Key: keys["dev1"], MaxVersion: tlspsk.VersionTLS12,
		CipherSuites: []uint16{tlspsk.TLS_PSK_WITH_AES_128_GCM_SHA256}})

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"}, DNSNames: []string{"bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	scfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, SessionTicketsDisabled: true}
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		name := "ecdsa-p256-tls13"
		if v == tls.VersionTLS12 {
			name = "ecdsa-p256-tls12"
		}
		ccfg := &tls.Config{RootCAs: pool, ServerName: "bench", MaxVersion: v, CurvePreferences: []tls.CurveID{tls.X25519}}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				c1, c2 := net.Pipe()
				done := make(chan error, 1)
				go func() { done <- tls.Server(c2, scfg).Handshake() }()
				if err := tls.Client(c1, ccfg).Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				c1.Close()
				c2.Close()
			}
		})
	}
}
