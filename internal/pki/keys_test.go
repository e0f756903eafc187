package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/youmark/pkcs8"
)

// TestParsePrivateKeyOpenSSLFormats reads every key format the openssl CLI
// writes, encrypted or not, and checks it is the key openssl says it is.
func TestParsePrivateKeyOpenSSLFormats(t *testing.T) {
	dir := t.TempDir()
	const pass = "hunter22"
	gen := func(args ...string) { runOpenSSL(t, dir, args...) }
	// Base keys.
	gen("genrsa", "-out", "rsa.pem", "2048")
	gen("ecparam", "-name", "prime256v1", "-genkey", "-out", "ec-with-params.pem")
	gen("genpkey", "-algorithm", "ed25519", "-out", "ed.pem")
	// Derived encodings of the RSA key.
	gen("rsa", "-in", "rsa.pem", "-traditional", "-out", "rsa-pkcs1.pem")
	gen("rsa", "-in", "rsa.pem", "-traditional", "-des3", "-passout", "pass:"+pass, "-out", "rsa-legacy-des3.pem")
	gen("rsa", "-in", "rsa.pem", "-traditional", "-aes256", "-passout", "pass:"+pass, "-out", "rsa-legacy-aes256.pem")
	gen("genrsa", "-des3", "-passout", "pass:"+pass, "-out", "genrsa-des3.pem", "2048") // OpenSSL 3 writes PKCS#8 here
	gen("pkcs8", "-topk8", "-in", "rsa.pem", "-v2", "aes-256-cbc", "-passout", "pass:"+pass, "-out", "rsa-p8-aes.pem")
	gen("pkcs8", "-topk8", "-in", "rsa.pem", "-v1", "PBE-SHA1-3DES", "-passout", "pass:"+pass, "-out", "rsa-p8-pbes1.pem")
	gen("rsa", "-in", "rsa.pem", "-traditional", "-outform", "DER", "-out", "rsa-pkcs1.der")
	gen("pkcs8", "-topk8", "-nocrypt", "-in", "rsa.pem", "-outform", "DER", "-out", "rsa.der")
	gen("pkcs8", "-topk8", "-in", "rsa.pem", "-outform", "DER", "-v2", "aes-128-cbc", "-passout", "pass:"+pass, "-out", "rsa-p8-enc.der")
	gen("ec", "-in", "ec-with-params.pem", "-aes128", "-passout", "pass:"+pass, "-out", "ec-legacy.pem")
	gen("req", "-new", "-x509", "-key", "rsa.pem", "-subj", "/CN=p12", "-days", "1", "-out", "rsa.crt")
	gen("pkcs12", "-export", "-in", "rsa.crt", "-inkey", "rsa.pem", "-passout", "pass:"+pass, "-out", "rsa.p12")

	pub := func(keyFile string, password string) any {
		t.Helper()
		args := []string{"pkey", "-in", keyFile, "-pubout", "-outform", "DER"}
		if password != "" {
			args = append(args, "-passin", "pass:"+password)
		}
		out := filepath.Join(dir, keyFile+".pub")
		runOpenSSL(t, dir, append(args, "-out", out)...)
		p, err := x509.ParsePKIXPublicKey(mustRead(t, out))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	tests := []struct {
		file      string
		encrypted bool
		format    string
		pubFrom   string // file openssl derives the public key from
		wantErr   string // for formats mamori refuses
	}{
		{"rsa.pem", false, "PKCS#8", "rsa.pem", ""},
		{"rsa-pkcs1.pem", false, "PKCS#1", "rsa.pem", ""},
		{"rsa-legacy-des3.pem", true, "PKCS#1", "rsa.pem", ""},
		{"rsa-legacy-aes256.pem", true, "PKCS#1", "rsa.pem", ""},
		{"genrsa-des3.pem", true, "PKCS#8", "genrsa-des3.pem", ""},
		{"rsa-p8-aes.pem", true, "PKCS#8", "rsa.pem", ""},
		{"rsa.der", false, "PKCS#8", "rsa.pem", ""},
		{"rsa-pkcs1.der", false, "PKCS#1", "rsa.pem", ""},
		{"rsa-p8-enc.der", true, "PKCS#8", "rsa.pem", ""},
		{"ec-with-params.pem", false, "SEC1", "ec-with-params.pem", ""},
		{"ec-legacy.pem", true, "SEC1", "ec-with-params.pem", ""},
		{"ed.pem", false, "PKCS#8", "ed.pem", ""},
		{"rsa.p12", true, "PKCS#12", "rsa.pem", ""},
		{"rsa-p8-pbes1.pem", true, "", "", "pkcs8 -topk8 -v2"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			if tt.wantErr != "" {
				_, err := LoadPrivateKey(path, []byte(pass))
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if tt.encrypted {
				_, err := LoadPrivateKey(path, nil)
				if !errors.Is(err, ErrPasswordRequired) || !strings.Contains(err.Error(), tt.file) {
					t.Errorf("no password: err = %v, want password required naming the file", err)
				}
				_, err = LoadPrivateKey(path, []byte("not-the-password"))
				if !errors.Is(err, ErrWrongPassword) || err.Error() != "wrong password for "+path {
					t.Errorf("wrong password: err = %v", err)
				}
			}
			key, f, err := parsePrivateKey(mustRead(t, path), []byte(pass))
			if err != nil {
				t.Fatal(err)
			}
			if f.Format != tt.format || (f.Encrypted != tt.encrypted && f.Format != "PKCS#12") {
				t.Errorf("format %+v, want %s encrypted=%v", f, tt.format, tt.encrypted)
			}
			pw := ""
			if tt.pubFrom == tt.file && tt.encrypted {
				pw = pass
			}
			if !KeyMatches(pub(tt.pubFrom, pw), key) {
				t.Error("the key read is not the key openssl wrote")
			}
		})
	}
}

func TestMarshalPrivateKeyRoundTrip(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyECDSAP384, KeyRSA2048, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			key, err := GenerateKey(kt)
			if err != nil {
				t.Fatal(err)
			}
			passwords := []string{""}
			// Encryption runs 600,000 PBKDF2 rounds; once is enough (the
			// other key types are encrypted in the CA tests).
			if kt == KeyEd25519 {
				passwords = append(passwords, "pass phrase")
			}
			for _, pw := range passwords {
				data, err := MarshalPrivateKeyPEM(key, []byte(pw))
				if err != nil {
					t.Fatal(err)
				}
				got, err := ParsePrivateKey(data, []byte(pw))
				if err != nil {
					t.Fatalf("password %q: %v", pw, err)
				}
				if !KeyMatches(key.Public(), got) {
					t.Errorf("password %q: round trip changed the key", pw)
				}
			}
		})
	}
}

func TestLoadKeyPair(t *testing.T) {
	c := newCA(t, InitOptions{Intermediate: true})
	a, err := c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"a.example"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Issue(IssueRequest{Kind: ServerCert, DNSNames: []string{"b.example"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A chain in the wrong order: intermediate first.
	swapped := filepath.Join(dir, "swapped.crt")
	if err := os.WriteFile(swapped, EncodeCertificatesPEM(c.Issuer(), a.Certificate), 0o644); err != nil {
		t.Fatal(err)
	}
	p12Data, _, err := c.ExportPKCS12("a.example", ExportOptions{Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	p12 := filepath.Join(dir, "a.p12")
	if err := os.WriteFile(p12, p12Data, 0o600); err != nil {
		t.Fatal(err)
	}
	combined := filepath.Join(dir, "combined.pem")
	if err := os.WriteFile(combined, append(mustRead(t, a.ChainFile), mustRead(t, a.KeyFile)...), 0o600); err != nil {
		t.Fatal(err)
	}
	crl := filepath.Join(c.Dir(), CRLFile)

	tests := []struct {
		name, cert, key, password string
		wantErr                   string
		wantChain                 int
	}{
		{"chain and key", a.ChainFile, a.KeyFile, "", "", 2},
		{"key of another certificate", a.ChainFile, b.KeyFile, "", "key does not match certificate", 0},
		{"chain in the wrong order", swapped, a.KeyFile, "", "put that certificate first", 0},
		{"pkcs12 bundle", p12, "", "pw", "", 2},
		{"pkcs12 wrong password", p12, "", "nope", "wrong password for " + p12, 0},
		{"pkcs12 with keyfile", p12, a.KeyFile, "pw", "holds its own key", 0},
		{"combined PEM", combined, "", "", "", 2},
		{"CRL as certfile", crl, a.KeyFile, "", "is a CRL, not a certificate", 0},
		{"certificate as keyfile", a.ChainFile, a.CertFile, "", "is a certificate, not a private key", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := LoadKeyPair(tt.cert, tt.key, []byte(tt.password))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(tt.wantErr, "does not match") && !errors.Is(err, ErrKeyMismatch) {
					t.Errorf("errors.Is(err, ErrKeyMismatch) = false for %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(kp.Certificate) != tt.wantChain || !kp.Leaf.Equal(a.Certificate) {
				t.Errorf("chain of %d, leaf %s", len(kp.Certificate), kp.Leaf.Subject)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	c := newCA(t, InitOptions{})
	iss, err := c.Issue(IssueRequest{Kind: ClientCert, CommonName: "d"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	runOpenSSL(t, dir, "x509", "-in", iss.CertFile, "-outform", "DER", "-out", "c.der")
	runOpenSSL(t, dir, "crl", "-in", filepath.Join(c.Dir(), CRLFile), "-outform", "DER", "-out", "crl.der")
	runOpenSSL(t, dir, "req", "-new", "-key", iss.KeyFile, "-subj", "/CN=d", "-out", "r.csr")
	runOpenSSL(t, dir, "pkey", "-in", iss.KeyFile, "-pubout", "-out", "pub.pem")
	p12, _, err := c.ExportPKCS12("d", ExportOptions{Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want Kind
	}{
		{"PEM certificate", mustRead(t, iss.CertFile), KindCertificate},
		{"DER certificate", mustRead(t, filepath.Join(dir, "c.der")), KindCertificate},
		{"PEM key", mustRead(t, iss.KeyFile), KindPrivateKey},
		{"PEM CRL", mustRead(t, filepath.Join(c.Dir(), CRLFile)), KindCRL},
		{"DER CRL", mustRead(t, filepath.Join(dir, "crl.der")), KindCRL},
		{"CSR", mustRead(t, filepath.Join(dir, "r.csr")), KindCSR},
		{"public key", mustRead(t, filepath.Join(dir, "pub.pem")), KindPublicKey},
		{"PKCS#12", p12, KindPKCS12},
		{"garbage", []byte("hello"), KindUnknown},
	}
	for _, tt := range tests {
		if got := Detect(tt.data); got != tt.want {
			t.Errorf("%s: Detect = %q, want %q", tt.name, got, tt.want)
		}
	}
	if _, err := ParseCertificates(mustRead(t, filepath.Join(dir, "r.csr"))); err == nil || err.Error() != "input is a certificate request, not a certificate" {
		t.Errorf("ParseCertificates(CSR) = %v", err)
	}
	if _, err := ParseCRL(mustRead(t, iss.CertFile)); err == nil || !strings.Contains(err.Error(), "is a certificate, not a CRL") {
		t.Errorf("ParseCRL(certificate) = %v", err)
	}
}

func TestEncryptedPKCS8DoesNotPanic(t *testing.T) {
	key, err := GenerateKey(KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	// Few iterations: this test is about parsing, not key derivation.
	opts := pkcs8Options()
	opts.KDFOpts = pkcs8.PBKDF2Opts{SaltSize: 16, IterationCount: 1000, HMACHash: crypto.SHA256}
	der0, err := pkcs8.MarshalPrivateKey(key, []byte("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := parseEncryptedPKCS8(der0, []byte("pw")); err != nil || !KeyMatches(key.Public(), k) {
		t.Fatalf("intact key: %v", err)
	}
	var e encryptedPKCS8
	if _, err := asn1.Unmarshal(der0, &e); err != nil {
		t.Fatal(err)
	}
	// A ciphertext whose length is not a multiple of the AES block size
	// makes the library's CBC decryption panic; we must return an error.
	e.Data = e.Data[:len(e.Data)-5]
	der, err := asn1.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseEncryptedPKCS8(der, []byte("pw")); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("truncated encrypted key: err = %v, want malformed", err)
	}
}
