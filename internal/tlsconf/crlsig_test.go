package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe/probetest"
)

// forgeCRL makes an empty CRL that names CA1 as its issuer, with the given
// (huge) number, signed by a key that is not CA1's: what anyone on the
// path of a plain-HTTP crl_url can serve.
func forgeCRL(t *testing.T, p *probetest.PKI, number *big.Int) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fake := *p.Cert(t, "ca1.crt") // same subject, so the same RawIssuer
	fake.PublicKey = key.Public()
	fake.KeyUsage |= x509.KeyUsageCRLSign
	if len(fake.SubjectKeyId) == 0 {
		fake.SubjectKeyId = []byte{1, 2, 3, 4}
	}
	tmpl := &x509.RevocationList{Number: number, ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, &fake, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// TestForgedCRLRejected (issue 20, item 4): a CRL whose signature is not
// its issuer's never replaces the one in service, and its (huge) number
// does not make the genuine CRLs that follow look older.
func TestForgedCRLRejected(t *testing.T) {
	p := probetest.NewPKI(t)
	huge := new(big.Int).Lsh(big.NewInt(1), 100)
	device1 := p.Cert(t, "device1.crt")

	t.Run("crl_url", func(t *testing.T) {
		var body atomic.Pointer[[]byte]
		serve := func(b []byte) { body.Store(&b) }
		serve(makeCRL(t, p, 1, time.Now().Add(time.Hour), device1))
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(*body.Load()) }))
		defer hs.Close()
		ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
			"cafile "+p.Path("ca1.crt"), "require_certificate true", "crl_url "+hs.URL+"/ca1.crl", "crl_refresh_interval 1"), nil)
		cfg := clientConfig(t, p, "mqtt.local", "device1.crt", "device1.key")
		ts.log.waitLog(t, "number 1")
		if _, err := dial(t, ts.addr, cfg); err == nil {
			t.Fatal("revoked device1 accepted")
		}

		serve(forgeCRL(t, p, huge))
		ts.log.waitLog(t, "REJECTED: the CRL's signature does not verify")
		if _, err := dial(t, ts.addr, cfg); err == nil {
			t.Fatal("revoked device1 accepted after a forged empty CRL was served")
		}
		if strings.Contains(ts.log.String(), huge.String()) {
			t.Errorf("the forged CRL's number reached the log as if it were in service:\n%s", ts.log.String())
		}

		serve(makeCRL(t, p, 2, time.Now().Add(time.Hour), device1))
		ts.log.waitLog(t, "loaded crl_url "+hs.URL+"/ca1.crl: issuer")
		ts.log.waitLog(t, "number 2")
		if _, err := dial(t, ts.addr, cfg); err == nil {
			t.Fatal("revoked device1 accepted under the genuine CRL number 2")
		}
	})

	t.Run("crlfile", func(t *testing.T) {
		crl := filepath.Join(t.TempDir(), "ca1.crl")
		writeFile(t, crl, makeCRL(t, p, 1, time.Now().Add(time.Hour), device1))
		ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
			"cafile "+p.Path("ca1.crt"), "require_certificate true", "crlfile "+crl), nil)
		cfg := clientConfig(t, p, "mqtt.local", "device1.crt", "device1.key")
		writeFile(t, crl, forgeCRL(t, p, huge))
		ts.log.waitLog(t, "REJECTED: the CRL's signature does not verify")
		ts.log.waitLog(t, "keeping the previous version in service")
		if _, err := dial(t, ts.addr, cfg); err == nil {
			t.Fatal("revoked device1 accepted after a forged empty crlfile")
		}
		writeFile(t, crl, makeCRL(t, p, 2, time.Now().Add(time.Hour), device1))
		ts.log.waitLog(t, "number 2")
		if _, err := dial(t, ts.addr, cfg); err == nil {
			t.Fatal("revoked device1 accepted under the genuine CRL number 2")
		}

		// At start a forged crlfile, or one no configured CA can check,
		// is an error naming the file and line.
		writeFile(t, crl, forgeCRL(t, p, huge))
		l := parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
			"cafile "+p.Path("ca1.crt"), "require_certificate true", "crlfile "+crl)
		if _, err := New(Options{Listener: l}); err == nil || !strings.Contains(err.Error(), "test.conf:6: crlfile "+crl+": REJECTED") {
			t.Errorf("a forged crlfile at start: %v", err)
		}
		writeFile(t, crl, makeCRL(t, p, 3, time.Now().Add(time.Hour)))
		l = parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
			"cafile "+p.Path("ca2.crt"), "require_certificate true", "crlfile "+crl)
		if _, err := New(Options{Listener: l}); err == nil || !strings.Contains(err.Error(), "cannot verify this CRL: its issuer") {
			t.Errorf("a CRL of a CA not in cafile at start: %v", err)
		}
	})
}

// TestCARemovedClosesConnections (issue 20, same class as items 4 and 5):
// taking a CA out of cafile must not leave the clients it certified
// connected, as a new CRL does not: both are how trust is withdrawn.
func TestCARemovedClosesConnections(t *testing.T) {
	p := probetest.NewPKI(t)
	dir := t.TempDir()
	cafile := filepath.Join(dir, "ca.crt")
	both := append(append([]byte{}, mustReadFile(t, p.Path("ca1.crt"))...), mustReadFile(t, p.Path("ca2.crt"))...)
	writeFile(t, cafile, both)
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
		"cafile "+cafile, "require_certificate true"), nil)
	dev1, err := dial(t, ts.addr, clientConfig(t, p, "mqtt.local", "device1.crt", "device1.key"))
	if err != nil {
		t.Fatal(err)
	}
	dev2, err := dial(t, ts.addr, clientConfig(t, p, "mqtt.local", "device2.crt", "device2.key"))
	if err != nil {
		t.Fatal(err)
	}
	// CA2 is withdrawn: device2's connection goes, device1's stays.
	copyFile(t, p.Path("ca1.crt"), cafile)
	ts.log.waitLog(t, "closed 1 connection(s) whose client certificate is now revoked or no longer trusted")
	_ = dev2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := dev2.Read(make([]byte, 1)); err == nil {
		t.Error("device2's connection is still open after its CA was removed")
	}
	if !strings.Contains(ts.log.String(), "CN=device2 is not signed by any CA in cafile/capath (cafile/capath changed)") {
		t.Errorf("the closing does not say why:\n%s", ts.log.String())
	}
	_ = dev1.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := dev1.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("device1's connection was closed too: %v", err)
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCRLBundleAllUsed (issue 20, same class as item 4): a crlfile that
// bundles one CRL per CA, as OpenSSL and Mosquitto read it, has every CRL
// applied — not only the first, which let the second CA's revoked
// certificates in — and each is verified; one forged CRL in the bundle
// rejects the new file and keeps the last good one.
func TestCRLBundleAllUsed(t *testing.T) {
	p := probetest.NewPKI(t)
	dir := t.TempDir()
	cafile := filepath.Join(dir, "ca.crt")
	writeFile(t, cafile, append(mustReadFile(t, p.Path("ca1.crt")), mustReadFile(t, p.Path("ca2.crt"))...))
	crl := filepath.Join(dir, "crl.pem")
	bundle := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	writeFile(t, crl, bundle(makeCRLOf(t, p, "ca1", 1, time.Now().Add(time.Hour)),
		makeCRLOf(t, p, "ca2", 1, time.Now().Add(time.Hour), p.Cert(t, "device2.crt"))))
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
		"cafile "+cafile, "require_certificate true", "crlfile "+crl), nil)
	if _, err := dial(t, ts.addr, clientConfig(t, p, "mqtt.local", "device2.crt", "device2.key")); err == nil {
		t.Fatal("device2, revoked by the second CRL of the bundle, was accepted")
	}
	ts.log.waitLog(t, "revoked: client certificate CN=device2")
	dev1, err := dial(t, ts.addr, clientConfig(t, p, "mqtt.local", "device1.crt", "device1.key"))
	if err != nil {
		t.Fatalf("device1: %v", err)
	}

	// A new bundle revoking device1, whose CA2 part is forged: rejected
	// whole, device1 stays in.
	writeFile(t, crl, bundle(makeCRLOf(t, p, "ca1", 2, time.Now().Add(time.Hour), p.Cert(t, "device1.crt")),
		forgeCRL(t, p, big.NewInt(99))))
	ts.log.waitLog(t, "REJECTED: the CRL's signature does not verify")
	if _, err := dial(t, ts.addr, clientConfig(t, p, "mqtt.local", "device2.crt", "device2.key")); err == nil {
		t.Fatal("device2 accepted after a bundle with a forged CRL")
	}
	// The genuine bundle: device1 is cut off.
	writeFile(t, crl, bundle(makeCRLOf(t, p, "ca1", 2, time.Now().Add(time.Hour), p.Cert(t, "device1.crt")),
		makeCRLOf(t, p, "ca2", 2, time.Now().Add(time.Hour), p.Cert(t, "device2.crt"))))
	ts.log.waitLog(t, "closing client")
	_ = dev1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := dev1.Read(make([]byte, 1)); err == nil {
		t.Error("device1's connection is still open after the bundle revoked it")
	}
}

// TestCRLURLNotYetFetchedIsLoud (issue 20, same class as item 4): while no
// CRL from a crl_url has been fetched, revocation by it is not in force;
// the log says exactly that instead of "keeping the CRL in service".
func TestCRLURLNotYetFetchedIsLoud(t *testing.T) {
	p := probetest.NewPKI(t)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer hs.Close()
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
		"cafile "+p.Path("ca1.crt"), "require_certificate true", "crl_url "+hs.URL+"/ca1.crl"), nil)
	ts.log.waitLog(t, "NO CRL from this URL is in force yet")
	if strings.Contains(ts.log.String(), "keeping the CRL in service") {
		t.Errorf("the log claims a CRL is in service:\n%s", ts.log.String())
	}
}

// TestCRLURLKeptAcrossRestart (issue 20, same class as item 4): a restart
// while the crl_url does not answer used to leave its revocations off
// until the first fetch; the last verified CRL, kept in CRLCacheDir, is in
// force meanwhile. A kept copy that does not verify is not used.
func TestCRLURLKeptAcrossRestart(t *testing.T) {
	p := probetest.NewPKI(t)
	var down atomic.Bool
	crlBytes := makeCRL(t, p, 5, time.Now().Add(time.Hour), p.Cert(t, "device1.crt"))
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(crlBytes)
	}))
	defer hs.Close()
	cache := t.TempDir()
	listener := func() *config.Listener {
		return parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
			"cafile "+p.Path("ca1.crt"), "require_certificate true", "crl_url "+hs.URL+"/ca1.crl")
	}
	withCache := func(o *Options) { o.CRLCacheDir = cache }
	first := startServer(t, listener(), withCache)
	first.log.waitLog(t, "number 5")
	first.Close()

	down.Store(true)
	ts := startServer(t, listener(), withCache)
	ts.log.waitLog(t, "in force from the copy kept by the previous run")
	cfg := clientConfig(t, p, "mqtt.local", "device1.crt", "device1.key")
	if _, err := dial(t, ts.addr, cfg); err == nil {
		t.Fatal("device1, revoked by the last CRL fetched, accepted after a restart while the URL is down")
	}

	// A copy that someone replaced with a forged CRL is refused.
	ents, err := os.ReadDir(cache)
	if err != nil || len(ents) != 1 {
		t.Fatalf("cache holds %v (%v), want one file", ents, err)
	}
	if err := os.WriteFile(filepath.Join(cache, ents[0].Name()), forgeCRL(t, p, big.NewInt(6)), 0o644); err != nil {
		t.Fatal(err)
	}
	ts2 := startServer(t, listener(), withCache)
	ts2.log.waitLog(t, "the copy kept in "+cache+" is not used: REJECTED")
}
