package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func makeCert(t *testing.T, subject pkix.Name) (*x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: subject,
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestCertUsernameMatchesOpenSSL compares use_subject_as_username with what
// OpenSSL (and so Mosquitto) prints for the same certificate.
func TestCertUsernameMatchesOpenSSL(t *testing.T) {
	subjects := []pkix.Name{
		{CommonName: "dev1", OrganizationalUnit: []string{"plant"}, Organization: []string{"Acme"}, Country: []string{"JP"}},
		{CommonName: " #dev<1>\\x ", Organization: []string{"a+b\"c;d, e"}, Province: []string{"Tōkyō"}},
		{CommonName: "x", ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "a@b.example"},
			{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, Value: "example"},
			{Type: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: "odd"},
		}},
	}
	openssl, err := exec.LookPath("openssl")
	for i, s := range subjects {
		cert, pemBytes := makeCert(t, s)
		got, err2 := CertUsername(cert, true)
		if err2 != nil {
			t.Fatal(err2)
		}
		if err != nil {
			t.Logf("openssl not installed; subject %d = %q", i, got)
			continue
		}
		f := filepath.Join(t.TempDir(), "c.pem")
		os.WriteFile(f, pemBytes, 0o600)
		out, err := exec.Command(openssl, "x509", "-in", f, "-noout", "-subject", "-nameopt", "RFC2253").Output()
		if err != nil {
			t.Fatal(err)
		}
		want := strings.TrimPrefix(strings.TrimSpace(string(out)), "subject=")
		if got != want {
			t.Errorf("subject %d:\n got %q\nwant %q", i, got, want)
		}
	}
}

func TestCertUsernameCN(t *testing.T) {
	cert, _ := makeCert(t, pkix.Name{CommonName: "sensor-7", Organization: []string{"Acme"}})
	if u, err := CertUsername(cert, false); err != nil || u != "sensor-7" {
		t.Errorf("CertUsername = %q, %v", u, err)
	}
	cert, _ = makeCert(t, pkix.Name{Organization: []string{"Acme"}})
	if _, err := CertUsername(cert, false); err == nil {
		t.Error("certificate without CN accepted for use_identity_as_username")
	}
}

func TestPSKFile(t *testing.T) {
	p, err := ParsePSKFile("psk", []byte("# c\nid1:00ab12\n id2 : DEADBEEF \nid3:abc\n"))
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := p.Key("id1"); !ok || string(k) != "\x00\xab\x12" {
		// Debian's mosquitto 2.0.11 and its clients keep leading zero
		// bytes (checked against the real programs in test/broker
		// TestHandshakeLockout/psk, whose key starts with 00).
		t.Errorf("id1 key = %x, want 00ab12 (leading zero bytes are part of the key)", k)
	}
	if k, _ := p.Key("id2"); string(k) != "\xde\xad\xbe\xef" {
		t.Errorf("id2 key = %x", k)
	}
	if k, _ := p.Key("id3"); string(k) != "\x0a\xbc" {
		t.Errorf("id3 key = %x", k)
	}
	if !p.Has("id1") || p.Has("nope") {
		t.Error("Has wrong")
	}
	for _, bad := range []string{"id", "id:", ":ab", "id:xyz", "id:00", "id:ab\nid:cd"} {
		_, err := ParsePSKFile("psk", []byte(bad))
		if err == nil || !strings.HasPrefix(err.Error(), "psk:") {
			t.Errorf("ParsePSKFile(%q) = %v", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "xyz") {
			t.Errorf("error leaks key: %v", err)
		}
	}
}
