package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "local-ca")
	l, created, err := EnsureLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !created || !l.Renewed {
		t.Errorf("first call: created=%v renewed=%v, want both", created, l.Renewed)
	}
	mustMode(t, dir, 0o700)
	mustMode(t, l.KeyFile, 0o600)
	mustMode(t, filepath.Join(dir, RootKeyFile), 0o600)
	for _, f := range []string{l.CAFile, l.CertFile, l.KeyFile, l.CRLFile} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	runOpenSSL(t, dir, "verify", "-CAfile", l.CAFile, "-purpose", "sslserver", "-verify_hostname", "localhost", l.CertFile)
	runOpenSSL(t, dir, "verify", "-CAfile", l.CAFile, "-verify_ip", "::1", l.CertFile)
	if ca, err := Open(dir, OpenOptions{}); err != nil || ca.Encrypted() {
		t.Errorf("local CA must open without a password: %v", err)
	}

	// A real TLS handshake to each loopback name, verified against the CA.
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		tlsHandshake(t, l, host)
	}

	// Second call: everything reused.
	before := mustRead(t, l.CertFile)
	l2, created, err := EnsureLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created || l2.Renewed || !bytes.Equal(before, mustRead(t, l2.CertFile)) {
		t.Errorf("second call: created=%v renewed=%v, certificate changed=%v", created, l2.Renewed, !bytes.Equal(before, mustRead(t, l2.CertFile)))
	}

	// Missing certificate: re-issued by the same CA.
	os.Remove(l.CertFile)
	l3, created, err := EnsureLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created || !l3.Renewed {
		t.Errorf("after removing the certificate: created=%v renewed=%v", created, l3.Renewed)
	}

	// Expiring within 30 days: re-issued.
	ca, err := Open(dir, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue(IssueRequest{Kind: ServerCert, Name: localServerName, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, Days: 10, Force: true}); err != nil {
		t.Fatal(err)
	}
	l4, _, err := EnsureLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !l4.Renewed || l4.NotAfter.Sub(l3.NotAfter) < 0 {
		t.Errorf("a certificate expiring in 10 days was not renewed: %+v", l4)
	}
}

// tlsHandshake serves the local certificate and connects to it as a client
// that trusts only the local CA, checking the given host name.
func tlsHandshake(t *testing.T, l Local, host string) {
	t.Helper()
	kp, err := LoadKeyPair(l.CertFile, l.KeyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	network, addr := "tcp", "127.0.0.1:0"
	if host == "::1" {
		addr = "[::1]:0"
	}
	ln, err := tls.Listen(network, addr, &tls.Config{Certificates: []tls.Certificate{kp}})
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.WriteString(c, "ok")
		done <- err
	}()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(mustRead(t, l.CAFile))
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	conn, err := tls.Dial(network, net.JoinHostPort(ln.Addr().(*net.TCPAddr).IP.String(), port), &tls.Config{RootCAs: roots, ServerName: host})
	if err != nil {
		t.Fatalf("handshake for %s: %v", host, err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ok" {
		t.Errorf("read over TLS: %q, %v", buf, err)
	}
	conn.Close()
	if err := <-done; err != nil {
		t.Errorf("server side: %v", err)
	}
}

// TestEnsureLocalConcurrent starts several "brokers" on one fresh data
// directory at once: exactly one creates the CA and all end up with it.
func TestEnsureLocalConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "local-ca")
	type result struct {
		l       Local
		created bool
		err     error
	}
	const n = 4
	results := make(chan result, n)
	for i := 0; i < n; i++ {
		go func() {
			l, created, err := EnsureLocal(dir)
			results <- result{l, created, err}
		}()
	}
	created := 0
	for i := 0; i < n; i++ {
		r := <-results
		if r.err != nil {
			t.Errorf("EnsureLocal: %v", r.err)
			continue
		}
		if r.created {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d calls created the CA, want exactly 1", created)
	}
	l, _, err := EnsureLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	runOpenSSL(t, dir, "verify", "-CAfile", l.CAFile, "-verify_hostname", "localhost", l.CertFile)
}
