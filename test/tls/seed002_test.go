package tls

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// TestSeed002 follows seed 002: a private CA hands out its certificate,
// the server's certificate and key as PKCS#12 (split with openssl pkcs12,
// or used directly), client certificates and a CRL. The broker requires
// client certificates and takes the user name from their CN, which an ACL
// then names. When the CA revokes a client, the new CRL is copied over the
// old one, and the broker, without a restart, refuses the client and
// closes its open connection.
func TestSeed002(t *testing.T) {
	brokertest.RequireTools(t, "openssl", "mosquitto_pub", "mosquitto_sub", "stdbuf")
	dir := t.TempDir()
	ca := newCADB(t, dir, "Private CA")
	ca.issue(t, "server", "localhost")
	ca.exportPKCS12(t, "server")
	ca.splitPKCS12(t, "server", "server.crt", "server.key")
	ca.issue(t, "device1", "device1")
	ca.issue(t, "device2", "device2")
	crl := ca.path("crl.pem")
	ca.crl(t, crl)
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte("user device1\ntopic readwrite topic/test01\n\nuser device2\ntopic read topic/test01\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{
		"cafile " + ca.path("ca.crt"),
		"crlfile " + crl,
		"require_certificate true",
		"use_identity_as_username true",
		"acl_file " + acl,
	}
	client := func(name string) []string {
		return []string{"--cafile", ca.path("ca.crt"), "--cert", ca.path(name + ".crt"), "--key", ca.path(name + ".key")}
	}

	for _, tc := range []struct{ name, certLines string }{
		{"split PEM", "certfile " + ca.path("server.crt") + "\nkeyfile " + ca.path("server.key")},
		{"PKCS#12 directly", "certfile " + ca.path("server.p12") + "\nkeyfile_password " + caPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t, t.TempDir(), func(port int) string {
				return tlsListener(port, append([]string{tc.certLines}, common...)...)
			})
			sub := mosquittoSub(t, b, append(client("device1"), "-t", "topic/test01", "-C", "1")...)
			if out, err := mosquittoPub(t, b, append(client("device1"), "-t", "topic/test01", "-m", "message")...); err != nil {
				t.Fatalf("mosquitto_pub: %v\n%s", err, out)
			}
			sub.WaitLine("message")
			if err := sub.Wait(); err != nil {
				t.Fatal(err)
			}
			// Without a certificate the handshake is refused, and the log
			// says why.
			if out, err := mosquittoPub(t, b, "--cafile", ca.path("ca.crt"), "-t", "topic/test01", "-m", "x"); err == nil {
				t.Fatalf("client without a certificate accepted:\n%s", out)
			}
			b.WaitLine("no client certificate")
		})
	}

	t.Run("ACL on the CN, then revocation without restart", func(t *testing.T) {
		b := startBroker(t, t.TempDir(), func(port int) string {
			return tlsListener(port, append([]string{"certfile " + ca.path("server.crt"), "keyfile " + ca.path("server.key")}, common...)...)
		})
		// device2 may read but not write: its publication is dropped, and
		// device1's reaches it.
		sub2 := mosquittoSub(t, b, append(client("device2"), "-t", "topic/test01", "-v")...)
		if out, err := mosquittoPub(t, b, append(client("device2"), "-t", "topic/test01", "-m", "from-device2")...); err != nil {
			t.Fatalf("mosquitto_pub as device2: %v\n%s", err, out)
		}
		if out, err := mosquittoPub(t, b, append(client("device1"), "-t", "topic/test01", "-m", "from-device1")...); err != nil {
			t.Fatalf("mosquitto_pub as device1: %v\n%s", err, out)
		}
		sub2.WaitLine("topic/test01 from-device1")
		if strings.Contains(sub2.Output(), "from-device2") {
			t.Error("device2's publication passed the ACL")
		}

		// device2 stays connected; the CA revokes it and the new CRL is
		// copied over the old one, as the seed's download script does.
		ca.revoke(t, "device2")
		ca.crl(t, ca.path("crl.new"))
		if err := os.Rename(ca.path("crl.new"), crl); err != nil {
			t.Fatal(err)
		}
		b.WaitLine("closing client")
		b.WaitLine("CN=device2 (serial")
		deadline := time.Now().Add(awaitTimeout)
		for !strings.Contains(sub2.Output(), "Connection error") && !strings.Contains(sub2.Output(), "Error") && !sub2.Exited() {
			if time.Now().After(deadline) {
				t.Fatalf("device2's subscription was not cut off:\n%s", sub2.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
		out, err := mosquittoPub(t, b, append(client("device2"), "-t", "topic/test01", "-m", "after")...)
		if err == nil {
			t.Fatalf("revoked device2 accepted:\n%s", out)
		}
		b.WaitLine("revoked: client certificate CN=device2")
		// device1 is unaffected.
		if out, err := mosquittoPub(t, b, append(client("device1"), "-t", "topic/test01", "-m", "still")...); err != nil {
			t.Fatalf("device1 after the new CRL: %v\n%s", err, out)
		}
	})
}
