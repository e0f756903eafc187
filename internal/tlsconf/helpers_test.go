package tlsconf

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/pki"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe/probetest"
)

// logBuf collects log lines for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitLog waits until the log contains s.
func (l *logBuf) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log has no %q:\n%s", s, l.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// parseListener parses mosquitto.conf lines for one TLS listener.
func parseListener(t *testing.T, lines ...string) *config.Listener {
	t.Helper()
	cfg, err := config.Parse("test.conf", []byte("listener 8883 127.0.0.1\n"+strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg.Listeners[0]
}

// testServer is a Server behind a real TCP listener on 127.0.0.1 whose
// accepted connections are held open until the test ends.
type testServer struct {
	*Server
	addr string
	log  *logBuf

	mu    sync.Mutex
	conns []net.Conn
}

func startServer(t *testing.T, l *config.Listener, mod func(*Options)) *testServer {
	t.Helper()
	lb := &logBuf{}
	ts := &testServer{log: lb}
	o := Options{Listener: l, ExpiryWarningDays: 30, Log: slog.New(slog.NewTextHandler(lb, nil)),
		Debounce: 50 * time.Millisecond}
	o.Disconnect = func(match func(net.Conn, string) bool) int {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		n := 0
		for _, c := range ts.conns {
			if match(c, "client") {
				c.Close()
				n++
			}
		}
		return n
	}
	if mod != nil {
		mod(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts.Server = srv
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := srv.NewListener(inner)
	ts.addr = inner.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	srv.Start(ctx)
	select {
	case <-srv.watchReady:
	case <-time.After(10 * time.Second):
		t.Fatal("file watcher not ready")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ts.mu.Lock()
			ts.conns = append(ts.conns, c)
			ts.mu.Unlock()
			go func() {
				// The listener hands out only connections whose handshake
				// succeeded: tell the client (see dial).
				if _, err := c.Write([]byte{handshakeOK}); err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		cancel()
		srv.Close()
		ts.mu.Lock()
		for _, c := range ts.conns {
			c.Close()
		}
		ts.mu.Unlock()
	})
	return ts
}

// clientConfig trusts the PKI's CA1 and CA2 and presents cert/key if given.
func clientConfig(t *testing.T, p *probetest.PKI, serverName, cert, key string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.Cert(t, "ca1.crt"))
	pool.AddCert(p.Cert(t, "ca2.crt"))
	// Stage 1 only: the seeds' server certificates have no SAN, which Go's
	// client refuses; the broker side is what is tested here.
	c := &tls.Config{ServerName: serverName, InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(p.Path(cert), p.Path(key))
		if err != nil {
			t.Fatal(err)
		}
		// Sent whatever CAs the server names, so that a certificate from
		// an unknown CA reaches the server's verification.
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
	}
	return c
}

// handshakeOK is the byte the test server sends once the server side of a
// handshake has succeeded.
const handshakeOK = '+'

// dial connects and completes the handshake. In TLS 1.3 the server's
// verdict on a client certificate comes after the client's side is done,
// so dial waits for the server's handshakeOK or its refusal.
func dial(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		return nil, err
	}
	if b[0] != handshakeOK {
		t.Fatalf("test server sent %q first", b[0])
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}

// copyFile copies a PKI file to dst atomically (write then rename), as
// certificate tools do.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, b)
}

func writeFile(t *testing.T, dst string, b []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// makeCRL signs a CRL of CA1 revoking the given certificates.
func makeCRL(t *testing.T, p *probetest.PKI, number int64, nextUpdate time.Time, revoked ...*x509.Certificate) []byte {
	t.Helper()
	return makeCRLOf(t, p, "ca1", number, nextUpdate, revoked...)
}

// makeCRLOf signs a CRL of the PKI's CA named ca ("ca1", "ca2").
func makeCRLOf(t *testing.T, p *probetest.PKI, caName string, number int64, nextUpdate time.Time, revoked ...*x509.Certificate) []byte {
	t.Helper()
	ca := p.Cert(t, caName+".crt")
	key, err := pki.LoadPrivateKey(p.Path(caName+".key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// openssl req -x509 sets no keyUsage, which RFC 5280 reads as "any";
	// Go's CRL writer insists on the bit, so the template gets it.
	issuer := *ca
	issuer.KeyUsage |= x509.KeyUsageCRLSign
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: nextUpdate}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, &issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}
