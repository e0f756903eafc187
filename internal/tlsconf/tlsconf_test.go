package tlsconf

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/tlsprobe/probetest"
)

// TestTLSConf runs every scenario against one PKI made with openssl, as
// the seeds make it (see probetest.PKI for the files).
func TestTLSConf(t *testing.T) {
	p := probetest.NewPKI(t)
	t.Run("errors name file and line", func(t *testing.T) { testLoadErrors(t, p) })
	t.Run("encrypted keys and PKCS#12", func(t *testing.T) { testKeyFormats(t, p) })
	t.Run("SNI", func(t *testing.T) { testSNI(t, p) })
	t.Run("defaults: versions, suites, ALPN", func(t *testing.T) { testDefaults(t, p) })
	t.Run("client certificates", func(t *testing.T) { testClientCerts(t, p) })
	t.Run("identity", func(t *testing.T) { testIdentity(t, p) })
	t.Run("CRL replaced live", func(t *testing.T) { testCRLReload(t, p) })
	t.Run("stale CRL still used", func(t *testing.T) { testStaleCRL(t, p) })
	t.Run("crl_url", func(t *testing.T) { testCRLURL(t, p) })
	t.Run("certificate reload", func(t *testing.T) { testCertReload(t, p) })
	t.Run("expiry warnings", func(t *testing.T) { testExpiry(t, p) })
	t.Run("Apply", func(t *testing.T) { testApply(t, p) })
}

func testApply(t *testing.T, p *probetest.PKI) {
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key")), nil)
	cfg := clientConfig(t, p, "", "", "")
	issuer := func() string {
		t.Helper()
		c, err := dial(t, ts.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c.ConnectionState().PeerCertificates[0].Issuer.CommonName
	}
	// The same options written elsewhere in the file: a plain reload.
	if err := ts.Apply(parseListener(t, "", "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"))); err != nil {
		t.Fatal(err)
	}
	// New files that do not load: an error naming the line, nothing changes.
	err := ts.Apply(parseListener(t, "certfile "+p.Path("server2.crt"), "keyfile "+p.Path("server1.key")))
	if err == nil || !strings.Contains(err.Error(), "test.conf:2: certfile: key does not match certificate") {
		t.Fatalf("Apply = %v", err)
	}
	if got := issuer(); got != "CA1" {
		t.Errorf("after a failed Apply, served %s", got)
	}
	if err := ts.Apply(parseListener(t, "certfile "+p.Path("server2.crt"), "keyfile "+p.Path("server2.key"))); err != nil {
		t.Fatal(err)
	}
	if got := issuer(); got != "CA2" {
		t.Errorf("after Apply, served %s", got)
	}
	// The identity options are read by the broker once.
	err = ts.Apply(parseListener(t, "certfile "+p.Path("server2.crt"), "keyfile "+p.Path("server2.key"),
		"cafile "+p.Path("ca1.crt"), "require_certificate true", "use_identity_as_username true"))
	if err == nil || !strings.Contains(err.Error(), "restart") {
		t.Errorf("Apply changing use_identity_as_username = %v", err)
	}
}

func testLoadErrors(t *testing.T, p *probetest.PKI) {
	dir := t.TempDir()
	crl := filepath.Join(dir, "ca1.crl")
	if err := os.WriteFile(crl, makeCRL(t, p, 1, time.Now().Add(time.Hour)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"key of another certificate",
			[]string{"certfile " + p.Path("server1.crt"), "keyfile " + p.Path("server2.key")},
			"test.conf:2: certfile: key does not match certificate: " + p.Path("server2.key") + " is not the key of " + p.Path("server1.crt")},
		{"wrong password",
			[]string{"certfile " + p.Path("device1.crt"), "keyfile " + p.Path("device1-legacy.key"), "keyfile_password nope"},
			"test.conf:3: keyfile: wrong password for " + p.Path("device1-legacy.key") + " (set it with keyfile_password)"},
		{"encrypted key without password",
			[]string{"certfile " + p.Path("device1.crt"), "keyfile " + p.Path("device1-pkcs8.key")},
			"test.conf:3: keyfile: " + p.Path("device1-pkcs8.key") + " is encrypted: a password is required"},
		{"CRL given as certfile",
			[]string{"certfile " + crl, "keyfile " + p.Path("server1.key")},
			"test.conf:2: certfile: " + crl + " is a CRL, not a certificate"},
		{"certificate given as crlfile",
			[]string{"certfile " + p.Path("server1.crt"), "keyfile " + p.Path("server1.key"), "crlfile " + p.Path("ca1.crt"),
				"cafile " + p.Path("ca1.crt"), "require_certificate true"},
			"test.conf:4: crlfile: " + p.Path("ca1.crt") + " is a certificate, not a CRL"},
		{"missing cafile",
			[]string{"certfile " + p.Path("server1.crt"), "keyfile " + p.Path("server1.key"), "cafile " + filepath.Join(dir, "nope.crt")},
			"test.conf:4: cafile: open " + filepath.Join(dir, "nope.crt") + ": no such file or directory"},
		{"cipher Go does not have",
			[]string{"certfile " + p.Path("server1.crt"), "keyfile " + p.Path("server1.key"), "ciphers DHE-RSA-AES128-GCM-SHA256"},
			"test.conf:4: ciphers: DHE-RSA-AES128-GCM-SHA256 is not available: Go's TLS has no finite-field DHE key exchange; use ECDHE-RSA-AES128-GCM-SHA256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Listener: parseListener(t, tc.lines...)})
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n got: %v\nwant: %s", err, tc.want)
			}
		})
	}
	t.Run("psk_hint", func(t *testing.T) {
		l := parseListener(t)
		l.TLS.PSKHint = "hint"
		_, err := New(Options{Listener: l})
		if err == nil || !strings.Contains(err.Error(), "test.conf:1: psk_hint:") || !strings.Contains(err.Error(), "no pre-shared-key") {
			t.Errorf("error = %v", err)
		}
	})
}

func testKeyFormats(t *testing.T, p *probetest.PKI) {
	for _, tc := range []struct{ name, cert, key string }{
		{"legacy PEM aes256", "device1.crt", "device1-legacy.key"},
		{"encrypted PKCS#8", "device1.crt", "device1-pkcs8.key"},
		{"PKCS#12 as certfile", "device1.p12", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := []string{"certfile " + p.Path(tc.cert), "keyfile_password " + probetest.Pass}
			if tc.key != "" {
				lines = append(lines, "keyfile "+p.Path(tc.key))
			}
			ts := startServer(t, parseListener(t, lines...), nil)
			c, err := dial(t, ts.addr, clientConfig(t, p, "device1", "", ""))
			if err != nil {
				t.Fatal(err)
			}
			if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "device1" {
				t.Errorf("served %s", cn)
			}
		})
	}
}

func testSNI(t *testing.T, p *probetest.PKI) {
	ts := startServer(t, parseListener(t,
		"certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
		"certfile "+p.Path("server2.crt"), "keyfile "+p.Path("server2.key"),
		"certfile "+p.Path("san.crt"), "keyfile "+p.Path("san.key")), nil)
	for _, tc := range []struct{ sni, want string }{
		{"mqtt.local", "CA1"},
		{"mqtt.example.com", "CA2"},  // CN of server2, which has no SAN, comes before san.crt
		{"a.example.org", "CA1"},     // wildcard SAN of san.crt
		{"other.example.net", "CA1"}, // no match: the first pair
	} {
		cfg := clientConfig(t, p, tc.sni, "", "")
		cfg.InsecureSkipVerify = true // the name check is not what is tested
		c, err := dial(t, ts.addr, cfg)
		if err != nil {
			t.Fatalf("SNI %s: %v", tc.sni, err)
		}
		if got := c.ConnectionState().PeerCertificates[0].Issuer.CommonName; got != tc.want {
			t.Errorf("SNI %s: certificate issued by %s, want %s", tc.sni, got, tc.want)
		}
	}
	// No SNI at all (connecting by IP address): the first pair.
	cfg := clientConfig(t, p, "", "", "")
	cfg.InsecureSkipVerify = true
	c, err := dial(t, ts.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "mqtt.local" {
		t.Errorf("without SNI got %s", cn)
	}
}

func testDefaults(t *testing.T, p *probetest.PKI) {
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key")), nil)
	base := func() *tls.Config { return clientConfig(t, p, "mqtt.local", "", "") }

	cfg := base()
	cfg.NextProtos = []string{"mqtt"}
	c, err := dial(t, ts.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ConnectionState().NegotiatedProtocol; got != "mqtt" {
		t.Errorf("ALPN = %q, want mqtt", got)
	}
	cfg = base()
	cfg.NextProtos = []string{"x-other"}
	if c, err = dial(t, ts.addr, cfg); err != nil {
		t.Errorf("client offering another ALPN protocol refused: %v", err)
	} else if got := c.ConnectionState().NegotiatedProtocol; got != "" {
		t.Errorf("ALPN = %q, want none", got)
	}

	cfg = base()
	cfg.MaxVersion = tls.VersionTLS11
	cfg.MinVersion = tls.VersionTLS10
	if _, err := dial(t, ts.addr, cfg); err == nil {
		t.Error("TLS 1.1 client accepted")
	}
	cfg = base()
	cfg.MaxVersion = tls.VersionTLS12
	cfg.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
	if _, err := dial(t, ts.addr, cfg); err == nil {
		t.Error("client without forward secrecy accepted")
	}
	cfg = base()
	cfg.MaxVersion = tls.VersionTLS12
	c, err = dial(t, ts.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.ConnectionState().CipherSuite; s != tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 && s != tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 &&
		s != tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Errorf("TLS 1.2 suite %s", tls.CipherSuiteName(s))
	}
	ts.log.waitLog(t, "protocol version")
	ts.log.waitLog(t, "no shared cipher")
	if n := ts.Stats().Failures[ReasonVersion].Load(); n != 1 {
		t.Errorf("protocol version failures = %d", n)
	}
	if n := ts.Stats().Failures[ReasonNoCipher].Load(); n != 1 {
		t.Errorf("no shared cipher failures = %d", n)
	}

	// ciphers narrows TLS 1.2 to what is named; tls_version raises the floor.
	ts = startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
		"ciphers ECDHE-RSA-AES256-GCM-SHA384"), nil)
	cfg = base()
	cfg.MaxVersion = tls.VersionTLS12
	if c, err = dial(t, ts.addr, cfg); err != nil {
		t.Fatal(err)
	}
	if s := c.ConnectionState().CipherSuite; s != tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("suite %s", tls.CipherSuiteName(s))
	}
	ts = startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"), "tls_version tlsv1.3"), nil)
	if _, err = dial(t, ts.addr, cfg); err == nil {
		t.Error("TLS 1.2 client accepted with tls_version tlsv1.3")
	}
}

func testClientCerts(t *testing.T, p *probetest.PKI) {
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
		"cafile "+p.Path("ca1.crt"), "require_certificate true"), nil)
	if _, err := dial(t, ts.addr, clientConfig(t, p, "mqtt.local", "device1.crt", "device1.key")); err != nil {
		t.Fatalf("device1: %v", err)
	}
	for _, tc := range []struct{ name, cert, key, reason, words string }{
		{"other CA", "device2.crt", "device2.key", ReasonUnknownCA, "CN=device2 is not signed by any CA in cafile/capath"},
		{"expired", "devexp.crt", "devexp.key", ReasonExpired, "CN=devexp is expired"},
		{"none", "", "", ReasonNoClientCert, "no client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clientConfig(t, p, "mqtt.local", tc.cert, tc.key)
			if _, err := dial(t, ts.addr, cfg); err == nil {
				t.Fatal("accepted")
			}
			ts.log.waitLog(t, tc.words)
			if n := ts.Stats().Failures[tc.reason].Load(); n != 1 {
				t.Errorf("%s count = %d", tc.reason, n)
			}
		})
	}
	if !strings.Contains(ts.log.String(), `SNI \"mqtt.local\"`) || !strings.Contains(ts.log.String(), "client 127.0.0.1:") {
		t.Errorf("failures not logged with address and SNI:\n%s", ts.log.String())
	}

	// Without require_certificate no certificate is asked for (Mosquitto),
	// so a device with a certificate from another CA still connects.
	ts = startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
		"cafile "+p.Path("ca1.crt")), nil)
	c, err := dial(t, ts.addr, clientConfig(t, p, "mqtt.local", "device2.crt", "device2.key"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ConnectionState().PeerCertificates) == 0 {
		t.Fatal("no server certificate")
	}
}

func testIdentity(t *testing.T, p *probetest.PKI) {
	for _, tc := range []struct{ opt, want string }{
		{"use_identity_as_username true", "device1"},
		{"use_subject_as_username true", "CN=device1"},
	} {
		ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
			"cafile "+p.Path("ca1.crt"), "require_certificate true", tc.opt), nil)
		c, err := dial(t, ts.addr, clientConfig(t, p, "mqtt.local", "device1.crt", "device1.key"))
		if err != nil {
			t.Fatal(err)
		}
		_ = c
		ts.mu.Lock()
		nc := ts.conns[len(ts.conns)-1]
		ts.mu.Unlock()
		name, ok, err := ts.Identity()(nc)
		if !ok || err != nil || name != tc.want {
			t.Errorf("%s: Identity = %q, %v, %v; want %q", tc.opt, name, ok, err, tc.want)
		}
	}
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key")), nil)
	if ts.Identity() != nil {
		t.Error("Identity set without use_identity_as_username")
	}
}

func testCRLReload(t *testing.T, p *probetest.PKI) {
	dir := t.TempDir()
	crl := filepath.Join(dir, "ca1.crl")
	writeFile(t, crl, makeCRL(t, p, 1, time.Now().Add(24*time.Hour)))
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
		"cafile "+p.Path("ca1.crt"), "require_certificate true", "crlfile "+crl), nil)
	cfg := clientConfig(t, p, "mqtt.local", "device1.crt", "device1.key")
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	open, err := dial(t, ts.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A second connection resumes the session; after revocation, resuming
	// must be refused as much as a full handshake.
	if c, err := dial(t, ts.addr, cfg); err != nil {
		t.Fatal(err)
	} else if !c.ConnectionState().DidResume {
		t.Log("session not resumed; the resumed case is not exercised")
	}

	// The CA revokes device1; the new CRL is dropped in place atomically.
	writeFile(t, crl, makeCRL(t, p, 2, time.Now().Add(24*time.Hour), p.Cert(t, "device1.crt")))
	ts.log.waitLog(t, "closing client")
	_ = open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Error("the revoked client's open connection is still usable")
	}
	if !strings.Contains(ts.log.String(), "CN=device1 (serial ") {
		t.Errorf("closing not logged with subject and serial:\n%s", ts.log.String())
	}
	if _, err := dial(t, ts.addr, cfg); err == nil {
		t.Fatal("revoked client (resuming) accepted")
	}
	cfg.ClientSessionCache = nil
	if _, err := dial(t, ts.addr, cfg); err == nil {
		t.Fatal("revoked client accepted")
	}
	ts.log.waitLog(t, "revoked: client certificate CN=device1")

	// A broken CRL keeps the last good one in service.
	writeFile(t, crl, []byte("garbage"))
	ts.log.waitLog(t, "keeping the previous version in service")
	if _, err := dial(t, ts.addr, cfg); err == nil {
		t.Fatal("revoked client accepted after a broken CRL")
	}
	// An older CRL (a rollback) is refused too.
	writeFile(t, crl, makeCRL(t, p, 1, time.Now().Add(24*time.Hour)))
	ts.log.waitLog(t, "refusing to go back to an older CRL")
}

func testStaleCRL(t *testing.T, p *probetest.PKI) {
	dir := t.TempDir()
	crl := filepath.Join(dir, "ca1.crl")
	writeFile(t, crl, makeCRL(t, p, 1, time.Now().Add(-time.Minute)))
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
		"cafile "+p.Path("ca1.crt"), "require_certificate true", "crlfile "+crl), nil)
	ts.log.waitLog(t, "is out of date")
	if _, err := dial(t, ts.addr, clientConfig(t, p, "mqtt.local", "device1.crt", "device1.key")); err != nil {
		t.Fatalf("client refused with a stale CRL: %v", err)
	}
}

func testCRLURL(t *testing.T, p *probetest.PKI) {
	var body atomic.Pointer[[]byte]
	first := makeCRL(t, p, 1, time.Now().Add(time.Hour))
	body.Store(&first)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(*body.Load()) }))
	defer hs.Close()
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"),
		"cafile "+p.Path("ca1.crt"), "require_certificate true", "crl_url "+hs.URL+"/ca1.crl", "crl_refresh_interval 1"), nil)
	cfg := clientConfig(t, p, "mqtt.local", "device1.crt", "device1.key")
	ts.log.waitLog(t, "loaded crl_url")
	if _, err := dial(t, ts.addr, cfg); err != nil {
		t.Fatal(err)
	}
	second := makeCRL(t, p, 2, time.Now().Add(time.Hour), p.Cert(t, "device1.crt"))
	body.Store(&second)
	ts.log.waitLog(t, "number 2")
	if _, err := dial(t, ts.addr, cfg); err == nil {
		t.Fatal("client revoked by crl_url accepted")
	}
}

func testCertReload(t *testing.T, p *probetest.PKI) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	copyFile(t, p.Path("server1.crt"), crt)
	copyFile(t, p.Path("server1.key"), key)
	ts := startServer(t, parseListener(t, "certfile "+crt, "keyfile "+key), nil)
	cfg := clientConfig(t, p, "", "", "")
	cfg.InsecureSkipVerify = true
	open, err := dial(t, ts.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	issuer := func() string {
		t.Helper()
		c, err := dial(t, ts.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c.ConnectionState().PeerCertificates[0].Issuer.CommonName
	}

	// Half a renewal (the certificate without its key) is refused and the
	// old pair stays in service.
	copyFile(t, p.Path("server2.crt"), crt)
	ts.log.waitLog(t, "key does not match certificate")
	if got := issuer(); got != "CA1" {
		t.Errorf("after a mismatched certificate, served %s", got)
	}
	// The key arrives: the new pair is served, by the watcher alone.
	copyFile(t, p.Path("server2.key"), key)
	ts.log.waitLog(t, "reloaded certfile")
	if got := issuer(); got != "CA2" {
		t.Errorf("after renewal, served %s", got)
	}
	// The connection made before is still open.
	if _, err := open.Write([]byte("x")); err != nil {
		t.Errorf("open connection broken by the reload: %v", err)
	}

	// A symlink swap, as Kubernetes does with ..data, also counts.
	d1, d2 := filepath.Join(dir, "v1"), filepath.Join(dir, "v2")
	for _, d := range []string{d1, d2} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, p.Path("server1.crt"), filepath.Join(d1, "tls.crt"))
	copyFile(t, p.Path("server1.key"), filepath.Join(d1, "tls.key"))
	copyFile(t, p.Path("server2.crt"), filepath.Join(d2, "tls.crt"))
	copyFile(t, p.Path("server2.key"), filepath.Join(d2, "tls.key"))
	link := filepath.Join(dir, "..data")
	if err := os.Symlink("v1", link); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	ts2 := startServer(t, parseListener(t, "certfile "+filepath.Join(dir, "tls.crt"), "keyfile "+filepath.Join(dir, "tls.key")), nil)
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	ts2.log.waitLog(t, "reloaded certfile")
	c, err := dial(t, ts2.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ConnectionState().PeerCertificates[0].Issuer.CommonName; got != "CA2" {
		t.Errorf("after the symlink swap, served %s", got)
	}
}

func testExpiry(t *testing.T, p *probetest.PKI) {
	ts := startServer(t, parseListener(t, "certfile "+p.Path("server1.crt"), "keyfile "+p.Path("server1.key"), "cafile "+p.Path("ca1.crt")),
		func(o *Options) { o.Now = func() time.Time { return time.Now().Add(350 * 24 * time.Hour) } })
	ts.log.waitLog(t, "certificate CN=mqtt.local expires in")
	ts = startServer(t, parseListener(t, "certfile "+p.Path("expired.crt"), "keyfile "+p.Path("expired.key")), nil)
	ts.log.waitLog(t, "EXPIRED on")
	if len(ts.Expiries()) != 1 {
		t.Errorf("Expiries = %v", ts.Expiries())
	}
}

// TestClassify checks the words for errors that are hard to provoke.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{tls.RecordHeaderError{RecordHeader: [5]byte{0x10, 0x0c, 0, 4, 'M'}}, ReasonNotTLS},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: unknown certificate authority")}, ReasonServerCert},
		{errors.New("tls: client offered only unsupported versions: [302]"), ReasonVersion},
		{errors.New("tls: no cipher suite supported by both client and server"), ReasonNoCipher},
		{errors.New("EOF"), ReasonOther},
		{&RevokedError{Subject: "CN=x"}, ReasonRevoked},
	} {
		if got, _ := classify(tc.err); got != tc.reason {
			t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.reason)
		}
	}
}
