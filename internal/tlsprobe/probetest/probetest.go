// Package probetest holds the test fixtures of tlsprobe and tlscheck: the
// seeds' certificates made at run time with the openssl command exactly as
// the seeds make them (plus the few that openssl cannot make without a
// fake clock, made with Go), and TLS, plain MQTT, mosquitto and
// "openssl s_server" endpoints on 127.0.0.1, stopped in t.Cleanup.
package probetest

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/pki"
)

// Pass is the passphrase of every encrypted key and PKCS#12 bundle.
const Pass = "secret"

// PKI is a directory of certificates and keys. File names:
//
//	ca1.crt ca1.key           CA1 (openssl req -x509), CN=CA1
//	ca2.crt ca2.key           CA2, CN=CA2
//	server1.crt server1.key   CN=mqtt.local from CA1: X.509 v1, no SAN (openssl x509 -req)
//	server2.crt server2.key   CN=mqtt.example.com from CA2, v1, no SAN
//	san.crt san.key           from CA1: DNS mqtt.example.com, *.example.org; IP 127.0.0.1
//	expired.crt expired.key   CN=mqtt.local from CA1, expired a year ago (Go)
//	future.crt future.key     CN=mqtt.local from CA1, valid from next year (Go)
//	device1.crt device1.key   client CN=device1 from CA1 (v1)
//	device2.crt device2.key   client CN=device2 from CA2 (v1)
//	devexp.crt devexp.key     client CN=devexp from CA1, expired (Go)
//	device1-pkcs8.key         device1.key as encrypted PKCS#8 (Pass)
//	device1-legacy.key        device1.key as legacy PEM, Proc-Type: 4,ENCRYPTED (Pass)
//	device1.p12               device1 certificate, key and CA1 as PKCS#12 (Pass)
//	seed001/mqtt_ca.crt, mqtt_srv.crt, mqtt_srv.key: seed 001's CA and server
//	    certificate with the same subject (CN=User-PC.local), CA key made
//	    with "openssl genrsa -des3".
type PKI struct {
	Dir string
}

// Path returns the path of a file of the PKI.
func (p *PKI) Path(name string) string { return filepath.Join(p.Dir, name) }

// Cert reads one certificate of the PKI.
func (p *PKI) Cert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	certs, err := pki.LoadCertificates(p.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// OpenSSL runs the openssl command in dir and fails the test on error.
func OpenSSL(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// NewPKI makes the certificates described at PKI in a temporary directory.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	p := &PKI{Dir: t.TempDir()}
	d := p.Dir
	for _, ca := range []string{"ca1", "ca2"} {
		OpenSSL(t, d, "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", ca+".key",
			"-out", ca+".crt", "-days", "3650", "-subj", "/CN="+strings.ToUpper(ca))
	}
	// The seeds' server and client certificates: key, CSR, then
	// "openssl x509 -req", which makes a v1 certificate with no SAN.
	leaf := func(name, cn, ca string) {
		OpenSSL(t, d, "genrsa", "-out", name+".key", "2048")
		OpenSSL(t, d, "req", "-new", "-key", name+".key", "-out", name+".csr", "-subj", "/CN="+cn)
		OpenSSL(t, d, "x509", "-req", "-in", name+".csr", "-CA", ca+".crt", "-CAkey", ca+".key",
			"-CAcreateserial", "-out", name+".crt", "-days", "365")
	}
	leaf("server1", "mqtt.local", "ca1")
	leaf("server2", "mqtt.example.com", "ca2")
	leaf("device1", "device1", "ca1")
	leaf("device2", "device2", "ca2")
	OpenSSL(t, d, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "device1.key", "-out", "device1-pkcs8.key", "-passout", "pass:"+Pass)
	OpenSSL(t, d, "rsa", "-in", "device1.key", "-aes256", "-traditional", "-out", "device1-legacy.key", "-passout", "pass:"+Pass)
	OpenSSL(t, d, "pkcs12", "-export", "-in", "device1.crt", "-inkey", "device1.key", "-certfile", "ca1.crt",
		"-out", "device1.p12", "-passout", "pass:"+Pass)

	now := time.Now()
	ca1 := p.Cert(t, "ca1.crt")
	ca1Key, err := pki.LoadPrivateKey(p.Path("ca1.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.issue(t, "san", ca1, ca1Key, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "mqtt.example.com"},
		DNSNames:    []string{"mqtt.example.com", "*.example.org"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.issue(t, "expired", ca1, ca1Key, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "mqtt.local"},
		NotBefore: now.Add(-2 * 365 * 24 * time.Hour), NotAfter: now.Add(-365 * 24 * time.Hour),
	})
	p.issue(t, "future", ca1, ca1Key, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "mqtt.local"},
		NotBefore: now.Add(365 * 24 * time.Hour), NotAfter: now.Add(2 * 365 * 24 * time.Hour),
	})
	p.issue(t, "devexp", ca1, ca1Key, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "devexp"},
		NotBefore: now.Add(-2 * 365 * 24 * time.Hour), NotAfter: now.Add(-365 * 24 * time.Hour),
	})

	// Seed 001: CA and server certificate share one subject; the CA key is
	// encrypted by "openssl genrsa -des3".
	s1 := filepath.Join(d, "seed001")
	if err := os.Mkdir(s1, 0o700); err != nil {
		t.Fatal(err)
	}
	subj := "/C=JP/ST=tokyo/L=tokyo/O=FicusOnline/OU=dev/CN=User-PC.local"
	OpenSSL(t, s1, "genrsa", "-des3", "-passout", "pass:"+Pass, "-out", "mqtt_ca.key", "2048")
	OpenSSL(t, s1, "req", "-new", "-x509", "-days", "3650", "-key", "mqtt_ca.key", "-passin", "pass:"+Pass,
		"-out", "mqtt_ca.crt", "-subj", subj)
	OpenSSL(t, s1, "genrsa", "-out", "mqtt_srv.key", "2048")
	OpenSSL(t, s1, "req", "-new", "-out", "mqtt_srv.csr", "-key", "mqtt_srv.key", "-subj", subj)
	OpenSSL(t, s1, "x509", "-req", "-in", "mqtt_srv.csr", "-CA", "mqtt_ca.crt", "-CAkey", "mqtt_ca.key",
		"-passin", "pass:"+Pass, "-CAcreateserial", "-out", "mqtt_srv.crt", "-days", "3650")
	return p
}

// issue makes NAME.crt and NAME.key (ECDSA P-256 via pki) signed by ca:
// the dates openssl cannot set without a fake clock.
func (p *PKI) issue(t testing.TB, name string, ca *x509.Certificate, caKey crypto.Signer, tmpl *x509.Certificate) {
	t.Helper()
	key, err := pki.GenerateKey(pki.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.MarshalPrivateKeyPEM(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Path(name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Path(name+".key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}
