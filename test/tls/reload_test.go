package tls

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
)

// servedSerial returns the serial number of the certificate the broker
// presents, as read by openssl s_client.
func servedSerial(t *testing.T, b *brokertest.Broker) string {
	t.Helper()
	// Standard output alone: s_client's verify messages go to stderr and
	// can land between the lines of the certificate.
	p := start(t, "openssl", "s_client", "-connect", b.Addr(), "-showcerts")
	_ = p.Wait() // the handshake failing shows as no certificate below
	out := p.Stdout()
	var block *pem.Block
	if i := strings.Index(out, "-----BEGIN"); i >= 0 {
		block, _ = pem.Decode([]byte(out[i:]))
	}
	if block == nil {
		t.Fatalf("no certificate in s_client output:\n%s", p.Output())
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// serialOf reads a certificate file's serial number.
func serialOf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// replace copies src over dst the way renewal tools do: write a new file
// next to it, then rename.
func replace(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// TestLiveReload renews the server certificate under a running broker:
// new handshakes get the new certificate within seconds, and a subscriber
// connected before keeps its connection and its messages.
func TestLiveReload(t *testing.T) {
	brokertest.RequireTools(t, "openssl", "mosquitto_pub", "mosquitto_sub", "stdbuf")
	dir := t.TempDir()
	seedCA(t, dir, "ca", "/CN=CA")
	seedLeaf(t, dir, "old", "/CN=localhost", "ca")
	seedLeaf(t, dir, "new", "/CN=localhost", "ca")
	live := filepath.Join(dir, "live")
	if err := os.Mkdir(live, 0o700); err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(live, "server.crt"), filepath.Join(live, "server.key")
	replace(t, filepath.Join(dir, "old.crt"), crt)
	replace(t, filepath.Join(dir, "old.key"), key)
	b := startBroker(t, t.TempDir(), func(port int) string {
		return tlsListener(port, "certfile "+crt, "keyfile "+key, "allow_anonymous true")
	})
	ca := filepath.Join(dir, "ca.crt")
	if got, want := servedSerial(t, b), serialOf(t, crt); got != want {
		t.Fatalf("serving serial %s, want %s", got, want)
	}
	sub := mosquittoSub(t, b, "--cafile", ca, "-t", "reload/test", "-v")

	replace(t, filepath.Join(dir, "new.crt"), crt)
	replace(t, filepath.Join(dir, "new.key"), key)
	b.WaitLine("reloaded certfile " + crt)
	if got, want := servedSerial(t, b), serialOf(t, crt); got != want {
		t.Fatalf("after renewal serving serial %s, want %s", got, want)
	}
	if out, err := mosquittoPub(t, b, "--cafile", ca, "-t", "reload/test", "-m", "after-renewal"); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	sub.WaitLine("reload/test after-renewal")
	if n := sub.Count("sending CONNECT"); n != 1 {
		t.Errorf("the subscriber reconnected (%d CONNECTs):\n%s", n, sub.Output())
	}

	// A broken renewal (a key that is not the certificate's) keeps the
	// renewed pair in service, and the log says why.
	kept := b.Count("keeping the previous version in service")
	replace(t, filepath.Join(dir, "old.key"), key)
	b.WaitLines("keeping the previous version in service", kept+1)
	if got, want := servedSerial(t, b), serialOf(t, crt); got != want {
		t.Errorf("after a broken key serving serial %s, want %s", got, want)
	}
}
