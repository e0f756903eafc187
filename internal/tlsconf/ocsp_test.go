package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspPKI is a CA, a server certificate whose AIA names an OCSP responder
// run by the test, and that responder.
type ocspPKI struct {
	ca      *x509.Certificate
	caKey   crypto.Signer
	leaf    *x509.Certificate
	dir     string
	status  atomic.Int64 // ocsp.Good or ocsp.Revoked
	fetches atomic.Int64
}

func newOCSPPKI(t *testing.T) *ocspPKI {
	t.Helper()
	p := &ocspPKI{dir: t.TempDir()}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.fetches.Add(1)
		tmpl := ocsp.Response{Status: int(p.status.Load()), SerialNumber: req.SerialNumber,
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
		if tmpl.Status == ocsp.Revoked {
			tmpl.RevokedAt = time.Now().Add(-time.Hour)
		}
		raw, err := ocsp.CreateResponse(p.ca, p.ca, tmpl, p.caKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(raw)
	}))
	t.Cleanup(srv.Close)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "OCSP test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(caDER)
	p.caKey = caKey
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafT := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		OCSPServer: []string{srv.URL}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafT, p.ca, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.leaf, _ = x509.ParseCertificate(leafDER)
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	writeFile(t, filepath.Join(p.dir, "server.crt"), chain)
	writeFile(t, filepath.Join(p.dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	writeFile(t, filepath.Join(p.dir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	p.status.Store(int64(ocsp.Good))
	return p
}

func (p *ocspPKI) handshake(t *testing.T, addr string) tls.ConnectionState {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState()
}

func TestOCSPStapling(t *testing.T) {
	p := newOCSPPKI(t)
	l := parseListener(t, "certfile "+filepath.Join(p.dir, "server.crt"), "keyfile "+filepath.Join(p.dir, "server.key"),
		"ocsp_stapling true")
	ts := startServer(t, l, nil)
	deadline := time.Now().Add(10 * time.Second)
	var st tls.ConnectionState
	for {
		st = ts.handshake(t, p)
		if len(st.OCSPResponse) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(st.OCSPResponse) == 0 {
		t.Fatalf("no OCSP response stapled after 10 s (responder asked %d times); log:\n%s", p.fetches.Load(), ts.log)
	}
	resp, err := ocsp.ParseResponseForCert(st.OCSPResponse, p.leaf, p.ca)
	if err != nil || resp.Status != ocsp.Good {
		t.Fatalf("stapled response: %v status %v", err, resp)
	}
}

func TestOCSPStaplingRevokedIsLoud(t *testing.T) {
	p := newOCSPPKI(t)
	p.status.Store(int64(ocsp.Revoked))
	l := parseListener(t, "certfile "+filepath.Join(p.dir, "server.crt"), "keyfile "+filepath.Join(p.dir, "server.key"),
		"ocsp_stapling true")
	ts := startServer(t, l, nil)
	ts.log.waitLog(t, "is REVOKED")
	if st := ts.handshake(t, p); len(st.OCSPResponse) != 0 {
		t.Fatal("a revoked response was stapled")
	}
}

func TestOCSPStaplingWithoutResponderWarns(t *testing.T) {
	dir := t.TempDir()
	p := newOCSPPKI(t)
	// Same key, a certificate without an AIA OCSP URL.
	tmpl := *p.leaf
	tmpl.OCSPServer = nil
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, p.ca, p.leaf.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "s.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	key, err := os.ReadFile(filepath.Join(p.dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "s.key"), key)
	l := parseListener(t, "certfile "+filepath.Join(dir, "s.crt"), "keyfile "+filepath.Join(dir, "s.key"), "ocsp_stapling true")
	ts := startServer(t, l, nil)
	ts.log.waitLog(t, "has no OCSP responder URL")
}

func (ts *testServer) handshake(t *testing.T, p *ocspPKI) tls.ConnectionState {
	t.Helper()
	return p.handshake(t, ts.addr)
}
