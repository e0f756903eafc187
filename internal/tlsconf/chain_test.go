package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newCert makes a certificate signed by parent (self-signed when parent
// is nil) and returns it with its key.
func newCert(t *testing.T, cn string, ca bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// The usual Mosquitto setup: certfile holds only the leaf, cafile the
// intermediate and the root. The server sends the chain completed from
// cafile (as OpenSSL does), so a client that trusts only the root
// verifies it; the start-up log says which chain is served.
func TestChainCompletedFromCAFile(t *testing.T) {
	dir := t.TempDir()
	root, rootKey := newCert(t, "test root", true, nil, nil)
	inter, interKey := newCert(t, "test intermediate", true, root, rootKey)
	leaf, leafKey := newCert(t, "localhost", false, inter, interKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "server.crt"), pemCert(leaf))
	writeFile(t, filepath.Join(dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	writeFile(t, filepath.Join(dir, "ca.crt"), append(pemCert(root), pemCert(inter)...))

	l := parseListener(t, "certfile "+filepath.Join(dir, "server.crt"), "keyfile "+filepath.Join(dir, "server.key"),
		"cafile "+filepath.Join(dir, "ca.crt"))
	ts := startServer(t, l, nil)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	c, err := dial(t, ts.addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("a client trusting only the root: %v; log:\n%s", err, ts.log)
	}
	peer := c.ConnectionState().PeerCertificates
	if len(peer) != 3 || !peer[1].Equal(inter) || !peer[2].Equal(root) {
		t.Fatalf("served %d certificates, want leaf, intermediate, root", len(peer))
	}
	if log := ts.log.String(); !strings.Contains(log, "chain: CN=test intermediate <- CN=test root (completed from cafile") {
		t.Fatalf("start-up log does not name the served chain:\n%s", log)
	}
}

// A certfile with its own chain is served as written.
func TestChainFromCertfileKept(t *testing.T) {
	dir := t.TempDir()
	root, rootKey := newCert(t, "test root", true, nil, nil)
	inter, interKey := newCert(t, "test intermediate", true, root, rootKey)
	leaf, leafKey := newCert(t, "localhost", false, inter, interKey)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	writeFile(t, filepath.Join(dir, "server.crt"), append(pemCert(leaf), pemCert(inter)...))
	writeFile(t, filepath.Join(dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	writeFile(t, filepath.Join(dir, "ca.crt"), pemCert(root))
	l := parseListener(t, "certfile "+filepath.Join(dir, "server.crt"), "keyfile "+filepath.Join(dir, "server.key"),
		"cafile "+filepath.Join(dir, "ca.crt"))
	ts := startServer(t, l, nil)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	c, err := dial(t, ts.addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if peer := c.ConnectionState().PeerCertificates; len(peer) != 2 {
		t.Fatalf("served %d certificates, want the certfile's 2", len(peer))
	}
	if !strings.Contains(ts.log.String(), "(from the certfile)") {
		t.Fatalf("log:\n%s", ts.log)
	}
}
