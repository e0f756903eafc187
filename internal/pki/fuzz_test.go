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

// FuzzKeyMaterial: key, certificate, CRL and PKCS#12 files come from users and
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
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		f.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(certDER)
	if err != nil {
		f.Fatal(err)
	}
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(3), ThisUpdate: time.Unix(1<<30, 0), NextUpdate: time.Unix(1<<31, 0),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(9), RevocationTime: time.Unix(1<<30, 0)}}}, issuer, key)
	if err != nil {
		f.Fatal(err)
	}
	crlPEM := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crlDER})
	f.Add(crlDER, []byte(""))
	f.Add(append(append([]byte{}, crlPEM...), crlPEM...), []byte("")) // a bundle, one CRL per CA
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
		if crls, err := ParseCRLs(data); err == nil && len(crls) == 0 {
			t.Fatal("ParseCRLs: no CRL and no error")
		}
		_, _ = Inspect(data, InspectOptions{Password: password, Now: time.Unix(1<<30, 0)})
	})
}
