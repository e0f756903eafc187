package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// FuzzKeyMaterial: key, certificate and PKCS#12 files come from users and
// from wherever they copied them; whatever the bytes, parsing and
// inspecting them returns an error or a result, never a panic.
func FuzzKeyMaterial(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	plain, err := MarshalPrivateKeyPEM(key, nil)
	if err != nil {
		f.Fatal(err)
	}
	block, _ := pem.Decode(plain)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0), IsCA: true, BasicConstraintsValid: true}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain, []byte(""))
	f.Add(block.Bytes, []byte("pw"))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), []byte(""))
	f.Add(append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), plain...), []byte(""))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"), []byte("x"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: DES-EDE3-CBC,0011223344556677\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"), []byte("x"))
	f.Add([]byte{0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x03}, []byte(""))
	f.Fuzz(func(t *testing.T, data, password []byte) {
		_ = Detect(data)
		_, _ = ParsePrivateKey(data, password)
		_, _ = ParsePKCS12(data, string(password))
		_, _ = Inspect(data, InspectOptions{Password: password, Now: time.Unix(1<<30, 0)})
	})
}
