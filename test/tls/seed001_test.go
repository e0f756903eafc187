package tls

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// mosquittoSub starts "mosquitto_sub -d" with args and waits until its
// subscription is acknowledged. stdbuf makes its output line-buffered.
func mosquittoSub(t *testing.T, b *brokertest.Broker, args ...string) *brokertest.Proc {
	t.Helper()
	brokertest.RequireTools(t, "mosquitto_sub", "stdbuf")
	argv := append([]string{"stdbuf", "-oL", "mosquitto_sub", "-d", "-h", "localhost", "-p", b.PortString()}, args...)
	p := start(t, argv...)
	p.WaitLine("received SUBACK")
	return p
}

// mosquittoPub runs mosquitto_pub to its end.
func mosquittoPub(t *testing.T, b *brokertest.Broker, args ...string) (string, error) {
	t.Helper()
	brokertest.RequireTools(t, "mosquitto_pub")
	return run(t, append([]string{"mosquitto_pub", "-h", "localhost", "-p", b.PortString()}, args...)...)
}

// TestSeed001 follows seed 001: a CA made with "openssl genrsa -des3" and
// "openssl req -new -x509" whose subject is the server's host name, a v1
// server certificate with the same subject from "openssl x509 -req",
// password authentication (mosquitto_passwd -c -b, or mamori passwd), and
// clients that only have the CA certificate.
func TestSeed001(t *testing.T) {
	brokertest.RequireTools(t, "openssl", "mosquitto_passwd")
	dir := t.TempDir()
	// The seed answers the CA's and the server's prompts alike, so both
	// subjects name the host. With identical subjects OpenSSL 3 clients
	// take the server certificate for a self-signed one and refuse it
	// (Mosquitto included); mamori's own client does not (see
	// TestSeed001SameSubject). Here the CA's OU differs.
	seedCA(t, dir, "mqtt_ca", "/C=JP/ST=tokyo/L=tokyo/O=FicusOnline/OU=ca/CN=localhost")
	seedLeaf(t, dir, "mqtt_srv", "/C=JP/ST=tokyo/L=tokyo/O=FicusOnline/OU=dev/CN=localhost", "mqtt_ca")
	pw := filepath.Join(dir, "mqttpass")
	mustRun(t, "mosquitto_passwd", "-c", "-b", pw, "user1", "pass1")
	mustRun(t, mamoriBin, "passwd", "-b", pw, "user2", "pass2")
	b := startBroker(t, dir, func(port int) string {
		return tlsListener(port,
			"cafile "+filepath.Join(dir, "mqtt_ca.crt"),
			"certfile "+filepath.Join(dir, "mqtt_srv.crt"),
			"keyfile "+filepath.Join(dir, "mqtt_srv.key"),
			"tls_version tlsv1.2",
			"allow_anonymous false",
			"password_file "+pw)
	})
	ca := filepath.Join(dir, "mqtt_ca.crt")

	for _, user := range [][2]string{{"user1", "pass1"}, {"user2", "pass2"}} {
		t.Run("pub/sub as "+user[0], func(t *testing.T) {
			sub := mosquittoSub(t, b, "--cafile", ca, "-u", user[0], "-P", user[1], "-t", "seed/001", "-C", "1")
			if out, err := mosquittoPub(t, b, "--cafile", ca, "-u", user[0], "-P", user[1], "-t", "seed/001", "-m", "hello "+user[0]); err != nil {
				t.Fatalf("mosquitto_pub: %v\n%s", err, out)
			}
			sub.WaitLine("hello " + user[0])
			if err := sub.Wait(); err != nil {
				t.Fatalf("mosquitto_sub: %v", err)
			}
		})
	}
	t.Run("wrong password refused", func(t *testing.T) {
		out, err := mosquittoPub(t, b, "--cafile", ca, "-u", "user1", "-P", "nope", "-t", "seed/001", "-m", "x")
		if err == nil || !strings.Contains(out, "not authorised") {
			t.Fatalf("mosquitto_pub with a wrong password: %v\n%s", err, out)
		}
	})
	t.Run("TLS 1.1 client refused", func(t *testing.T) {
		// SECLEVEL=0 lets OpenSSL 3 offer TLS 1.1 at all, so the refusal
		// comes from the broker.
		out, err := run(t, "openssl", "s_client", "-connect", b.Addr(), "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
			"-CAfile", ca)
		if err == nil {
			t.Fatalf("TLS 1.1 handshake succeeded:\n%s", out)
		}
		b.WaitLine("protocol version")
	})
	t.Run("TLS 1.2 and 1.3 clients accepted", func(t *testing.T) {
		for _, v := range []string{"-tls1_2", "-tls1_3"} {
			out := mustRun(t, "openssl", "s_client", "-connect", b.Addr(), v, "-CAfile", ca, "-verify_return_error")
			if !strings.Contains(out, "Verify return code: 0 (ok)") {
				t.Errorf("%s: chain not verified:\n%s", v, out)
			}
		}
	})
}

// TestSeed001SameSubject runs seed 001 with the CA and the server
// certificate sharing one subject, exactly as the seed's prompts make
// them, using mamori's own pub and sub, which build that chain.
func TestSeed001SameSubject(t *testing.T) {
	brokertest.RequireTools(t, "openssl")
	dir := t.TempDir()
	subj := "/C=JP/ST=tokyo/L=tokyo/O=FicusOnline/OU=dev/CN=localhost"
	seedCA(t, dir, "mqtt_ca", subj)
	seedLeaf(t, dir, "mqtt_srv", subj, "mqtt_ca")
	pw := filepath.Join(dir, "mqttpass")
	mustRun(t, mamoriBin, "passwd", "-c", "-b", pw, "user1", "pass1")
	b := startBroker(t, dir, func(port int) string {
		return tlsListener(port, "cafile "+filepath.Join(dir, "mqtt_ca.crt"), "certfile "+filepath.Join(dir, "mqtt_srv.crt"),
			"keyfile "+filepath.Join(dir, "mqtt_srv.key"), "tls_version tlsv1.2", "allow_anonymous false", "password_file "+pw)
	})
	ca := filepath.Join(dir, "mqtt_ca.crt")
	sub := start(t, mamoriBin, "sub", "-h", "localhost", "-p", b.PortString(), "--cafile", ca, "-u", "user1", "-P", "pass1",
		"-t", "seed/001", "-C", "1", "-d")
	sub.WaitLine("SUBACK")
	mustRun(t, mamoriBin, "pub", "-h", "localhost", "-p", b.PortString(), "--cafile", ca, "-u", "user1", "-P", "pass1",
		"-t", "seed/001", "-m", "same subject")
	sub.WaitLine("same subject")
	if err := sub.Wait(); err != nil {
		t.Fatal(err)
	}
}
