package interop

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestPKIFromMamoriCA builds a PKI with `mamori ca` alone (issue 7) and
// uses it the way seed 002 uses a private CA: a TLS listener with client
// certificates and use_identity_as_username; mosquitto_sub and Paho Python
// connect with certificates it issued; `mamori ca revoke` writes the new
// CRL, and the broker — watching the file, no restart — closes the revoked
// client's connection and refuses it afterwards.
func TestPKIFromMamoriCA(t *testing.T) {
	dir := t.TempDir()
	ca := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(mamoriBin, append([]string{"ca"}, append(args, "--dir", dir)...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("mamori ca %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ca("init", "--cn", "Factory CA", "--no-password")
	ca("issue", "server", "--dns", "localhost", "--ip", "127.0.0.1")
	ca("issue", "client", "--cn", "device1")
	ca("issue", "client", "--cn", "device2")
	issued := func(name string) string { return filepath.Join(dir, "issued", name) }
	tlsPort := freePort(t)
	b := startBroker(t,
		// The server key is 0600 (root's, here): as root, the broker would
		// otherwise drop to the mosquitto user and refuse to start, since
		// it could not re-read the key then.
		"user root",
		fmt.Sprintf("listener %d 127.0.0.1", tlsPort),
		"cafile "+filepath.Join(dir, "ca.crt"),
		"certfile "+issued("localhost-chain.crt"),
		"keyfile "+issued("localhost.key"),
		"require_certificate true",
		"use_identity_as_username true",
		"crlfile "+filepath.Join(dir, "crl.pem"))
	port := fmt.Sprint(tlsPort)

	sub := startClient(t, "mosquitto_sub device1", nil, []string{"stdbuf", "-oL", "mosquitto_sub", "-h", "localhost", "-p", port,
		"--cafile", filepath.Join(dir, "ca.crt"), "--cert", issued("device1.crt"), "--key", issued("device1.key"),
		"-t", "factory/#", "-v", "-d"})
	sub.WaitLine("SUBACK")

	if _, err := pahoPython(); err != nil {
		t.Skipf("Paho Python: %v", err)
	}
	dev2 := (client{paho, 4}).start(t, &broker{host: "localhost", port: tlsPort}, session{ID: "device2-session",
		CAFile: filepath.Join(dir, "ca.crt"), CertFile: issued("device2.crt"), KeyFile: issued("device2.key"),
		Publish: []msg{{Topic: "factory/line1", Payload: "from device2", QoS: 1}}, End: "hold"})
	dev2.await("published")
	sub.WaitLine("factory/line1 from device2")
	b.p.WaitLine("u'device2'") // the certificate's CN is the user name

	// Revoke device2: its open connection is closed, with no restart.
	ca("revoke", "device2", "--reason", "keyCompromise")
	b.p.WaitLine("closed 1 connection(s) whose client certificate is now revoked")
	b.p.WaitLine("Client device2-session closed its connection")
	dev2.Stop(false) // Paho would keep trying to reconnect
	// A new connection with the revoked certificate is refused.
	again := (client{paho, 4}).start(t, &broker{host: "localhost", port: tlsPort}, session{ID: "device2-again",
		CAFile: filepath.Join(dir, "ca.crt"), CertFile: issued("device2.crt"), KeyFile: issued("device2.key"),
		ExpectRefused: true})
	again.await("refused")
	// The broker says why, once: a handshake failure with reason revoked.
	b.p.WaitLine("TLS handshake failed")
	b.p.WaitLine(": revoked: client certificate CN=device2")
	// device1 is unaffected.
	out, err := exec.Command("mosquitto_pub", "-h", "localhost", "-p", port, "--cafile", filepath.Join(dir, "ca.crt"),
		"--cert", issued("device1.crt"), "--key", issued("device1.key"), "-t", "factory/line2", "-m", "still here").CombinedOutput()
	if err != nil {
		t.Fatalf("device1 after the CRL: %v\n%s", err, out)
	}
	sub.WaitLine("factory/line2 still here")
}
