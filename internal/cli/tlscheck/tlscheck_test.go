package tlscheck

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mamori-mqtt/mamori/internal/pki"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe/probetest"
)

// check runs "mamori tlscheck ARGS --json" and decodes the report.
func check(t *testing.T, args ...string) (*tlsprobe.Report, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append(args, "--json", "--timeout", "5s"), &out, &errb)
	var r tlsprobe.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("exit %d, output is not a JSON report: %v\nstdout: %s\nstderr: %s", code, err, out.String(), errb.String())
	}
	return &r, code
}

// eq compares one field of the report.
func eq[T any](t *testing.T, field string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", field, got, want)
	}
}

// certFields checks a chain entry against the certificate file it came from.
func certFields(t *testing.T, i int, got tlsprobe.CertInfo, c *x509.Certificate, keyType string) {
	t.Helper()
	p := fmt.Sprintf("chain[%d].", i)
	eq(t, p+"subject", got.Subject, c.Subject.String())
	eq(t, p+"issuer", got.Issuer, c.Issuer.String())
	eq(t, p+"serial", got.Serial, fmt.Sprintf("%X", c.SerialNumber.Bytes())) // as openssl x509 -serial prints it
	eq(t, p+"not_before", got.NotBefore.Equal(c.NotBefore), true)
	eq(t, p+"not_after", got.NotAfter.Equal(c.NotAfter), true)
	eq(t, p+"key_type", got.KeyType, keyType)
	eq(t, p+"version", got.Version, c.Version)
}

// TestSeed000Verification1 is seed 000's first setup: mosquitto with one
// CN-only certificate from CA1, clients that connect by another name.
func TestSeed000Verification1(t *testing.T) {
	p := probetest.NewPKI(t)
	ca1 := p.Path("ca1.crt")
	addr := probetest.StartMosquitto(t, "cafile "+ca1+"\ncertfile "+p.Path("server1.crt")+"\nkeyfile "+p.Path("server1.key")+"\ntls_version tlsv1.2")
	srv, ca := p.Cert(t, "server1.crt"), p.Cert(t, "ca1.crt")

	t.Run("--servername mqtt.local verifies by CN", func(t *testing.T) {
		r, code := check(t, addr, "--cafile", ca1, "--servername", "mqtt.local")
		eq(t, "exit", code, 0)
		eq(t, "ok", r.OK, true)
		eq(t, "address", r.Address, addr)
		eq(t, "server_name", r.ServerName, "mqtt.local")
		eq(t, "sni", r.SNI, "mqtt.local")
		eq(t, "trust_store", r.TrustStore, ca1)
		eq(t, "connected", r.Connected, true)
		eq(t, "handshake", r.Handshake, true)
		eq(t, "tls_version", r.TLSVersion, "TLS 1.3") // tls_version is a minimum in Mosquitto 2
		eq(t, "cipher_suite is TLS 1.3", strings.HasPrefix(r.CipherSuite, "TLS_AES_") || r.CipherSuite == "TLS_CHACHA20_POLY1305_SHA256", true)
		eq(t, "cipher_openssl", r.CipherOpenSSL, r.CipherSuite)
		eq(t, "alpn", r.ALPN, "")
		if len(r.Chain) != 2 {
			t.Fatalf("chain has %d certificates, want 2 (mosquitto sends CA1 too)", len(r.Chain))
		}
		certFields(t, 0, r.Chain[0], srv, "RSA 2048")
		serial, err := exec.Command("openssl", "x509", "-noout", "-serial", "-in", p.Path("server1.crt")).Output()
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "chain[0].serial (openssl x509 -serial)", "serial="+r.Chain[0].Serial, strings.TrimSpace(string(serial)))
		eq(t, "chain[0].version", r.Chain[0].Version, 1)
		eq(t, "chain[0].dns_names", r.Chain[0].DNSNames, []string{})
		eq(t, "chain[0].ip_addresses", r.Chain[0].IPAddresses, []string{})
		eq(t, "chain[0].is_ca", r.Chain[0].IsCA, false)
		eq(t, "chain[0].self_signed", r.Chain[0].SelfSigned, false)
		certFields(t, 1, r.Chain[1], ca, "RSA 2048")
		eq(t, "chain[1].is_ca", r.Chain[1].IsCA, true)
		eq(t, "chain[1].self_signed", r.Chain[1].SelfSigned, true)
		eq(t, "stage1", r.Stage1, tlsprobe.StageResult{OK: true, Against: ca1, VerifiedChain: []string{"CN=mqtt.local", "CN=CA1"}})
		eq(t, "stage2", r.Stage2, tlsprobe.StageResult{OK: true, Against: "mqtt.local", MatchedBy: "cn", ValidFor: []string{"mqtt.local"}})
		eq(t, "expiry.not_after", r.Expiry.NotAfter.Equal(srv.NotAfter), true)
		eq(t, "expiry.days_left", r.Expiry.DaysLeft >= 363 && r.Expiry.DaysLeft <= 365, true)
		eq(t, "expiry.expired", r.Expiry.Expired, false)
		eq(t, "expiry.soon", r.Expiry.Soon, false)
		eq(t, "expiry.first_to_expire", r.Expiry.FirstToExpire, "CN=mqtt.local")
		eq(t, "ocsp", r.OCSP, tlsprobe.OCSPInfo{})
		eq(t, "client_certificate", r.ClientCert, tlsprobe.ClientCertInfo{AcceptableCAs: []string{}})
		eq(t, "mqtt", r.MQTT, tlsprobe.MQTTResult{Attempted: true, Connack: true, Accepted: true, Reason: "Connection Accepted"})
		eq(t, "warnings", r.Warnings, []string{tlsprobe.CNWarning(srv)})
		eq(t, "error", r.Error, "")
	})

	t.Run("name mismatch fails stage 2 and says how to fix it", func(t *testing.T) {
		r, code := check(t, addr, "--cafile", ca1, "--servername", "mqtt.example.com")
		eq(t, "exit", code, 1)
		eq(t, "ok", r.OK, false)
		eq(t, "stage1.ok", r.Stage1.OK, true)
		eq(t, "stage2", r.Stage2, tlsprobe.StageResult{Against: "mqtt.example.com", ValidFor: []string{"mqtt.local"},
			Error:       "tls: stage 2 (host name) failed: certificate is valid for mqtt.local, not mqtt.example.com",
			Explanation: "TLS: certificate is valid for mqtt.local, not mqtt.example.com — connect with --servername mqtt.local, or --insecure"})
		eq(t, "mqtt.connack", r.MQTT.Connack, true)
		eq(t, "warnings", r.Warnings, []string{})
	})

	t.Run("--insecure skips stage 2 (the seed's check_hostname = False)", func(t *testing.T) {
		r, code := check(t, addr, "--cafile", ca1, "--servername", "mqtt.example.com", "--insecure")
		eq(t, "exit", code, 0)
		eq(t, "ok", r.OK, true)
		eq(t, "stage2.skipped", r.Stage2.Skipped, true)
		eq(t, "stage2.ok", r.Stage2.OK, false)
	})

	t.Run("wrong CA fails stage 1", func(t *testing.T) {
		ca2 := p.Path("ca2.crt")
		r, code := check(t, addr, "--cafile", ca2, "--servername", "mqtt.local")
		eq(t, "exit", code, 1)
		eq(t, "stage1.ok", r.Stage1.OK, false)
		eq(t, "stage1.explanation", r.Stage1.Explanation, "TLS: the server's certificate (CN=mqtt.local, issued by CA1) is not signed by any CA in "+ca2+
			" — pass CA1's certificate with --cafile (or, if the server chooses its certificate by SNI, ask for the other one with --servername)")
		eq(t, "stage2.ok", r.Stage2.OK, true)
		eq(t, "mqtt.connack", r.MQTT.Connack, true)
	})
}

// TestSeed000Verification2 is seed 000's second setup (nginx choosing
// between CA1's and CA2's certificates by SNI), with a Go server that
// chooses by SNI as mamori's broker does.
func TestSeed000Verification2(t *testing.T) {
	p := probetest.NewPKI(t)
	load := func(n string) tls.Certificate {
		kp, err := tls.LoadX509KeyPair(p.Path(n+".crt"), p.Path(n+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	s1, s2 := load("server1"), load("server2")
	addr := probetest.StartTLS(t, &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if h.ServerName == "mqtt.local" {
			return &s1, nil
		}
		return &s2, nil
	}}, 0)
	ca1 := p.Path("ca1.crt")

	r, code := check(t, addr, "--cafile", ca1, "--servername", "mqtt.local")
	eq(t, "SNI mqtt.local: exit", code, 0)
	eq(t, "SNI mqtt.local: chain[0].subject", r.Chain[0].Subject, "CN=mqtt.local")
	eq(t, "SNI mqtt.local: stage1.ok", r.Stage1.OK, true)
	eq(t, "SNI mqtt.local: stage2.matched_by", r.Stage2.MatchedBy, "cn")

	r, code = check(t, addr, "--cafile", ca1, "--servername", "mqtt.example.com")
	eq(t, "SNI mqtt.example.com: exit", code, 1)
	eq(t, "sni", r.SNI, "mqtt.example.com")
	eq(t, "chain", len(r.Chain), 1)
	eq(t, "chain[0].subject", r.Chain[0].Subject, "CN=mqtt.example.com")
	eq(t, "chain[0].issuer", r.Chain[0].Issuer, "CN=CA2")
	eq(t, "stage1.ok", r.Stage1.OK, false)
	eq(t, "stage1.explanation", r.Stage1.Explanation, "TLS: the server's certificate (CN=mqtt.example.com, issued by CA2) is not signed by any CA in "+ca1+
		" — pass CA2's certificate with --cafile (or, if the server chooses its certificate by SNI, ask for the other one with --servername)")
	eq(t, "stage2.ok", r.Stage2.OK, true)
	eq(t, "ok", r.OK, false)
}

// TestSeed002ClientCertificates is seed 002: require_certificate with
// certificates from a private CA, the client's as a PKCS#12 bundle.
func TestSeed002ClientCertificates(t *testing.T) {
	p := probetest.NewPKI(t)
	ca1 := p.Path("ca1.crt")
	addr := probetest.StartMosquitto(t, "cafile "+ca1+"\ncertfile "+p.Path("server1.crt")+"\nkeyfile "+p.Path("server1.key")+
		"\nrequire_certificate true\nuse_identity_as_username true")

	r, code := check(t, addr, "--cafile", ca1, "--servername", "mqtt.local")
	eq(t, "no cert: exit", code, 1)
	eq(t, "no cert: handshake", r.Handshake, true) // TLS 1.3: the refusal comes after
	eq(t, "no cert: client_certificate.requested", r.ClientCert.Requested, true)
	eq(t, "no cert: client_certificate.sent", r.ClientCert.Sent, false)
	eq(t, "no cert: stage1.ok", r.Stage1.OK, true)
	eq(t, "no cert: mqtt.connack", r.MQTT.Connack, false)
	eq(t, "no cert: mqtt.explanation", r.MQTT.Explanation, "TLS: the server requires a client certificate — pass --cert and --key (or --cert FILE.p12 --cert-pass PASS)")

	r, code = check(t, addr, "--cafile", ca1, "--servername", "mqtt.local", "--cert", p.Path("device1.p12"), "--cert-pass", probetest.Pass)
	eq(t, "p12: exit", code, 0)
	eq(t, "p12: client_certificate", r.ClientCert, tlsprobe.ClientCertInfo{Requested: true, AcceptableCAs: []string{}, Sent: true, Subject: "CN=device1"})
	eq(t, "p12: mqtt.accepted", r.MQTT.Accepted, true)

	// TLS 1.3 (tls_version is a minimum): mosquitto refuses the certificate
	// after the client's handshake has finished.
	r, code = check(t, addr, "--cafile", ca1, "--servername", "mqtt.local", "--cert", p.Path("device2.crt"), "--key", p.Path("device2.key"))
	eq(t, "CA2 client: exit", code, 1)
	eq(t, "CA2 client: client_certificate.sent", r.ClientCert.Sent, true)
	eq(t, "CA2 client: mqtt.connack", r.MQTT.Connack, false)
	eq(t, "CA2 client: mqtt.explanation", r.MQTT.Explanation, "TLS: the server refused the client certificate "+p.Path("device2.crt")+
		" (CN=device2, issued by CA2): the server does not know the CA that issued it (unknown CA) — use a certificate issued by a CA in the server's cafile, not revoked and within its dates")
}

// TestSANsExpiryAndOCSP: a SAN certificate with a stapled OCSP response, an
// expired certificate, and a server that asks for client certificates of
// CA1.
func TestSANsExpiryAndOCSP(t *testing.T) {
	p := probetest.NewPKI(t)
	ca1 := p.Path("ca1.crt")
	caCert := p.Cert(t, "ca1.crt")
	caKey, err := pki.LoadPrivateKey(ca1[:len(ca1)-4]+".key", nil)
	if err != nil {
		t.Fatal(err)
	}
	san := p.Cert(t, "san.crt")
	now := time.Now().Truncate(time.Second)
	staple, err := ocsp.CreateResponse(caCert, caCert, ocsp.Response{Status: ocsp.Good, SerialNumber: san.SerialNumber,
		ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour)}, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(p.Path("san.crt"), p.Path("san.key"))
	if err != nil {
		t.Fatal(err)
	}
	kp.OCSPStaple = staple
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	addr := probetest.StartTLS(t, &tls.Config{Certificates: []tls.Certificate{kp}, ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs: pool, NextProtos: []string{"mqtt"}}, 0)

	r, code := check(t, addr, "--cafile", ca1, "--tls-alpn", "mqtt")
	eq(t, "exit", code, 0)
	eq(t, "sni (none for an IP)", r.SNI, "")
	eq(t, "server_name", r.ServerName, "127.0.0.1")
	eq(t, "alpn", r.ALPN, "mqtt")
	certFields(t, 0, r.Chain[0], san, "ECDSA P-256")
	eq(t, "chain[0].dns_names", r.Chain[0].DNSNames, []string{"mqtt.example.com", "*.example.org"})
	eq(t, "chain[0].ip_addresses", r.Chain[0].IPAddresses, []string{"127.0.0.1"})
	eq(t, "stage2", r.Stage2, tlsprobe.StageResult{OK: true, Against: "127.0.0.1", MatchedBy: "ip-san",
		ValidFor: []string{"mqtt.example.com", "*.example.org", "127.0.0.1"}})
	eq(t, "ocsp.stapled", r.OCSP.Stapled, true)
	eq(t, "ocsp.status", r.OCSP.Status, "good")
	eq(t, "ocsp.this_update", r.OCSP.ThisUpdate != nil && r.OCSP.ThisUpdate.Equal(now.Add(-time.Hour)), true)
	eq(t, "ocsp.next_update", r.OCSP.NextUpdate != nil && r.OCSP.NextUpdate.Equal(now.Add(24*time.Hour)), true)
	eq(t, "client_certificate", r.ClientCert, tlsprobe.ClientCertInfo{Requested: true, AcceptableCAs: []string{"CN=CA1"}})
	eq(t, "warnings", r.Warnings, []string{})

	r, code = check(t, addr, "--cafile", ca1, "--servername", "broker.example.org")
	eq(t, "wildcard: exit", code, 0)
	eq(t, "wildcard: stage2.matched_by", r.Stage2.MatchedBy, "dns-san")

	exp := probetest.StartTLS(t, func() *tls.Config {
		kp, err := tls.LoadX509KeyPair(p.Path("expired.crt"), p.Path("expired.key"))
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{Certificates: []tls.Certificate{kp}}
	}(), 0)
	r, code = check(t, exp, "--cafile", ca1, "--servername", "mqtt.local")
	eq(t, "expired: exit", code, 1)
	eq(t, "expired: expiry.expired", r.Expiry.Expired, true)
	eq(t, "expired: expiry.days_left < 0", r.Expiry.DaysLeft < 0, true)
	eq(t, "expired: stage1.ok", r.Stage1.OK, false)
	eq(t, "expired: stage1.explanation prefix", strings.HasPrefix(r.Stage1.Explanation, "TLS: the server's certificate (CN=mqtt.local) expired on "), true)
}

// TestNotTLS: tlscheck against a plain MQTT port and a closed port.
func TestNotTLS(t *testing.T) {
	plain := probetest.StartPlainMQTT(t, false)
	r, code := check(t, plain, "--insecure")
	eq(t, "exit", code, 1)
	eq(t, "connected", r.Connected, true)
	eq(t, "handshake", r.Handshake, false)
	eq(t, "chain", r.Chain, []tlsprobe.CertInfo{})
	eq(t, "explanation", r.Explanation, "TLS: "+plain+" speaks plain MQTT, not TLS (it answered an MQTT CONNECT with CONNACK) — leave out --cafile/--capath/--cert, or connect to the broker's TLS port (usually 8883)")

	closed := fmt.Sprintf("127.0.0.1:%d", probetest.FreePort(t))
	r, code = check(t, closed)
	eq(t, "closed: exit", code, 1)
	eq(t, "closed: connected", r.Connected, false)
}

// TestHumanOutput checks the human report's key lines.
func TestHumanOutput(t *testing.T) {
	p := probetest.NewPKI(t)
	kp, err := tls.LoadX509KeyPair(p.Path("server1.crt"), p.Path("server1.key"))
	if err != nil {
		t.Fatal(err)
	}
	addr := probetest.StartTLS(t, &tls.Config{Certificates: []tls.Certificate{kp}}, 5)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{addr, "--cafile", p.Path("ca1.crt"), "--servername", "mqtt.local"}, &out, &errb)
	eq(t, "exit (CONNACK refused for credentials still counts)", code, 0)
	for _, line := range []string{
		"Connecting to " + addr + " — SNI: mqtt.local; verifying name: mqtt.local",
		tlsprobe.CNWarning(p.Cert(t, "server1.crt")),
		"  0 subject   CN=mqtt.local",
		"    SANs      none (a CN-only, X.509 v1 certificate)",
		"Stage 1:      OK — chain CN=mqtt.local → CN=CA1 verifies against " + p.Path("ca1.crt"),
		"Stage 2:      OK — mqtt.local matches the CN (no DNS SAN)",
		"OCSP staple:  none",
		"Client cert:  not requested by the server",
		"MQTT:         CONNACK 5, Connection Refused: not authorised",
		"Result:       OK — everything verifies",
	} {
		if !strings.Contains(out.String(), line+"\n") {
			t.Errorf("missing line %q in:\n%s", line, out.String())
		}
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "Usage: mamori tlscheck") {
		t.Errorf("no argument: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"localhost", "--cafile", "/nonexistent/ca.crt"}, &out, &errb); code != 2 || !strings.HasPrefix(errb.String(), "mamori tlscheck: --cafile /nonexistent/ca.crt") {
		t.Errorf("missing cafile: exit %d, %q", code, errb.String())
	}
	if code := run(context.Background(), []string{"--help"}, &out, &errb); code != 0 {
		t.Errorf("--help: exit %d", code)
	}
	eq(t, "withPort", withPort("broker.local"), "broker.local:8883")
	eq(t, "withPort v6", withPort("::1"), "[::1]:8883")
	eq(t, "withPort kept", withPort("10.0.0.1:1884"), "10.0.0.1:1884")
}
