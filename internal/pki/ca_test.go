package pki

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIssueVerifiesWithOpenSSL(t *testing.T) {
	tests := []struct {
		name         string
		keyType      KeyType
		intermediate bool
		wantKey      string
	}{
		{"ecdsa root only", "", false, "ECDSA P-256"},
		{"ecdsa with intermediate", KeyECDSAP256, true, "ECDSA P-256"},
		{"rsa 2048 with intermediate", KeyRSA2048, true, "RSA 2048"},
		{"ed25519", KeyEd25519, false, "Ed25519"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCA(t, InitOptions{KeyType: tt.keyType, Intermediate: tt.intermediate})
			dir := c.Dir()
			srv, err := c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"mqtt.example.com", "*.mqtt.example.com"}, IPAddresses: []net.IP{net.ParseIP("192.0.2.10")}})
			if err != nil {
				t.Fatalf("Issue server: %v", err)
			}
			cli, err := c.Issue(IssueRequest{Kind: ClientCert, CommonName: "sensor-01", EmailAddresses: []string{"ops@example.com"}})
			if err != nil {
				t.Fatalf("Issue client: %v", err)
			}

			untrusted := []string{}
			if tt.intermediate {
				untrusted = []string{"-untrusted", IntermediateCertFile}
			}
			args := append([]string{"verify", "-CAfile", RootCertFile}, untrusted...)
			runOpenSSL(t, dir, append(args, "-purpose", "sslserver", "-verify_hostname", "mqtt.example.com", srv.CertFile)...)
			runOpenSSL(t, dir, append(args, "-purpose", "sslserver", "-verify_ip", "192.0.2.10", srv.CertFile)...)
			runOpenSSL(t, dir, append(args, "-purpose", "sslclient", "-verify_email", "ops@example.com", cli.CertFile)...)
			// A client certificate must not pass as a server certificate.
			if out, err := openSSL(t, dir, append(args, "-purpose", "sslserver", cli.CertFile)...); err == nil {
				t.Errorf("client certificate verified for sslserver:\n%s", out)
			}
			// The chain file alone (as a server sends it) completes the path.
			runOpenSSL(t, dir, "verify", "-CAfile", RootCertFile, "-untrusted", srv.ChainFile, srv.CertFile)

			text := runOpenSSL(t, dir, "x509", "-in", srv.CertFile, "-noout", "-text")
			for _, want := range []string{"Version: 3", "TLS Web Server Authentication", "DNS:mqtt.example.com", "DNS:*.mqtt.example.com", "IP Address:192.0.2.10", "CA:FALSE", "Subject Key Identifier", "Authority Key Identifier"} {
				if !strings.Contains(text, want) {
					t.Errorf("x509 -text lacks %q:\n%s", want, text)
				}
			}
			cert := srv.Certificate
			if tt.keyType == KeyRSA2048 {
				if cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
					t.Errorf("RSA server key usage = %v", cert.KeyUsage)
				}
			} else if cert.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("server key usage = %v", cert.KeyUsage)
			}
			if got := KeyDescription(cert.PublicKey); got != tt.wantKey {
				t.Errorf("leaf key %s, want %s (the CA's type)", got, tt.wantKey)
			}
			if cert.SerialNumber.BitLen() < 64 {
				t.Errorf("serial %x has only %d bits", cert.SerialNumber, cert.SerialNumber.BitLen())
			}
			if cert.Subject.CommonName != "mqtt.example.com" {
				t.Errorf("CN = %q, want the first DNS name", cert.Subject.CommonName)
			}
			if len(cli.Certificate.ExtKeyUsage) != 1 || cli.Certificate.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
				t.Errorf("client EKU = %v", cli.Certificate.ExtKeyUsage)
			}

			chain, err := LoadCertificates(srv.ChainFile)
			if err != nil {
				t.Fatal(err)
			}
			wantChain := 1
			if tt.intermediate {
				wantChain = 2
			}
			if len(chain) != wantChain {
				t.Errorf("chain file holds %d certificates, want %d (leaf + intermediate, never the root)", len(chain), wantChain)
			}
			for _, c := range chain {
				if isSelfSigned(c) {
					t.Errorf("chain file contains the root %s", c.Subject)
				}
			}
			mustMode(t, srv.KeyFile, 0o600)
			mustMode(t, filepath.Join(dir, RootKeyFile), 0o600)
			mustMode(t, dir, 0o755)
			mustMode(t, filepath.Join(dir, IssuedDir), 0o755)
			mustMode(t, filepath.Join(dir, CRLFile), 0o644)
			mustMode(t, filepath.Join(dir, RootCertFile), 0o644)
			if _, err := LoadKeyPair(srv.ChainFile, srv.KeyFile, nil); err != nil {
				t.Errorf("LoadKeyPair of issued files: %v", err)
			}
		})
	}
}

func TestEncryptedCAKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	if _, err := Init(dir, InitOptions{}); err == nil {
		t.Fatal("Init without a password and without NoPassword succeeded")
	}
	if _, err := Init(dir, InitOptions{Password: []byte("correct horse"), Intermediate: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir, InitOptions{NoPassword: true}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Init in the same directory: %v, want 'already exists'", err)
	}
	for _, f := range []string{RootKeyFile, IntermediateKeyFile} {
		pemData := string(mustRead(t, filepath.Join(dir, f)))
		if !strings.Contains(pemData, "ENCRYPTED PRIVATE KEY") {
			t.Errorf("%s is not encrypted PKCS#8:\n%s", f, pemData)
		}
		// OpenSSL must read what we write.
		runOpenSSL(t, dir, "pkey", "-in", f, "-passin", "pass:correct horse", "-noout")
		if out, err := openSSL(t, dir, "pkey", "-in", f, "-passin", "pass:wrong", "-noout"); err == nil {
			t.Errorf("openssl accepted a wrong passphrase for %s:\n%s", f, out)
		}
	}

	calls := 0
	pw := func(s string) func() ([]byte, error) {
		return func() ([]byte, error) { calls++; return []byte(s), nil }
	}
	c, err := Open(dir, OpenOptions{Password: pw("correct horse")})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Records()
	if calls != 0 {
		t.Errorf("listing asked for the passphrase %d times", calls)
	}
	if _, err := c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"a.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"b.example"}}); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("passphrase asked %d times for two issues, want once", calls)
	}

	c, err = Open(dir, OpenOptions{Password: pw("wrong")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"c.example"}})
	if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "wrong password for "+filepath.Join(dir, IntermediateKeyFile)) {
		t.Fatalf("Issue with a wrong passphrase: %v", err)
	}
	c, _ = Open(dir, OpenOptions{})
	if _, err = c.WriteCRL(0); !errors.Is(err, ErrPasswordRequired) {
		t.Fatalf("WriteCRL without a passphrase source: %v", err)
	}
}

func TestRevokeAndCRL(t *testing.T) {
	c := newCA(t, InitOptions{Intermediate: true})
	dir := c.Dir()
	a, err := c.Issue(IssueRequest{Kind: ClientCert, CommonName: "device-a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Issue(IssueRequest{Kind: ClientCert, CommonName: "device-b"})
	if err != nil {
		t.Fatal(err)
	}
	if c.CRLNumber() != 1 {
		t.Fatalf("CRL number after init = %d, want 1", c.CRLNumber())
	}
	rec, err := c.Revoke("device-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Reason != "keyCompromise" || rec.Status != StatusRevoked || rec.RevokedAt == nil {
		t.Errorf("revoked record = %+v", rec)
	}
	if _, err := c.Revoke(a.Record.Serial, 0); err == nil || !strings.Contains(err.Error(), "already revoked") {
		t.Errorf("second revoke: %v", err)
	}
	res, err := c.WriteCRL(7 * 24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if res.Number.Int64() != 2 || res.Revoked != 1 {
		t.Errorf("CRL number %s with %d entries, want 2 with 1", res.Number, res.Revoked)
	}
	if d := res.NextUpdate.Sub(res.ThisUpdate); d != 7*24*time.Hour {
		t.Errorf("nextUpdate - thisUpdate = %v", d)
	}

	text := runOpenSSL(t, dir, "crl", "-in", CRLFile, "-noout", "-text")
	for _, want := range []string{"Key Compromise", strings.ToUpper(a.Record.Serial), "X509v3 CRL Number", "Issuer: CN = Test CA Intermediate"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl crl -text lacks %q:\n%s", want, text)
		}
	}
	runOpenSSL(t, dir, "crl", "-in", CRLFile, "-CAfile", IntermediateCertFile, "-noout")
	verify := []string{"verify", "-crl_check", "-CAfile", RootCertFile, "-untrusted", IntermediateCertFile, "-CRLfile", CRLFile}
	if out, err := openSSL(t, dir, append(verify, a.CertFile)...); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify of the revoked certificate: err=%v\n%s", err, out)
	}
	runOpenSSL(t, dir, append(verify, b.CertFile)...)

	// The CRL number keeps growing even when index.json is restored from
	// an older backup.
	var idx map[string]any
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, IndexFile)), &idx); err != nil {
		t.Fatal(err)
	}
	idx["crl_number"] = 0
	data, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(dir, IndexFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	c2, err := Open(dir, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err = c2.WriteCRL(0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Number.Int64() != 3 {
		t.Errorf("CRL number after restoring an old index = %s, want 3", res.Number)
	}
	crl, err := LoadCRL(filepath.Join(dir, CRLFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(c2.Issuer()); err != nil {
		t.Errorf("CRL signature: %v", err)
	}
}

func TestFind(t *testing.T) {
	c := newCA(t, InitOptions{})
	one, err := c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"one.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"one.example"}}); err == nil {
		t.Fatal("a second valid certificate with the same name was issued without Force")
	}
	again, err := c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"one.example"}, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	s := one.Record.Serial
	var colon []string
	for i := 0; i < len(s); i += 2 {
		colon = append(colon, strings.ToUpper(s[i:min(i+2, len(s))]))
	}
	tests := []struct {
		name, selector string
		newest         bool
		want           string // serial, or "" for an error
		errText        string
	}{
		{"plain serial", s, false, s, ""},
		{"colon upper-case serial", strings.Join(colon, ":"), false, s, ""},
		{"0x serial", "0x" + s, false, s, ""},
		{"ambiguous name", "one.example", false, "", "give the serial"},
		{"newest by name", "one.example", true, again.Record.Serial, ""},
		{"unknown", "nope", false, "", "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, err := find(&c.idx, tt.selector, tt.newest)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("find(%q) = %d, %v; want error with %q", tt.selector, i, err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.idx.Certificates[i].Serial; got != tt.want {
				t.Errorf("find(%q) = %s, want %s", tt.selector, got, tt.want)
			}
		})
	}
}

func TestNormalizeRequest(t *testing.T) {
	tests := []struct {
		name    string
		req     IssueRequest
		wantCN  string
		wantSAN string // one SAN, in openssl notation, that must be present
		wantErr string
	}{
		{"server needs names", IssueRequest{Kind: ServerCert}, "", "", "--dns"},
		{"server CN becomes DNS SAN", IssueRequest{Kind: ServerCert, CommonName: "User-PC.local"}, "User-PC.local", "DNS:user-pc.local", ""},
		{"server CN IP becomes IP SAN", IssueRequest{Kind: ServerCert, CommonName: "10.0.0.5"}, "10.0.0.5", "IP:10.0.0.5", ""},
		{"server CN from IP", IssueRequest{Kind: ServerCert, IPAddresses: []net.IP{net.ParseIP("::1")}}, "::1", "IP:::1", ""},
		{"server bad DNS", IssueRequest{Kind: ServerCert, DNSNames: []string{"bad name"}}, "", "", "not a valid DNS name"},
		{"server CN not a host", IssueRequest{Kind: ServerCert, CommonName: "My Broker"}, "", "", "not a host name"},
		{"client needs CN", IssueRequest{Kind: ClientCert}, "", "", "--cn"},
		{"client CN host-like", IssueRequest{Kind: ClientCert, CommonName: "sensor-01"}, "sensor-01", "DNS:sensor-01", ""},
		{"client CN e-mail", IssueRequest{Kind: ClientCert, CommonName: "taro@example.com"}, "taro@example.com", "email:taro@example.com", ""},
		{"client CN free text", IssueRequest{Kind: ClientCert, CommonName: "Taro Yamada"}, "Taro Yamada", "URI:urn:mamori:client:Taro%20Yamada", ""},
		{"client explicit e-mail only", IssueRequest{Kind: ClientCert, CommonName: "line 3", EmailAddresses: []string{"l3@example.com"}}, "line 3", "email:l3@example.com", ""},
		{"client bad e-mail", IssueRequest{Kind: ClientCert, CommonName: "x", EmailAddresses: []string{"nope"}}, "", "", "e-mail"},
		{"bad name", IssueRequest{Kind: ClientCert, CommonName: "x", Name: "../x"}, "", "", "name"},
		{"unknown kind", IssueRequest{Kind: "peer", CommonName: "x"}, "", "", "unknown certificate kind"},
	}
	c := newCA(t, InitOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			err := normalizeRequest(&req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.CommonName != tt.wantCN {
				t.Errorf("CN = %q, want %q", req.CommonName, tt.wantCN)
			}
			iss, err := c.Issue(req)
			if err != nil {
				t.Fatal(err)
			}
			sans := sanStrings(iss.Certificate)
			if !strings.Contains(strings.Join(sans, ","), tt.wantSAN) {
				t.Errorf("SANs %v lack %s", sans, tt.wantSAN)
			}
		})
	}
	if got := fileName("*.example.com"); got != "wildcard.example.com" {
		t.Errorf("fileName(*.example.com) = %q", got)
	}
	if got := fileName("Taro Yamada/1"); got != "Taro-Yamada-1" {
		t.Errorf("fileName = %q", got)
	}
}

func TestLeafNeverOutlivesIssuer(t *testing.T) {
	c := newCA(t, InitOptions{Days: 30})
	iss, err := c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"x.example"}, Days: 3650})
	if err != nil {
		t.Fatal(err)
	}
	if iss.Certificate.NotAfter.After(c.Root().NotAfter) {
		t.Errorf("leaf until %v outlives its CA (%v)", iss.Certificate.NotAfter, c.Root().NotAfter)
	}
}

func TestSignCSR(t *testing.T) {
	c := newCA(t, InitOptions{})
	dir := t.TempDir()
	runOpenSSL(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "dev.key", "-out", "dev.csr", "-subj", "/O=Factory/CN=plc-7")
	csr, err := ParseCSR(mustRead(t, filepath.Join(dir, "dev.csr")))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := c.SignCSR(csr, IssueRequest{Kind: ClientCert})
	if err != nil {
		t.Fatal(err)
	}
	if iss.KeyFile != "" || iss.Record.KeyFile != "" || !iss.Record.FromCSR {
		t.Errorf("a CSR-signed record claims a key file: %+v", iss.Record)
	}
	if got := iss.Certificate.Subject.String(); got != "CN=plc-7,O=Factory" {
		t.Errorf("subject %q, want the CSR's full subject", got)
	}
	if sans := sanStrings(iss.Certificate); len(sans) != 1 || sans[0] != "DNS:plc-7" {
		t.Errorf("SANs %v, want DNS:plc-7 from the CN", sans)
	}
	runOpenSSL(t, dir, "verify", "-CAfile", filepath.Join(c.Dir(), RootCertFile), "-purpose", "sslclient", iss.CertFile)
	key, err := LoadPrivateKey(filepath.Join(dir, "dev.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckKeyPair(iss.Certificate, key); err != nil {
		t.Error(err)
	}
	if _, _, err := c.ExportPKCS12("plc-7", ExportOptions{Password: "x"}); err == nil || !strings.Contains(err.Error(), "CSR") {
		t.Errorf("export of a CSR-signed certificate: %v", err)
	}

	// Requests the CA must refuse.
	tampered := *csr
	tampered.Signature = append([]byte(nil), csr.Signature...)
	tampered.Signature[len(tampered.Signature)-3] ^= 0xff
	if _, err := c.SignCSR(&tampered, IssueRequest{Kind: ClientCert}); err == nil {
		t.Error("a CSR with a broken signature was signed")
	}
	runOpenSSL(t, dir, "req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", "weak.key", "-out", "weak.csr", "-subj", "/CN=weak")
	weak, err := ParseCSR(mustRead(t, filepath.Join(dir, "weak.csr")))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := weak.PublicKey.(*rsa.PublicKey); !ok {
		t.Fatal("weak CSR is not RSA")
	}
	if _, err := c.SignCSR(weak, IssueRequest{Kind: ClientCert}); err == nil || !strings.Contains(err.Error(), "too weak") {
		t.Errorf("1024-bit RSA CSR: %v", err)
	}
}

func TestExportPKCS12(t *testing.T) {
	c := newCA(t, InitOptions{Intermediate: true})
	iss, err := c.Issue(IssueRequest{Kind: ClientCert, CommonName: "sensor-9"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		legacy   bool
		password string
		want     string // in openssl pkcs12 -info output
	}{
		{"modern", false, "s3cret!", "AES-256-CBC"},
		{"legacy", true, "s3cret!", "pbeWithSHA1And3-KeyTripleDES-CBC"},
		{"empty password", false, "", "AES-256-CBC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, rec, err := c.ExportPKCS12("sensor-9", ExportOptions{Password: tt.password, Legacy: tt.legacy})
			if err != nil {
				t.Fatal(err)
			}
			if rec.Serial != iss.Record.Serial {
				t.Errorf("exported serial %s, want %s", rec.Serial, iss.Record.Serial)
			}
			path := filepath.Join(t.TempDir(), "b.p12")
			if err := WriteFileAtomic(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			out := runOpenSSL(t, filepath.Dir(path), "pkcs12", "-info", "-noout", "-in", path, "-passin", "pass:"+tt.password)
			if !strings.Contains(out, tt.want) || strings.Count(out, "Certificate bag") != 3 {
				t.Errorf("openssl pkcs12 -info: want %q and 3 certificates:\n%s", tt.want, out)
			}
			b, err := ParsePKCS12(data, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if !b.Certificate.Equal(iss.Certificate) || len(b.CACerts) != 2 || CheckKeyPair(b.Certificate, b.Key) != nil {
				t.Errorf("bundle content: cert %s, %d CA certs", b.Certificate.Subject, len(b.CACerts))
			}
			if _, err := ParsePKCS12(data, "wrong"); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("wrong bundle password: %v", err)
			}
			if got := describePKCS12(data).Legacy; got != tt.legacy {
				t.Errorf("describePKCS12 legacy = %v, want %v", got, tt.legacy)
			}
		})
	}
	if _, err := c.Revoke("sensor-9", 5); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ExportPKCS12("sensor-9", ExportOptions{}); err == nil {
		t.Error("exported a revoked certificate by name")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.key")
	for i, content := range []string{"first", "second"} {
		if err := WriteFileAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := string(mustRead(t, path)); got != content {
			t.Errorf("write %d: content %q", i, got)
		}
		mustMode(t, path, 0o600)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestParseReason(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"", 0, true},
		{"keyCompromise", 1, true},
		{"key-compromise", 1, true},
		{"KEY_COMPROMISE", 1, true},
		{"superseded", 4, true},
		{"cessation-of-operation", 5, true},
		{"certificateHold", 0, false},
		{"bogus", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseReason(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseReason(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if ReasonName(4) != "superseded" || ReasonName(6) != "certificateHold" {
		t.Error("ReasonName mismatch")
	}
}

// TestReadableLayout (issue 20, item 5): the CA certificate and crl.pem are
// readable by a broker running as another user, the keys are not; and a
// CA directory made 0700 by an earlier version is opened up (0755) the
// next time a CRL is written or a certificate issued, since its broker
// could never re-read crl.pem.
func TestReadableLayout(t *testing.T) {
	c := newCA(t, InitOptions{})
	dir := c.Dir()
	srv, err := c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	mustMode(t, dir, 0o755)
	mustMode(t, filepath.Join(dir, IssuedDir), 0o755)
	mustMode(t, filepath.Join(dir, RootCertFile), 0o644)
	mustMode(t, filepath.Join(dir, CRLFile), 0o644)
	mustMode(t, srv.ChainFile, 0o644)
	mustMode(t, filepath.Join(dir, RootKeyFile), 0o600)
	mustMode(t, filepath.Join(dir, IndexFile), 0o600)
	mustMode(t, srv.KeyFile, 0o600)

	for _, d := range []string{dir, filepath.Join(dir, IssuedDir)} {
		if err := os.Chmod(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.WriteCRL(24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	mustMode(t, dir, 0o755)
	if _, err := c.Issue(IssueRequest{Kind: ClientCert, CommonName: "dev"}); err != nil {
		t.Fatal(err)
	}
	mustMode(t, filepath.Join(dir, IssuedDir), 0o755)
	// Another restrictive mode is someone's choice, and stays.
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteCRL(24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	mustMode(t, dir, 0o750)
}
