package pki

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seed001 reproduces the openssl recipe of seed 001: a CA key encrypted with
// -des3, a self-signed CA, and a server certificate made by "openssl x509
// -req" (X.509 v1, no SAN), plus a PKCS#12 made by "openssl pkcs12 -export"
// as a private CA such as Gléas hands out (seed 002).
func seed001(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"genrsa", "-des3", "-passout", "pass:capass", "-out", "ca.key", "2048"},
		{"genrsa", "-des3", "-traditional", "-passout", "pass:capass", "-out", "ca-legacy.key", "2048"},
		{"req", "-new", "-x509", "-days", "3650", "-key", "ca.key", "-passin", "pass:capass", "-subj", "/CN=User-PC.local", "-out", "ca.crt"},
		{"genrsa", "-out", "server.key", "2048"},
		{"genrsa", "-out", "other.key", "2048"},
		{"req", "-new", "-key", "server.key", "-subj", "/CN=User-PC.local", "-out", "server.csr"},
		{"x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-passin", "pass:capass", "-CAcreateserial", "-days", "365", "-out", "server.crt"},
		{"pkcs12", "-export", "-in", "server.crt", "-inkey", "server.key", "-certfile", "ca.crt", "-passout", "pass:p12pass", "-out", "server.p12"},
		{"x509", "-in", "server.crt", "-outform", "DER", "-out", "server.der"},
	} {
		runOpenSSL(t, dir, args...)
	}
	return dir
}

func TestInspectOpenSSLFiles(t *testing.T) {
	dir := seed001(t)
	read := func(name string) []byte { return mustRead(t, filepath.Join(dir, name)) }
	serverKey, err := LoadPrivateKey(filepath.Join(dir, "server.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := LoadPrivateKey(filepath.Join(dir, "other.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	caCerts, err := LoadCertificates(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("v1 certificate without SAN", func(t *testing.T) {
		r, err := Inspect(read("server.crt"), InspectOptions{Key: serverKey, KeySource: "server.key", Roots: caCerts})
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind != KindCertificate || r.Format != "PEM" || len(r.Certificates) != 1 {
			t.Fatalf("report %+v", r)
		}
		c := r.Certificates[0]
		if c.Version != 1 || c.Subject != "CN=User-PC.local" || len(c.SANs) != 0 || c.Key != "RSA 2048" {
			t.Errorf("certificate %+v", c)
		}
		if c.DaysLeft < 363 || c.DaysLeft > 365 {
			t.Errorf("days left %d, want about 364", c.DaysLeft)
		}
		if c.KeyMatches == nil || !*c.KeyMatches {
			t.Error("server.key reported as not matching server.crt")
		}
		if c.Verified == nil || !*c.Verified {
			t.Errorf("not verified against ca.crt: %s", c.VerifyError)
		}
		all := strings.Join(c.Warnings, "\n")
		if !strings.Contains(all, "v1") || !strings.Contains(all, "no subjectAltName") {
			t.Errorf("warnings lack v1/no SAN:\n%s", all)
		}
	})
	t.Run("key that does not match", func(t *testing.T) {
		r, err := Inspect(read("server.crt"), InspectOptions{Key: otherKey})
		if err != nil {
			t.Fatal(err)
		}
		if m := r.Certificates[0].KeyMatches; m == nil || *m {
			t.Errorf("key_matches = %v, want false", m)
		}
	})
	t.Run("DER certificate", func(t *testing.T) {
		r, err := Inspect(read("server.der"), InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Format != "DER" || len(r.Certificates) != 1 || r.Certificates[0].Subject != "CN=User-PC.local" {
			t.Errorf("report %+v", r)
		}
	})
	for _, keyFile := range []string{"ca.key", "ca-legacy.key"} {
		t.Run("encrypted "+keyFile, func(t *testing.T) {
			r, err := Inspect(read(keyFile), InspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Keys) != 1 || !r.Keys[0].Encrypted || r.Keys[0].Decrypted {
				t.Fatalf("without password: %+v", r.Keys)
			}
			r, err = Inspect(read(keyFile), InspectOptions{Password: []byte("capass")})
			if err != nil {
				t.Fatal(err)
			}
			k := r.Keys[0]
			if !k.Decrypted || k.Key != "RSA 2048" || k.Encryption == "" {
				t.Errorf("with password: %+v", k)
			}
			if keyFile == "ca-legacy.key" && !strings.Contains(k.Encryption, "legacy PEM") {
				t.Errorf("legacy key encryption %q", k.Encryption)
			}
			if _, err := Inspect(read(keyFile), InspectOptions{Password: []byte("nope")}); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("wrong password: %v", err)
			}
		})
	}
	t.Run("PKCS#12 from openssl", func(t *testing.T) {
		if _, err := Inspect(read("server.p12"), InspectOptions{}); !errors.Is(err, ErrPasswordRequired) {
			t.Errorf("no password: %v", err)
		}
		r, err := Inspect(read("server.p12"), InspectOptions{Password: []byte("p12pass")})
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind != KindPKCS12 || len(r.Certificates) != 2 || len(r.Keys) != 1 {
			t.Fatalf("report kind %s, %d certs, %d keys", r.Kind, len(r.Certificates), len(r.Keys))
		}
		if m := r.Certificates[0].KeyMatches; m == nil || !*m {
			t.Error("the bundle's key does not match its certificate")
		}
		if r.Certificates[1].KeyMatches != nil {
			t.Error("the CA certificate of the bundle got a key match verdict")
		}
		if r.PKCS12 == nil || r.PKCS12.Legacy || !strings.Contains(strings.Join(r.PKCS12.Encryption, ";"), "AES-256-CBC") {
			t.Errorf("PKCS#12 info %+v, want modern AES", r.PKCS12)
		}
	})
	t.Run("CSR", func(t *testing.T) {
		r, err := Inspect(read("server.csr"), InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Requests) != 1 || !r.Requests[0].SignatureValid || r.Requests[0].Subject != "CN=User-PC.local" {
			t.Errorf("CSR report %+v", r.Requests)
		}
	})
}

func TestInspectMamoriFiles(t *testing.T) {
	c := newCA(t, InitOptions{Intermediate: true})
	iss, err := c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"mqtt.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Revoke(iss.Record.Serial, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteCRL(time.Hour); err != nil {
		t.Fatal(err)
	}

	t.Run("chain with key", func(t *testing.T) {
		data := append(mustRead(t, iss.ChainFile), mustRead(t, iss.KeyFile)...)
		r, err := Inspect(data, InspectOptions{Roots: []*x509.Certificate{c.Root()}})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Certificates) != 2 || len(r.Keys) != 1 || len(r.Notes) != 0 {
			t.Fatalf("report: %d certs, %d keys, notes %v", len(r.Certificates), len(r.Keys), r.Notes)
		}
		leaf := r.Certificates[0]
		if leaf.KeyMatches == nil || !*leaf.KeyMatches || leaf.Verified == nil || !*leaf.Verified {
			t.Errorf("leaf %+v", leaf)
		}
		if len(leaf.Warnings) != 0 {
			t.Errorf("a fresh mamori certificate has warnings: %v", leaf.Warnings)
		}
		if r.Keys[0].Certificate != "CN=mqtt.example.com" {
			t.Errorf("key belongs to %q", r.Keys[0].Certificate)
		}
		// JSON output is stable enough for scripts.
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{`"days_left":`, `"key_matches":true`, `"sans":["DNS:mqtt.example.com"]`} {
			if !strings.Contains(string(out), field) {
				t.Errorf("JSON lacks %s: %s", field, out)
			}
		}
	})
	t.Run("chain in the wrong order", func(t *testing.T) {
		data := EncodeCertificatesPEM(c.Issuer(), iss.Certificate)
		r, err := Inspect(data, InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "not signed by certificate 2") {
			t.Errorf("notes %v", r.Notes)
		}
	})
	t.Run("CRL", func(t *testing.T) {
		r, err := Inspect(mustRead(t, filepath.Join(c.Dir(), CRLFile)), InspectOptions{Roots: []*x509.Certificate{c.Issuer()}})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.CRLs) != 1 {
			t.Fatalf("%d CRLs", len(r.CRLs))
		}
		crl := r.CRLs[0]
		if crl.Number != "2" || len(crl.Revoked) != 1 || crl.Revoked[0].Reason != "superseded" || crl.Revoked[0].Serial != iss.Record.Serial {
			t.Errorf("CRL %+v", crl)
		}
		if crl.SignedBy != "CN=Test CA Intermediate" || crl.Stale {
			t.Errorf("signed by %q, stale %v", crl.SignedBy, crl.Stale)
		}
		r, err = Inspect(mustRead(t, filepath.Join(c.Dir(), CRLFile)), InspectOptions{Now: time.Now().Add(2 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if !r.CRLs[0].Stale || len(r.CRLs[0].Warnings) == 0 {
			t.Errorf("a CRL past nextUpdate is not flagged: %+v", r.CRLs[0])
		}
	})
	t.Run("expired certificate", func(t *testing.T) {
		r, err := Inspect(mustRead(t, iss.CertFile), InspectOptions{Now: time.Now().AddDate(3, 0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if c := r.Certificates[0]; c.Status != "expired" || c.DaysLeft >= 0 {
			t.Errorf("status %s, days left %d", c.Status, c.DaysLeft)
		}
	})
	t.Run("not a PKI file", func(t *testing.T) {
		if _, err := Inspect([]byte("listener 8883\n"), InspectOptions{}); err == nil {
			t.Error("a config file was inspected without error")
		}
	})
}
