package tls

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// sClient runs openssl s_client against the broker with extra flags and
// returns its output; the handshake failing is not an error here.
func sClient(t *testing.T, b *brokertest.Broker, args ...string) string {
	t.Helper()
	out, _ := run(t, append([]string{"openssl", "s_client", "-connect", b.Addr()}, args...)...)
	return out
}

// TestOpenSSLShows checks with openssl s_client that ALPN, versions and
// cipher suites are what the configuration says.
func TestOpenSSLShows(t *testing.T) {
	brokertest.RequireTools(t, "openssl")
	dir := t.TempDir()
	seedCA(t, dir, "ca", "/CN=CA")
	seedLeaf(t, dir, "server", "/CN=localhost", "ca")
	cert := []string{"certfile " + filepath.Join(dir, "server.crt"), "keyfile " + filepath.Join(dir, "server.key"), "allow_anonymous true"}

	t.Run("defaults", func(t *testing.T) {
		b := startBroker(t, t.TempDir(), func(port int) string { return tlsListener(port, cert...) })
		if out := sClient(t, b, "-alpn", "mqtt"); !strings.Contains(out, "ALPN protocol: mqtt") {
			t.Errorf("ALPN mqtt not negotiated:\n%s", out)
		}
		if out := sClient(t, b, "-brief"); !strings.Contains(out, "Protocol version: TLSv1.3") {
			t.Errorf("TLS 1.3 not negotiated:\n%s", out)
		}
		out := sClient(t, b, "-tls1_2", "-brief")
		if !strings.Contains(out, "Protocol version: TLSv1.2") || !regexp.MustCompile(`Ciphersuite: ECDHE-RSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)`).MatchString(out) {
			t.Errorf("TLS 1.2 not with an ECDHE AEAD suite:\n%s", out)
		}
		// Neither static RSA nor CBC suites are offered by default.
		for _, c := range []string{"AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA"} {
			if out := sClient(t, b, "-tls1_2", "-cipher", c, "-brief"); strings.Contains(out, "Ciphersuite:") {
				t.Errorf("%s accepted:\n%s", c, out)
			}
		}
		b.WaitLine("no shared cipher")
		// A client without ALPN, or with another protocol, still works.
		if out := sClient(t, b, "-alpn", "x-other", "-brief"); !strings.Contains(out, "Protocol version:") {
			t.Errorf("client with another ALPN protocol refused:\n%s", out)
		}
	})
	t.Run("ciphers and tls_version", func(t *testing.T) {
		b := startBroker(t, t.TempDir(), func(port int) string {
			return tlsListener(port, append(cert, "ciphers ECDHE-RSA-AES256-GCM-SHA384", "tls_version tlsv1.2")...)
		})
		if out := sClient(t, b, "-tls1_2", "-brief"); !strings.Contains(out, "Ciphersuite: ECDHE-RSA-AES256-GCM-SHA384") {
			t.Errorf("configured suite not used:\n%s", out)
		}
		if out := sClient(t, b, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", "-brief"); strings.Contains(out, "Ciphersuite:") {
			t.Errorf("suite outside ciphers accepted:\n%s", out)
		}
		b13 := startBroker(t, t.TempDir(), func(port int) string { return tlsListener(port, append(cert, "tls_version tlsv1.3")...) })
		if out := sClient(t, b13, "-tls1_2", "-brief"); strings.Contains(out, "Protocol version:") {
			t.Errorf("TLS 1.2 accepted with tls_version tlsv1.3:\n%s", out)
		}
	})
	t.Run("a cipher Go does not have is an error", func(t *testing.T) {
		out := brokerFails(t, t.TempDir(), tlsListener(1883, append(cert, "ciphers DHE-RSA-AES256-GCM-SHA384")...))
		if !strings.Contains(out, "bad.conf:5: ciphers: DHE-RSA-AES256-GCM-SHA384 is not available") {
			t.Errorf("unclear error:\n%s", out)
		}
	})
}

// TestKeys checks encrypted keys with keyfile_password and the errors for
// files that do not fit.
func TestKeys(t *testing.T) {
	brokertest.RequireTools(t, "openssl")
	dir := t.TempDir()
	seedCA(t, dir, "ca", "/CN=CA")
	seedLeaf(t, dir, "server", "/CN=localhost", "ca")
	seedLeaf(t, dir, "other", "/CN=other", "ca")
	openssl(t, dir, "rsa", "-in", "server.key", "-des3", "-traditional", "-passout", "pass:keypass", "-out", "server-des3.key")
	openssl(t, dir, "rsa", "-in", "server.key", "-aes256", "-traditional", "-passout", "pass:keypass", "-out", "server-aes256.key")
	openssl(t, dir, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "server.key", "-passout", "pass:keypass", "-out", "server-pkcs8.key")
	// A key made encrypted from the start, as "openssl genrsa -des3" does.
	openssl(t, dir, "genrsa", "-des3", "-passout", "pass:keypass", "-out", "gen.key", "2048")
	openssl(t, dir, "req", "-new", "-key", "gen.key", "-passin", "pass:keypass", "-out", "gen.csr", "-subj", "/CN=localhost")
	openssl(t, dir, "x509", "-req", "-in", "gen.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-passin", "pass:"+caPass,
		"-CAcreateserial", "-out", "gen.crt", "-days", "30")
	crl := filepath.Join(dir, "ca.crl")
	if err := os.WriteFile(filepath.Join(dir, "index.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.cnf"), []byte(caConf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "crlnumber"), []byte("01\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openssl(t, dir, "ca", "-config", "ca.cnf", "-passin", "pass:"+caPass, "-gencrl", "-out", crl)
	p := func(n string) string { return filepath.Join(dir, n) }
	if err := os.WriteFile(p("psk"), []byte("device1:0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, crt, key string }{
		{"genrsa -des3", "gen.crt", "gen.key"},
		{"legacy PEM des3", "server.crt", "server-des3.key"},
		{"legacy PEM aes256", "server.crt", "server-aes256.key"},
		{"encrypted PKCS#8", "server.crt", "server-pkcs8.key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t, t.TempDir(), func(port int) string {
				return tlsListener(port, "certfile "+p(tc.crt), "keyfile "+p(tc.key), "keyfile_password keypass")
			})
			out := mustRun(t, "openssl", "s_client", "-connect", b.Addr(), "-CAfile", p("ca.crt"), "-verify_return_error", "-brief")
			if !strings.Contains(out, "Verification: OK") {
				t.Errorf("not verified:\n%s", out)
			}
		})
	}
	for _, tc := range []struct{ name, lines, want string }{
		{"key of another certificate", "certfile " + p("server.crt") + "\nkeyfile " + p("other.key"),
			"bad.conf:2: certfile: key does not match certificate: " + p("other.key") + " is not the key of " + p("server.crt")},
		{"wrong password", "certfile " + p("server.crt") + "\nkeyfile " + p("server-des3.key") + "\nkeyfile_password wrong",
			"bad.conf:3: keyfile: wrong password for " + p("server-des3.key")},
		{"no password", "certfile " + p("server.crt") + "\nkeyfile " + p("server-pkcs8.key"),
			"bad.conf:3: keyfile: " + p("server-pkcs8.key") + " is encrypted: a password is required"},
		{"a CRL as certfile", "certfile " + crl + "\nkeyfile " + p("server.key"),
			"bad.conf:2: certfile: " + crl + " is a CRL, not a certificate"},
		{"psk_hint with certificates", "certfile " + p("server.crt") + "\nkeyfile " + p("server.key") + "\npsk_hint mamori\npsk_file " + p("psk"), "psk_hint: listener 1883 127.0.0.1 has both certificates and psk_hint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := brokerFails(t, t.TempDir(), "listener 1883 127.0.0.1\n"+tc.lines+"\n")
			if !strings.Contains(out, tc.want) {
				t.Errorf("error does not say %q:\n%s", tc.want, out)
			}
		})
	}
}
